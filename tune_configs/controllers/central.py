"""RLlib side of the CENTRAL pool controller: one PPO agent sets every cell's split and share.

The environment is ``MetaLorePool-v0`` (:class:`envs.pool.env.MetaLorePoolEnv`) with its
observation ``(n_cells, F)`` and action ``(n_cells, 3)`` flattened for RLlib's default networks
(:class:`FlatPoolEnv`); it vectorises like the single-cell env, so sampling is cheap. The default
env config (:data:`DEFAULT_CENTRAL_ENV_CONFIG`) is what worked best in the ablations of
``docs/studies/pool-learning.md#learned-controllers``: the trader observation, a residual action
on top of the
greedy rule with its best static splits (searched once on tuning seeds when the config is
resolved, then stored in it), the team reward in fulfilled jobs scaled by 0.01 (returns of order
1 keep the tanh critic alive), the log std of the corrections clamped to [-1, 1]
(:data:`CENTRAL_HPARAMS`), 1000 credits.

* :func:`build_central_ppo_config`: single-agent PPO, the :class:`tune_configs.callbacks.
  PoolMetrics` callback (CIVIC metrics per cell in TensorBoard);
* :func:`central_sidecar_fields`: what a checkpoint's sidecar needs to replay it;
* :func:`load_central_controller`: a checkpoint (or an exported policy directory, see
  :mod:`tune_configs.export`) as an :class:`envs.core.pool.rules.Controller` for ``launch
  pool-compare``; deterministic (the mean action), no Ray started.

Train (1M env steps take about 5 to 15 minutes on a 2-core machine, depending on its load)::

    python -m launch train --controller central --preset three_cell_hetero \
        --timesteps 1000000 --set endowment=1000 --out results/central
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
from numpy.typing import NDArray

from envs.core.params import EnvParams
from envs.core.pool.sim import PoolSimulator
from envs.pool.base_splits import GREEDY_SPLITS, resolve_base_splits
from envs.pool.env import MetaLorePoolEnv
from tune_configs.env import RLLIB_KEYS, register_creator
from tune_configs.policies.checkpoint import DEFAULT_MODULE, MODULE_DIR, read_sidecar
from tune_configs.policies.pool import CentralPolicyController, rlmodule_forward
from tune_configs.ppo import Resources, base_ppo_config, resolve_hparams

RLLIB_CENTRAL_ENV = "metalore_pool_central"

DEFAULT_CENTRAL_ENV_CONFIG: dict[str, Any] = {
    "preset": "three_cell_hetero",
    "reward": "fulfilled",
    "reward_scale": 0.01,
    "obs": "trader",
    "action_mode": "residual",
    "base_splits": GREEDY_SPLITS,
    "residual_scale": 0.2,
    "endowment": 1000.0,
}
# PPO defaults of the central controller over tune_configs.ppo.DEFAULT_HPARAMS: the log std of
# the residual corrections clamped to [-1, 1] (RLlib's 20 let it drift to e^1.8 and performance
# collapse in the ablations, docs/studies/pool-learning.md#what-made-the-difference-ablations)
CENTRAL_HPARAMS: dict[str, Any] = {"log_std_clip_param": 1.0}
_ENV_ARGS = ("preset", "params", "pool", "reward")


class FlatPoolEnv(gym.Env[NDArray[np.float32], NDArray[np.float32]]):
    """:class:`MetaLorePoolEnv` with a flat observation ``(n F,)`` and action ``(n 3,)``."""

    metadata: dict[str, Any] = {"render_modes": []}  # noqa: RUF012

    def __init__(self, config: Mapping[str, Any] | None = None) -> None:
        cfg = {k: v for k, v in dict(config or {}).items() if k not in RLLIB_KEYS}
        self.env = MetaLorePoolEnv(**cfg)
        n = self.env.n_cells
        self.n_cells = n
        obs = self.env.observation_space
        act = self.env.action_space
        assert isinstance(obs, gym.spaces.Box) and isinstance(act, gym.spaces.Box)
        self.observation_space = gym.spaces.Box(
            obs.low.reshape(-1), obs.high.reshape(-1), (obs.low.size,), np.float32
        )
        self.action_space = gym.spaces.Box(
            act.low.reshape(-1), act.high.reshape(-1), (act.low.size,), np.float32
        )
        self.obs_dim = int(obs.low.size)
        self.act_dim = int(act.low.size)

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[NDArray[np.float32], dict[str, Any]]:
        obs, info = self.env.reset(seed=seed, options=options)
        return obs.reshape(-1), info

    def step(self, action: Any) -> tuple[NDArray[np.float32], float, bool, bool, dict[str, Any]]:
        a = np.asarray(action, dtype=np.float64).reshape(self.n_cells, 3)
        obs, reward, term, trunc, info = self.env.step(a)
        return obs.reshape(-1), reward, term, trunc, info

    @property
    def pool_sim(self) -> PoolSimulator:
        return self.env.ps


# ------------------------------------------------------------------------------------------------
def resolve_central_env_config(env_config: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """:data:`DEFAULT_CENTRAL_ENV_CONFIG` plus ``env_config``; ``base_splits="greedy"`` resolved
    to the greedy rule's splits (only when the residual action uses them); validated."""
    cfg = {**DEFAULT_CENTRAL_ENV_CONFIG, **{k: v for k, v in dict(env_config or {}).items()
                                             if k not in RLLIB_KEYS}}  # fmt: skip
    resolve_base_splits(cfg)
    MetaLorePoolEnv(**cfg)  # raises ValueError naming a bad field
    return cfg


def central_env_params(env_config: Mapping[str, Any]) -> EnvParams:
    return MetaLorePoolEnv(**resolve_central_env_config(env_config)).params


def build_central_ppo_config(
    env_config: Mapping[str, Any] | None = None,
    hparams: Mapping[str, Any] | None = None,
    resources: Resources | None = None,
    seed: int | None = 0,
) -> Any:
    """A single-agent ``PPOConfig`` for the flattened central pool env; nothing is started."""
    from tune_configs.callbacks import WINDOW, PoolMetrics

    return base_ppo_config(
        register_creator(RLLIB_CENTRAL_ENV, FlatPoolEnv),
        resolve_central_env_config(env_config),
        resolve_hparams(hparams),
        resources or Resources(),
        seed,
        PoolMetrics,
        smoothing=WINDOW,
    )


def central_sidecar_fields(env_config: Mapping[str, Any]) -> dict[str, Any]:
    """The central controller's sidecar fields: resolved env config and spaces."""
    cfg = resolve_central_env_config(env_config)
    env = FlatPoolEnv(cfg)
    return {
        "n_cells": env.n_cells,
        "obs_dim": env.obs_dim,
        "act_dim": env.act_dim,
        "normalize_actions": bool(env.env.control.bounded_actions),
    }


# ------------------------------------------------------------------------------------------------
def load_central_controller(checkpoint: str | Path) -> CentralPolicyController:
    """Restore a central policy from a checkpoint saved by the ``central`` controller."""
    ckpt = Path(checkpoint).expanduser().resolve()
    info = read_sidecar(ckpt)
    if info is None or info.get("controller") != "central":
        raise ValueError(f"{ckpt}: not a central pool policy checkpoint")
    path = ckpt / MODULE_DIR / DEFAULT_MODULE
    if not path.is_dir():
        raise ValueError(f"{ckpt}: {MODULE_DIR / DEFAULT_MODULE} is missing")
    from ray.rllib.core.rl_module.rl_module import RLModule

    module: Any = RLModule.from_checkpoint(str(path))
    module.eval()
    return CentralPolicyController(ckpt, rlmodule_forward(module), info)
