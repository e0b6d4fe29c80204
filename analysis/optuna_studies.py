"""Optuna studies of the sweeps, read back: trials, their Pareto front, hypervolume over trials.

An Optuna sweep (``launch sweep optuna-reward|optuna-static``) keeps its study in a database
(:mod:`tune_configs.sweeps.study`): by default ``<experiment>/optuna.db`` (SQLite), or any
SQLAlchemy URL. Its experiment directory holds :data:`STUDY_FILE`, which names the storage (a
path relative to that directory for a file beside it; a URL without its password otherwise), the
study, the sweep, the objectives and the constants of every trial. This module finds those files,
loads each study once (several experiments may feed one study) and turns it into tables:

* :func:`find_studies`: every study named under a directory (deduplicated);
* :func:`trials_table`: one row per Optuna trial: number, state, parameters, objective values,
  and the user attributes linking it to its Tune trial (``experiment``, ``tune_trial_id``,
  ``tune_trial_dir``, ``result_set``);
* :func:`pareto_rows`: the complete trials on the study's Pareto front (all objectives);
* :func:`hypervolume_curve`: the hypervolume, in the (sync delay, served %) plane, of the first n
  complete trials (in the order they were proposed), n = 1 .. N.

``python -m analysis.optuna_studies DIR`` prints the studies found under DIR.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

STUDY_FILE = "optuna_study.json"
DEFAULT_DB = "optuna.db"
# objective name (Tune metric) -> column in the tables here
OBJECTIVE_COLUMNS = {
    "eval/served_pct": "served_pct",
    "eval/sync_delay": "sync_delay",
    "eval/e2e_delay": "e2e_delay",
}
LINK_ATTRS = ("experiment", "tune_trial_id", "tune_trial_dir", "result_set")


@dataclass(frozen=True)
class StudyRef:
    """One study: where it is stored and what produced it (from :data:`STUDY_FILE`)."""

    storage: str  # SQLAlchemy URL (a password, if any, comes from the environment: PGPASSWORD)
    study: str
    sweep: str = ""
    objectives: tuple[str, ...] = ()
    directions: tuple[str, ...] = ()
    experiments: tuple[str, ...] = ()  # experiment directories that name this study
    constants: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)


def resolve_storage(storage: str, base: Path) -> str:
    """A SQLAlchemy URL: ``storage`` itself, or ``sqlite:///`` of a path relative to ``base``."""
    if "://" in storage:
        return storage
    return f"sqlite:///{(base / storage).resolve()}"


def read_study_file(path: Path) -> StudyRef:
    data = json.loads(Path(path).read_text())
    return StudyRef(
        storage=resolve_storage(str(data["storage"]), Path(path).parent),
        study=str(data["study"]),
        sweep=str(data.get("sweep", "")),
        objectives=tuple(data.get("objectives", ())),
        directions=tuple(data.get("directions", ())),
        experiments=(str(Path(path).parent.resolve()),),
        constants=dict(data.get("constants", {})),
    )


def find_studies(root: Path) -> list[StudyRef]:
    """Every study named by a :data:`STUDY_FILE` under ``root``, once per (storage, study)."""
    root = Path(root)
    files = sorted(root.rglob(STUDY_FILE)) if root.is_dir() else []
    by_key: dict[tuple[str, str], StudyRef] = {}
    for path in files:
        try:
            ref = read_study_file(path)
        except (OSError, ValueError, KeyError):
            continue
        key = (ref.storage, ref.study)
        if key in by_key:
            old = by_key[key]
            ref = StudyRef(
                old.storage,
                old.study,
                old.sweep,
                old.objectives,
                old.directions,
                old.experiments + ref.experiments,
                {**ref.constants, **old.constants},
            )
        by_key[key] = ref
    return list(by_key.values())


