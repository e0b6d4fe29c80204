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
* :func:`write_central_sidecar` / :data:`CENTRAL_SIDECAR`: what a checkpoint needs to be replayed;
* :func:`load_central_controller`: a checkpoint (or an exported policy directory, see
  :mod:`tune_configs.export`) as an :class:`envs.core.pool.rules.Controller` for ``launch
  pool-compare``; deterministic (the mean action), no Ray started.

Train (1M env steps take about 5 to 15 minutes on a 2-core machine, depending on its load)::

    python -m launch train --controller central --preset three_cell_hetero \
        --timesteps 1000000 --set endowment=1000 --out results/central
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
from numpy.typing import NDArray

from envs.core.params import EnvParams
from envs.core.pool.sim import PoolSimulator
from envs.pool.control import CONTROL_FIELDS
from envs.pool.env import MetaLorePoolEnv
from tune_configs.callbacks import WINDOW, PoolMetrics
from tune_configs.policies.pool import CentralPolicyController, rlmodule_forward
from tune_configs.ppo import Resources, model_config, resolve_hparams, training_kwargs

RLLIB_CENTRAL_ENV = "metalore_pool_central"
CENTRAL_SIDECAR = "metalore_pool_central.json"
MODULE_SUBDIR = Path("learner_group", "learner", "rl_module", "default_policy")
GREEDY_SPLITS = "greedy"  # base_splits resolved by the greedy rule's split search

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
# the split search of base_splits="greedy": tuning seeds, never evaluation seeds
SPLIT_EPISODES, SPLIT_GRID = 10, 0.1
_RLLIB_KEYS = frozenset({"num_envs"})
_ENV_ARGS = ("preset", "params", "pool", "reward")


class FlatPoolEnv(gym.Env[NDArray[np.float32], NDArray[np.float32]]):
    """:class:`MetaLorePoolEnv` with a flat observation ``(n F,)`` and action ``(n 3,)``."""

    metadata: dict[str, Any] = {"render_modes": []}  # noqa: RUF012

    def __init__(self, config: Mapping[str, Any] | None = None) -> None:
        cfg = {k: v for k, v in dict(config or {}).items() if k not in _RLLIB_KEYS}
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


def central_env_creator(env_config: Mapping[str, Any]) -> FlatPoolEnv:
    return FlatPoolEnv(env_config)


def register_central_env() -> str:
    """Register :data:`RLLIB_CENTRAL_ENV` with Tune's registry (idempotent)."""
    from ray.tune.registry import register_env

    register_env(RLLIB_CENTRAL_ENV, central_env_creator)
    return RLLIB_CENTRAL_ENV


# ------------------------------------------------------------------------------------------------
_SPLIT_CACHE: dict[str, list[list[float]]] = {}


def greedy_base_splits(env_config: Mapping[str, Any]) -> list[list[float]]:
    """The greedy rule's best static splits for the scenario of ``env_config`` (tuning seeds)."""
    from envs.core.pool.rules import TUNE_SEED_OFFSET, GreedyRule, best_static_splits

    drop = {"reward", "scope", "critic", *_RLLIB_KEYS}  # the per-cell env's, not the scenario's
    cfg = {k: v for k, v in env_config.items() if k not in CONTROL_FIELDS and k not in drop}
    key = json.dumps(cfg, sort_keys=True, default=str)
    if key not in _SPLIT_CACHE:
        env = MetaLorePoolEnv(**cfg)
        splits, _ = best_static_splits(
            env.params, SPLIT_EPISODES, TUNE_SEED_OFFSET, SPLIT_GRID,
            pool=env.pool_params.replace(cooperative=True), rule=GreedyRule(),
        )  # fmt: skip
        _SPLIT_CACHE[key] = [[float(b), float(c)] for b, c in splits]
    return [list(p) for p in _SPLIT_CACHE[key]]


def resolve_central_env_config(env_config: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """:data:`DEFAULT_CENTRAL_ENV_CONFIG` plus ``env_config``; ``base_splits="greedy"`` resolved
    to the greedy rule's splits (only when the residual action uses them); validated."""
    cfg = {**DEFAULT_CENTRAL_ENV_CONFIG, **{k: v for k, v in dict(env_config or {}).items()
                                             if k not in _RLLIB_KEYS}}  # fmt: skip
    if cfg.get("base_splits") == GREEDY_SPLITS:
        if cfg.get("action_mode") == "residual":
            cfg["base_splits"] = greedy_base_splits(cfg)
        else:
            cfg.pop("base_splits")
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
    from ray.rllib.algorithms.ppo import PPOConfig

    register_central_env()
    cfg = resolve_central_env_config(env_config)
    hp = resolve_hparams(hparams)
    res = resources or Resources()
    return (
        PPOConfig()  # type: ignore[no-untyped-call]
        .environment(RLLIB_CENTRAL_ENV, env_config=cfg, disable_env_checking=True)
        .env_runners(
            num_env_runners=res.num_env_runners,
            num_envs_per_env_runner=res.num_envs_per_env_runner,
            num_cpus_per_env_runner=res.num_cpus_per_env_runner,
            rollout_fragment_length="auto",
            batch_mode="truncate_episodes",
        )
        .learners(num_learners=res.num_learners)
        .training(**training_kwargs(hp))
        .rl_module(model_config=model_config(hp))
        .callbacks(PoolMetrics)
        .debugging(seed=seed, log_sys_usage=False)
        .reporting(metrics_num_episodes_for_smoothing=WINDOW)
    )


def write_central_sidecar(
    checkpoint_dir: str | Path, env_config: Mapping[str, Any], **extra: Any
) -> Path:
    """Write :data:`CENTRAL_SIDECAR` (resolved env config, spaces) into a checkpoint."""
    cfg = resolve_central_env_config(env_config)
    env = FlatPoolEnv(cfg)
    body = {
        "controller": "central",
        "env_config": cfg,
        "n_cells": env.n_cells,
        "obs_dim": env.obs_dim,
        "act_dim": env.act_dim,
        "normalize_actions": bool(env.env.control.bounded_actions),
        **extra,
    }
    path = Path(checkpoint_dir) / CENTRAL_SIDECAR
    path.write_text(json.dumps(body, indent=2, default=str) + "\n")
    return path


# ------------------------------------------------------------------------------------------------
def load_central_controller(checkpoint: str | Path) -> CentralPolicyController:
    """Restore a central policy from an RLlib checkpoint with :data:`CENTRAL_SIDECAR`."""
    ckpt = Path(checkpoint).expanduser().resolve()
    sidecar = ckpt / CENTRAL_SIDECAR
    if not sidecar.is_file():
        raise ValueError(f"{ckpt}: no {CENTRAL_SIDECAR} (not a central pool policy)")
    info = json.loads(sidecar.read_text())
    if not (ckpt / MODULE_SUBDIR).is_dir():
        raise ValueError(f"{ckpt}: {MODULE_SUBDIR} is missing")
    from ray.rllib.core.rl_module.rl_module import RLModule

    module: Any = RLModule.from_checkpoint(str(ckpt / MODULE_SUBDIR))
    module.eval()
    return CentralPolicyController(ckpt, rlmodule_forward(module), info)
