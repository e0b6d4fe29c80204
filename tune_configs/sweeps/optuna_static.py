"""Sweep ``optuna-static``: Optuna over static splits; how soon does it reach the grid's front?

Run::

    python -m launch sweep optuna-static --budget small   # 60 evaluations, about 1-2 minutes
    python -m launch sweep optuna-static --budget paper   # 200 evaluations

(63 evaluations took 0.6-1.7 min of Tune time on a 2-core machine at load 6-11, 2026-12-06,
plus Ray's start.) The study is stored like every Optuna sweep's (:mod:`.study`:
``<experiment>/optuna.db`` or ``--set optuna_storage=URL``, ``--set study=NAME``,
``--set sampler=tpe|nsga2``); ``seed`` seeds the sampler.

Each trial evaluates one static split over 100 episodes (seeds 0..99, the same episodes as the
exhaustive grid) and reports served % (up), sync delay (down) and E2E delay (down); Optuna's
multi-objective TPE proposes continuous splits in [0, 1]^2. After the search, :func:`report`
evaluates the exhaustive 0.1 grid (121 splits) on the same episodes and measures, in suggestion
order, how many evaluations Optuna needed to reach the grid's Pareto front:

* ``coverage_within_noise``: first n at which every point of the grid's front in the (sync delay,
  served %) plane is matched by an Optuna point that is no worse in both, up to the grid point's
  95 % noise (1.96 standard errors of its mean over the episodes); ``coverage_90pct``: first n
  at which 90 % of the front's points are matched; ``coverage_final``: the share matched at the
  end;
* ``hv_2d_*``/``hv_3d_*``: first n at which the hypervolume of Optuna's points reaches 95 %, 99 %
  and 100 % of the grid's, in that plane and in the three objectives (reference point: the grid
  front's nadir pushed out by 10 % of its range, as in ``analysis.pareto``).

The numbers go to ``<experiment>/optuna_static_convergence.json`` and are printed.
"""

from __future__ import annotations

import json
import math
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from optuna.distributions import FloatDistribution

from tune_configs.sweeps.common import (
    OBJECTIVE_MODES,
    OBJECTIVES,
    STUDY_SETTINGS,
    check_budget,
    optuna_samples,
    optuna_tuner,
)
from tune_configs.sweeps.settings import Setting, pick

NAME = "optuna-static"
DESCRIPTION = "Optuna multi-objective search over static (w_b, w_c); evaluations to the grid front"
METRICS: tuple[str, ...] = OBJECTIVES
MODES: tuple[str, ...] = OBJECTIVE_MODES
SEARCH_SPACE: dict[str, FloatDistribution] = {
    "w_b": FloatDistribution(0.0, 1.0),
    "w_c": FloatDistribution(0.0, 1.0),
}
BUDGETS: dict[str, dict[str, Any]] = {
    "small": {"episodes": 100, "samples": 60, "startup": 10},
    "paper": {"episodes": 100, "samples": 200, "startup": 10},
}
SETTINGS: tuple[Setting, ...] = (
    *pick("preset", "delta", "penalty", "episodes", "eval_seed", "samples", "seed"),
    *STUDY_SETTINGS,
)
GRID_STEP = 0.1
CONVERGENCE_FILE = "optuna_static_convergence.json"
Z_NOISE = 1.96
HV_LEVELS = (0.95, 0.99, 1.0)


def param_space(budget: str = "paper", **overrides: Any) -> dict[str, Any]:
    """The constant part of each trial's config; w_b and w_c come from Optuna."""
    b = {**BUDGETS[check_budget(budget)], **overrides}
    return {
        "kind": "split",
        "budget": budget,
        "preset": b.get("preset", "paper"),
        "delta": float(b.get("delta", 0.9)),
        "penalty": float(b.get("penalty", 0.0)),
        "episodes": int(b["episodes"]),
        "eval_seed": int(b.get("eval_seed", 0)),
    }


def stop(budget: str = "paper") -> dict[str, Any] | None:
    """One evaluation per trial: no stop condition."""
    check_budget(budget)
    return None


def total_trials(budget: str = "small", **overrides: Any) -> int:
    """Number of trials (Optuna samples) the sweep runs for a budget."""
    return optuna_samples(BUDGETS, budget, **overrides)


SPACE: dict[str, Any] = {**param_space("paper"), **SEARCH_SPACE}
STOP = stop("paper")


