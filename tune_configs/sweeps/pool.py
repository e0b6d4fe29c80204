"""Sweep ``pool``: learned controllers of the multi-cell credit pool, beside its rules.

Run::

    python -m launch sweep pool --budget small --set timesteps=4000 --set eval_episodes=3
    python -m launch report results/pool-small

A grid sweep like the others (:func:`tune_configs.sweeps.common.grid_sweep`: crashed trials retried
from
their last checkpoint, the progress printer, ``--resume``), run by the one trial runner
(:mod:`tune_configs.trials`):

* one ``pool-rules`` trial (unless ``with_rules=false``) evaluates the non-cooperative cells and
  the greedy cooperative rule on the evaluation episodes (their static splits searched on tuning
  seeds disjoint from them);
* one ``ppo`` trial per training seed (``seeds``) trains the ``city`` controller on ``scenario``
  (the default: :mod:`tune_configs.controllers`; one network shared by every cell, for any
  number of cells, with its measured recipe, ``docs/studies/city-controller.md``) and evaluates
  it there;
* with ``per-cell`` in ``controllers``, one ``ppo`` trial per reward scope (``scopes``: team /
  local) and training seed trains the ``per-cell`` controller (multi-agent PPO, one agent per
  cell, shared network unless ``policies=separate``; observation ``per_cell_obs``, action
  ``per_cell_action``) on ``scenario`` for ``timesteps`` env steps, reporting the CIVIC metrics
  of the training episodes (``env_runners/civic/...``, per cell too, in TensorBoard), then
  evaluates the deterministic policy with the pool on (``eval/<metric>`` of
  :data:`envs.core.pool.civic.EVAL_KEYS`);
* with ``central`` in ``controllers``, one ``ppo`` trial per training seed of
  the ``central`` controller (:mod:`tune_configs.controllers.central`: trader observation, residual
  on the greedy rule, team reward in fulfilled jobs), evaluated the same way.

Every trial writes a result set (run kinds ``pool-rules`` and ``pool-ppo-trial``), so ``launch
report`` puts the trained pool policies beside the rules in ``results.csv`` and the report's pool
section. The final checkpoint is accepted by ``python -m launch pool-compare --checkpoint``.

Budgets (both on ``city_19``): ``small`` (the city controller, 1 seed x 100k env steps, 20
evaluation episodes: 3.4-4.0 minutes on a quiet 2-core machine, the rules' trial beside it) and
``paper`` (3 seeds x 200k env steps, 100 evaluation episodes). The per-cell and central
controllers of the pool-learning study run with ``--set controllers=per-cell,central --set
scenario=three_cell_hetero``.
Settings: :data:`SETTINGS`.
"""

from __future__ import annotations

from typing import Any

from envs.core.pool.scenarios import SCENARIOS
from tune_configs.sweeps.common import check_budget, grid_sweep
from tune_configs.sweeps.settings import Setting, check_overrides, pick

NAME = "pool"
DESCRIPTION = "learned pool controllers (CIVIC metrics) beside the rules, per seed"
METRICS: tuple[str, ...] = ("eval/fulfillment_pct", "eval/completion_pct", "eval/fairness")
MODES: tuple[str, ...] = ("max", "max", "max")
METRIC, MODE = METRICS[0], MODES[0]

BUDGETS: dict[str, dict[str, Any]] = {
    "small": {
        "scenario": "city_19", "timesteps": 100_000, "seeds": [0],
        "scopes": ["team", "local"], "reward": "fulfilled", "policies": "shared",
        "endowment": 1000.0, "lr": 3e-4, "batch": 4000, "minibatch": 1000, "epochs": 5,
        "envs": 64, "eval_episodes": 20, "eval_seed": 0, "obs_mode": "log1p",
        "with_rules": True, "tune_episodes": 10, "controllers": ["city"],
        "per_cell_obs": "basic", "per_cell_action": "direct"
    },
    "paper": {
        "scenario": "city_19", "timesteps": 200_000, "seeds": [0, 1, 2],
        "scopes": ["team", "local"], "reward": "fulfilled", "policies": "shared",
        "endowment": 1000.0, "lr": 3e-4, "batch": 4000, "minibatch": 1000, "epochs": 5,
        "envs": 64, "eval_episodes": 100, "eval_seed": 0, "obs_mode": "log1p",
        "with_rules": True, "tune_episodes": 20, "controllers": ["city"],
        "per_cell_obs": "basic", "per_cell_action": "direct"
    },
}  # fmt: skip

