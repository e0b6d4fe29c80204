"""Sweep ``pool``: multi-agent PPO (one agent per cell) on a credit-pool scenario.

Follows the sweep-module interface of :mod:`tune_configs.sweeps` (``NAME``, ``DESCRIPTION``,
``METRICS`` / ``MODES``, ``BUDGETS``, ``SPACE``, ``STOP``, :func:`param_space`, :func:`stop`,
:func:`total_trials`, :func:`build_tuner`, :func:`report`), so ``python -m launch sweep pool``
works once ``launch/sweep.py`` maps ``"pool"`` to this module. Directly::

    from tune_configs.runtime import init_ray
    from tune_configs.pool_sweep import build_tuner
    init_ray()
    results = build_tuner("small", storage="./results").fit()

One trial (:func:`pool_trial`, a function trainable, one CPU) trains the multi-agent PPO of
:func:`tune_configs.pool.build_pool_ppo_config` on ``scenario`` for ``timesteps`` env steps,
reporting per iteration the training episodes' CIVIC metrics (``env_runners/civic/...``, also in
TensorBoard as ``ray/tune/env_runners/civic/...``), saves the final checkpoint (with the pool
sidecar, loadable by ``python -m launch pool-compare --checkpoint <trial>/checkpoint_000000``) and
evaluates the deterministic policy on ``eval_episodes`` episodes from ``eval_seed`` with the pool
on: the last report carries ``eval/<metric>`` (:data:`EVAL_METRICS`). The grid runs every
combination of reward scope (``scopes``: team / local) and training seed (``seeds``).

Budgets: ``small`` (2 scopes x 1 seed x 40k steps: about 15 minutes on a quiet 2-core machine,
two trials at once) and ``paper`` (2 scopes x 3 seeds x 300k steps). Every budget entry can be
overridden (``--set timesteps=100000 --set endowment=100 --set scenario=surge``).
"""

from __future__ import annotations

import math
import os
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

NAME = "pool"
DESCRIPTION = "per-cell PPO with the credit pool (CIVIC metrics), grid over reward scope x seed"
EVAL_PREFIX = "eval/"
EVAL_METRICS: tuple[str, ...] = (
    "completion_pct", "fulfillment_pct", "served_clients", "fairness", "operational_cost",
    "backhaul_units", "episode_return",
)  # fmt: skip
METRICS: tuple[str, ...] = tuple(
    EVAL_PREFIX + m for m in ("fulfillment_pct", "completion_pct", "fairness")
)
MODES: tuple[str, ...] = ("max", "max", "max")
METRIC, MODE = METRICS[0], MODES[0]

BUDGETS: dict[str, dict[str, Any]] = {
    "small": {
        "scenario": "three_cell_hetero", "timesteps": 40_000, "seeds": [0],
        "scopes": ["team", "local"], "reward": "fulfilled", "policies": "shared",
        "endowment": 1000.0, "lr": 3e-4, "batch": 2000, "minibatch": 500, "epochs": 5,
        "envs": 8, "eval_episodes": 20, "eval_seed": 0, "obs_mode": "log1p",
    },
    "paper": {
        "scenario": "three_cell_hetero", "timesteps": 300_000, "seeds": [0, 1, 2],
        "scopes": ["team", "local"], "reward": "fulfilled", "policies": "shared",
        "endowment": 1000.0, "lr": 3e-4, "batch": 2000, "minibatch": 500, "epochs": 5,
        "envs": 8, "eval_episodes": 100, "eval_seed": 0, "obs_mode": "log1p",
    },
}  # fmt: skip
_GRID_KEYS = ("seeds", "scopes")