def build_tuner(
    budget: str = "small",
    storage: str | Path = "./results",
    name: str | None = None,
    resume: bool = False,
    max_concurrent_trials: int | None = 2,
    progress: bool = True,
    **overrides: Any,
) -> Any:
    """The Tuner of this sweep on its stored Optuna study (Ray must be initialised); ``seed``
    seeds the sampler."""
    return optuna_tuner(
        sys.modules[__name__], budget=budget, storage=storage, name=name, resume=resume,
        max_concurrent_trials=max_concurrent_trials, progress=progress,
        space=param_space(budget, **overrides), stop=stop(budget), seed_key="seed",
        reuse_actors=True, **overrides,
    )  # fmt: skip


# --- convergence to the grid front ------------------------------------------------------------
def _front_mask(sync: np.ndarray, served: np.ndarray) -> np.ndarray:
    """Non-dominated points for (sync down, served up)."""
    n = len(sync)
    keep = np.ones(n, dtype=bool)
    for i in range(n):
        better_eq = (sync <= sync[i]) & (served >= served[i])
        strictly = (sync < sync[i]) | (served > served[i])
        if np.any(better_eq & strictly):
            keep[i] = False
    return keep


REF_MARGIN = 0.1


def _nondominated_min(points: np.ndarray) -> np.ndarray:
    """Indices of the non-dominated rows (every column minimised)."""
    keep = [
        i for i in range(len(points))
        if not np.any(np.all(points <= points[i], axis=1) & np.any(points < points[i], axis=1))
    ]  # fmt: skip
    return np.asarray(keep, dtype=int)


def _reference(front: np.ndarray) -> np.ndarray:
    """Nadir of ``front`` (minimisation) pushed outwards by :data:`REF_MARGIN` of its range."""
    lo, hi = front.min(axis=0), front.max(axis=0)
    span = np.where(hi > lo, hi - lo, np.maximum(np.abs(hi), 1.0))
    return np.asarray(hi + REF_MARGIN * span, dtype=float)


def _hv(points: np.ndarray, ref: Sequence[float] | np.ndarray) -> float:
    """Hypervolume for minimisation of every column (moocore)."""
    import moocore

    if len(points) == 0:
        return 0.0
    inside = np.all(points < np.asarray(ref), axis=1)
    if not inside.any():
        return 0.0
    return float(moocore.hypervolume(points[inside], ref=np.asarray(ref, dtype=float)))


def _first(ratios: Sequence[float], level: float) -> int | None:
    for n, r in enumerate(ratios, start=1):
        if r >= level - 1e-12:
            return n
    return None


def convergence(
    optuna_points: Sequence[dict[str, float]],
    grid_points: Sequence[dict[str, Any]],
) -> dict[str, Any]:
    """How many Optuna evaluations (in suggestion order) reach the grid front (module docstring).

    ``optuna_points``: dicts with served_pct, sync_delay, e2e_delay; ``grid_points``: the grid's
    summaries (with ``*_std`` and ``episodes``).
    """
    grid = [g for g in grid_points if g.get("sync_delay") is not None]
    g_sync = np.array([g["sync_delay"] for g in grid], dtype=float)
    g_served = np.array([g["served_pct"] for g in grid], dtype=float)
    g_e2e = np.array([g["e2e_delay"] for g in grid], dtype=float)
    front = np.flatnonzero(_front_mask(g_sync, g_served))
    n_ep = np.array([math.sqrt(max(int(g["episodes"]), 1)) for g in grid])
    se = {
        k: np.array([g.get(f"{k}_std") or 0.0 for g in grid], dtype=float) / n_ep
        for k in ("sync_delay", "served_pct")
    }
    # Minimisation form: (sync, -served) and (-served, sync, e2e); reference = the grid front's
    # nadir pushed out by REF_MARGIN of its range (as analysis.pareto does).
    grid2 = np.c_[g_sync, -g_served]
    grid3 = np.c_[-g_served, g_sync, g_e2e]
    ref2 = _reference(grid2[front])
    ref3 = _reference(grid3[_nondominated_min(grid3)])
    hv2_grid = _hv(grid2, ref2)
    hv3_grid = _hv(grid3, ref3)
    pts = np.array(
        [[p["served_pct"], p["sync_delay"], p["e2e_delay"]] for p in optuna_points], dtype=float
    ).reshape(-1, 3)
    ratios2: list[float] = []
    ratios3: list[float] = []
    coverage: list[float] = []
    for n in range(1, len(pts) + 1):
        sub = pts[:n]
        ok = np.all(np.isfinite(sub), axis=1)
        sub = sub[ok]
        ratios2.append(_hv(np.c_[sub[:, 1], -sub[:, 0]], ref2) / hv2_grid)
        ratios3.append(_hv(np.c_[-sub[:, 0], sub[:, 1], sub[:, 2]], ref3) / hv3_grid)
        matched = [
            bool(np.any((sub[:, 1] <= g_sync[i] + Z_NOISE * se["sync_delay"][i])
                        & (sub[:, 0] >= g_served[i] - Z_NOISE * se["served_pct"][i])))
            for i in front
        ]  # fmt: skip
        coverage.append(sum(matched) / max(len(front), 1))
    out: dict[str, Any] = {
        "evaluations": len(pts),
        "grid_splits": len(grid_points),
        "grid_front_2d": [
            {
                "w_b": grid[i]["w_b"],
                "w_c": grid[i]["w_c"],
                "sync_delay": float(g_sync[i]),
                "served_pct": float(g_served[i]),
            }
            for i in front
        ],
        "coverage_within_noise": _first(coverage, 1.0),
        "coverage_90pct": _first(coverage, 0.9),
        "coverage_final": coverage[-1] if coverage else 0.0,
        "coverage": coverage,
        "hv_2d_ratio_final": ratios2[-1] if ratios2 else 0.0,
        "hv_3d_ratio_final": ratios3[-1] if ratios3 else 0.0,
        "hv_2d_ratio": ratios2,
        "hv_3d_ratio": ratios3,
        "reference": {
            "plane_2d": {"sync_delay": float(ref2[0]), "served_pct": float(-ref2[1])},
            "space_3d": {
                "served_pct": float(-ref3[0]),
                "sync_delay": float(ref3[1]),
                "e2e_delay": float(ref3[2]),
            },
        },
    }
    for level in HV_LEVELS:
        tag = f"{round(level * 100):d}"
        out[f"hv_2d_{tag}pct"] = _first(ratios2, level)
        out[f"hv_3d_{tag}pct"] = _first(ratios3, level)
    return out


