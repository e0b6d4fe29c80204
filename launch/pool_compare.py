"""``python -m launch pool-compare``: cooperative (credit pool) vs non-cooperative cells.

Examples::

    python -m launch pool-compare --scenario three_cell_hetero --episodes 100 --seed 0
    python -m launch pool-compare --scenario surge --episodes 100 --seed 0 --endowment 1000 \\
        --checkpoint results/pool_ppo/checkpoint --out results/pool-surge --json

What runs and what ``--out DIR`` writes: :mod:`analysis.pool_compare`. ``--json`` prints
``{"meta", "summary", "comparison"}``. Runtime on three cells: about 30 s of split search plus
about 1 s per 100 episodes and variant; on the cities (``--scenario city_49 --episodes 100``)
about 30 s in all with a load of about 1 on 2 cores (``docs/model/city.md#rules-on-the-cities``).
"""

from __future__ import annotations

import argparse
import sys
import time
from typing import Any

from launch.cli import UsageError
from launch.common import (
    add_episode_arguments,
    add_set_argument,
    check_out_dir,
    episode_count,
    finite_float,
    nonneg_int,
    print_json,
    split_pair,
)

HELP = "cooperative (credit pool) vs non-cooperative cells on the same seeds (CIVIC metrics)"


def _splits_arg(text: str) -> tuple[tuple[float, float], ...]:
    """``"0.3,0.6;0.5,0.4;0.5,0.3"`` -> one (w_b, w_c) per cell."""
    return tuple(split_pair(part) for part in text.split(";"))


def _rule_arg(text: str) -> tuple[float, ...]:
    vals = tuple(finite_float(v.strip()) for v in text.split(","))
    if len(vals) not in (3, 5):
        raise argparse.ArgumentTypeError(f"expected LOW,HIGH,OFFER_MAX[,GAIN,MAX], got {text!r}")
    return vals


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--scenario", default="three_cell_hetero",
                   help="multi-cell preset: three_cell, three_cell_hetero, surge, seven_cell, "
                   "seven_cell_hetero, city_19, city_49 (default three_cell_hetero); a city "
                   "takes --set city_rings=3 etc. (docs/model/city.md)")  # fmt: skip
    add_episode_arguments(p, "evaluation episodes")
    p.add_argument("--checkpoint", metavar="CKPT",
                   help="trained pool policy: a per-cell or central checkpoint (launch train, "
                   "the pool sweep) or a shipped policy directory "
                   "(models/pool/<scenario>)")  # fmt: skip
    p.add_argument("--out", metavar="DIR", help="write run.json, episodes.csv, summary.json, "
                   "comparison.csv/json, trace.json to DIR")  # fmt: skip
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    g = p.add_argument_group("pool (envs.core.pool.clearing.PoolParams)")
    g.add_argument("--endowment", type=finite_float, help="credits per cell at reset (1000)")
    g.add_argument("--price", type=finite_float, help="credits per unit (1)")
    g.add_argument("--scarcity-slope", type=finite_float, help="scarcity price slope (0: fixed)")
    g.add_argument("--backhaul-delay", type=nonneg_int, help="steps until lent units count (1)")
    g.add_argument("--backhaul-cost", type=finite_float, help="cost per unit moved (1)")
    g.add_argument("--compute-cost", type=finite_float, help="cost per compute unit used (1)")
    g.add_argument("--served-threshold", type=finite_float,
                   help="a UE is served if its fulfillment rate >= this (0.5)")  # fmt: skip
    b = p.add_argument_group("baselines")
    b.add_argument("--splits", type=_splits_arg, metavar="B,C;B,C;...",
                   help="fixed non-cooperative splits per cell (skips the search)")  # fmt: skip
    b.add_argument("--greedy-splits", type=_splits_arg, metavar="B,C;B,C;...",
                   help="fixed splits of the greedy rule (skips its search)")  # fmt: skip
    b.add_argument("--rule", type=_rule_arg, metavar="LOW,HIGH,OFFER_MAX[,GAIN,MAX]",
                   help="greedy rule thresholds (default 0.2,0.5,0.3,1,1)")  # fmt: skip
    b.add_argument("--grid", type=finite_float, default=0.1, help="split grid step (0.1)")
    b.add_argument("--tune-episodes", type=episode_count, default=10,
                   help="episodes per candidate split in the search (10)")  # fmt: skip
    b.add_argument("--tune-seed", type=nonneg_int,
                   help="first tuning seed (default 1000000, disjoint from the evaluation "
                   "seeds)")  # fmt: skip
    b.add_argument("--search", default="auto", choices=("auto", "cells", "classes"),
                   help="split search: coordinate search over cells, or hill climbing over "
                   "classes of cells (equal capacity and sensors); auto: cells up to 7 cells, "
                   "classes beyond (docs/model/city.md)")  # fmt: skip
    b.add_argument("--objective", default="fulfillment_pct",
                   choices=("fulfillment_pct", "completion_pct", "episode_return"),
                   help="what the split search maximises")  # fmt: skip
    add_set_argument(p, "override a scenario parameter (repeatable)")


