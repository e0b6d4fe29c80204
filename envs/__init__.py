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