def load_study(ref: StudyRef) -> Any:
    """The ``optuna.Study`` (read through Optuna's RDB storage)."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    return optuna.load_study(study_name=ref.study, storage=ref.storage)


def trials_table(ref: StudyRef, study: Any = None) -> pd.DataFrame:
    """One row per Optuna trial of the study (see the module docstring)."""
    study = load_study(ref) if study is None else study
    names = list(ref.objectives) or [f"objective_{i}" for i in range(len(study.directions))]
    rows = []
    for t in study.get_trials(deepcopy=False):
        row: dict[str, Any] = {"number": t.number, "state": t.state.name}
        row.update({f"param_{k}": v for k, v in t.params.items()})
        values = t.values or [None] * len(names)
        for name, v in zip(names, values, strict=False):
            row[OBJECTIVE_COLUMNS.get(name, name)] = np.nan if v is None else float(v)
        for attr in LINK_ATTRS:
            row[attr] = t.user_attrs.get(attr)
        row["datetime_complete"] = t.datetime_complete
        rows.append(row)
    return pd.DataFrame(rows)


def _maximise(ref: StudyRef, n: int) -> list[bool]:
    if len(ref.directions) == n:
        return [d.lower().startswith("max") for d in ref.directions]
    return [False] * n


def pareto_rows(ref: StudyRef, table: pd.DataFrame) -> pd.DataFrame:
    """The complete trials that no other complete trial dominates in all objectives."""
    from analysis.pareto import non_dominated

    cols = [OBJECTIVE_COLUMNS.get(o, o) for o in ref.objectives if OBJECTIVE_COLUMNS.get(o, o)]
    done = table.loc[table["state"] == "COMPLETE"] if len(table) else table
    if done.empty or not cols or not set(cols) <= set(done.columns):
        return done.iloc[0:0]
    mask = non_dominated(done[cols].to_numpy(dtype=float), _maximise(ref, len(cols)))
    return done.loc[mask]


def hypervolume_curve(
    table: pd.DataFrame, ref_point: Sequence[float] | None = None, margin: float = 0.1
) -> tuple[pd.DataFrame, tuple[float, float]]:
    """Hypervolume of the first n complete trials in the (sync delay down, served % up) plane.

    Trials count in the order Optuna numbered them (the order they were proposed). The reference
    point is ``ref_point`` or the nadir of all complete trials pushed out by ``margin`` of the
    range (:func:`analysis.pareto.reference_point`). Returns ``(curve, ref)``; the curve has
    columns ``trials`` and ``hypervolume``.
    """
    from analysis.pareto import hypervolume, reference_point

    if table.empty or not {"sync_delay", "served_pct"} <= set(table.columns):
        return pd.DataFrame({"trials": [], "hypervolume": []}), (np.nan, np.nan)
    done = table.loc[table["state"] == "COMPLETE"].sort_values("number")
    pts = done[["sync_delay", "served_pct"]].to_numpy(dtype=float)
    maximise = (False, True)
    if len(pts) == 0:
        return pd.DataFrame({"trials": [], "hypervolume": []}), (np.nan, np.nan)
    ref = np.asarray(ref_point if ref_point is not None else reference_point(pts, maximise, margin))
    hv = [hypervolume(pts[:n], ref, maximise) for n in range(1, len(pts) + 1)]
    curve = pd.DataFrame({"trials": np.arange(1, len(pts) + 1), "hypervolume": hv})
    return curve, (float(ref[0]), float(ref[1]))


# --- searched fronts against a grid, at equal numbers of trials ------------------------------
def _fronts_and_refs(
    grid: np.ndarray, margin: float
) -> tuple[np.ndarray, np.ndarray, float, float]:
    """Reference points (2-D plane, 3 objectives) from the grid's fronts, and its hypervolumes."""
    from analysis.pareto import hypervolume, non_dominated, reference_point

    g = grid[np.all(np.isfinite(grid), axis=1)]
    g2 = g[:, [1, 0]]
    ref2 = reference_point(g2[non_dominated(g2, MAX_2D)], MAX_2D, margin)
    ref3 = reference_point(g[non_dominated(g, MAX_3D)], MAX_3D, margin)
    return ref2, ref3, hypervolume(g2, ref2, MAX_2D), hypervolume(g, ref3, MAX_3D)


MAX_3D = (True, False, False)  # (served %, sync delay, E2E delay)
MAX_2D = (False, True)  # (sync delay, served %)


def _ratio_stats(values: list[float]) -> dict[str, Any]:
    from scipy import stats

    v = np.asarray(values, dtype=float)
    out: dict[str, Any] = {"n": int(v.size), "values": [float(x) for x in v]}
    if v.size == 0:
        return out
    out.update(mean=float(v.mean()), min=float(v.min()), max=float(v.max()))
    if v.size > 1:
        half = float(stats.t.ppf(0.975, v.size - 1) * v.std(ddof=1) / np.sqrt(v.size))
        out.update(ci95=[float(v.mean() - half), float(v.mean() + half)])
    return out


