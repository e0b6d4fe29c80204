"""Analysis of MetaLore results: collect once into tidy tables, then plot and tabulate from them.

* :mod:`analysis.collect`: every result set (:mod:`analysis.resultset`) and learning curve under a
  directory -> ``results.csv`` (one row per policy and episode) and ``curves.csv``;
  :func:`analysis.collect.points` condenses to one row per evaluated policy.
* :mod:`analysis.pareto`: dominance, fronts, hypervolume; :mod:`analysis.placement`: behind, on
  or beyond a static front (the claims check, the adaptivity study's placement).
* :mod:`analysis.figures`: Fig. 4, Fig. 5, heatmaps; :mod:`analysis.curves`: learning curves.
* :mod:`analysis.tables`: Table I, the paper's reference numbers, Markdown and CSV output.
* :mod:`analysis.pool_compare`, :mod:`analysis.pool_figures`: the multi-cell credit pool.
* :mod:`analysis.adaptivity`, :mod:`analysis.adaptivity_report`: the adaptivity study.

``python -m launch report DIR`` runs all of them and writes ``DIR/report.md``.
"""
