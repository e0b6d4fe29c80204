"""``python -m launch report DIR``: collect every result under DIR and write DIR/report.md.

Examples::

    python -m launch static --grid 0.1 --episodes 100 --out results/static
    python -m launch report results           # -> results/report.md

What the report holds and how it is built: :mod:`analysis.report`. A static grid of 0.1 x 100
episodes plus a few trained policies reports in 15-60 s (depending on the machine's load), most of
it drawing. A directory without results is a usage error (exit 2).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from launch.cli import UsageError
from launch.common import finite_float, positive_int

HELP = "collect a results directory and write DIR/report.md (figures, Table I, Pareto fronts)"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("dir", metavar="DIR", help="results directory, searched recursively")
    p.add_argument(
        "--z",
        type=finite_float,
        default=None,
        help="noise multiplier of the claims check (default 1.96)",
    )
    p.add_argument(
        "--bootstrap-reps",
        type=positive_int,
        default=None,
        help="bootstrap replications of the intervals over training runs (default 2000; "
        "fewer for a quick look)",
    )
    p.add_argument(
        "--format",
        choices=("csv", "parquet"),
        default="csv",
        help="format of DIR/results and DIR/curves (default csv)",
    )


def run(args: argparse.Namespace) -> int:
    from analysis.placement import DEFAULT_Z
    from analysis.report import write_report

    root = Path(args.dir)
    if not root.is_dir():
        raise UsageError(f"not a directory: {root}")
    z = DEFAULT_Z if args.z is None else float(args.z)
    if not z > 0:
        raise UsageError(f"--z must be > 0, got {z}")
    t0 = time.perf_counter()
    reps = {} if args.bootstrap_reps is None else {"reps": args.bootstrap_reps}
    path = write_report(root, z=z, fmt=args.format, **reps)
    print(f"report: {path} ({time.perf_counter() - t0:.1f} s)")
    return 0
