"""Gymnasium views of the credit pool (:mod:`envs.core.pool` is the simulator they wrap).

* :mod:`envs.pool.env`: ``MetaLorePool-v0``, one central controller for every cell;
* :mod:`envs.pool.multiagent`: the per-cell multi-agent view (one agent per cell);
* :mod:`envs.pool.control`: how a controller's actions and observations map onto the simulator
  (action modes, residual on the greedy rule, training-only randomisation), shared by both views;
* :mod:`envs.pool.obs`: the observation kinds (basic, trader, neighbourhood) and rewards.
"""
