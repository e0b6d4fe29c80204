"""Sweep ``paper-grid``: PPO over the paper's reward settings x seeds, trials in parallel.

Run::

    python -m launch sweep paper-grid --budget small   # 21 static + 21 PPO trials x 40k steps
    python -m launch sweep paper-grid --budget paper   # 21 static + 63 PPO x 60k, 3 seeds
    python -m launch report results/paper-grid-paper   # figures, Table I, claims check

The grid is delta in {0.9, 0.8, 0.7, 0.6, 0.5, 0.3, 0.1} x penalty in {0, -1, -5} x seeds. First
come the static baselines, one trial per reward setting (the exhaustive 0.1 grid plus the heuristic
and queue-aware rules, batched, a few seconds each; ``--set with_static=false`` leaves them out,
e.g. when ``static-grid`` runs separately). Each PPO trial trains PPO (``tune_configs.ppo``, log1p
observations, one CPU), reports the training metrics every iteration (TensorBoard:
``ray/tune/env_runners/metalore/*``), and ends with a deterministic evaluation over 100 episodes
(seeds 0..99, the episodes of the static baselines) whose metrics are its final result
(``eval/served_pct``, ``eval/sync_delay``, ``eval/e2e_delay``, ...) and a result set (kind
``ppo-trial``) in its trial directory, next to its final ``checkpoint/``.
"""

from __future__ import annotations

from typing import Any

from tune_configs.sweeps.common import (
    OBJECTIVE_MODES,
    OBJECTIVES,
    PAPER_DELTAS,
    PAPER_PENALTIES,
    check_budget,
    grid_sweep,
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
    "small": {"timesteps": 40_000, "seeds": (0,), "eval_episodes": 100},
    "paper": {"timesteps": 60_000, "seeds": (0, 1, 2), "eval_episodes": 100},
}
# the settings of every PPO trial (see ppo_constants)
PPO_SETTINGS: tuple[Setting, ...] = pick(
    "preset",
    "obs_mode",
    "timesteps",
    "eval_episodes",
    "eval_seed",
    "hparams",
    "resources",
    "checkpoint_every",
)
SETTINGS: tuple[Setting, ...] = (
    *PPO_SETTINGS,
    *pick("seeds", "deltas", "penalties", "episodes", "grid_step", "with_static"),
)


def ppo_constants(budget: str, **overrides: Any) -> dict[str, Any]:
    """Non-searched keys of a PPO trial config for a budget (see tune_configs.trials)."""
    b = {**BUDGETS[check_budget(budget)], **overrides}
    return {
        "kind": "ppo",
        "budget": budget,
        "preset": b.get("preset", "paper"),
        "obs_mode": b.get("obs_mode", "log1p"),
        "timesteps": int(b["timesteps"]),
        "eval_episodes": int(b["eval_episodes"]),
        "eval_seed": int(b.get("eval_seed", 0)),
        "hparams": dict(b.get("hparams", {})),
        "resources": dict(b.get("resources", {})),
        "checkpoint_every": int(b.get("checkpoint_every", 10)),
    }


def reward_jobs(
    rewards: list[tuple[float, float]],
    seeds: list[int],
    with_static: bool = True,
    grid_step: float | None = None,
) -> list[dict[str, Any]]:
    """Trial specs: (optionally) one static-grid trial per reward, then PPO per reward x seed.

    The static trials come first so that, with trials in parallel, the baseline is done before
    (or while) the PPO trials run. Each evaluates the whole 0.1 grid plus the heuristic and
    queue-aware rules under that reward (delays and served % are reward-independent; the return
    is not).
    """
    from tune_configs.sweeps.static_grid import GRID_STEP, split_blocks

    jobs: list[dict[str, Any]] = []
    if with_static:
        splits = split_blocks(GRID_STEP if grid_step is None else float(grid_step), 1)[0]
        jobs += [
            {"kind": "static", "block": 0, "splits": splits, "baselines": True, "delta": d,
             "penalty": p}
            for d, p in rewards
        ]  # fmt: skip
    jobs += [
        {"kind": "ppo", "delta": d, "penalty": p, "seed": int(s)} for d, p in rewards for s in seeds
    ]
    return jobs


def param_space(budget: str = "paper", **overrides: Any) -> dict[str, Any]:
    """Tune param space: shared constants plus a grid over :func:`reward_jobs` (delta x penalty
    static trials unless ``with_static=False``, then delta x penalty x seed PPO trials)."""
    b = {**BUDGETS[check_budget(budget)], **overrides}
    rewards = [
        (float(d), float(p)) for d in b.get("deltas", DELTAS) for p in b.get("penalties", PENALTIES)
    ]
    constants = ppo_constants(budget, **overrides)
    constants.pop("kind")
    return {
        **constants,
        "episodes": int(b.get("episodes", 100)),
        "grid_step": float(b.get("grid_step", 0.1)),
        "job": {
            "grid_search": reward_jobs(
                rewards, list(b["seeds"]), bool(b.get("with_static", True)), b.get("grid_step")
            )
        },
    }


def stop(budget: str = "paper", **overrides: Any) -> dict[str, Any]:
    """A trial ends after its env-step budget (it evaluates itself first, then reports)."""
    return {"timesteps": int({**BUDGETS[check_budget(budget)], **overrides}["timesteps"])}


SPACE = param_space("paper")
STOP = stop("paper")
# Trials reuse their Ray actors: a PPO trial then pays torch and RLlib's imports once per actor.
total_trials, build_tuner = grid_sweep(NAME, param_space, stop, reuse_actors=True)