def searched_vs_grid(
    runs: dict[int, np.ndarray],
    grid: np.ndarray,
    counts: Sequence[int],
    margin: float = 0.1,
    subsets: int = 2000,
    rng_seed: int = 0,
) -> dict[str, Any]:
    """Hypervolume of searched fronts relative to a grid's, trial by trial.

    ``runs``: sampler seed -> (served %, sync delay, E2E delay) of its complete trials in proposal
    order; ``grid``: the same for every grid trial. Reference points: the nadir of the grid's
    front pushed out by ``margin`` of its range, in the (sync delay, served %) plane ("2d") and
    in the three objectives ("3d"). For each n of ``counts``: the searched hypervolume after n
    trials divided by the whole grid's, per seed, with mean, min, max and a 95 % t-interval over
    seeds; and the grid's own ratio with n of its trials (mean and 2.5-97.5 % quantiles over
    ``subsets`` random subsets). ``match``: per seed, the first n whose ratio reaches 1.
    """
    from analysis.pareto import hypervolume

    grid = np.asarray(grid, dtype=float).reshape(-1, 3)
    ref2, ref3, hv2, hv3 = _fronts_and_refs(grid, margin)
    curves: dict[str, dict[int, list[float]]] = {"2d": {}, "3d": {}}
    for seed, pts in sorted(runs.items()):
        pts = np.asarray(pts, dtype=float).reshape(-1, 3)
        curves["2d"][seed] = [
            hypervolume(pts[:n, [1, 0]], ref2, MAX_2D) / hv2 for n in range(1, len(pts) + 1)
        ]
        curves["3d"][seed] = [
            hypervolume(pts[:n], ref3, MAX_3D) / hv3 for n in range(1, len(pts) + 1)
        ]
    rng = np.random.default_rng(rng_seed)
    out: dict[str, Any] = {
        "grid_trials": len(grid),
        "seeds": sorted(int(k) for k in runs),
        "trials_per_seed": {int(k): len(v) for k, v in runs.items()},
        "reference": {"2d": [float(x) for x in ref2], "3d": [float(x) for x in ref3]},
        "grid_hypervolume": {"2d": hv2, "3d": hv3},
        "curves": {d: {int(k): v for k, v in c.items()} for d, c in curves.items()},
        "at": {},
        "match": {},
    }
    for dim, c in curves.items():
        out["match"][dim] = {
            int(k): next((i + 1 for i, r in enumerate(v) if r >= 1.0), None) for k, v in c.items()
        }
    for n in counts:
        row: dict[str, Any] = {}
        for dim, c in curves.items():
            row[f"search_{dim}"] = _ratio_stats([v[n - 1] for v in c.values() if len(v) >= n])
            if n <= len(grid):
                draws = []
                for _ in range(subsets if n < len(grid) else 1):
                    sub = grid[rng.choice(len(grid), size=n, replace=False)]
                    draws.append(
                        hypervolume(sub[:, [1, 0]], ref2, MAX_2D) / hv2
                        if dim == "2d"
                        else hypervolume(sub, ref3, MAX_3D) / hv3
                    )
                d = np.asarray(draws)
                row[f"grid_{dim}"] = {
                    "mean": float(d.mean()),
                    "q025": float(np.quantile(d, 0.025)),
                    "q975": float(np.quantile(d, 0.975)),
                }
        out["at"][int(n)] = row
    return out


