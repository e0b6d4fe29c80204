"""The multi-cell credit pool: cells share MEC compute through a market of credits.

One role per module (none is imported here, so importing one does not pull in the others):

* ``clearing``: pool parameters, per-cell accounts and the clearing rule (a numba kernel);
* ``sim``: :class:`~envs.core.pool.sim.PoolSimulator`, the multi-cell simulator with the pool;
* ``rules``: controllers (non-cooperative splits, the greedy rule) and the batched evaluator;
* ``civic``: the CIVIC-style episode metrics (completion, fulfilment, served clients, fairness,
  cost);
* ``scenarios``: the multi-cell presets, listed in :data:`envs.core.presets.PRESETS`.

Model: ``docs/model/pool.md``.
"""