def _budget(budget: str, overrides: Mapping[str, Any]) -> dict[str, Any]:
    if budget not in BUDGETS:
        raise ValueError(f"budget must be one of {tuple(BUDGETS)}, got {budget!r}")
    overrides = dict(overrides)
    if "seed" in overrides:  # the generic ``--set seed=N`` of launch sweep: one training seed
        overrides["seeds"] = [int(overrides.pop("seed"))]
    unknown = sorted(set(overrides) - set(BUDGETS[budget]))
    if unknown:
        known = ", ".join(sorted(BUDGETS[budget]))
        raise ValueError(f"unknown pool sweep setting(s) {unknown}; known: {known}")
    b = {**BUDGETS[budget], **overrides}
    if int(b["timesteps"]) < 1 or int(b["eval_episodes"]) < 1:
        raise ValueError("timesteps and eval_episodes must be >= 1")
    return b


def param_space(budget: str = "small", **overrides: Any) -> dict[str, Any]:
    """Trial constants plus a grid over (scope, seed)."""
    b = _budget(budget, overrides)
    constants = {k: v for k, v in b.items() if k not in _GRID_KEYS}
    jobs = [{"scope": str(sc), "seed": int(sd)} for sc in b["scopes"] for sd in b["seeds"]]
    return {**constants, "job": {"grid_search": jobs}}


def stop(budget: str = "small", **overrides: Any) -> dict[str, Any]:
    """The trial budget. Trials stop themselves after ``timesteps`` (then evaluate), so the Tuner
    gets no stop condition: one on ``timesteps`` would end a trial before its evaluation."""
    return {"timesteps": int(_budget(budget, overrides)["timesteps"])}


def total_trials(budget: str = "small", **overrides: Any) -> int:
    b = _budget(budget, overrides)
    return len(b["scopes"]) * len(b["seeds"])


SPACE = param_space("small")
STOP = stop("small")


# ------------------------------------------------------------------------------------------------
def trial_settings(config: Mapping[str, Any]) -> dict[str, Any]:
    """A trial's flat settings: constants with the grid ``job`` merged in."""
    cfg = {k: v for k, v in dict(config).items() if k != "job"}
    cfg.update(dict(config.get("job", {})))
    return cfg


def _env_config(cfg: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "preset": cfg["scenario"], "scope": cfg["scope"], "reward": cfg["reward"],
        "endowment": float(cfg["endowment"]), "obs_mode": cfg["obs_mode"],
    }  # fmt: skip


def pool_trial(config: dict[str, Any]) -> None:
    """Function trainable of one pool trial (see the module docstring)."""
    import torch
    from ray import tune

    from envs.core import make_params
    from envs.core.pool.clearing import PoolParams
    from envs.core.pool.rules import evaluate_controller
    from tune_configs.pool import (
        PoolPolicyController,
        build_pool_ppo_config,
        module_ids,
        result_summary,
        write_pool_sidecar,
    )
    from tune_configs.ppo import Resources

    torch.set_num_threads(1)
    cfg = trial_settings(config)
    env_config = _env_config(cfg)
    hparams = {"lr": float(cfg["lr"]), "train_batch_size": int(cfg["batch"]),
               "minibatch_size": min(int(cfg["minibatch"]), int(cfg["batch"])),
               "num_epochs": int(cfg["epochs"])}  # fmt: skip
    ppo = build_pool_ppo_config(env_config, hparams, Resources(0, int(cfg["envs"])),
                                seed=int(cfg["seed"]), policies=cfg["policies"])  # fmt: skip
    algo = ppo.build_algo()
    timesteps = int(cfg["timesteps"])
    steps = 0
    try:
        while steps < timesteps:
            result = algo.train()
            summary = result_summary(result)
            steps = int(summary.get("env_steps_sampled", steps))
            runners = result.get("env_runners", {})
            tune.report({"timesteps": steps, "env_runners": {
                "civic": runners.get("civic", {}),
                "episode_return_mean": runners.get("episode_return_mean", math.nan)}})  # fmt: skip
        with tempfile.TemporaryDirectory() as tmp:
            ckpt = Path(tmp) / "checkpoint"
            ckpt.mkdir()
            algo.save(str(ckpt))
            write_pool_sidecar(ckpt, env_config, cfg["policies"], env_steps=steps)
            n_cells = make_params(cfg["scenario"]).scenario.n_cells
            mids = module_ids(cfg["policies"], n_cells)
            info = {"env_config": env_config, "policies": cfg["policies"], "modules": mids,
                    "normalize_actions": True}  # fmt: skip
            ctrl = PoolPolicyController(ckpt, {m: algo.get_module(m) for m in mids}, info)
            metrics = evaluate_controller(
                make_params(cfg["scenario"]), PoolParams(endowment=float(cfg["endowment"])),
                ctrl, int(cfg["eval_episodes"]), int(cfg["eval_seed"]),
            )  # fmt: skip
            final: dict[str, Any] = {"timesteps": steps}
            for m in EVAL_METRICS:
                values = [x[m] for x in metrics if x.get(m) is not None]
                final[EVAL_PREFIX + m] = float(sum(values) / len(values)) if values else math.nan
            tune.report(final, checkpoint=tune.Checkpoint.from_directory(str(ckpt)))
    finally:
        algo.stop()