def creation_order(exp_dir: str | Path) -> dict[str, int]:
    """Trial id -> creation (suggestion) index, from Tune's latest experiment state file."""
    states = sorted(Path(exp_dir).glob("experiment_state-*.json"), key=lambda p: p.stat().st_mtime)
    if not states:
        return {}
    data = json.loads(states[-1].read_text())
    order: dict[str, int] = {}
    for i, item in enumerate(data.get("trial_data", [])):
        try:
            order[json.loads(item[0])["trial_id"]] = i
        except (TypeError, ValueError, KeyError, IndexError):
            continue
    return order


def report(results: Any, exp_dir: str | Path, **overrides: Any) -> dict[str, Any]:
    """Evaluate the exhaustive grid on the same episodes and write/print the convergence."""
    from envs.core.batch import evaluate
    from envs.core.policies import static_grid
    from tune_configs.env import params_from_env_config

    order = creation_order(exp_dir)
    found = []
    cfg: dict[str, Any] = {}
    for res in results:
        m = res.metrics or {}
        if "eval/served_pct" not in m:
            continue
        cfg = dict(res.config)
        found.append((order.get(str(m.get("trial_id")), len(order)), {
            "served_pct": m["eval/served_pct"],
            "sync_delay": m.get("eval/sync_delay", math.nan),
            "e2e_delay": m.get("eval/e2e_delay", math.nan),
            "w_b": cfg.get("w_b"), "w_c": cfg.get("w_c"),
        }))  # fmt: skip
    found.sort(key=lambda t: t[0])
    if not found:
        return {"evaluations": 0}
    env = {"preset": cfg.get("preset", "paper"), "delta": cfg.get("delta", 0.9),
           "penalty": cfg.get("penalty", 0.0)}  # fmt: skip
    params = params_from_env_config(env)
    grid = evaluate(params, static_grid(GRID_STEP), int(cfg.get("episodes", 100)),
                    int(cfg.get("eval_seed", 0))).summaries(preset=env["preset"])  # fmt: skip
    out = convergence([p for _, p in found], grid)
    out["points"] = [p for _, p in found]
    path = Path(exp_dir) / CONVERGENCE_FILE
    path.write_text(json.dumps(out, indent=2, default=float) + "\n")
    cov = out["coverage_within_noise"]
    print(
        f"optuna-static: {out['evaluations']} evaluations; the grid's (sync, served) front "
        f"({len(out['grid_front_2d'])} splits) was "
        + (f"fully matched within noise after {cov} evaluations" if cov else "not fully matched")
        + f" ({out['coverage_final']:.0%} of its points at the end, 90 % after "
        f"{out['coverage_90pct']}; the grid costs {out['grid_splits']}); hypervolume vs grid: "
        f"2-D {out['hv_2d_ratio_final']:.3f} (95 % after {out['hv_2d_95pct']}, "
        f"100 % after {out['hv_2d_100pct']}), 3-D {out['hv_3d_ratio_final']:.3f} "
        f"(95 % after {out['hv_3d_95pct']}, 100 % after {out['hv_3d_100pct']}); "
        f"written to {path}"
    )
    return out
