"""MetaLore environments. Importing this package registers the Gymnasium ids.

* ``MetaLore-v0``: :class:`envs.metalore_env.MetaLoreEnv`, the MetaLore cell (or several cells
  with per-cell actions), ``gymnasium.make("MetaLore-v0", preset="paper", **overrides)``.

This package never imports Ray, so any RL library can use the environments.
"""

from gymnasium.envs.registration import register, registry

ENV_ID = "MetaLore-v0"

if ENV_ID not in registry:
    register(id=ENV_ID, entry_point="envs.metalore_env:MetaLoreEnv")

__all__ = ["ENV_ID"]

# --- multi-cell credit pool (issue 6) ------------------------------------------------------------
# ``MetaLorePool-v0``: :class:`envs.pool_env.MetaLorePoolEnv`, cells sharing MEC compute through a
# credit pool, one central controller (action (n_cells, 3) = (w_b, w_c, s)). The per-cell
# multi-agent view is :class:`envs.multiagent.MultiCellPoolEnv`. Importing ``envs`` also registers
# the multi-cell presets (three_cell_hetero, surge, seven_cell, seven_cell_hetero).
import envs.core.multicell  # noqa: E402, F401

POOL_ENV_ID = "MetaLorePool-v0"

if POOL_ENV_ID not in registry:
    register(id=POOL_ENV_ID, entry_point="envs.pool_env:MetaLorePoolEnv")

__all__ += ["POOL_ENV_ID"]
