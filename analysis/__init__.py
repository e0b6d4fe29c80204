"""Analysis of MetaLore results: collect once into tidy tables, then plot and tabulate from them.

* :mod:`analysis.resultset`: the result set every producer writes (run.json, episodes.csv,
  summary.json).
* :mod:`analysis.collect`: every result set and Tune / ``launch train`` learning curve under a
  directory -> ``results.csv`` (one row per policy and episode) and ``curves.csv`` (one row per
  trial and iteration); :func:`analysis.collect.points` condenses to one row per evaluated policy.
* :mod:`analysis.pareto`: dominance, fronts, hypervolume.
* :mod:`analysis.placement`: where a policy lies against a static front beyond the noise (the
  claims check; the adaptivity study's behind / on / beyond).
* :mod:`analysis.figures`: the paper's Fig. 4 and Fig. 5, static-grid heatmaps;
  :mod:`analysis.curves`: learning curves; :mod:`analysis.plot_style`: their shared look.
* :mod:`analysis.tables`: Table I, the paper's reference numbers, Markdown and CSV output.
* :mod:`analysis.pool_compare`: the multi-cell credit-pool comparison and its result set;
  :mod:`analysis.pool_figures`: its tables and figure.
* :mod:`analysis.adaptivity`: the adaptivity study's table and acceptance checks;
  :mod:`analysis.adaptivity_report`: its figures and report section.

``python -m launch report DIR`` runs all of them and writes ``DIR/report.md``.
"""
