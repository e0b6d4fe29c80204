"""The searched-front study: how many PPO trials does multi-objective search need to match a grid?

Runs, in one directory ``OUT`` and on one Ray (each part a normal sweep experiment, resumable):

* ``static``: ``optuna-static`` with sampler seeds ``seeds`` (``OUT/static-search-s<k>``,
  ``trials`` evaluations each, 100 episodes per split); the 121-split grid is evaluated on the
  same episodes by :func:`analyze`;
* ``grid``: ``paper-grid`` over the 21 paper reward settings x ``grid_seeds`` training seeds
  (``OUT/reward-grid``: 63 PPO trials of ``timesteps`` env steps, 100 evaluation episodes; the
  seeds of one setting trained one after the other in one Tune trial);
* ``search``: ``optuna-reward`` with sampler seeds ``seeds`` (``OUT/reward-search-s<k>``,
  ``trials`` PPO trials each, same env steps and evaluation, training seed 0), each its own
  stored Optuna study (``OUT/reward-search-s<k>/optuna.db``).

:func:`analyze` compares hypervolumes at equal numbers of trials (``counts``) with
:func:`analysis.optuna_studies.searched_vs_grid` and writes ``OUT/front_study.json`` plus the
figure ``OUT/front_study.png``. ``python -m launch front-study`` is the command; the conclusions
are in ``docs/studies/searched-front.md``.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from analysis.optuna_studies import (
    OBJECTIVE_COLUMNS,
    find_studies,
    searched_vs_grid,
    trials_table,
)

PARTS = ("static", "grid", "search")
COUNTS: tuple[int, ...] = (10, 20, 40, 63)
SEEDS: tuple[int, ...] = (0, 1, 2, 3, 4)
GRID_SEEDS: tuple[int, ...] = (0, 1, 2)
TIMESTEPS = 60_000
TRIALS = 63
RESULT_FILE = "front_study.json"
FIGURE_FILE = "front_study.png"


def experiments(
    seeds: Sequence[int],
    trials: int,
    timesteps: int,
    grid_seeds: Sequence[int],
    parts: Sequence[str] = PARTS,
) -> list[tuple[str, str, dict[str, Any]]]:
    """(experiment name, sweep, ``--set`` overrides) of every part, in the order they run."""
    out: list[tuple[str, str, dict[str, Any]]] = []
    ppo = {"timesteps": int(timesteps), "eval_episodes": 100}
    if "static" in parts:
        out += [
            (f"static-search-s{k}", "optuna-static", {"samples": int(trials), "seed": int(k)})
            for k in seeds
        ]
    if "grid" in parts:
        out.append(
            (
                "reward-grid",
                "paper-grid",
                {
                    **ppo,
                    "seeds": [int(s) for s in grid_seeds],
                    "seeds_per_trial": len(grid_seeds),
                    "with_static": False,
                },
            )
        )
    if "search" in parts:
        out += [
            (
                f"reward-search-s{k}",
                "optuna-reward",
                {**ppo, "samples": int(trials), "sampler_seed": int(k)},
            )
            for k in seeds
        ]
    return out


def _finished(exp: Path) -> bool:
    """The experiment ran to its end before (``front_study_done`` written by :func:`run`)."""
    return (exp / "front_study_done").is_file()


def run(
    out: str | Path,
    seeds: Sequence[int] = SEEDS,
    trials: int = TRIALS,
    timesteps: int = TIMESTEPS,
    grid_seeds: Sequence[int] = GRID_SEEDS,
    parts: Sequence[str] = PARTS,
    max_concurrent: int = 2,
) -> None:
    """Run (or continue) every part's sweep under ``out``; finished ones are skipped."""
    from tune_configs.ops import sweeplock
    from tune_configs.ops.runtime import init_ray, quiet_ray_logs, stop_ray
    from tune_configs.ops.sweeplock import has_content
    from tune_configs.sweeps import sweep_module
    from tune_configs.sweeps.common import check_settings

    root = Path(out).resolve()
    root.mkdir(parents=True, exist_ok=True)
    todo = []
    for name, sweep, overrides in experiments(seeds, trials, timesteps, grid_seeds, parts):
        if _finished(root / name):
            print(f"{name}: done before, kept", flush=True)
        else:
            todo.append((name, sweep, overrides))
    if not todo:
        return
    started = init_ray(None, num_cpus=2, object_store_memory=300_000_000)
    quiet_ray_logs()
    try:
        for name, sweep, overrides in todo:
            exp = root / name
            module = sweep_module(sweep)
            overrides = check_settings(module, overrides)
            sweeplock.acquire(exp)
            resume = has_content(exp)
            t0 = time.perf_counter()
            print(f"{name}: {sweep} {overrides}{' (resumed)' if resume else ''}", flush=True)
            tuner = module.build_tuner(
                budget="small",
                storage=root,
                name=name,
                resume=resume,
                max_concurrent_trials=max_concurrent,
                progress=True,
                **overrides,
            )
            results = tuner.fit()
            if hasattr(module, "report"):
                module.report(results, exp)
            errors = sum(1 for r in results if r.error is not None)
            minutes = (time.perf_counter() - t0) / 60
            print(f"{name}: {len(results)} trials, {errors} failed, {minutes:.1f} min", flush=True)
            if errors == 0 and len(results) == module.total_trials("small", **overrides):
                (exp / "front_study_done").write_text(f"{minutes:.2f} min\n")
    finally:
        stop_ray(started)


