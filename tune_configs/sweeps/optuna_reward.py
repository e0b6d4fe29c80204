"""Sweep ``optuna-reward``: Optuna multi-objective search over the reward (delta, penalty) with PPO.

Run::

    python -m launch sweep optuna-reward --budget small   # 8 trials x 50k steps, 1-2 min
    python -m launch sweep optuna-reward --budget paper   # 40 trials x 200k steps (not timed here)
    python -m launch report results/optuna-reward-small   # its policies against the static front
    python -m launch dashboard results/optuna-reward-small   # the study, live, on 127.0.0.1

Which reward settings give PPO policies on the trade-off front? Optuna (multi-objective TPE via
``ray.tune.search.optuna.OptunaSearch``, or NSGA-II with ``--set sampler=nsga2``) proposes
continuous ``delta`` in [0.1, 1] and ``penalty`` in [-5, 0]; each trial is a PPO trial exactly as
in ``paper-grid`` (train, then a deterministic 100-episode evaluation written as a result set).
The objectives are the evaluation's served % (up), sync delay (down) and E2E delay (down):
:data:`METRICS`, :data:`MODES`. The search starts from the paper's point A, or from all 21 paper
reward settings with ``--set start_from_grid=true``.

The study is stored (:mod:`tune_configs.sweeps.study`): ``<experiment>/optuna.db`` by default,
every Optuna trial linked to its Tune trial; ``--resume`` continues it. After the search,
:func:`report` writes the scenario's static grid (121 splits and the rule-based baselines,
batched evaluator, a few seconds) into ``<experiment>/static_front``, so ``launch report`` places
every searched policy against the static front (claims check, hypervolume) and lists the study's
Pareto trials with the commands that retrain and ship them.

Measured (2026-12-06, a 2-core machine shared with other work): ``--budget small`` took 170 s
for the whole command at load 12-15 (the issue measured 63 s on a quieter machine), and
``launch report`` on it 48 s; 4 trials of 60k env steps, two at a time, took 40 s at load 1-2.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from optuna.distributions import FloatDistribution

from tune_configs.sweeps.common import (
    OBJECTIVE_MODES,
    OBJECTIVES,
    PAPER_DELTAS,
    PAPER_PENALTIES,
    PPO_SETTINGS,
    STUDY_SETTINGS,
    check_budget,
    optuna_samples,
    optuna_tuner,
    ppo_constants,
    write_static_front,
)
from tune_configs.sweeps.settings import Setting, pick

NAME = "optuna-reward"
DESCRIPTION = "Optuna multi-objective search over continuous delta and penalty, PPO trials"
METRICS: tuple[str, ...] = OBJECTIVES
MODES: tuple[str, ...] = OBJECTIVE_MODES
SEARCH_SPACE: dict[str, FloatDistribution] = {
    "delta": FloatDistribution(0.1, 1.0),
    "penalty": FloatDistribution(-5.0, 0.0),
}
BUDGETS: dict[str, dict[str, Any]] = {
    "small": {"timesteps": 50_000, "eval_episodes": 100, "samples": 8, "startup": 4},
    "paper": {"timesteps": 200_000, "eval_episodes": 100, "samples": 40, "startup": 10},
}
SETTINGS: tuple[Setting, ...] = (
    *PPO_SETTINGS,
    *STUDY_SETTINGS,
    *pick("seed", "samples", "sampler_seed", "start_from_grid"),
)
# Start from the paper's point A so the first trial is a known reference.
POINTS_TO_EVALUATE: list[dict[str, float]] = [{"delta": 0.9, "penalty": 0.0}]


def param_space(budget: str = "paper", **overrides: Any) -> dict[str, Any]:
    """The constant part of every trial's config; delta and penalty come from Optuna."""
    return {**ppo_constants(BUDGETS, budget, **overrides), "seed": int(overrides.get("seed", 0))}


def stop(budget: str = "paper", **overrides: Any) -> dict[str, Any]:
    return {"timesteps": int({**BUDGETS[check_budget(budget)], **overrides}["timesteps"])}


def total_trials(budget: str = "small", **overrides: Any) -> int:
    """Number of trials (Optuna samples) the sweep runs for a budget."""
    return optuna_samples(BUDGETS, budget, **overrides)


SPACE: dict[str, Any] = {**param_space("paper"), **SEARCH_SPACE}
STOP = stop("paper")


def start_points(start_from_grid: bool = False) -> list[dict[str, float]]:
    """Points Optuna evaluates first: the paper's point A, or all 21 paper reward settings."""
    if not start_from_grid:
        return list(POINTS_TO_EVALUATE)
    return [{"delta": d, "penalty": p} for p in PAPER_PENALTIES for d in PAPER_DELTAS]


def build_tuner(
    budget: str = "small",
    storage: str | Path = "./results",
    name: str | None = None,
    resume: bool = False,
    max_concurrent_trials: int | None = 2,
    progress: bool = True,
    **overrides: Any,
) -> Any:
    """The Tuner of this sweep on its stored Optuna study (Ray must be initialised)."""
    return optuna_tuner(
        sys.modules[__name__], budget=budget, storage=storage, name=name, resume=resume,
        max_concurrent_trials=max_concurrent_trials, progress=progress,
        space=param_space(budget, **overrides), stop=stop(budget, **overrides),
        points=start_points(bool(overrides.get("start_from_grid", False))), **overrides,
    )  # fmt: skip


def report(results: Any, exp_dir: str | Path, **overrides: Any) -> dict[str, Any]:
    """Write the scenario's static front into the experiment (``launch report`` places the
    searched policies against it) and print the study's summary."""
    import json

    from analysis.optuna_studies import STUDY_FILE, find_studies, pareto_rows, trials_table

    exp = Path(exp_dir)
    constants: dict[str, Any] = {}
    if (exp / STUDY_FILE).is_file():
        constants = dict(json.loads((exp / STUDY_FILE).read_text()).get("constants", {}))
    front = write_static_front(exp, constants or param_space("small"))
    out: dict[str, Any] = {"static_front": str(front)}
    for ref in find_studies(exp):
        table = trials_table(ref)
        done = int((table["state"] == "COMPLETE").sum()) if len(table) else 0
        pareto = pareto_rows(ref, table)
        out.update(study=ref.study, complete=done, pareto=len(pareto))
        print(
            f"optuna study {ref.study}: {done} complete trials ({len(table)} in all), "
            f"{len(pareto)} on its Pareto front; static front of the scenario: {front}"
        )
    return out
