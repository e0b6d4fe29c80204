"""The Optuna sweeps' study: database storage, sampler choice, and what the experiment records.

Every Optuna sweep (``optuna-reward``, ``optuna-static``) keeps its Optuna study in a database
through Optuna's ``RDBStorage``, so it outlives the driver, can be read by other processes
(``launch report``, ``launch dashboard``, ``optuna`` itself) and can be fed by several drivers:

* ``--set optuna_storage=URL``: any SQLAlchemy URL (``postgresql+psycopg://user@host/db`` for a
  cluster; the password from ``PGPASSWORD`` or ``~/.pgpass``, never in the URL you record);
  default ``sqlite:///<experiment>/optuna.db`` (embedded, nothing to start);
* ``--set study=NAME``: the study name (default: the experiment name). Two sweeps with their own
  experiment names but the same storage and study feed one study; each Optuna trial carries the
  user attributes ``experiment``, ``experiment_dir``, ``tune_trial_id``, ``tune_trial_dir`` and
  ``result_set`` (the trial directory holding run.json, episodes.csv, summary.json);
* ``--set sampler=tpe|nsga2`` (:data:`SAMPLERS`) and ``--set sampler_seed=N``.

:func:`study_spec` resolves these settings for one experiment, :func:`write_study_file` records
them in ``<experiment>/optuna_study.json`` (:data:`analysis.optuna_studies.STUDY_FILE`), which the
report and the dashboard read. The searcher itself (Ray) is
:class:`tune_configs.sweeps.searcher.StudySearch`.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from analysis.optuna_studies import DEFAULT_DB, STUDY_FILE

SAMPLERS: tuple[str, ...] = ("tpe", "nsga2")
DEFAULT_SAMPLER = "tpe"
SQLITE_TIMEOUT_S = 60  # wait this long for a lock when several drivers write one SQLite file


@dataclass(frozen=True)
class StudySpec:
    """Where one experiment's Optuna study lives and how it samples."""

    url: str  # SQLAlchemy URL, as given (may hold a password: never written to a file)
    study: str
    experiment: str
    exp_dir: str
    sampler: str = DEFAULT_SAMPLER
    sampler_seed: int = 0
    startup: int = 10  # random proposals first (TPE: n_startup_trials; NSGA-II: population)
    points: tuple[dict[str, float], ...] = field(default=())  # enqueued first (once per study)

    def __post_init__(self) -> None:
        if self.sampler not in SAMPLERS:
            raise ValueError(f"sampler must be one of {SAMPLERS}, got {self.sampler!r}")
        if self.startup < 1:
            raise ValueError(f"startup must be >= 1, got {self.startup}")
        if not self.study:
            raise ValueError("study must be a non-empty name")

    @property
    def default_storage(self) -> bool:
        """The study lives in the experiment's own SQLite file."""
        return self.url == default_url(self.exp_dir)


def default_url(exp_dir: str | Path) -> str:
    return f"sqlite:///{Path(exp_dir).resolve() / DEFAULT_DB}"


def public_url(url: str) -> str:
    """``url`` with any password replaced by ``***`` (what may be written to disk or printed)."""
    from sqlalchemy.engine import make_url

    return str(make_url(url).render_as_string(hide_password=True))


def study_spec(
    overrides: Mapping[str, Any],
    exp_dir: str | Path,
    experiment: str,
    startup: int,
    points: Sequence[Mapping[str, float]] = (),
    seed_key: str = "sampler_seed",
) -> StudySpec:
    """The study of an experiment from the sweep's ``--set`` overrides."""
    return StudySpec(
        url=str(overrides.get("optuna_storage") or default_url(exp_dir)),
        study=str(overrides.get("study") or experiment),
        experiment=experiment,
        exp_dir=str(Path(exp_dir).resolve()),
        sampler=str(overrides.get("sampler", DEFAULT_SAMPLER)),
        sampler_seed=int(overrides.get(seed_key, 0)),
        startup=int(startup),
        points=tuple(dict(p) for p in points),
    )


SCHEMA_ATTEMPTS = 4  # tries to open a database whose schema another driver may be creating


def make_storage(url: str) -> Any:
    """Optuna's ``RDBStorage`` for a SQLAlchemy URL (SQLite waits for locks, others ping)."""
    import optuna

    if url.startswith("sqlite"):
        Path(url.split(":///", 1)[1]).parent.mkdir(parents=True, exist_ok=True)
        kwargs: dict[str, Any] = {"connect_args": {"timeout": SQLITE_TIMEOUT_S}}
    else:
        kwargs = {"pool_pre_ping": True}
    from sqlalchemy.exc import IntegrityError, OperationalError

    for attempt in range(SCHEMA_ATTEMPTS):
        try:
            return optuna.storages.RDBStorage(url, engine_kwargs=kwargs)
        except (IntegrityError, OperationalError):
            # Two drivers started at once on a new database both create its schema; the one that
            # loses finds it made on its next attempt.
            if attempt == SCHEMA_ATTEMPTS - 1:
                raise
            time.sleep(0.5 * (attempt + 1))
    raise AssertionError("unreachable")


def make_sampler(name: str, seed: int, startup: int) -> Any:
    """A seeded multi-objective sampler: ``tpe`` (``startup`` random trials first) or
    ``nsga2`` (populations of ``max(startup, 4)`` trials)."""
    import optuna

    if name == "tpe":
        return optuna.samplers.TPESampler(seed=int(seed), n_startup_trials=int(startup))
    if name == "nsga2":
        return optuna.samplers.NSGAIISampler(seed=int(seed), population_size=max(int(startup), 4))
    raise ValueError(f"sampler must be one of {SAMPLERS}, got {name!r}")


def write_study_file(
    spec: StudySpec,
    sweep: str,
    objectives: Sequence[str],
    modes: Sequence[str],
    constants: Mapping[str, Any],
) -> Path:
    """Record the experiment's study in ``<experiment>/optuna_study.json`` (no password)."""
    exp = Path(spec.exp_dir)
    exp.mkdir(parents=True, exist_ok=True)
    data = {
        "storage": DEFAULT_DB if spec.default_storage else public_url(spec.url),
        "study": spec.study,
        "sweep": sweep,
        "experiment": spec.experiment,
        "sampler": spec.sampler,
        "sampler_seed": spec.sampler_seed,
        "startup": spec.startup,
        "objectives": list(objectives),
        "directions": ["maximize" if m == "max" else "minimize" for m in modes],
        "constants": {k: v for k, v in constants.items() if k != "driver_command"},
        "enqueued": [dict(p) for p in spec.points],
    }
    path = exp / STUDY_FILE
    path.write_text(json.dumps(data, indent=2, default=str) + "\n")
    return path


def spec_dict(spec: StudySpec) -> dict[str, Any]:
    """The spec as plain types, the URL without its password."""
    out = asdict(spec)
    out["url"] = public_url(spec.url)
    return out
