"""``python -m launch pool-compare``: cooperative (credit pool) vs non-cooperative cells.

Examples::

    python -m launch pool-compare --scenario three_cell_hetero --episodes 100 --seed 0
    python -m launch pool-compare --scenario surge --episodes 100 --seed 0 --endowment 1000 \\
        --checkpoint results/pool_ppo/checkpoint --out results/pool-surge --json

What runs, every variant on episode seeds ``seed .. seed+episodes-1`` (common random numbers):

* ``noncoop``: the pool off; each cell keeps its best static split, found by coordinate search
  on a grid (``--grid``) over tuning seeds ``--tune-seed ..`` (``--tune-episodes`` episodes;
  disjoint from the evaluation seeds), maximising ``--objective`` (default fulfillment);
* ``greedy``: the pool on; the greedy cooperative rule (``envs.core.pool.rules.GreedyRule``)
  sets the share actions, the splits are searched the same way with the rule active;
* ``greedy_same_split``: the pool on, the rule, but the non-cooperative splits (isolates what the
  pool alone adds);
* with ``--checkpoint``: ``ppo`` (the trained policy, pool on: a per-cell or central
  checkpoint, or an exported policy directory such as ``models/pool/three_cell_hetero``) and
  ``ppo_pool_off`` (the same policy with the pool off: its share actions are ignored).

For every metric (overall, per cell and, with a surge, before / after it) the table shows the
non-cooperative value, each cooperative value and the relative gain
``100 (coop - noncoop) / |noncoop|`` (for cost a positive gain means a higher cost), next to
CIVIC's reported ranges (completion +12-36 %, fulfillment +23-70 %, served clients +20-60 %,
fairness up to +51 %). Metric definitions: ``envs.core.pool.civic``.

``--json`` prints ``{"meta", "splits", "summary", "comparison"}``; ``--out DIR`` writes
``run.json``, ``episodes.csv`` (one row per variant and episode, every metric flat),
``summary.json`` (mean and std per variant), ``comparison.csv`` / ``comparison.json`` and
``trace.json`` (per-step pool flows of the first episode of every variant, for
``analysis.pool_figures``). Runtime on three cells: about 30 s of split search plus about 1 s per
100 episodes and variant.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import sys
import time
from pathlib import Path
from typing import Any

from envs.core.pool.civic import (
    CELL_COMPARED_KEYS,
    COMPARED_KEYS,
    PHASE_COMPARED_KEYS,
    civic_range_text,
)
from launch.cli import UsageError
from launch.common import finite_float, key_value, nonneg_int, positive_int, print_json

HELP = "cooperative (credit pool) vs non-cooperative cells on the same seeds (CIVIC metrics)"

BASELINE = "noncoop"


def _splits_arg(text: str) -> tuple[tuple[float, float], ...]:
    """``"0.3,0.6;0.5,0.4;0.5,0.3"`` -> one (w_b, w_c) per cell."""
    out = []
    for part in text.split(";"):
        vals = part.split(",")
        if len(vals) != 2:
            raise argparse.ArgumentTypeError(f"expected W_B,W_C;W_B,W_C;... got {text!r}")
        b, c = (finite_float(v.strip()) for v in vals)
        if not (0 <= b <= 1 and 0 <= c <= 1):
            raise argparse.ArgumentTypeError(f"shares must lie in [0, 1], got {part!r}")
        out.append((b, c))
    return tuple(out)


def _rule_arg(text: str) -> tuple[float, ...]:
    vals = tuple(finite_float(v.strip()) for v in text.split(","))
    if len(vals) not in (3, 5):
        raise argparse.ArgumentTypeError(
            f"expected LOW,HIGH,OFFER_MAX[,ASK_GAIN,ASK_MAX], got {text!r}"
        )
    return vals


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--scenario", default="three_cell_hetero",
                   help="multi-cell preset: three_cell, three_cell_hetero, surge, seven_cell, "
                   "seven_cell_hetero (default three_cell_hetero)")  # fmt: skip
    p.add_argument("--episodes", type=positive_int, default=100, help="evaluation episodes")
    p.add_argument("--seed", type=nonneg_int, default=0, help="episode seeds seed..seed+N-1")
    p.add_argument(
        "--checkpoint",
        metavar="CKPT",
        help="trained pool policy: a per-cell or central checkpoint (launch train, the pool "
        "sweep) or a shipped policy directory (models/pool/<scenario>)",
    )
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
    b.add_argument(
        "--splits",
        type=_splits_arg,
        metavar="B,C;B,C;...",
        help="fixed non-cooperative splits per cell (skips the search)",
    )
    b.add_argument(
        "--greedy-splits",
        type=_splits_arg,
        metavar="B,C;B,C;...",
        help="fixed splits of the greedy rule (skips its search)",
    )
    b.add_argument(
        "--rule",
        type=_rule_arg,
        metavar="LOW,HIGH,OFFER_MAX[,GAIN,MAX]",
        help="greedy rule thresholds (default 0.1,0.2,0.3,1,1)",
    )
    b.add_argument("--grid", type=finite_float, default=0.1, help="split grid step (0.1)")
    b.add_argument(
        "--tune-episodes",
        type=positive_int,
        default=10,
        help="episodes per candidate split in the search (10)",
    )
    b.add_argument(
        "--tune-seed",
        type=nonneg_int,
        default=None,
        help="first tuning seed (default 1000000, disjoint from evaluation seeds)",
    )
    b.add_argument("--objective", default="fulfillment_pct",
                   choices=("fulfillment_pct", "completion_pct", "episode_return"),
                   help="what the split search maximises")  # fmt: skip
    p.add_argument(
        "--set",
        dest="overrides",
        action="append",
        type=key_value,
        default=[],
        metavar="NAME=VALUE",
        help="override a scenario parameter (repeatable)",
    )


# ------------------------------------------------------------------------------------------------
def _mean_std(values: list[Any]) -> tuple[float | None, float | None]:
    v = [float(x) for x in values if x is not None and math.isfinite(float(x))]
    if not v:
        return None, None
    m = sum(v) / len(v)
    if len(v) == 1:
        return m, 0.0
    return m, math.sqrt(sum((x - m) ** 2 for x in v) / (len(v) - 1))


def summarize_rows(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Mean and std (``_std``) over episodes of every numeric column of flat episode rows."""
    out: dict[str, Any] = {"episodes": len(rows)}
    keys = [k for k in rows[0] if k not in ("variant", "mode", "seed")]
    for k in keys:
        mean, std = _mean_std([r.get(k) for r in rows])
        out[k] = mean
        out[f"{k}_std"] = std
    return out


