"""``python -m launch sweep NAME``: run a Tune sweep (grid or Optuna) on embedded Ray or a cluster.

Examples::

    python -m launch sweep quickstart                        # static grid + 3 PPO rewards, small
    python -m launch sweep paper-grid --budget paper         # 21 rewards x 3 seeds x 200k steps
    python -m launch sweep optuna-static                     # Optuna vs the exhaustive grid
    python -m launch sweep paper-grid --resume               # continue an interrupted run
    python -m launch sweep paper-grid --address 127.0.0.1:6390   # on a running Ray cluster

Sweeps (modules in ``tune_configs/sweeps/``, named in :data:`tune_configs.sweeps.SWEEPS`):
quickstart, paper-grid, static-grid, optuna-reward, optuna-static, pool. Results go to
``--storage/--name`` (default ``./results/<sweep>-<budget>``); every trial directory holds Tune's
files, TensorBoard events and a result set (run.json, episodes.csv, summary.json) that
``launch report`` collects. Progress: one line per started/finished trial and a status line every
minute. Ctrl-C stops gracefully; rerun with ``--resume`` to continue without redoing finished
trials. Without ``--address`` an embedded single-node Ray runs on 127.0.0.1 only. The Optuna
sweeps keep their study in a database (``EXP/optuna.db``, or ``--set optuna_storage=URL`` and
``--set study=NAME`` to share one study between drivers; :mod:`tune_configs.sweeps.study`); a
resumed sweep continues the same study; ``python -m launch dashboard EXP`` shows it.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import time
from typing import Any

from launch.cli import UsageError
from launch.common import add_set_argument, positive_int
from tune_configs.sweeps import SWEEPS, sweep_module

# an experiment directory directly under --storage (no path separators, no "..")
EXPERIMENT_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$")
HELP = f"run a Tune sweep ({', '.join(SWEEPS)})"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("sweep", metavar="NAME", choices=sorted(SWEEPS),
                   help="one of: " + ", ".join(SWEEPS))  # fmt: skip
    p.add_argument(
        "--budget",
        choices=("small", "paper"),
        default="small",
        help="small (minutes) or paper (the paper's budget, hours); default small",
    )
    p.add_argument("--storage", default="./results", metavar="PATH",
                   help="results root (default ./results)")  # fmt: skip
    p.add_argument("--name", default=None, metavar="EXP",
                   help="experiment name (default <sweep>-<budget>)")  # fmt: skip
    p.add_argument(
        "--resume",
        action="store_true",
        help="continue the interrupted experiment (finished trials are kept)",
    )
    p.add_argument(
        "--address",
        default=None,
        metavar="ADDR",
        help="running Ray cluster, e.g. 127.0.0.1:6390 (default: embedded local Ray)",
    )
    p.add_argument(
        "--max-concurrent",
        type=positive_int,
        default=None,
        metavar="N",
        help="at most N trials at once (default: as many as the CPUs allow)",
    )
    add_set_argument(
        p,
        "override a setting, e.g. --set timesteps=50000 --set seeds=[0,1] "
        "(--list-settings shows the sweep's settings)",
    )
    p.add_argument(
        "--list-settings",
        action="store_true",
        help="print the sweep's settings (name, type, range, budget defaults) and exit",
    )


def load_sweep(name: str) -> Any:
    """The sweep module for a CLI name (raises UsageError for an unknown one)."""
    if name not in SWEEPS:
        raise UsageError(f"unknown sweep {name!r}; choose one of {', '.join(SWEEPS)}")
    return sweep_module(name)


def check_sweep_settings(
    name: str, overrides: dict[str, Any], budget: str | None = None
) -> dict[str, Any]:
    """The validated ``--set`` overrides of sweep ``name`` (UsageError naming a bad key). With a
    ``budget``, every trial config is also resolved as its trial would resolve it
    (:func:`tune_configs.sweeps.common.preflight`), so a bad value fails here, not in a trial."""
    from tune_configs.sweeps.common import check_settings, preflight

    module = load_sweep(name)
    try:
        checked = check_settings(module, overrides)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    if budget is not None:
        try:
            preflight(module, budget, checked)
        except ValueError as exc:
            given = f" with --set {', '.join(checked)}" if checked else ""
            raise UsageError(f"sweep {name}, budget {budget}{given}: {exc}") from None
    return checked


def _list_settings(module: Any) -> int:
    from tune_configs.sweeps.settings import settings_help

    print(f"settings of sweep {module.NAME} (--set NAME=VALUE, values in JSON):")
    print(settings_help(module.SETTINGS))
    for budget, values in module.BUDGETS.items():
        print(f"budget {budget}: " + ", ".join(f"{k}={v!r}" for k, v in values.items()))
    return 0


def run(args: argparse.Namespace) -> int:
    from tune_configs.ops import sweeplock
    from tune_configs.ops.runtime import init_ray, quiet_ray_logs, stop_ray
    from tune_configs.sweeps.common import disk_full, experiment_dir, print_table, results_table

    module = load_sweep(args.sweep)
    if args.list_settings:
        return _list_settings(module)
    overrides = check_sweep_settings(args.sweep, dict(args.overrides), args.budget)
    if args.name is not None and not EXPERIMENT_NAME.match(args.name):
        raise UsageError(
            f"--name {args.name!r}: use letters, digits, '.', '_', '-' (max 100), no path"
        )
    name = args.name or f"{module.NAME}-{args.budget}"
    exp = experiment_dir(args.storage, name)
    if args.resume and not exp.is_dir():
        raise UsageError(f"nothing to resume: {exp} does not exist")
    sweeplock.acquire(exp)  # one driver per experiment (else SweepLocked); held until exit
    if not args.resume and sweeplock.has_content(exp):
        raise UsageError(f"{exp} exists already: add --resume to continue it or --name NEW")
    print(f"sweep {module.NAME} ({module.DESCRIPTION}), budget {args.budget} -> {exp}", flush=True)
    started = init_ray(args.address, num_cpus=None if args.address else os.cpu_count(),
                       object_store_memory=None if args.address else 300_000_000)  # fmt: skip
    quiet_ray_logs()
    t0 = time.perf_counter()
    resume = (f"python -m launch sweep {args.sweep} --budget {args.budget} --storage "
              f"{args.storage} --name {name} --resume")  # fmt: skip
    try:
        tuner = module.build_tuner(
            budget=args.budget, storage=args.storage, name=name, resume=args.resume,
            max_concurrent_trials=args.max_concurrent, **overrides,
        )  # fmt: skip
        try:
            results = tuner.fit()
        except Exception:
            full = disk_full(exp)
            if full is None:
                raise
            print(f"error: {full}\nfree space there, then continue: {resume}", file=sys.stderr)
            return 1
        expected = module.total_trials(args.budget, **overrides)
        unfinished = max(expected - results.num_terminated - results.num_errors, 0)
        rows = results_table(results)
        # reported at least once (Tune fills in other keys for a trial that never reported)
        with_results = sum(1 for r in results if "training_iteration" in (r.metrics or {}))
        print()
        print_table(rows)
        if hasattr(module, "report"):
            module.report(results, exp)
        # Tune reads a failed trial's error from the storage: not there when the disk is full
        failed = max(sum(1 for r in results if r.error is not None), results.num_errors)
    finally:
        stop_ray(started)
    elapsed = (time.perf_counter() - t0) / 60
    print(f"\n{with_results} trials with results, {failed} failed, in {elapsed:.1f} min")
    print(f"results: {exp}")
    print(f"tensorboard --logdir {exp}")
    if (exp / "optuna_study.json").is_file():
        print(f"python -m launch dashboard {exp}   # the Optuna study")
    full = disk_full(exp) if failed or unfinished else None
    if full is not None:
        print(f"error: {full}\nfree space there, then continue: {resume}", file=sys.stderr)
        return 1
    if unfinished:
        print(f"{unfinished} trials unfinished: resume with {resume}", file=sys.stderr)
        return 130
    return 1 if failed else 0