def trial_dirname(trial: Any) -> str:
    job = trial.config.get("job", {})
    return f"pool_{job.get('scope', 'x')}_s{job.get('seed', 0)}_{trial.trial_id}"


def build_tuner(
    budget: str = "small",
    storage: str | Path = "./results",
    name: str | None = None,
    resume: bool = False,
    max_concurrent_trials: int | None = None,
    progress: bool = True,
    **overrides: Any,
) -> Any:
    """The Tuner of this sweep (Ray must be initialised, see :mod:`tune_configs.runtime`)."""
    from ray import tune

    space = param_space(budget, **overrides)
    exp = Path(storage).expanduser().resolve() / (name or f"{NAME}-{budget}")
    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")
    trainable = tune.with_resources(pool_trial, {"cpu": 1})
    if resume:
        if not tune.Tuner.can_restore(str(exp)):
            raise ValueError(f"nothing to resume in {exp} (no Tune experiment state there)")
        return tune.Tuner.restore(str(exp), trainable, resume_unfinished=True,
                                  resume_errored=True, param_space=space)  # fmt: skip
    if exp.exists() and any(exp.iterdir()):
        raise ValueError(f"experiment directory {exp} exists already: resume it or use a new name")
    return tune.Tuner(
        trainable,
        param_space=space,
        tune_config=tune.TuneConfig(
            max_concurrent_trials=max_concurrent_trials,
            trial_dirname_creator=trial_dirname,
            trial_name_creator=trial_dirname,
        ),
        run_config=tune.RunConfig(
            name=exp.name,
            storage_path=str(exp.parent),
            checkpoint_config=tune.CheckpointConfig(num_to_keep=1),
            verbose=1 if progress else 0,
        ),
    )


def report(results: Any, exp_dir: str | Path) -> None:
    """Print the final evaluation of every trial (and where the checkpoints are)."""
    print(f"{'trial':<40} {'fulfil %':>9} {'complete %':>10} {'fairness':>9}  checkpoint")
    for res in results:
        m = res.metrics or {}

        def f(key: str, spec: str, m: Mapping[str, Any] = m) -> str:
            v = m.get(EVAL_PREFIX + key)
            return "n/a" if v is None or not math.isfinite(float(v)) else format(float(v), spec)

        ckpt = res.checkpoint.path if res.checkpoint is not None else "-"
        print(f"{Path(res.path).name[:40]:<40} {f('fulfillment_pct', '9.2f')} "
              f"{f('completion_pct', '10.2f')} {f('fairness', '9.3f')}  {ckpt}")  # fmt: skip
    print(
        f"compare: python -m launch pool-compare --checkpoint <checkpoint> (results in {exp_dir})"
    )
