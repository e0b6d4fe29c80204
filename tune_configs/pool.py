"""RLlib side of the credit pool: multi-agent env adapter, metrics callback, PPO config, policies.

* :class:`PoolMultiAgentEnv`: RLlib ``MultiAgentEnv`` around :class:`envs.multiagent.
  MultiCellPoolEnv` (one agent ``cell_i`` per cell; per-agent ``observation_spaces`` /
  ``action_spaces``; ``"__all__"`` in terminateds and truncateds; at the horizon every agent is
  truncated and receives its final observation). Registered with Tune as :data:`RLLIB_POOL_ENV`.
* :class:`PoolMetrics`: callback logging the CIVIC metrics of every finished episode under
  ``env_runners/civic/<name>`` (overall), ``env_runners/civic/cell<i>/<name>`` and, with a surge,
  ``env_runners/civic/<phase>/<name>``; Tune writes them to TensorBoard
  (``ray/tune/env_runners/civic/...``).
* :func:`build_pool_ppo_config`: multi-agent PPO, one shared policy (default, module ``shared``)
  or one per cell (``policies="separate"``, modules ``cell_i``).
* :func:`train_pool`: a short training run that saves a checkpoint plus the sidecar
  :data:`POOL_SIDECAR` (env config, policy mode) next to it.
* :func:`load_pool_controller`: a trained checkpoint as an :class:`envs.core.pool.rules.
  Controller` (deterministic actions, no Ray started), for ``python -m launch pool-compare``.

``env_config`` is a flat dict: ``preset``, optional ``params`` (``EnvParams.to_dict()``), ``pool``
(``PoolParams.to_dict()``), ``reward`` (metalore | fulfilled), ``scope`` (team | local) and any
EnvParams / PoolParams field by name (``obs_mode``, ``endowment``, ``cooperative``, ...).

Run a short training (about 2 minutes on a quiet 2-core machine for 20 iterations of 2000 steps)::

    python -m tune_configs.pool --scenario three_cell_hetero --iterations 20 --out results/pool_ppo

It prints one line per iteration (sampled steps, return, CIVIC fulfillment) and writes
``OUT/checkpoint`` for ``python -m launch pool-compare --checkpoint OUT/checkpoint``.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
from numpy.typing import NDArray
from ray.rllib.callbacks.callbacks import RLlibCallback
from ray.rllib.env.multi_agent_env import MultiAgentEnv

from envs.core.pool.sim import PoolSimulator
from envs.multiagent import MultiCellPoolEnv, agent_ids
from envs.pool_obs import Observer
from tune_configs.ppo import Resources, model_config, resolve_hparams, training_kwargs

RLLIB_POOL_ENV = "metalore_pool"
POOL_SIDECAR = "metalore_pool_policy.json"
MODULE_DIR = Path("learner_group", "learner", "rl_module")
SHARED_MODULE = "shared"
POLICY_MODES = ("shared", "separate")
CIVIC_PREFIX = "civic"
WINDOW = 100  # episodes in the smoothing window of the logged metrics

DEFAULT_POOL_ENV_CONFIG: dict[str, Any] = {
    "preset": "three_cell_hetero",
    "obs_mode": "log1p",
    "reward": "metalore",
    "scope": "team",
}
_ENV_KEYS = ("preset", "params", "pool", "reward", "scope")
_RLLIB_KEYS = frozenset({"num_envs"})

# what the callback logs
OVERALL_LOGGED: tuple[str, ...] = (
    "completion_pct", "fulfillment_pct", "served_clients", "served_clients_pct", "fairness",
    "operational_cost", "backhaul_units", "credits_traded", "episode_return", "left_queued",
)  # fmt: skip
CELL_LOGGED: tuple[str, ...] = (
    "completion_pct", "fulfillment_pct", "units_lent", "units_borrowed", "credits_earned",
    "credits_spent", "balance_final", "capacity_mean",
)  # fmt: skip
PHASE_LOGGED: tuple[str, ...] = ("completion_pct", "fulfillment_pct", "fairness", "units_lent")


def civic_metric_name(*parts: str) -> str:
    """Result / Tune metric name, e.g. ``civic_metric_name("fulfillment_pct")``."""
    return "/".join(("env_runners", CIVIC_PREFIX, *parts))


def pool_env_kwargs(env_config: Mapping[str, Any]) -> dict[str, Any]:
    """Keyword arguments of :class:`MultiCellPoolEnv` from a flat env config."""
    cfg = {k: v for k, v in dict(env_config).items() if k not in _RLLIB_KEYS}
    return {**DEFAULT_POOL_ENV_CONFIG, **cfg}


class PoolMultiAgentEnv(MultiAgentEnv):
    """RLlib multi-agent adapter of :class:`envs.multiagent.MultiCellPoolEnv` (see module doc)."""

    def __init__(self, config: Mapping[str, Any] | None = None) -> None:
        super().__init__()  # type: ignore[no-untyped-call]
        self.env = MultiCellPoolEnv(**pool_env_kwargs(config or {}))
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
        self.agents = list(self.possible_agents)
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


def pool_env_creator(env_config: Mapping[str, Any]) -> PoolMultiAgentEnv:
    return PoolMultiAgentEnv(env_config)


def register_pool_env() -> str:
    """Register :data:`RLLIB_POOL_ENV` with Tune's registry (idempotent); returns the name."""
    from ray.tune.registry import register_env

    register_env(RLLIB_POOL_ENV, pool_env_creator)
    return RLLIB_POOL_ENV


