"""Sweep ``static-grid``: the exhaustive static baseline as Tune trials.

Run::

    python -m launch sweep static-grid --budget small     # 0.1 grid, reward (0.9, 0): ~1 min
    python -m launch sweep static-grid --budget paper     # 0.1 grid x the 21 paper rewards

Every split ``(w_b, w_c)`` on the 0.1 grid (121 splits, the paper's exhaustive baseline) is
evaluated over 100 episodes (seeds 0..99, common random numbers) with the batched evaluator
``envs.core.batch.evaluate``. The grid is cut into blocks of whole ``w_b`` rows, one Tune trial per
block and reward setting; block 0 also carries the heuristic and queue-aware rules. Every trial
writes a result set (kind ``static``: run.json, episodes.csv, summary.json) into its trial
directory, so ``launch report`` / ``analysis.collect`` pick it up next to the PPO trials. The
delays and served % do not depend on the reward; the return does, hence the reward settings.
"""

from __future__ import annotations

from typing import Any

from tune_configs.sweeps.common import (
    GRID_STEP,
    PAPER_DELTAS,
    PAPER_PENALTIES,
    check_budget,
    grid_sweep,
    split_blocks,
)
from tune_configs.sweeps.settings import Setting, pick

NAME = "static-grid"
DESCRIPTION = "exhaustive static splits (0.1 grid, 100 episodes) as Tune trials, batched"
METRICS: tuple[str, ...] = ("policies", "best_return")
MODES: tuple[str, ...] = ("max", "max")
BUDGETS: dict[str, dict[str, Any]] = {
    "small": {"episodes": 100, "blocks": 2, "deltas": (0.9,), "penalties": (0.0,)},
    "paper": {"episodes": 100, "blocks": 4, "deltas": PAPER_DELTAS, "penalties": PAPER_PENALTIES},
}
SETTINGS: tuple[Setting, ...] = pick(
    "episodes", "blocks", "deltas", "penalties", "preset", "eval_seed", "grid_step"
)


def jobs(step: float = GRID_STEP, n_blocks: int = 4) -> list[dict[str, Any]]:
    """One trial spec per block (block 0 with the heuristic and queue-aware baselines)."""
    return [
        {"block": i, "splits": splits, "baselines": i == 0}
        for i, splits in enumerate(split_blocks(step, n_blocks))
    ]


def param_space(budget: str = "paper", **overrides: Any) -> dict[str, Any]:
    """Tune param space (plain dicts; ``{"grid_search": [...]}`` is Tune's grid form)."""
    b = {**BUDGETS[check_budget(budget)], **overrides}
    return {
        "kind": "static",
        "budget": budget,
        "preset": b.get("preset", "paper"),
        "episodes": b["episodes"],
        "eval_seed": b.get("eval_seed", 0),
        "grid_step": b.get("grid_step", GRID_STEP),
        "delta": {"grid_search": list(b["deltas"])},
        "penalty": {"grid_search": list(b["penalties"])},
        "job": {"grid_search": jobs(b.get("grid_step", GRID_STEP), b["blocks"])},
    }


def stop(budget: str = "paper", **_overrides: Any) -> dict[str, Any] | None:
    """Static trials end by themselves after one evaluation: no stop condition."""
    check_budget(budget)
    return None


SPACE = param_space("paper")
STOP = stop("paper")
total_trials, build_tuner = grid_sweep(NAME, param_space, stop, reuse_actors=True)