def plot_searched_vs_grid(result: dict[str, Any], path: Path) -> Path | None:
    """The hypervolume-vs-trials curves of :func:`searched_vs_grid` results (``result["reward"]``
    and/or ``result["static"]``), one panel each; None if there is nothing to draw."""
    parts = [k for k in ("reward", "static") if k in result]
    if not parts:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(parts), figsize=(5.2 * len(parts), 3.8), squeeze=False)
    titles = {
        "reward": "PPO reward search vs the 21-setting grid",
        "static": "static-split search vs the 121-split grid",
    }
    for ax, part in zip(axes[0], parts, strict=True):
        r = result[part]
        for dim, style in (("2d", "-"), ("3d", "--")):
            curves = [np.asarray(v) for v in r["curves"][dim].values()]
            if not curves:
                continue
            n = max(len(c) for c in curves)
            arr = np.full((len(curves), n), np.nan)  # seeds stopped early: fewer values
            for i, c in enumerate(curves):
                arr[i, : len(c)] = c
            x = np.arange(1, n + 1)
            label = "sync vs served" if dim == "2d" else "3 objectives"
            ax.plot(
                x,
                np.nanmean(arr, axis=0),
                style,
                color="C0" if dim == "2d" else "C1",
                label=f"search, {label} (mean and range over {len(curves)} seeds)",
            )
            ax.fill_between(
                x,
                np.nanmin(arr, axis=0),
                np.nanmax(arr, axis=0),
                alpha=0.2,
                color="C0" if dim == "2d" else "C1",
            )
            gx = [int(k) for k, v in r["at"].items() if f"grid_{dim}" in v]
            gy = [r["at"][k][f"grid_{dim}"]["mean"] for k in r["at"] if f"grid_{dim}" in r["at"][k]]
            ax.plot(
                gx,
                gy,
                "s" if dim == "2d" else "D",
                color="C0" if dim == "2d" else "C1",
                mfc="none",
                label=f"grid, {label}: random subsets (mean)",
            )
        ax.axhline(1.0, color="k", lw=0.8)
        ax.set_xlabel("trials")
        ax.set_ylabel(f"hypervolume / whole grid's ({r['grid_trials']} trials)")
        ax.set_title(titles[part], fontsize=10)
        ax.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) != 1:
        print("usage: python -m analysis.optuna_studies DIR", file=sys.stderr)
        return 2
    refs = find_studies(Path(args[0]))
    if not refs:
        print(f"no Optuna study named under {args[0]} (no {STUDY_FILE})")
        return 1
    for ref in refs:
        table = trials_table(ref)
        states = table["state"].value_counts().to_dict() if len(table) else {}
        front = pareto_rows(ref, table)
        print(
            f"study {ref.study} ({ref.sweep}) in {ref.storage}: {len(table)} trials {states}, "
            f"{len(front)} on the Pareto front; experiments: {', '.join(ref.experiments)}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())


# --- from a searched trial to a policy ---------------------------------------------------------
def trial_commands(ref: StudyRef, row: Any) -> dict[str, str]:
    """The commands that retrain (PPO) or re-evaluate (a static split) and ship a study trial.

    PPO (``optuna-reward``): ``launch train`` with the trial's reward and the sweep's constants,
    and ``launch export`` of the Tune trial's final checkpoint. Static split (``optuna-static``):
    ``launch static --split`` on the sweep's episodes (the split itself is the policy).
    """
    c = ref.constants
    tag = f"{ref.study}-t{int(row['number'])}"
    if "param_w_b" in row and row.get("param_w_b") is not None and not _isnan(row["param_w_b"]):
        w_b, w_c = float(row["param_w_b"]), float(row["param_w_c"])
        cmd = (
            f"python -m launch static --split {w_b!r},{w_c!r} "
            f"--preset {c.get('preset', 'paper')} --delta {c.get('delta', 0.9):g} "
            f"--penalty {c.get('penalty', 0.0):g} --episodes {c.get('episodes', 100)} "
            f"--seed {c.get('eval_seed', 0)} --out results/splits/{tag}"
        )
        return {"retrain": cmd, "ship": cmd}
    parts = [
        "python -m launch train",
        f"--preset {c.get('preset', 'paper')}",
        f"--delta {float(row['param_delta'])!r}",
        f"--penalty {float(row['param_penalty'])!r}",
        f"--timesteps {c.get('timesteps', 200_000)}",
        f"--seed {c.get('seed', 0)}",
    ]
    if c.get("obs_mode"):
        parts.append(f"--obs-mode {c['obs_mode']}")
    parts += [f"--hp {k}={json.dumps(v)}" for k, v in dict(c.get("hparams") or {}).items()]
    parts.append(f"--eval-episodes {c.get('eval_episodes', 100)} --out results/retrain/{tag}")
    trial_dir = row.get("tune_trial_dir")
    ship = (
        f"python -m launch export {trial_dir}/checkpoint --out models/{tag}"
        if isinstance(trial_dir, str) and trial_dir
        else ""
    )
    return {"retrain": " ".join(parts), "ship": ship}


def _isnan(v: Any) -> bool:
    try:
        return bool(np.isnan(float(v)))
    except (TypeError, ValueError):
        return False


def studies_section(md: Any, root: Path, figs: Path, tabs: Path) -> None:
    """The report's "Optuna studies" section: every study named under ``root`` with its trials
    by state, the experiments feeding it, its Pareto trials with the commands that retrain and
    ship each one, and the hypervolume-vs-trials curve (figure ``figs/optuna_hypervolume.png``).
    Nothing is written when ``root`` names no study."""
    refs = find_studies(root)
    if not refs:
        return
    md.h(2, "Optuna studies")
    md.p(
        "Each Optuna sweep keeps its study in a database (`optuna_study.json` in its experiment "
        "names it); several experiments may feed one study. Watch one live with "
        f"`python -m launch dashboard {root}` (optuna-dashboard on 127.0.0.1)."
    )
    curves: list[tuple[str, pd.DataFrame]] = []
    for ref in refs:
        try:
            study = load_study(ref)
        except Exception as exc:  # a database that is gone or unreachable: say so, go on
            md.p(f"_Study {ref.study} in {ref.storage}: could not be read ({exc})._")
            continue
        table = trials_table(ref, study)
        states = table["state"].value_counts().to_dict() if len(table) else {}
        md.h(3, f"Study {ref.study} ({ref.sweep})")
        exps = table["experiment"].dropna().value_counts().to_dict() if len(table) else {}
        md.p(
            f"Storage `{ref.storage}`; {len(table)} trials ("
            + ", ".join(f"{n} {s.lower()}" for s, n in sorted(states.items()))
            + "); fed by "
            + (", ".join(f"{e} ({n})" for e, n in sorted(exps.items())) or "no experiment")
            + "."
        )
        tag = "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in ref.study)
        path = tabs / f"optuna_trials_{tag}.csv"
        table.to_csv(path, index=False)
        front = pareto_rows(ref, table).sort_values("number")
        if front.empty:
            md.p("_No complete trial yet._")
            continue
        params = [c for c in front.columns if c.startswith("param_")]
        lines = [
            "| trial | "
            + " | ".join(c[len("param_") :] for c in params)
            + " | served % | sync | E2E | Tune trial | retrain | ship |",
            "|" + "---|" * (len(params) + 7),
        ]
        for _, row in front.iterrows():
            cmds = trial_commands(ref, row)
            tdir = row.get("tune_trial_dir")
            lines.append(
                f"| {int(row['number'])} | "
                + " | ".join(f"{float(row[c]):.3f}" for c in params)
                + f" | {row.get('served_pct', np.nan):.2f} | {row.get('sync_delay', np.nan):.2f}"
                f" | {row.get('e2e_delay', np.nan):.2f} | "
                + (f"`{Path(tdir).name}`" if isinstance(tdir, str) else "")
                + f" | `{cmds['retrain']}` | "
                + (
                    f"`{cmds['ship']}`"
                    if cmds["ship"] and cmds["ship"] != cmds["retrain"]
                    else "(the split is the policy)"
                )
                + " |"
            )
        md.p(
            f"Pareto trials ({len(front)} of {states.get('COMPLETE', 0)} complete; all three "
            f"objectives; every trial in {md.link(path)}):"
        )
        md.p("\n".join(lines))
        curve, refpt = hypervolume_curve(table)
        if len(curve):
            curves.append((ref.study, curve))
            md.p(
                f"Hypervolume after {len(curve)} complete trials in the plane sync delay vs "
                f"served: {curve['hypervolume'].iloc[-1]:.1f} (reference point: sync "
                f"{refpt[0]:.2f} steps, served {refpt[1]:.2f} %, the nadir of the study's "
                "complete trials pushed out by 10 % of their range)."
            )
    if curves:
        out = figs / "optuna_hypervolume.png"
        _plot_curves(curves, out)
        md.img(out, "Hypervolume of each study's first n complete trials")
        md.p(
            "Hypervolume vs trials: each study's complete trials in the order Optuna proposed "
            "them, in the plane sync delay (down) vs served % (up), relative to the study's final "
            "hypervolume (each study against its own reference point)."
        )


def _plot_curves(curves: list[tuple[str, pd.DataFrame]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.0, 3.8))
    for name, curve in curves:
        final = float(curve["hypervolume"].iloc[-1]) or 1.0
        ax.plot(curve["trials"], curve["hypervolume"] / final, label=name)
    ax.set_xlabel("complete trials")
    ax.set_ylabel("hypervolume / the study's final")
    ax.set_ylim(0, 1.05)
    if len(curves) <= 12:
        ax.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