# ------------------------------------------------------------------------------------------------
def civic_from_infos(infos: Any) -> dict[str, Any] | None:
    """The ``civic`` metrics dict in an episode's last infos (multi- or single-agent)."""
    if not isinstance(infos, dict):
        return None
    if "civic" in infos and isinstance(infos["civic"], dict):
        return infos["civic"]
    for value in infos.values():
        if isinstance(value, dict) and isinstance(value.get("civic"), dict):
            found: dict[str, Any] = value["civic"]
            return found
    return None


def civic_log_items(civic: Mapping[str, Any]) -> list[tuple[tuple[str, ...], float]]:
    """``(key path, value)`` pairs the callback logs for one episode's CIVIC metrics."""
    items: list[tuple[tuple[str, ...], float]] = []

    def add(path: tuple[str, ...], value: Any) -> None:
        if value is None:
            return
        v = float(value)
        if math.isfinite(v):
            items.append((path, v))

    for key in OVERALL_LOGGED:
        add((CIVIC_PREFIX, key), civic.get(key))
    for c, cell in enumerate(civic.get("cells", [])):
        for key in CELL_LOGGED:
            add((CIVIC_PREFIX, f"cell{c}", key), cell.get(key))
    for phase, pm in civic.get("phases", {}).items():
        for key in PHASE_LOGGED:
            add((CIVIC_PREFIX, phase, key), pm.get(key))
    return items


class PoolMetrics(RLlibCallback):
    """Logs the CIVIC metrics of every finished training episode (see the module docstring)."""

    def on_episode_end(self, *, episode: Any, metrics_logger: Any = None, **kwargs: Any) -> None:
        if metrics_logger is None:
            return
        civic = civic_from_infos(episode.get_infos(-1))
        if civic is None:
            return
        for path, value in civic_log_items(civic):
            metrics_logger.log_value(path, value, reduce="mean", window=WINDOW)


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
    """:data:`DEFAULT_POOL_ENV_CONFIG` plus ``env_config``, validated by building the env."""
    cfg = pool_env_kwargs(env_config or {})
    MultiCellPoolEnv(**cfg)  # raises ValueError naming a bad field
    return cfg


