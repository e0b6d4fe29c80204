"""RLlib side of the credit pool: multi-agent env adapter, metrics callback, PPO config, policies.

* :class:`PoolMultiAgentEnv`: RLlib ``MultiAgentEnv`` around :class:`envs.pool.multiagent.
  MultiCellPoolEnv` (one agent ``cell_i`` per cell; per-agent ``observation_spaces`` /
  ``action_spaces``; ``"__all__"`` in terminateds and truncateds; at the horizon every agent is
  truncated and receives its final observation). Registered with Tune as :data:`RLLIB_POOL_ENV`.
* :class:`PoolMetrics`: callback logging the CIVIC metrics of every finished episode under
  ``env_runners/civic/<name>`` (overall), ``env_runners/civic/cell<i>/<name>`` and, with a surge,
  ``env_runners/civic/<phase>/<name>``; Tune writes them to TensorBoard
  (``ray/tune/env_runners/civic/...``).
* :func:`build_pool_ppo_config`: multi-agent PPO, one shared policy (default, module ``shared``)
  or one per cell (``policies="separate"``, modules ``cell_i``); with ``critic="central"`` (or
  ``"summary"``) in the env config every module is a :class:`tune_configs.controllers.critic.
  CentralCriticPPOModule` (the actor sees the agent's own view, the critic also the global state,
  or its summary over the cells).
* :func:`pool_sidecar_fields`: what the checkpoint sidecar (:mod:`tune_configs.policies.
  checkpoint`) records besides the env config: policy mode, module ids, number of cells
  (training goes through the one training loop of :mod:`tune_configs.training`, via the
  ``per-cell`` controller of :mod:`tune_configs.controllers`).
* :func:`load_pool_controller`: a trained checkpoint as an :class:`envs.core.pool.rules.
  Controller` (deterministic actions, no Ray started), for ``python -m launch pool-compare``.

``env_config`` is a flat dict: ``preset``, optional ``params`` (``EnvParams.to_dict()``), ``pool``
(``PoolParams.to_dict()``), ``reward`` (metalore | fulfilled), ``scope`` (team | local) and any
EnvParams / PoolParams field by name (``obs_mode``, ``endowment``, ``cooperative``, ...).

Train from the command line (about 2 minutes on a quiet 2-core machine for 40,000 env steps)::

    python -m launch train --preset three_cell_hetero --controller per-cell --timesteps 40000 \
        --set reward=fulfilled --set endowment=1000 --out results/pool_ppo

It prints one line per iteration (sampled steps, return, CIVIC fulfilment) and writes
``OUT/checkpoint`` for ``python -m launch pool-compare --checkpoint OUT/checkpoint``.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import gymnasium as gym
from ray.rllib.env.multi_agent_env import MultiAgentEnv

from envs.core.params import EnvParams
from envs.core.pool.sim import PoolSimulator
from envs.pool.base_splits import resolve_base_splits
from envs.pool.multiagent import (
    MixedCellPoolEnv,
    MultiCellPoolEnv,
    agent_ids,
    make_pool_env,
    mix_presets,
)
from tune_configs.callbacks import WINDOW, PoolMetrics
from tune_configs.env import register_creator
from tune_configs.policies.checkpoint import MODULE_DIR, require_sidecar
from tune_configs.policies.pool import (
    SHARED_MODULE,
    PoolPolicyController,
    pool_env_kwargs,
    rlmodule_forward,
)
from tune_configs.ppo import Resources, base_ppo_config, model_config, resolve_hparams

RLLIB_POOL_ENV = "metalore_pool"
POLICY_MODES = ("shared", "separate")

# The city controller (``city`` in :mod:`tune_configs.controllers`): one policy shared by every
# cell, for any layout; the recipe measured best in docs/studies/city-controller.md (trained on
# city_19, it beats the greedy rule on 3, 7, 19 and 49 cells): the trader observation (its
# neighbour features summarise every other cell: a fixed-size summary of the city), no cell
# identity, residual actions on the greedy rule, the team reward in fulfilled UE jobs scaled by
# 0.01, 1000 credits; the log std of the corrections clamped to [-1, 1]. Measured and not kept
# (options): a mix of layouts (``mix``, with ``scope="mean"``), the adjacent neighbourhood
# (``neighbourhood="adjacent"``), each layout's greedy splits as the base (``base_splits``).
CITY_MIX: tuple[str, ...] = ("three_cell_hetero", "seven_cell_hetero", "city_19", "city_49")
CITY_RECIPE: dict[str, Any] = {
    "obs": "trader",
    "identity": False,
    "action_mode": "residual",
    "reward": "fulfilled",
    "scope": "team",
    "reward_scale": 0.01,
    "endowment": 1000.0,
}
CITY_HPARAMS: dict[str, Any] = {"log_std_clip_param": 1.0}


class PoolMultiAgentEnv(MultiAgentEnv):
    """RLlib multi-agent adapter of :class:`envs.pool.multiagent.MultiCellPoolEnv` (see module
    doc)."""

    def __init__(self, config: Mapping[str, Any] | None = None) -> None:
        super().__init__()  # type: ignore[no-untyped-call]
        self.env = make_pool_env(**pool_env_kwargs(config or {}))
        self.possible_agents = list(self.env.possible_agents)
        self.agents = list(self.possible_agents)
        obs_spaces: dict[Any, gym.Space[Any]] = dict(self.env.observation_spaces)
        act_spaces: dict[Any, gym.Space[Any]] = dict(self.env.action_spaces)
        self.observation_spaces = obs_spaces
        self.action_spaces = act_spaces
        # the old-API-stack attributes RLlib's env checker still looks for
        self.observation_space = gym.spaces.Dict(dict(self.env.observation_spaces))
        self.action_space = gym.spaces.Dict(dict(self.env.action_spaces))

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[dict[Any, Any], dict[Any, Any]]:
        obs, infos = self.env.reset(seed=seed, options=options)
        self.agents = list(self.env.agents)
        return dict(obs), dict(infos)

    def step(  # type: ignore[override]
        self, action_dict: dict[Any, Any]
    ) -> tuple[dict[Any, Any], dict[Any, Any], dict[Any, Any], dict[Any, Any], dict[Any, Any]]:
        obs, rewards, terminateds, truncateds, infos = self.env.step(action_dict)
        done = self.env.ps.done
        term: dict[Any, Any] = dict(terminateds)
        trunc: dict[Any, Any] = dict(truncateds)
        term["__all__"] = False
        trunc["__all__"] = done
        return dict(obs), dict(rewards), term, trunc, dict(infos)

    @property
    def pool_sim(self) -> PoolSimulator:
        return self.env.ps


# ------------------------------------------------------------------------------------------------
def map_shared(agent_id: Any, episode: Any = None, **kwargs: Any) -> str:
    """Policy mapping: every cell uses the shared module."""
    return SHARED_MODULE


def map_per_cell(agent_id: Any, episode: Any = None, **kwargs: Any) -> str:
    """Policy mapping: each cell its own module, named like the agent."""
    return str(agent_id)


def module_ids(policies: str, n_cells: int) -> list[str]:
    if policies not in POLICY_MODES:
        raise ValueError(f"invalid policies {policies!r}: choose one of {POLICY_MODES}")
    return [SHARED_MODULE] if policies == "shared" else agent_ids(n_cells)


def resolve_pool_env_config(env_config: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """:data:`DEFAULT_POOL_ENV_CONFIG` plus ``env_config``, validated by building the env
    (``base_splits="greedy"`` is resolved as for the central controller, but for a ``mix`` of
    layouts, whose presets are listed)."""
    cfg = pool_env_kwargs(env_config or {})  # an empty mix is dropped
    if cfg.get("mix"):
        cfg["mix"] = mix_presets(cfg["mix"])
    resolve_base_splits(cfg)  # the greedy rule's splits, searched once
    make_pool_env(**cfg)  # raises ValueError naming a bad field
    return cfg


def city_env_defaults(env_config: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """:data:`CITY_RECIPE` under ``env_config`` (preset ``city_19`` unless given); not resolved
    yet."""
    return {"preset": "city_19", **CITY_RECIPE, **dict(env_config or {})}


def resolve_city_env_config(env_config: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The city controller's env config: :func:`city_env_defaults`, resolved like any per-cell
    env config."""
    return resolve_pool_env_config(city_env_defaults(env_config))