SETTINGS: tuple[Setting, ...] = (
    *pick("timesteps", "seeds", "seed", "eval_episodes", "eval_seed", "obs_mode"),
    Setting("scenario", "str", "multi-cell preset", choices=SCENARIOS),
    Setting("scopes", "strs", "reward scopes", choices=("team", "local")),
    Setting("reward", "str", "reward of each agent", choices=("metalore", "fulfilled")),
    Setting(
        "policies", "str", "one shared network or one per cell", choices=("shared", "separate")
    ),
    Setting("endowment", "float", "credits per cell at reset", low=0.0),
    Setting("lr", "float", "PPO learning rate", low=0.0, high=1.0),
    Setting("batch", "int", "env steps per PPO iteration", low=1),
    Setting("minibatch", "int", "SGD minibatch (agent steps)", low=1),
    Setting("epochs", "int", "SGD epochs per iteration", low=1),
    Setting("envs", "int", "vectorised envs sampled in the trial's process", low=1),
    Setting("with_rules", "bool", "also evaluate noncoop and the greedy rule (one trial)"),
    Setting("tune_episodes", "int", "episodes of the rules' split search", low=1),
    Setting("controllers", "strs", "learned controllers: city (per seed; one network shared by "
            "every cell, for any number of cells, with its own recipe), per-cell (per scope and "
            "seed, with the settings below) and/or central (per seed; trader observation, "
            "residual on the greedy rule)", choices=("city", "per-cell", "central")),
    Setting("per_cell_obs", "str", "per-cell observation", choices=("basic", "trader")),
    Setting("per_cell_action", "str", "per-cell action parameterisation",
            choices=("direct", "residual", "deadzone")),
)  # fmt: skip


def _budget(budget: str, overrides: dict[str, Any]) -> dict[str, Any]:
    b = {**BUDGETS[check_budget(budget)], **check_overrides(NAME, SETTINGS, overrides)}
    if "seed" in b:  # the generic ``--set seed=N``: one training seed
        b["seeds"] = [int(b.pop("seed"))]
    return b


def param_space(budget: str = "small", **overrides: Any) -> dict[str, Any]:
    """Constants of the trials plus a grid: the rules trial, then PPO per (scope, seed)."""
    b = _budget(budget, overrides)
    jobs: list[dict[str, Any]] = []
    if b["with_rules"]:
        jobs.append({"kind": "pool-rules", "episodes": int(b["eval_episodes"]),
                     "tune_episodes": int(b["tune_episodes"])})  # fmt: skip
    if "per-cell" in b["controllers"]:
        cell = {"obs": b["per_cell_obs"], "action_mode": b["per_cell_action"]}
        if b["per_cell_action"] == "residual":
            cell["base_splits"] = "greedy"
        jobs += [
            {"kind": "ppo", "controller": "per-cell", "seed": int(seed),
             "env": {**_env(b), **cell, "scope": str(scope)}}
            for scope in b["scopes"]
            for seed in b["seeds"]
        ]  # fmt: skip
    if "city" in b["controllers"]:  # its recipe's env config under the sweep's reward, endowment
        jobs += [
            {"kind": "ppo", "controller": "city", "seed": int(seed), "env": _env(b)}
            for seed in b["seeds"]
        ]
    if "central" in b["controllers"]:
        jobs += [
            {"kind": "ppo", "controller": "central", "seed": int(seed), "env": _env(b)}
            for seed in b["seeds"]
        ]
    return {
        "budget": budget,
        "controller": "per-cell",
        "policies": b["policies"],
        "preset": b["scenario"],
        "obs_mode": b["obs_mode"],
        "env": _env(b),
        "timesteps": int(b["timesteps"]),
        "hparams": {
            "lr": float(b["lr"]),
            "train_batch_size": int(b["batch"]),
            "minibatch_size": min(int(b["minibatch"]), int(b["batch"])),
            "num_epochs": int(b["epochs"]),
        },
        "resources": {"num_env_runners": 0, "num_envs_per_env_runner": int(b["envs"])},
        "eval_episodes": int(b["eval_episodes"]),
        "eval_seed": int(b["eval_seed"]),
        "job": {"grid_search": jobs},
    }


def _env(b: dict[str, Any]) -> dict[str, Any]:
    return {"reward": b["reward"], "endowment": float(b["endowment"])}


def stop(budget: str = "small", **overrides: Any) -> dict[str, Any]:
    """PPO trials end after their env-step budget (they evaluate before the last report)."""
    return {"timesteps": int(_budget(budget, overrides)["timesteps"])}


SPACE = param_space("small")
STOP = stop("small")
total_trials, build_tuner = grid_sweep(NAME, param_space, stop)
