"""``python -m launch static``: evaluate static splits (and baselines) with the batched evaluator.

Examples::

    python -m launch static --split 0.3,0.4 --episodes 100 --seed 0 --json
    python -m launch static --grid 0.1 --episodes 100 --out results/static   # the paper's grid

``--json`` prints one object for one split, or a list (grid splits, then the heuristic and
queue-aware baselines unless ``--no-baselines``). Keys: w_b, w_c, episodes, sync_delay,
sync_delay_std, e2e_delay, e2e_delay_std, served_pct, served_pct_std, episode_return,
episode_return_std, plus policy, kind and the other metrics. Without ``--json``: a table.
Expect, on the paper preset, (0.3, 0.4): sync delay ~14.5, E2E ~6.5, served ~89 %.
"""

from __future__ import annotations

import argparse
import time

from envs.core.metrics import CLI_KEYS
from launch.cli import UsageError
from launch.common import (
    add_episode_arguments,
    add_scenario_arguments,
    check_out_dir,
    finite_float,
    fmt_pm,
    print_json,
    progress_bar,
    scenario_from_args,
    split_pair,
)

HELP = "evaluate static splits / the exhaustive static grid (batched, common random numbers)"


def add_arguments(p: argparse.ArgumentParser) -> None:
    what = p.add_mutually_exclusive_group(required=True)
    what.add_argument("--split", type=split_pair, action="append", metavar="W_B,W_C",
                      help="a static split, e.g. 0.3,0.4 (repeatable)")  # fmt: skip
    what.add_argument(
        "--grid",
        type=finite_float,
        metavar="STEP",
        help="every split on the grid 0..1 with this step (0.1: the paper's 11x11)",
    )
    add_episode_arguments(p)
    p.add_argument("--no-baselines", action="store_true",
                   help="with --grid: leave out the heuristic and queue-aware rows")  # fmt: skip
    p.add_argument("--out", metavar="DIR", help="also write a result set (run.json, ...) to DIR")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    add_scenario_arguments(p)


def run(args: argparse.Namespace) -> int:
    check_out_dir(args.out)
    from analysis.resultset import run_metadata, write_result_set
    from envs.core.batch import evaluate
    from envs.core.policies import heuristic, queue_aware, static, static_grid

    params = scenario_from_args(args)
    if args.grid is not None:
        policies = static_grid(args.grid)
        if not args.no_baselines:
            policies += [heuristic(params), queue_aware()]
    else:
        if args.no_baselines:
            raise UsageError("--no-baselines goes with --grid")
        policies = [static(b, c) for b, c in args.split]
    bar = progress_bar(len(policies) * args.episodes, "static", disable=False)
    t0 = time.perf_counter()
    result = evaluate(params, policies, args.episodes, args.seed,
                      progress=lambda done, _total: bar.update(done - bar.n))  # fmt: skip
    bar.close()
    elapsed = time.perf_counter() - t0
    summaries = result.summaries(preset=args.preset)
    if args.out:
        meta = run_metadata(
            "static", params, preset=args.preset, seed=args.seed, episodes=args.episodes,
            grid_step=args.grid, elapsed_s=round(elapsed, 3),
        )  # fmt: skip
        summaries = write_result_set(args.out, meta, result.episode_rows(preset=args.preset))
    if args.json:
        ordered = [{**{k: s.get(k) for k in CLI_KEYS}, **s} for s in summaries]
        print_json(ordered[0] if args.split and len(ordered) == 1 else ordered)
        return 0
    _print_table(summaries)
    steps = len(policies) * args.episodes * params.scenario.episode_steps
    print(f"\n{len(policies)} policies x {args.episodes} episodes ({steps:,} env steps) "
          f"in {elapsed:.2f} s")  # fmt: skip
    if args.out:
        print(f"results written to {args.out}")
    return 0


def _print_table(summaries: list[dict[str, object]]) -> None:
    head = f"{'policy':<26} {'sync delay':>14} {'E2E delay':>14} {'served %':>15} {'return':>18}"
    print(head)
    print("-" * len(head))
    for s in summaries:
        cols = [
            fmt_pm(s["sync_delay"], s["sync_delay_std"]),  # type: ignore[arg-type]
            fmt_pm(s["e2e_delay"], s["e2e_delay_std"]),  # type: ignore[arg-type]
            fmt_pm(s["served_pct"], s["served_pct_std"]),  # type: ignore[arg-type]
            fmt_pm(s["episode_return"], s["episode_return_std"], 1),  # type: ignore[arg-type]
        ]
        print(f"{s['policy']!s:<26} {cols[0]:>14} {cols[1]:>14} {cols[2]:>15} {cols[3]:>18}")
