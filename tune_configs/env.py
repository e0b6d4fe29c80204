"""MetaLore for RLlib: env creator and registration.

RLlib env runners build their (vectorised) environments from ``config.env``. We register the
creator :func:`env_creator` (one env; RLlib wraps copies in ``SyncVectorEnv``) under
:data:`RLLIB_ENV` and :func:`vector_env_creator` (the native :class:`envs.vector.MetaLoreVectorEnv`,
every sub-env stepped by one numba call) under :data:`RLLIB_VECTOR_ENV`, with
``ray.tune.registry.register_env`` (the registry travels to every worker through the cluster's
key-value store, so runners do not depend on a ``gym.register`` done in the driver). RLlib calls
the vector one with ``num_envs`` when ``gym_env_vectorize_mode="vector_entry_point"`` (what
:func:`tune_configs.ppo.build_ppo_config` uses by default); it maps the policy's normalised
actions to the action box itself, so RLlib's per-sub-env action connector is switched off.
``env_config`` is a flat, Tune-friendly dict::

    {"preset": "paper", "delta": 0.9, "penalty": 0.0, "obs_mode": "log1p", ...}

``preset`` names a scenario (``envs.core.PRESETS``), ``params`` may carry a full
``EnvParams.to_dict()``, every other key is a parameter override by flat name. RLlib's own keys
(``num_envs``; ``worker_index`` and friends live on the ``EnvContext`` object) are not parameters.

Usage::

    from tune_configs.env import RLLIB_ENV, register
    register()
    config = PPOConfig().environment(RLLIB_ENV, env_config={"delta": 0.9})
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from envs.core.params import EnvParams
from envs.metalore_env import MetaLoreEnv, resolve_params
from envs.vector import MetaLoreVectorEnv

RLLIB_ENV = "metalore"
RLLIB_VECTOR_ENV = "metalore-vector"
# Keys RLlib may add to an env config that are not MetaLore parameters.
RLLIB_KEYS = frozenset({"num_envs"})


def split_env_config(
    env_config: Mapping[str, Any],
) -> tuple[str, dict[str, Any] | None, dict[str, Any]]:
    """``(preset, params dict or None, flat overrides)`` of an env config."""
    cfg = {k: v for k, v in dict(env_config).items() if k not in RLLIB_KEYS}
    preset = str(cfg.pop("preset", "paper"))
    params = cfg.pop("params", None)
    return preset, params, cfg


def params_from_env_config(env_config: Mapping[str, Any]) -> EnvParams:
    """The validated :class:`EnvParams` an env config describes (raises ``ValueError`` if bad)."""
    preset, params, overrides = split_env_config(env_config)
    return resolve_params(preset, params, **overrides)


def env_creator(env_config: Mapping[str, Any]) -> MetaLoreEnv:
    """Build one MetaLore env from an RLlib env config (``EnvContext`` or plain dict)."""
    preset, params, overrides = split_env_config(env_config)
    return MetaLoreEnv(preset=preset, params=params, **overrides)


def vector_env(
    env_config: Mapping[str, Any], num_envs: int, normalized_actions: bool = False
) -> MetaLoreVectorEnv:
    """The native vector env of ``num_envs`` sub-envs of an env config (actions in the box
    [0, 1], or in [-1, 1] with ``normalized_actions``)."""
    preset, params, overrides = split_env_config(env_config)
    return MetaLoreVectorEnv(
        num_envs, preset=preset, params=params, normalized_actions=normalized_actions, **overrides
    )


def vector_env_creator(env_config: Mapping[str, Any]) -> MetaLoreVectorEnv:
    """RLlib's native vector env: ``env_config["num_envs"]`` sub-envs (1 if absent) taking the
    policy's normalised actions in [-1, 1] (RLlib then runs with ``normalize_actions=False``)."""
    return vector_env(env_config, int(dict(env_config).get("num_envs") or 1), True)


def register(vector: bool = False) -> str:
    """Register :data:`RLLIB_ENV` and :data:`RLLIB_VECTOR_ENV` with Tune's registry
    (idempotent); returns the vector name if ``vector``, else the single-env one."""
    register_creator(RLLIB_ENV, env_creator)
    register_creator(RLLIB_VECTOR_ENV, vector_env_creator)
    return RLLIB_VECTOR_ENV if vector else RLLIB_ENV


def register_creator(name: str, creator: Callable[[Mapping[str, Any]], Any]) -> str:
    """Register ``creator`` (env config -> env) under ``name`` with Tune's registry (idempotent);
    returns ``name``."""
    from ray.tune.registry import register_env

    register_env(name, creator)
    return name
