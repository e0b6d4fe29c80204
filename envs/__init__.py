"""MetaLore environments. Importing this package registers the Gymnasium ids.

* ``MetaLore-v0``: :class:`envs.metalore_env.MetaLoreEnv`, the MetaLore cell (or several cells
  with per-cell actions), ``gymnasium.make("MetaLore-v0", preset="paper", **overrides)``; its
  native vector env (:class:`envs.vector.MetaLoreVectorEnv`, one numba call per step for all
  sub-envs) is ``gymnasium.make_vec("MetaLore-v0", num_envs=N, vectorization_mode=
  "vector_entry_point")``.
* ``MetaLorePool-v0``: :class:`envs.pool.env.MetaLorePoolEnv`, cells sharing MEC compute through a
  credit pool, one central controller (action ``(n_cells, 3)`` = ``(w_b, w_c, s)``). The per-cell
  multi-agent view is :class:`envs.pool.multiagent.MultiCellPoolEnv`.

Every preset, single- and multi-cell, is listed in :data:`envs.core.presets.PRESETS`. Every env
renders (``render_mode="rgb_array"`` or ``"ansi"``, :mod:`envs.render`). This package never imports
Ray, so any RL library can use the environments; name them ``"envs:MetaLore-v0"`` where other
processes make them (RLlib's env runners, Stable-Baselines3's subprocess vector envs): Gymnasium
then imports this package, and so registers the ids, in each of those processes.
"""

from gymnasium.envs.registration import register, registry

ENV_ID = "MetaLore-v0"
POOL_ENV_ID = "MetaLorePool-v0"

for _id, _entry, _vector in (
    (ENV_ID, "envs.metalore_env:MetaLoreEnv", "envs.vector:make_vector_env"),
    (POOL_ENV_ID, "envs.pool.env:MetaLorePoolEnv", None),
):
    if _id not in registry:
        register(id=_id, entry_point=_entry, vector_entry_point=_vector)

__all__ = ["ENV_ID", "POOL_ENV_ID"]