# --- reading the parts back -----------------------------------------------------------------
def _search_points(exp: Path) -> np.ndarray:
    """(served, sync, e2e) of an Optuna experiment's complete trials, in proposal order."""
    refs = find_studies(exp)
    if not refs:
        return np.empty((0, 3))
    table = trials_table(refs[0])
    if table.empty:
        return np.empty((0, 3))
    done = table.loc[table["state"] == "COMPLETE"].sort_values("number")
    cols = [OBJECTIVE_COLUMNS[k] for k in OBJECTIVE_COLUMNS]
    return np.asarray(done[cols].to_numpy(dtype=float))


def _grid_points(exp: Path) -> np.ndarray:
    """(served, sync, e2e) of every trained policy of the reward grid (one per setting x seed),
    from the result sets (``summary.json``) under the experiment."""
    rows = []
    for path in sorted(exp.rglob("summary.json")):
        for s in json.loads(path.read_text()):
            rows.append([s.get(k) for k in ("served_pct", "sync_delay", "e2e_delay")])
    arr = np.array([[np.nan if v is None else float(v) for v in r] for r in rows], dtype=float)
    return arr.reshape(-1, 3)


def _static_grid_points(exp: Path) -> np.ndarray:
    """The 121-split grid on the optuna-static experiment's episodes (its convergence file)."""
    from envs.core.batch import evaluate
    from envs.core.policies import static_grid
    from tune_configs.env import params_from_env_config

    study = json.loads((exp / "optuna_study.json").read_text())
    c = study["constants"]
    params = params_from_env_config(
        {"preset": c["preset"], "delta": c["delta"], "penalty": c["penalty"]}
    )
    grid = evaluate(params, static_grid(0.1), int(c["episodes"]), int(c["eval_seed"]))
    sums = grid.summaries(preset=c["preset"])
    return np.array(
        [
            [
                np.nan if s.get(k) is None else float(s[k])
                for k in ("served_pct", "sync_delay", "e2e_delay")
            ]
            for s in sums
        ],
        dtype=float,
    )


def analyze(out: str | Path, counts: Sequence[int] = COUNTS) -> dict[str, Any]:
    """Hypervolumes of the searched fronts against the grids at equal trial counts; writes
    ``OUT/front_study.json`` and ``OUT/front_study.png`` and returns the numbers."""
    root = Path(out).resolve()
    result: dict[str, Any] = {"dir": str(root), "counts": list(counts)}
    static_runs = {
        int(p.name.rsplit("-s", 1)[1]): _search_points(p)
        for p in sorted(root.glob("static-search-s*"))
    }
    if static_runs:
        grid = _static_grid_points(next(iter(sorted(root.glob("static-search-s*")))))
        result["static"] = searched_vs_grid(static_runs, grid, counts)
    reward_runs = {
        int(p.name.rsplit("-s", 1)[1]): _search_points(p)
        for p in sorted(root.glob("reward-search-s*"))
    }
    if (root / "reward-grid").is_dir():
        grid = _grid_points(root / "reward-grid")
        if reward_runs and len(grid):
            result["reward"] = searched_vs_grid(reward_runs, grid, counts)
    (root / RESULT_FILE).write_text(json.dumps(result, indent=2, default=float) + "\n")
    from analysis.optuna_studies import plot_searched_vs_grid

    plot_searched_vs_grid(result, root / FIGURE_FILE)
    return result
