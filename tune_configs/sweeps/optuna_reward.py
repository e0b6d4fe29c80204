"""Sweep ``optuna-reward``: Optuna multi-objective search over the reward (delta, penalty) with PPO.

Run::

    python -m launch sweep optuna-reward --budget small   # 8 trials x 50k steps, ~5 min
    python -m launch sweep optuna-reward --budget paper   # 40 trials x 200k steps (hours)

Which reward settings give PPO policies on the trade-off front? Optuna (multi-objective TPE via
``ray.tune.search.optuna.OptunaSearch``) proposes continuous ``delta`` in [0.1, 1] and ``penalty``
in [-5, 0]; each trial is a PPO trial exactly as in ``paper-grid`` (train, then a deterministic
100-episode evaluation written as a result set). The objectives are the evaluation's served %
(up), sync delay (down) and E2E delay (down): :data:`METRICS`, :data:`MODES`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from optuna.distributions import FloatDistribution

from tune_configs.sweeps.common import (
    OBJECTIVE_MODES,
    OBJECTIVES,
    PPO_SETTINGS,
    check_budget,
    make_tuner,
    optuna_samples,
    optuna_searcher,
    ppo_constants,
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
SETTINGS: tuple[Setting, ...] = (*PPO_SETTINGS, *pick("seed", "samples"))
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


def make_searcher(budget: str, seed: int = 0) -> Any:
    """OptunaSearch with a seeded multi-objective TPE sampler over :data:`SEARCH_SPACE`."""
    startup = int(BUDGETS[check_budget(budget)]["startup"])
    return optuna_searcher(SEARCH_SPACE, startup, seed, list(POINTS_TO_EVALUATE))


def build_tuner(
    budget: str = "small",
    storage: str | Path = "./results",
    name: str | None = None,
    resume: bool = False,
    max_concurrent_trials: int | None = 2,
    progress: bool = True,
    samples: int | None = None,
    **overrides: Any,
) -> Any:
    """The Tuner of this sweep (Ray must be initialised)."""
    n = int(samples or BUDGETS[check_budget(budget)]["samples"])
    return make_tuner(
        param_space=param_space(budget, **overrides), storage=storage,
        name=name or f"{NAME}-{budget}", resume=resume, stop=stop(budget, **overrides),
        search_alg=None if resume else make_searcher(budget), num_samples=n,
        max_concurrent_trials=max_concurrent_trials, total_trials=n, progress=progress,
    )  # fmt: skip
