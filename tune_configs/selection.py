"""Choose a trained pool policy on TUNING episodes and ship it (``models/pool/<scenario>``).

Every checkpoint of the given ``launch train`` runs (the final one and the intermediate
``checkpoint_NNNNN`` of ``--checkpoint-every``) is evaluated deterministically on the tuning
episode seeds ``SELECTION_SEED ..`` (3,000,000 onwards: disjoint from the evaluation seeds of
``launch pool-compare`` and from the rules' split search at 1,000,000), with the pool on and off,
beside the greedy rule and the non-cooperative cells on the same seeds. The checkpoint with the
best mean fulfilment (with a surge: the mean of the overall and the after-surge fulfilment) is
shipped through :func:`tune_configs.export.ship_training`; its manifest records the run's
command, seed, env steps, wall time and git commit, and the selection (seeds, every candidate's
scores).

Run through the command line::

    python -m launch export --pool-runs results/central_s0 results/central_s1 \
        results/central_s2 --scenario three_cell_hetero --out models/pool/three_cell_hetero

About 3 s per candidate and 100 episodes (pool on and off) on a quiet machine, plus the rules'
split search (about 30 s) once.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from envs.core.seeds import POOL_SELECTION

SELECTION_SEED = POOL_SELECTION  # envs.core.seeds
SCORED = ("fulfillment_pct", "units_borrowed", "served_clients", "fairness", "operational_cost")


def summarize(metrics: Sequence[dict[str, Any]]) -> dict[str, float]:
    """Means of the scored metrics (and the after-surge fulfilment, if any) over episodes."""
    out = {}
    for key in SCORED:
        vals = [float(m[key]) for m in metrics if m.get(key) is not None]
        out[key] = round(float(np.mean(vals)), 3) if vals else float("nan")
    if "phases" in metrics[0]:
        after = [float(m["phases"]["after"]["fulfillment_pct"]) for m in metrics]
        out["after_fulfillment_pct"] = round(float(np.mean(after)), 3)
    return out


def score(summary: dict[str, float]) -> float:
    """Selection score: fulfilment, averaged with the after-surge fulfilment in a surge."""
    if "after_fulfillment_pct" in summary:
        return 0.5 * (summary["fulfillment_pct"] + summary["after_fulfillment_pct"])
    return summary["fulfillment_pct"]


def candidates(run_dir: Path, every: int = 1) -> list[Path]:
    """The checkpoints of a ``launch train`` run, intermediate ones first: those of iterations
    that are multiples of ``every`` (``checkpoint_NNNNN``), then the final one, unless an
    intermediate one holds the same iteration (``iterations`` of the run's ``train.json``)."""
    if every < 1:
        raise ValueError(f"every={every!r} must be >= 1")
    found = {
        int(p.name.removeprefix("checkpoint_")): p
        for p in run_dir.glob("checkpoint_[0-9]*")
        if p.name.removeprefix("checkpoint_").isdigit()
    }
    inter = [found[it] for it in sorted(found) if it % every == 0]
    final = run_dir / "checkpoint"
    if not final.is_dir() or _final_iteration(run_dir) in found:
        return inter
    return [*inter, final]


def _final_iteration(run_dir: Path) -> int | None:
    import json

    try:
        it = json.loads((run_dir / "train.json").read_text()).get("iterations")
    except (OSError, ValueError):
        return None
    return int(it) if isinstance(it, int) else None


def baselines(scenario: str, endowment: float, episodes: int) -> dict[str, dict[str, float]]:
    """The non-cooperative cells and the greedy rule on the selection seeds (splits searched on
    the rules' own tuning seeds, as ``pool-compare`` does)."""
    from envs.core.pool.clearing import PoolParams
    from envs.core.pool.rules import evaluate_controller, rule_baselines
    from envs.core.presets import make_params

    params = make_params(scenario)
    pool = PoolParams(endowment=endowment)
    variants, _ = rule_baselines(params, pool)
    return {
        name: summarize(evaluate_controller(params, pp, ctrl, episodes, SELECTION_SEED))
        for name, ctrl, pp in variants
    }


def evaluate_candidate(
    path: Path, scenario: str, endowment: float, episodes: int
) -> dict[str, Any]:
    from envs.core.pool.clearing import PoolParams
    from envs.core.pool.rules import evaluate_controller
    from envs.core.presets import make_params
    from tune_configs.controllers import load_any_pool_controller

    ctrl = load_any_pool_controller(path)
    params = make_params(scenario)
    pool = PoolParams(endowment=endowment)
    on = summarize(evaluate_controller(params, pool, ctrl, episodes, SELECTION_SEED))
    off = summarize(
        evaluate_controller(params, pool.replace(cooperative=False), ctrl, episodes, SELECTION_SEED)
    )
    return {"checkpoint": str(path), "ppo": on, "ppo_pool_off": off,
            "score": round(score(on), 3)}  # fmt: skip


def select(
    runs: Sequence[str | Path],
    scenario: str,
    endowment: float = 1000.0,
    episodes: int = 100,
    every: int = 1,
) -> dict[str, Any]:
    """Evaluate every candidate of ``runs`` (:func:`candidates` with ``every``); returns the
    selection record (best first)."""
    rows = []
    for run in runs:
        d = Path(run).expanduser().resolve()
        for ckpt in candidates(d, every):
            row = evaluate_candidate(ckpt, scenario, endowment, episodes)
            row["run"] = str(d)
            rows.append(row)
            print(f"{ckpt}: score {row['score']:.2f}  {row['ppo']}", file=sys.stderr, flush=True)
    if not rows:
        raise ValueError("no checkpoints found in the given runs")
    rows.sort(key=lambda r: -r["score"])
    return {
        "scenario": scenario,
        "endowment": endowment,
        "selection_seeds": [SELECTION_SEED, SELECTION_SEED + episodes - 1],
        "candidates_every": every,
        "criterion": "max mean fulfilment (surge: mean of overall and after-surge) on the "
        "selection seeds, deterministic policy, pool on",
        "baselines": baselines(scenario, endowment, episodes),
        "candidates": rows,
    }


def ship_selected(
    runs: Sequence[str | Path],
    scenario: str,
    out_dir: str | Path,
    endowment: float = 1000.0,
    episodes: int = 100,
    every: int = 1,
) -> tuple[Path, dict[str, Any]]:
    """:func:`select` among ``runs``, then ship the best checkpoint to ``out_dir`` with its run's
    manifest and the selection (seeds, criterion, baselines, every candidate's scores)."""
    from tune_configs.export import ship_training

    record = select(runs, scenario, endowment, episodes, every)
    best = record["candidates"][0]
    keys = ("checkpoint", "score", "ppo", "ppo_pool_off")
    selection = {k: v for k, v in record.items() if k != "candidates"}
    selection["chosen"] = {k: best[k] for k in keys}
    selection["candidates"] = [{k: r[k] for k in keys} for r in record["candidates"]]
    extra = {"selection": selection}
    out = ship_training(best["run"], out_dir, extra, checkpoint=best["checkpoint"])
    return out, best