def gain(coop: float | None, base: float | None) -> float | None:
    """Relative gain in % of ``coop`` over ``base`` (None if undefined)."""
    if coop is None or base is None or base == 0:
        return None
    return 100.0 * (coop - base) / abs(base)


def compare(summaries: dict[str, dict[str, Any]], n_cells: int) -> list[dict[str, Any]]:
    """Rows ``metric, scope, noncoop, <variant>, <variant>_gain_pct, ..., civic_range``."""
    base = summaries[BASELINE]
    variants = [v for v in summaries if v != BASELINE]
    keys: list[tuple[str, str, str]] = [(k, "overall", k) for k in COMPARED_KEYS]
    for c in range(n_cells):
        keys += [(k, f"cell{c}", f"cell{c}_{k}") for k in CELL_COMPARED_KEYS]
    for phase in ("before", "after"):
        if f"{phase}_fulfillment_pct" in base:
            keys += [(k, phase, f"{phase}_{k}") for k in PHASE_COMPARED_KEYS]
    rows = []
    for metric, scope, col in keys:
        if col not in base:
            continue
        row: dict[str, Any] = {"metric": metric, "scope": scope, BASELINE: base.get(col)}
        for v in variants:
            row[v] = summaries[v].get(col)
            row[f"{v}_gain_pct"] = gain(summaries[v].get(col), base.get(col))
        row["civic_range"] = civic_range_text(metric) if scope == "overall" else ""
        rows.append(row)
    return rows


