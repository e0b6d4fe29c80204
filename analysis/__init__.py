"""Analysis of MetaLore results: collect once into tidy tables, then plot and tabulate from them.

* :mod:`analysis.collect`: every result set (run.json, episodes.csv, summary.json) and Tune /
  ``launch train`` learning curve under a directory -> ``results.csv`` (one row per policy and
  episode) and ``curves.csv`` (one row per trial and iteration); :func:`analysis.collect.points`
  condenses to one row per evaluated policy.
* :mod:`analysis.pareto`: dominance, fronts, hypervolume, the claims check (noise defined there).
* :mod:`analysis.figures`: the paper's Fig. 4 and Fig. 5, static-grid heatmaps, learning curves.
* :mod:`analysis.tables`: Table I, the paper's reference numbers, Markdown and CSV output.
* :mod:`analysis.pool_figures`: the multi-cell credit-pool comparison.

``python -m launch report DIR`` runs all of them and writes ``DIR/report.md``.
"""
