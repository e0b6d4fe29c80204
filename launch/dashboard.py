"""``python -m launch dashboard DIR``: serve optuna-dashboard for the Optuna study in DIR.

Examples::

    python -m launch sweep optuna-reward --budget small      # -> results/optuna-reward-small
    python -m launch dashboard results/optuna-reward-small   # optuna-dashboard: http://127.0.0.1:PORT
    python -m launch dashboard results --storage postgresql+psycopg://optuna@127.0.0.1:5432/optuna

Finds the study's storage from the ``optuna_study.json`` files that Optuna sweeps write into their
experiment directories (DIR itself or below it: one storage, holding one or several studies), or
from ``--storage`` (any SQLAlchemy URL; a new SQLite file is created empty). Serves optuna-dashboard
(the studies, their trials, the Pareto front, parameter importances, history) on 127.0.0.1 and
prints its address, like the TensorBoard line of ``launch sweep``. ``--port 0`` (the default)
takes a free port. Ctrl-C stops it.
"""

from __future__ import annotations

import argparse
import contextlib
from pathlib import Path

from launch.cli import UsageError
from launch.common import nonneg_int

HELP = "serve optuna-dashboard for the Optuna study of an experiment (127.0.0.1)"
LOOPBACK = "127.0.0.1"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("dir", metavar="DIR", help="an Optuna sweep's experiment (or a folder above)")
    p.add_argument(
        "--storage",
        default=None,
        metavar="URL",
        help="SQLAlchemy URL of the study database (default: found in DIR)",
    )
    p.add_argument("--port", type=nonneg_int, default=0, help="port (default 0: a free one)")
    p.add_argument(
        "--host",
        default=LOOPBACK,
        help="address to listen on (default 127.0.0.1; the container uses 0.0.0.0 inside its "
        "network namespace, published on the host's 127.0.0.1 only)",
    )


def find_storage(root: Path) -> tuple[str, list[str]]:
    """The one storage URL named under ``root`` and its studies (UsageError if none or several)."""
    from analysis.optuna_studies import DEFAULT_DB, STUDY_FILE, find_studies

    refs = find_studies(root)
    if (root / STUDY_FILE).is_file():  # DIR is an experiment: its own study's storage
        from analysis.optuna_studies import read_study_file

        own = read_study_file(root / STUDY_FILE).storage
        refs = [r for r in refs if r.storage == own]
    storages = sorted({r.storage for r in refs})
    if not storages and (root / DEFAULT_DB).is_file():
        return f"sqlite:///{(root / DEFAULT_DB).resolve()}", []
    if not storages:
        raise UsageError(f"no Optuna study under {root} (no {STUDY_FILE}); give --storage URL")
    if len(storages) > 1:
        raise UsageError(
            f"several study databases under {root}; pick one with --storage: " + ", ".join(storages)
        )
    return storages[0], sorted(r.study for r in refs)


def run(args: argparse.Namespace) -> int:
    root = Path(args.dir)
    if not root.is_dir() and args.storage is None:
        raise UsageError(f"not a directory: {root}")
    if args.storage:
        storage, studies = str(args.storage), list[str]()
    else:
        storage, studies = find_storage(root)
    import optuna
    import optuna_dashboard

    from tune_configs.ops.cluster import free_port
    from tune_configs.sweeps.study import make_storage, public_url

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    port = int(args.port) or free_port(args.host if args.host != "0.0.0.0" else LOOPBACK)
    shown = LOOPBACK if args.host == "0.0.0.0" else args.host
    what = f" (studies: {', '.join(studies)})" if studies else ""
    print(
        f"optuna-dashboard: http://{shown}:{port}  storage {public_url(storage)}{what}", flush=True
    )
    with contextlib.suppress(KeyboardInterrupt):
        optuna_dashboard.run_server(make_storage(storage), host=args.host, port=port)
    return 0