def _progress(desc: str, quiet: bool) -> Any:
    last = [0.0]

    def report(done: int, total: int) -> None:
        now = time.perf_counter()
        if quiet or (now - last[0] < 2.0 and done < total):
            return
        last[0] = now
        print(f"  {desc}: {done}/{total}", file=sys.stderr, flush=True)

    return report


def run(args: argparse.Namespace) -> int:
    check_out_dir(args.out)
    from analysis.pool_compare import SplitSearch, run_comparison
    from envs.core.pool.clearing import PoolParams
    from envs.core.pool.rules import TUNE_SEED_OFFSET, GreedyRule
    from envs.core.pool.scenarios import SCENARIOS
    from envs.core.presets import PRESETS, make_params

    if args.scenario not in PRESETS:
        raise UsageError(f"unknown scenario {args.scenario!r}; multi-cell: {', '.join(SCENARIOS)}")
    params = make_params(args.scenario, **dict(args.overrides))
    n_cells = params.scenario.n_cells
    if n_cells < 2:
        several = ", ".join(SCENARIOS)
        raise UsageError(
            f"scenario {args.scenario!r} has one cell; the pool needs several ({several})"
        )
    pool_fields = {
        "endowment": args.endowment, "price": args.price, "scarcity_slope": args.scarcity_slope,
        "backhaul_delay": args.backhaul_delay, "backhaul_cost": args.backhaul_cost,
        "compute_cost": args.compute_cost, "served_threshold": args.served_threshold,
    }  # fmt: skip
    pool = PoolParams().replace(**{k: v for k, v in pool_fields.items() if v is not None})
    rule = GreedyRule(*args.rule) if args.rule else GreedyRule()
    for name, fixed in (("--splits", args.splits), ("--greedy-splits", args.greedy_splits)):
        if fixed is not None and len(fixed) != n_cells:
            raise UsageError(f"{name} gives {len(fixed)} splits for {n_cells} cells")
    tune_seed = TUNE_SEED_OFFSET if args.tune_seed is None else args.tune_seed
    if tune_seed < args.seed + args.episodes and args.seed < tune_seed + args.tune_episodes:
        raise UsageError("tuning seeds overlap the evaluation seeds; choose another --tune-seed")
    policy = None
    if args.checkpoint:
        from tune_configs.controllers import load_any_pool_controller

        try:
            policy = load_any_pool_controller(args.checkpoint)
        except (ValueError, OSError) as exc:
            raise UsageError(str(exc)) from None
        problem = policy.cells_problem(n_cells)  # before the rules' searches, not after
        if problem is not None:
            raise UsageError(
                f"policy {args.checkpoint} cannot act on {args.scenario} ({n_cells} cells): "
                f"{problem}"
            )
    result = run_comparison(
        params, pool, rule, args.episodes, args.seed,
        SplitSearch(args.grid, args.tune_episodes, tune_seed, args.objective, args.search),
        args.scenario,
        args.splits, args.greedy_splits, policy,
        say=lambda msg: print(msg, file=sys.stderr, flush=True),
        progress=lambda name: _progress(name, args.json),
        search_progress=lambda label: _progress(label, False),
    )  # fmt: skip
    if args.out:
        result.write(args.out)
    if args.json:
        print_json(result.document())
        return 0
    print("\n" + result.text())
    elapsed = result.meta["elapsed_s"]
    print(f"\n{elapsed:.1f} s" + (f"; results written to {args.out}" if args.out else ""))
    return 0