def build_pool_ppo_config(
    env_config: Mapping[str, Any] | None = None,
    hparams: Mapping[str, Any] | None = None,
    resources: Resources | None = None,
    seed: int | None = 0,
    policies: str = "shared",
) -> Any:
    """A multi-agent ``PPOConfig`` for the pool env; nothing is started.

    ``hparams`` override :data:`tune_configs.ppo.DEFAULT_HPARAMS` (``train_batch_size`` counts
    env steps; each env step gives one agent step per cell).
    """
    from ray.rllib.algorithms.ppo import PPOConfig

    register_pool_env()
    cfg = resolve_pool_env_config(env_config)
    n_cells = MultiCellPoolEnv(**cfg).n_cells
    mids = module_ids(policies, n_cells)
    hp = resolve_hparams(hparams)
    res = resources or Resources()
    config = (
        PPOConfig()  # type: ignore[no-untyped-call]
        .environment(RLLIB_POOL_ENV, env_config=cfg, disable_env_checking=True)
        .env_runners(
            num_env_runners=res.num_env_runners,
            num_envs_per_env_runner=res.num_envs_per_env_runner,
            num_cpus_per_env_runner=res.num_cpus_per_env_runner,
            rollout_fragment_length="auto",  # RLlib divides the batch over runners x envs
            batch_mode="truncate_episodes",
        )
        .learners(num_learners=res.num_learners)
        .multi_agent(
            policies=set(mids),
            policy_mapping_fn=map_shared if policies == "shared" else map_per_cell,
        )
        .training(**training_kwargs(hp))
        .rl_module(model_config=model_config(hp))
        .callbacks(PoolMetrics)
        .debugging(seed=seed, log_sys_usage=False)
        .reporting(metrics_num_episodes_for_smoothing=WINDOW)
    )
    return config


def write_pool_sidecar(
    checkpoint_dir: str | Path, env_config: Mapping[str, Any], policies: str, **extra: Any
) -> Path:
    """Write :data:`POOL_SIDECAR` (env config, policy mode, module ids) into a checkpoint."""
    cfg = resolve_pool_env_config(env_config)
    env = MultiCellPoolEnv(**cfg)
    body = {
        "env_config": cfg,
        "policies": policies,
        "modules": module_ids(policies, env.n_cells),
        "n_cells": env.n_cells,
        "normalize_actions": True,
        **extra,
    }
    path = Path(checkpoint_dir) / POOL_SIDECAR
    path.write_text(json.dumps(body, indent=2, default=str) + "\n")
    return path


def result_summary(result: Mapping[str, Any]) -> dict[str, float]:
    """Sampled steps, return and the main CIVIC metrics of one ``algo.train()`` result."""
    runners = result.get("env_runners", {})
    civic = runners.get(CIVIC_PREFIX, {}) if isinstance(runners, Mapping) else {}
    out: dict[str, float] = {}
    for key, value in (
        ("env_steps_sampled", runners.get("num_env_steps_sampled_lifetime")),
        ("episode_return_mean", runners.get("episode_return_mean")),
        ("fulfillment_pct", civic.get("fulfillment_pct")),
        ("completion_pct", civic.get("completion_pct")),
        ("fairness", civic.get("fairness")),
    ):
        if value is not None:
            out[key] = float(value)
    return out


def train_pool(
    config: Any,
    iterations: int,
    out_dir: str | Path | None = None,
    policies: str = "shared",
    log: Callable[[str], None] | None = None,
) -> tuple[Path | None, list[dict[str, Any]]]:
    """Train ``iterations`` PPO iterations; save ``OUT/checkpoint`` (+ sidecar) if ``out_dir``.

    Returns the checkpoint path (or None) and the result of every iteration. Ray must be
    initialised by the caller (see :mod:`tune_configs.runtime`).
    """
    if iterations < 1:
        raise ValueError(f"iterations must be >= 1, got {iterations}")
    algo = config.build_algo()
    results: list[dict[str, Any]] = []
    started = time.perf_counter()
    try:
        for i in range(iterations):
            result = algo.train()
            results.append(result)
            if log is not None:
                s = result_summary(result)
                log(
                    f"iter {i + 1}/{iterations}: steps {s.get('env_steps_sampled', 0):.0f}, "
                    f"return {s.get('episode_return_mean', math.nan):.1f}, fulfillment "
                    f"{s.get('fulfillment_pct', math.nan):.1f} %, "
                    f"{time.perf_counter() - started:.0f} s"
                )
        ckpt: Path | None = None
        if out_dir is not None:
            ckpt = Path(out_dir).expanduser().resolve() / "checkpoint"
            ckpt.mkdir(parents=True, exist_ok=True)
            algo.save(str(ckpt))
            write_pool_sidecar(
                ckpt, config.env_config, policies, iterations=iterations,
                env_steps=result_summary(results[-1]).get("env_steps_sampled"),
            )  # fmt: skip
    finally:
        algo.stop()
    return ckpt, results


