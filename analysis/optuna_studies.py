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
                old.storage, old.study, old.sweep, old.objectives, old.directions,
                old.experiments + ref.experiments, {**ref.constants, **old.constants},
            )  # fmt: skip
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
        print(f"study {ref.study} ({ref.sweep}) in {ref.storage}: {len(table)} trials {states}, "
              f"{len(front)} on the Pareto front; experiments: {', '.join(ref.experiments)}")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