def build_pool_ppo_config(
    env_config: Mapping[str, Any] | None = None,
    hparams: Mapping[str, Any] | None = None,
    resources: Resources | None = None,
    seed: int | None = 0,
    policies: str = "shared",
) -> Any:
    """A multi-agent ``PPOConfig`` for the pool env; nothing is started.

    ``hparams`` override :data:`tune_configs.ppo.DEFAULT_HPARAMS`. ``train_batch_size`` counts
    env steps; each env step gives one agent step per cell. RLlib's ``minibatch_size`` counts
    the agent steps of a module, so an epoch takes ``cells x train_batch_size / minibatch_size``
    SGD steps: about 380 per iteration on ``city_19`` with the defaults.
    """
    cfg = resolve_pool_env_config(env_config)
    if cfg.get("mix") and policies != "shared":
        raise ValueError("a mix of layouts needs policies=shared (one network for every cell)")
    env = make_pool_env(**cfg)
    hp = resolve_hparams(hparams)
    rl_module: dict[str, Any] | None = None
    if cfg.get("critic", "local") != "local":  # actor: own view; critic: + global state
        from tune_configs.controllers.critic import central_critic_module_spec

        own = env.envs[0].own_features if isinstance(env, MixedCellPoolEnv) else env.own_features
        rl_module = {"rl_module_spec": central_critic_module_spec(own, model_config(hp))}
    mapping = map_shared if policies == "shared" else map_per_cell
    return base_ppo_config(
        register_creator(RLLIB_POOL_ENV, PoolMultiAgentEnv), cfg, hp, resources or Resources(),
        seed, PoolMetrics, smoothing=WINDOW, rl_module=rl_module,
        multi_agent={"policies": set(module_ids(policies, env.n_cells)),
                     "policy_mapping_fn": mapping},
    )  # fmt: skip