# ------------------------------------------------------------------------------------------------
class PoolPolicyController:
    """A trained pool policy as an :class:`envs.core.pool.rules.Controller`.

    Deterministic: the mean of the action distribution, unsquashed from [-1, 1] to the agent's
    action box ``[0, 1] x [0, 1] x [-1, 1]`` (RLlib's ``normalize_actions``) and clipped.
    """

    def __init__(self, checkpoint: Path, modules: dict[str, Any], info: dict[str, Any]) -> None:
        self.checkpoint = checkpoint
        self.modules = modules
        self.info = info
        self.policies = str(info.get("policies", "shared"))
        env_cfg = info.get("env_config", {})
        self.obs_mode = str(env_cfg.get("obs_mode", "raw"))
        self.obs_scale = float(env_cfg.get("obs_scale", 100.0))
        self.normalize = bool(info.get("normalize_actions", True))
        self.label = f"ppo({self.policies})"
        self._observer: Observer | None = None

    def reset(self, ps: PoolSimulator) -> None:
        if self.policies == "separate" and ps.n_cells != len(self.modules):
            raise ValueError(
                f"policy {self.checkpoint} has one module per cell for {len(self.modules)} cells; "
                f"the scenario has {ps.n_cells}"
            )
        if self._observer is None or self._observer.ps is not ps:
            self._observer = Observer(ps, self.obs_mode, self.obs_scale)

    def act(self, ps: PoolSimulator) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        assert self._observer is not None, "call reset() first"
        obs = self._observer()
        raw = self.actions(obs)
        return np.ascontiguousarray(raw[:, :2]), np.ascontiguousarray(raw[:, 2])

    def actions(self, obs: NDArray[np.float32]) -> NDArray[np.float64]:
        """Actions ``(C, 3)`` for agent observations ``(C, 6)`` (row i = cell i)."""
        import torch

        out = np.empty((obs.shape[0], 3))
        groups: list[tuple[Any, list[int]]]
        if self.policies == "shared":
            groups = [(self.modules[SHARED_MODULE], list(range(obs.shape[0])))]
        else:
            groups = [(self.modules[f"cell_{i}"], [i]) for i in range(obs.shape[0])]
        with torch.no_grad():
            for module, rows in groups:
                batch = torch.as_tensor(np.asarray(obs[rows], dtype=np.float32))
                fwd = module.forward_inference({"obs": batch})
                dist_cls = module.get_inference_action_dist_cls()
                dist = dist_cls.from_logits(fwd["action_dist_inputs"]).to_deterministic()
                out[rows] = dist.sample().cpu().numpy().astype(np.float64)
        if self.normalize:
            low = np.array([0.0, 0.0, -1.0])
            high = np.array([1.0, 1.0, 1.0])
            out = low + (out + 1.0) * 0.5 * (high - low)
            out = np.clip(out, low, high)
        return out


def load_pool_controller(checkpoint: str | Path) -> PoolPolicyController:
    """Restore a pool policy saved by :func:`train_pool` (or a Tune trial of the pool sweep)."""
    ckpt = Path(checkpoint).expanduser().resolve()
    if not ckpt.is_dir():
        raise ValueError(f"checkpoint {str(checkpoint)!r} is not a directory")
    sidecar = ckpt / POOL_SIDECAR
    if sidecar.is_file():
        info = json.loads(sidecar.read_text())
    else:
        info = _info_from_algorithm_pickle(ckpt)
    mids = list(info.get("modules") or [])
    if not mids:
        raise ValueError(f"{ckpt}: no module ids in {POOL_SIDECAR}")
    from ray.rllib.core.rl_module.rl_module import RLModule

    modules: dict[str, Any] = {}
    for mid in mids:
        path = ckpt / MODULE_DIR / mid
        if not path.is_dir():
            raise ValueError(f"{ckpt} is not a pool PPO checkpoint: {MODULE_DIR / mid} is missing")
        module: Any = RLModule.from_checkpoint(str(path))
        module.eval()
        modules[mid] = module
    return PoolPolicyController(ckpt, modules, info)