def _fmt(x: Any, digits: int = 2) -> str:
    if x is None:
        return "n/a"
    return f"{float(x):,.{digits}f}"


def print_table(comparison: list[dict[str, Any]], variants: list[str]) -> None:
    head = f"{'metric':<20} {'scope':<8} {BASELINE:>12}"
    for v in variants:
        head += f" {v:>18} {'gain %':>8}"
    head += f"  {'CIVIC':<14}"
    print(head)
    print("-" * len(head))
    for row in comparison:
        line = f"{row['metric']:<20} {row['scope']:<8} {_fmt(row[BASELINE]):>12}"
        for v in variants:
            line += f" {_fmt(row[v]):>18} {_fmt(row[f'{v}_gain_pct'], 1):>8}"
        line += f"  {row['civic_range']:<14}"
        print(line)


# ------------------------------------------------------------------------------------------------
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
    from envs.core.pool.civic import flat_row
    from envs.core.pool.clearing import PoolParams
    from envs.core.pool.rules import (
        TUNE_SEED_OFFSET,
        GreedyController,
        GreedyRule,
        evaluate_controller,
        rule_baselines,
    )
    from envs.core.pool.scenarios import SCENARIOS
    from envs.core.pool.sim import PoolSimulator
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
    off = pool.replace(cooperative=False)
    rule = GreedyRule(*args.rule) if args.rule else GreedyRule()
    for name, fixed in (("--splits", args.splits), ("--greedy-splits", args.greedy_splits)):
        if fixed is not None and len(fixed) != n_cells:
            raise UsageError(f"{name} gives {len(fixed)} splits for {n_cells} cells")
    tune_seed = TUNE_SEED_OFFSET if args.tune_seed is None else args.tune_seed
    if tune_seed < args.seed + args.episodes and args.seed < tune_seed + args.tune_episodes:
        raise UsageError("tuning seeds overlap the evaluation seeds; choose another --tune-seed")
    controller_ppo = None
    if args.checkpoint:
        from tune_configs.controllers import load_any_pool_controller

        try:
            controller_ppo = load_any_pool_controller(args.checkpoint)
        except (ValueError, OSError) as exc:
            raise UsageError(str(exc)) from None
    quiet = args.json
    t0 = time.perf_counter()
    search = {"grid": args.grid, "episodes": args.tune_episodes, "tune_seed": tune_seed,
              "objective": args.objective}  # fmt: skip
    if args.splits is None or args.greedy_splits is None:
        print("searching the static splits of the rules ...", file=sys.stderr, flush=True)
    rules, splits = rule_baselines(
        params, pool, args.tune_episodes, tune_seed, args.grid, args.objective, rule,
        args.splits, args.greedy_splits, progress=lambda label: _progress(label, False),
    )  # fmt: skip
    noncoop_splits, greedy_splits = splits["noncoop"], splits["greedy"]
    variants: list[tuple[str, Any, PoolParams]] = [
        *rules,
        ("greedy_same_split", GreedyController(noncoop_splits, rule, label="greedy_same_split"),
         pool),
    ]  # fmt: skip
    if controller_ppo is not None:
        variants += [("ppo", controller_ppo, pool), ("ppo_pool_off", controller_ppo, off)]
    rows: list[dict[str, Any]] = []
    for name, ctrl, pp in variants:
        print(f"evaluating {name} ({args.episodes} episodes) ...", file=sys.stderr, flush=True)
        metrics = evaluate_controller(
            params, pp, ctrl, args.episodes, args.seed, progress=_progress(name, quiet)
        )
        for m in metrics:
            rows.append({"variant": name, "mode": "coop" if pp.cooperative else "noncoop",
                         "seed": m["seed"], **flat_row(m)})  # fmt: skip
    summaries = {
        name: summarize_rows([r for r in rows if r["variant"] == name]) for name, _, _ in variants
    }
    comparison = compare(summaries, n_cells)
    traces = {}
    for name, ctrl, pp in variants:
        ps = PoolSimulator(params, pp, trace=True)
        ps.reset(args.seed)
        ctrl.reset(ps)
        while not ps.done:
            split, share = ctrl.act(ps)
            ps.step(split, share)
        traces[name] = {k: v.tolist() for k, v in ps.trace_arrays().items()}
    elapsed = time.perf_counter() - t0
    from analysis.resultset import run_metadata

    meta = run_metadata(
        "pool-compare", params, preset=args.scenario, seed=args.seed, episodes=args.episodes,
        pool=pool.to_dict(), rule=_rule_dict(rule),
        splits={"noncoop": noncoop_splits, "greedy": greedy_splits}, search=search,
        checkpoint=str(controller_ppo.checkpoint) if controller_ppo is not None else None,
        policy_controller=(controller_ppo.info.get("controller", "per-cell")
                           if controller_ppo is not None else None),
        policy_manifest=(controller_ppo.info.get("manifest")
                         if controller_ppo is not None else None),
        variants=[name for name, _, _ in variants], n_cells=n_cells,
        surge_step=params.scenario.surge_step, elapsed_s=round(elapsed, 2),
    )  # fmt: skip
    if args.out:
        write_outputs(Path(args.out), meta, rows, summaries, comparison, traces)
    names = [name for name, _, _ in variants if name != BASELINE]
    if args.json:
        print_json({"meta": meta, "summary": summaries, "comparison": comparison})
        return 0
    print(f"\nscenario {args.scenario}: {n_cells} cells, {args.episodes} episodes from seed "
          f"{args.seed}; endowment {pool.endowment:g}, price {pool.price:g}, backhaul delay "
          f"{pool.backhaul_delay}")  # fmt: skip
    print(f"non-cooperative splits: {_splits_text(noncoop_splits)}")
    print(f"greedy splits:          {_splits_text(greedy_splits)}\n")
    print_table(comparison, names)
    print(f"\n{elapsed:.1f} s" + (f"; results written to {args.out}" if args.out else ""))
    return 0