def pool_env_params(env_config: Mapping[str, Any]) -> EnvParams:
    """The :class:`EnvParams` of the scenario a pool env config describes."""
    cfg = resolve_pool_env_config(env_config)
    return MultiCellPoolEnv(**pool_env_kwargs({**cfg, "mix": None})).ps.params


def pool_sidecar_fields(env_config: Mapping[str, Any], policies: str = "shared") -> dict[str, Any]:
    """The per-cell controller's sidecar fields: resolved env config, policy mode, module ids."""
    cfg = resolve_pool_env_config(env_config)
    env = MultiCellPoolEnv(**pool_env_kwargs({**cfg, "mix": None}))  # the evaluation layout
    return {
        "policies": policies,
        "modules": module_ids(policies, env.n_cells),
        "n_cells": env.n_cells,
        "normalize_actions": bool(env.control.bounded_actions),
    }


# ------------------------------------------------------------------------------------------------
def load_pool_controller(checkpoint: str | Path) -> PoolPolicyController:
    """Restore a per-cell pool policy saved by ``launch train`` or a Tune trial of a sweep."""
    ckpt = Path(checkpoint).expanduser().resolve()
    if not ckpt.is_dir():
        raise ValueError(f"checkpoint {str(checkpoint)!r} is not a directory")
    info = require_sidecar(ckpt)
    mids = list(info.get("modules") or [])
    if not mids:
        raise ValueError(f"{ckpt}: no module ids in its sidecar")
    from ray.rllib.core.rl_module.rl_module import RLModule

    modules: dict[str, Any] = {}
    for mid in mids:
        path = ckpt / MODULE_DIR / mid
        if not path.is_dir():
            raise ValueError(f"{ckpt} is not a pool PPO checkpoint: {MODULE_DIR / mid} is missing")
        module: Any = RLModule.from_checkpoint(str(path))
        module.eval()
        modules[mid] = rlmodule_forward(module)
    return PoolPolicyController(ckpt, modules, info)
