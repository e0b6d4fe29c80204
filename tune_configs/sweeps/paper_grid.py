"""Sweep ``paper-grid``: PPO over the paper's reward settings x seeds, trials in parallel.

Run::

    python -m launch sweep paper-grid --budget small   # 21 static + 21 PPO trials x 40k steps
    python -m launch sweep paper-grid --budget paper   # 21 static + 210 PPO runs x 60k, 10 seeds
    python -m launch report results/paper-grid-paper   # figures, Table I, claims check

The grid is delta in {0.9, 0.8, 0.7, 0.6, 0.5, 0.3, 0.1} x penalty in {0, -1, -5} x seeds. First
come the static baselines, one trial per reward setting (the exhaustive 0.1 grid plus the heuristic
and queue-aware rules, batched, a few seconds each; ``--set with_static=false`` leaves them out,
e.g. when ``static-grid`` runs separately). Each PPO trial trains PPO (``tune_configs.ppo``, log1p
observations, one CPU), reports the training metrics every iteration (TensorBoard:
``ray/tune/env_runners/metalore/*``), and ends with a deterministic evaluation over 100 episodes
(seeds 0..99, the episodes of the static baselines) whose metrics are its final result
(``eval/served_pct``, ``eval/sync_delay``, ``eval/e2e_delay``, ...) and a result set (kind
``ppo-trial``) in its trial directory, next to its final ``checkpoint/``. The paper budget trains
ten seeds per reward setting, five after one another in each trial (``seeds_per_trial``: one
process, imports and RLlib's set-up paid once; each seed trained from scratch and written as its
own result set under ``<trial>/seed_<k>/``), so the report can state its claims over runs.
"""

from __future__ import annotations

from typing import Any

from tune_configs.sweeps.common import (
    OBJECTIVE_MODES,
    OBJECTIVES,
    PAPER_DELTAS,
    PAPER_PENALTIES,
    PPO_SETTINGS,
    check_budget,
    grid_sweep,
    ppo_constants,
    reward_jobs,
)
from tune_configs.sweeps.settings import Setting, pick

NAME = "paper-grid"
DESCRIPTION = "PPO over delta x penalty x seeds (the paper's reward settings), 100-episode eval"
DELTAS: tuple[float, ...] = PAPER_DELTAS
PENALTIES: tuple[float, ...] = PAPER_PENALTIES
METRICS: tuple[str, ...] = OBJECTIVES
MODES: tuple[str, ...] = OBJECTIVE_MODES
# Env steps per PPO trial with the fast defaults (tune_configs.ppo: native vector env, 64 envs,
# batch 4000, minibatch 1000, 5 epochs): a policy reaches the static front within about 20k steps
# and improves along it afterwards; the paper budget fits 63 trials into a few minutes on 2 cores.
BUDGETS: dict[str, dict[str, Any]] = {
    "small": {"timesteps": 40_000, "seeds": (0,), "eval_episodes": 100, "seeds_per_trial": 1},
    # ten training seeds per reward setting: claims over runs (analysis.runs) need them
    "paper": {"timesteps": 60_000, "seeds": tuple(range(10)), "eval_episodes": 100,
              "seeds_per_trial": 5},
}  # fmt: skip
SETTINGS: tuple[Setting, ...] = (
    *PPO_SETTINGS,
    *pick("seeds", "seeds_per_trial", "deltas", "penalties", "episodes", "grid_step",
          "with_static"),
)  # fmt: skip


def param_space(budget: str = "paper", **overrides: Any) -> dict[str, Any]:
    """Tune param space: shared constants plus a grid over :func:`reward_jobs` (delta x penalty
    static trials unless ``with_static=False``, then delta x penalty x seed PPO trials)."""
    b = {**BUDGETS[check_budget(budget)], **overrides}
    rewards = [
        (float(d), float(p)) for d in b.get("deltas", DELTAS) for p in b.get("penalties", PENALTIES)
    ]
    constants = ppo_constants(BUDGETS, budget, **overrides)
    constants.pop("kind")
    return {
        **constants,
        "episodes": int(b.get("episodes", 100)),
        "grid_step": float(b.get("grid_step", 0.1)),
        "job": {
            "grid_search": reward_jobs(
                rewards,
                list(b["seeds"]),
                bool(b.get("with_static", True)),
                b.get("grid_step"),
                int(b["seeds_per_trial"]),
            )
        },
    }


def stop(budget: str = "paper", **overrides: Any) -> dict[str, Any]:
    """A trial ends after its env-step budget (it evaluates itself first, then reports); a
    trial of several seeds counts the env steps of all of them."""
    b = {**BUDGETS[check_budget(budget)], **overrides}
    return {"timesteps": int(b["timesteps"]) * int(b["seeds_per_trial"])}


SPACE = param_space("paper")
STOP = stop("paper")
# Trials reuse their Ray actors: a PPO trial then pays torch and RLlib's imports once per actor.
total_trials, build_tuner = grid_sweep(NAME, param_space, stop, reuse_actors=True)