def _rule_dict(rule: Any) -> dict[str, float]:
    from dataclasses import asdict

    return asdict(rule)


def _splits_text(splits: tuple[tuple[float, float], ...]) -> str:
    return "  ".join(f"cell{i}=({b:g},{c:g})" for i, (b, c) in enumerate(splits))


def write_outputs(
    out: Path,
    meta: dict[str, Any],
    rows: list[dict[str, Any]],
    summaries: dict[str, dict[str, Any]],
    comparison: list[dict[str, Any]],
    traces: dict[str, Any],
) -> None:
    """The result files of a comparison (see the module docstring)."""
    from analysis.resultset import write_json

    out.mkdir(parents=True, exist_ok=True)
    write_json(out / "run.json", meta)
    fields: list[str] = []
    for r in rows:
        fields += [k for k in r if k not in fields]
    with (out / "episodes.csv").open("w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=fields)
        w.writeheader()
        for r in rows:
            w.writerow({k: "" if r.get(k) is None else r.get(k) for k in fields})
    write_json(out / "summary.json", [{"variant": k, **v} for k, v in summaries.items()])
    write_json(out / "comparison.json", comparison)
    cfields = list(comparison[0]) if comparison else []
    with (out / "comparison.csv").open("w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=cfields)
        w.writeheader()
        for r in comparison:
            w.writerow({k: "" if r.get(k) is None else r.get(k) for k in cfields})
    (out / "trace.json").write_text(json.dumps(traces) + "\n")
