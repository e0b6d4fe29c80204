"""Sweep ``quickstart``: the static grid plus a few PPO reward settings, small budgets.

Run (the README's main command; about a minute on a quiet 2-core machine with the fast PPO
defaults, expect several times that when the machine is shared)::

    python -m launch sweep quickstart

One Tune experiment, on the embedded local Ray by default, mixing two kinds of trials:

* the exhaustive static grid (0.1 steps, 121 splits, plus the heuristic and queue-aware rules),
  100 episodes each, once per reward setting below (a few seconds each, batched evaluator);
* PPO for the reward settings :data:`REWARDS` (delta 0.9 and 0.5 without penalty, delta 0.9 with
  penalty -5), three training seeds each, :data:`BUDGETS` env steps each, then a deterministic
  100-episode evaluation; ``launch report`` then judges each setting over its training runs
  (:mod:`analysis.runs`). Each PPO trial's TensorBoard run also gets a replay of its policy on
  the first evaluation episode (``tb_replay``; images ``replay/timeline`` and
  ``replay/episode``).

Every trial writes a result set into its trial directory; ``launch report`` collects them. At the
end the sweep prints the results table, the experiment directory and the TensorBoard command.
"""

from __future__ import annotations

from typing import Any

from tune_configs.sweeps.common import (
    GRID_STEP,
    OBJECTIVE_MODES,
    OBJECTIVES,
    PPO_SETTINGS,
    check_budget,
    grid_sweep,
    ppo_constants,
    reward_jobs,
)
from tune_configs.sweeps.settings import Setting, pick

NAME = "quickstart"
DESCRIPTION = "static grid + PPO for 3 reward settings, small budgets (<= 15 min on 2 cores)"
METRICS: tuple[str, ...] = OBJECTIVES
MODES: tuple[str, ...] = OBJECTIVE_MODES
REWARDS: tuple[tuple[float, float], ...] = ((0.9, 0.0), (0.5, 0.0), (0.9, -5.0))
# The recipe that won on tuning runs (training seeds 10-14, evaluation seeds 1,000,000..; never
# the main job's seeds or episodes; docs/studies/paper.md#the-main-job): 60k env steps and
# gamma 0.9 put delta 0.5 on the front in 5 of 5 runs and delta 0.9 in 5 of 5, where 40k steps
# or gamma 0.99 left runs of delta 0.5 behind it.
RECIPE: dict[str, Any] = {"timesteps": 60_000, "hparams": {"gamma": 0.9}}
# Each trained policy's TensorBoard run also shows it acting: a replay of its first evaluation
# episode (timeline figure and animated episode, tune_configs.replay), a few seconds per run.
# The paper study leaves it off (paper-grid: 210 runs in a fixed time budget).
BUDGETS: dict[str, dict[str, Any]] = {
    "small": {
        **RECIPE,
        "eval_episodes": 100,
        "episodes": 100,
        "seeds": (0, 1, 2),
        "tb_replay": True,
    },
    "paper": {
        **RECIPE,
        "eval_episodes": 100,
        "episodes": 100,
        "seeds": (0, 1, 2, 3, 4),
        "tb_replay": True,
    },
}
SETTINGS: tuple[Setting, ...] = (
    *PPO_SETTINGS,
    *pick("seeds", "seed", "rewards", "episodes", "grid_step"),
)


def _seeds(b: dict[str, Any]) -> list[int]:
    """The training seeds: ``seed`` (one) if given, else ``seeds``."""
    return [int(b["seed"])] if "seed" in b else [int(s) for s in b["seeds"]]


def jobs(budget: str = "small", **overrides: Any) -> list[dict[str, Any]]:
    """Static trials first (whole grid per reward setting), then PPO per reward and seed."""
    b = {**BUDGETS[check_budget(budget)], **overrides}
    rewards = [(float(r[0]), float(r[1])) for r in b.get("rewards", REWARDS)]
    return reward_jobs(rewards, _seeds(b), True, float(b.get("grid_step", GRID_STEP)))


def param_space(budget: str = "small", **overrides: Any) -> dict[str, Any]:
    """Constants of both trial kinds plus a grid over :func:`jobs`."""
    b = {**BUDGETS[check_budget(budget)], **overrides}
    constants = ppo_constants(BUDGETS, budget, **{**b, "seeds": (0,)})
    constants.pop("kind")
    return {
        **constants,
        "episodes": int(b["episodes"]),
        "grid_step": float(b.get("grid_step", GRID_STEP)),
        "job": {"grid_search": jobs(budget, **overrides)},
    }


def stop(budget: str = "small", **overrides: Any) -> dict[str, Any]:
    """PPO trials end after their env-step budget (static trials report no timesteps)."""
    return {"timesteps": int({**BUDGETS[check_budget(budget)], **overrides}["timesteps"])}


SPACE = param_space("small")
STOP = stop("small")
total_trials, build_tuner = grid_sweep(NAME, param_space, stop, reuse_actors=True)
