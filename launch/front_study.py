"""``python -m launch front-study``: the searched front against the grid (multi-objective search).

Examples::

    python -m launch front-study --out results/front-study            # everything (hours)
    python -m launch front-study --out results/front-study --parts static   # minutes
    python -m launch front-study --out results/front-study --analyze-only
    python -m launch report results/front-study     # its studies and hypervolume-vs-trials curve

Runs :mod:`tune_configs.studies.searched_front`: ``optuna-static`` with sampler seeds
``--seeds`` (``--trials`` evaluations each) against the 121-split grid; ``paper-grid`` over the
21 paper reward settings x ``--grid-seeds`` (63 PPO trials of ``--timesteps``); ``optuna-reward``
with sampler seeds ``--seeds`` (``--trials`` PPO trials each). Every part is a sweep experiment
under ``--out``; a rerun continues where it stopped (finished parts kept, the interrupted one
resumed). Then writes ``OUT/front_study.json`` and ``OUT/front_study.png``: hypervolume of the
searched front relative to the whole grid's after 10, 20, 40 and 63 trials (``--counts``),
intervals over sampler seeds (docs/studies/searched-front.md). Measured on a 2-core machine
shared with other work: a 60k-step PPO trial takes about 9-20 s with two at once.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from launch.cli import UsageError
from launch.common import positive_int

HELP = "searched-front study: Optuna's multi-objective search against the grids"


def _ints(text: str) -> list[int]:
    try:
        values = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected integers like 0,1,2, got {text!r}") from None
    if not values or min(values) < 0:
        raise argparse.ArgumentTypeError(f"expected non-negative integers, got {text!r}")
    return values


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--out", required=True, metavar="DIR", help="study directory")
    p.add_argument(
        "--seeds",
        type=_ints,
        default=[0, 1, 2, 3, 4],
        metavar="K,...",
        help="sampler seeds of the searches (default 0,1,2,3,4)",
    )
    p.add_argument("--trials", type=positive_int, default=63, help="trials per search (default 63)")
    p.add_argument(
        "--timesteps",
        type=positive_int,
        default=60_000,
        help="env steps per PPO trial (default 60000)",
    )
    p.add_argument(
        "--grid-seeds",
        type=_ints,
        default=[0, 1, 2],
        metavar="S,...",
        help="training seeds of the reward grid (default 0,1,2: 63 trials)",
    )
    p.add_argument(
        "--counts",
        type=_ints,
        default=[10, 20, 40, 63],
        metavar="N,...",
        help="trial counts to compare at (default 10,20,40,63)",
    )
    p.add_argument(
        "--parts",
        default="static,grid,search",
        metavar="P,...",
        help="parts to run: static, grid, search (default all, in that order)",
    )
    p.add_argument(
        "--max-concurrent",
        type=positive_int,
        default=2,
        metavar="N",
        help="trials at once (default 2)",
    )
    p.add_argument("--analyze-only", action="store_true", help="only (re)write the analysis")


def run(args: argparse.Namespace) -> int:
    from tune_configs.studies import searched_front as study

    parts = [x.strip() for x in args.parts.split(",") if x.strip()]
    bad = sorted(set(parts) - set(study.PARTS))
    if bad or not parts:
        raise UsageError(f"--parts: unknown {bad}; choose from {', '.join(study.PARTS)}")
    if min(args.counts) < 1:
        raise UsageError("--counts must be >= 1")
    if args.analyze_only and not Path(args.out).is_dir():
        raise UsageError(f"--analyze-only: no study directory {args.out}")
    if not args.analyze_only:
        study.run(
            args.out,
            args.seeds,
            args.trials,
            args.timesteps,
            args.grid_seeds,
            parts,
            args.max_concurrent,
        )
    result = study.analyze(args.out, args.counts)
    for part in ("static", "reward"):
        if part not in result:
            continue
        for n, row in result[part]["at"].items():
            s2, s3 = row["search_2d"], row["search_3d"]
            g2 = row.get("grid_2d", {}).get("mean")
            print(
                f"{part:6s} n={int(n):3d}: search/grid hypervolume 2-D "
                f"{s2.get('mean', float('nan')):.3f} [{s2.get('min', float('nan')):.3f}, "
                f"{s2.get('max', float('nan')):.3f}] over {s2['n']} seeds, 3-D "
                f"{s3.get('mean', float('nan')):.3f}; grid with n trials 2-D "
                f"{'n/a' if g2 is None else format(g2, '.3f')}"
            )
    print(f"written: {args.out}/{study.RESULT_FILE}, {args.out}/{study.FIGURE_FILE}")
    return 0