def _info_from_algorithm_pickle(ckpt: Path) -> dict[str, Any]:
    """Env config and module ids from the algorithm config pickled in an RLlib checkpoint."""
    import pickle

    try:
        with (ckpt / "class_and_ctor_args.pkl").open("rb") as fh:
            state = pickle.load(fh)
        config = state["ctor_args_and_kwargs"][0][0]
        env_config = dict(config["env_config"])
        mids = sorted(p.name for p in (ckpt / MODULE_DIR).iterdir() if p.is_dir())
    except Exception as exc:  # any unpickling problem means "not a usable checkpoint"
        raise ValueError(
            f"{ckpt}: not a pool PPO checkpoint ({type(exc).__name__}: {exc})"
        ) from exc
    policies = "shared" if mids == [SHARED_MODULE] else "separate"
    return {"env_config": env_config, "modules": mids, "policies": policies}


# ------------------------------------------------------------------------------------------------
def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m tune_configs.pool",
        description="Short multi-agent PPO training on a pool scenario; saves OUT/checkpoint.",
    )
    p.add_argument("--scenario", default="three_cell_hetero", help="preset (multi-cell)")
    p.add_argument("--iterations", type=int, default=20, help="PPO iterations")
    p.add_argument("--policies", choices=POLICY_MODES, default="shared")
    p.add_argument("--scope", choices=("team", "local"), default="team", help="reward scope")
    p.add_argument("--reward", choices=("metalore", "fulfilled"), default="metalore")
    p.add_argument("--batch", type=int, default=2000, help="env steps per iteration")
    p.add_argument("--lr", type=float, default=3e-4)
    p.add_argument("--minibatch", type=int, default=500, help="SGD minibatch (agent steps)")
    p.add_argument("--epochs", type=int, default=5, help="SGD epochs per iteration")
    p.add_argument("--envs", type=int, default=8, help="vectorised envs (sampled in-process)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="NAME=VALUE",
                   help="env / pool parameter override, e.g. --set endowment=1000")  # fmt: skip
    p.add_argument("--out", required=True, help="output directory (checkpoint, progress.json)")
    args = p.parse_args(argv)
    if min(args.iterations, args.batch, args.envs, args.minibatch, args.epochs) < 1:
        p.error("--iterations, --batch, --envs, --minibatch and --epochs must be >= 1")
    overrides: dict[str, Any] = {}
    for item in args.overrides:
        if "=" not in item:
            p.error(f"--set expects NAME=VALUE, got {item!r}")
        name, raw = item.split("=", 1)
        try:
            overrides[name] = json.loads(raw)
        except json.JSONDecodeError:
            overrides[name] = raw
    env_config = {"preset": args.scenario, "scope": args.scope, "reward": args.reward, **overrides}
    from tune_configs.runtime import init_ray, quiet_ray_logs, stop_ray

    try:
        config = build_pool_ppo_config(
            env_config,
            {"train_batch_size": args.batch, "minibatch_size": min(args.minibatch, args.batch),
             "num_epochs": args.epochs, "lr": args.lr},
            Resources(num_env_runners=0, num_envs_per_env_runner=args.envs),
            seed=args.seed, policies=args.policies,
        )  # fmt: skip
    except ValueError as exc:
        p.error(str(exc))
    started = init_ray(num_cpus=1, object_store_memory=200 * 2**20)
    quiet_ray_logs()
    try:
        ckpt, results = train_pool(
            config, args.iterations, args.out, args.policies,
            log=lambda line: print(line, file=sys.stderr, flush=True),
        )  # fmt: skip
    finally:
        stop_ray(started)
    out = Path(args.out)
    (out / "progress.json").write_text(
        json.dumps([result_summary(r) for r in results], indent=2) + "\n"
    )
    print(f"checkpoint: {ckpt}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
