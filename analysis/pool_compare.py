"""The credit-pool comparison: cooperative (credit pool) vs non-cooperative cells on the same seeds.

:func:`run_comparison` (the command is ``python -m launch pool-compare``) evaluates every variant
on episode seeds ``seed .. seed+episodes-1`` (common random numbers):

* ``noncoop``: the pool off; each cell keeps its best static split, found by coordinate search
  on a grid over tuning seeds disjoint from the evaluation seeds (:class:`SplitSearch`; on more
  than seven cells by hill climbing over classes of cells, ``docs/model/city.md``);
* ``greedy``: the pool on; the greedy cooperative rule (``envs.core.pool.rules.GreedyRule``)
  sets the share actions, the splits are searched the same way with the rule active;
* ``greedy_same_split``: the pool on, the rule, but the non-cooperative splits (isolates what the
  pool alone adds);
* with a trained policy: ``ppo`` (pool on) and ``ppo_pool_off`` (the same policy with the pool
  off: its share actions are ignored).

For every metric (overall, per cell and, with a surge, before / after it) :func:`compare` gives
the non-cooperative value, each cooperative value and the relative gain
``100 (coop - noncoop) / |noncoop|`` (for cost a positive gain means a higher cost), next to
CIVIC's reported ranges. Metric definitions: ``envs.core.pool.civic``.

:meth:`PoolComparison.write` writes a result set (:mod:`analysis.resultset`; ``policy``: the
variant, ``kind``: ``coop`` or ``noncoop``), ``comparison.csv`` / ``.json`` and ``trace.json`` (the
pool flows of the first episode of every variant), read back by :func:`load_pool_result`.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from analysis.resultset import (
    RUN_FILE,
    SUMMARY_FILE,
    aggregate_rows,
    run_metadata,
    write_csv,
    write_json,
    write_result_set,
)
from envs.core.params import EnvParams
from envs.core.pool.civic import (
    CELL_COMPARED_KEYS,
    COMPARED_KEYS,
    PHASE_COMPARED_KEYS,
    civic_range_text,
    flat_row,
)
from envs.core.pool.clearing import PoolParams
from envs.core.pool.rules import GreedyController, GreedyRule, evaluate_controller, rule_baselines
from envs.core.pool.sim import PoolSimulator

BASELINE = "noncoop"
COMPARISON_FILE, TRACE_FILE = "comparison.json", "trace.json"
Splits = tuple[tuple[float, float], ...]
Progress = Callable[[str], Callable[[int, int], None] | None]


@dataclass(frozen=True)
class SplitSearch:
    """The rules' split search: grid step, tuning episodes and first seed, objective."""

    grid: float
    episodes: int
    tune_seed: int
    objective: str
    strategy: str = "auto"  # envs.core.pool.rules.STRATEGIES: cells up to 7 cells, classes beyond


def _finite(v: Any) -> float | None:
    f = None if v is None else float(v)
    return f if f is not None and math.isfinite(f) else None


def summary_stats(metrics: dict[str, list[Any]]) -> dict[str, float | None]:
    """``{M: mean, M_std: sample std}`` over the finite values, in plain Python arithmetic (the
    comparison's numbers; numpy's pairwise sums differ in the last digit)."""
    out: dict[str, float | None] = {}
    for name, values in metrics.items():
        v = [f for f in map(_finite, values) if f is not None]
        m = sum(v) / len(v) if v else math.nan
        std = math.sqrt(sum((x - m) ** 2 for x in v) / (len(v) - 1)) if len(v) > 1 else 0.0
        out[name], out[f"{name}_std"] = (m, std) if v else (None, None)
    return out


def gain(coop: Any, base: Any) -> float | None:
    """Relative gain in % of ``coop`` over ``base`` (None if undefined)."""
    c, b = _finite(coop), _finite(base)
    if c is None or b is None or b == 0:
        return None
    return 100.0 * (c - b) / abs(b)


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


def fmt(mean: Any, std: Any = None, digits: int = 2) -> str:
    """``1,234.57`` or ``1,234.57 ± 8.90``; ``n/a`` when the mean is undefined."""
    m, s = _finite(mean), _finite(std)
    if m is None:
        return "n/a"
    return f"{m:,.{digits}f}" + ("" if s is None else f" ± {s:,.{digits}f}")


def comparison_table(comparison: list[dict[str, Any]], variants: list[str]) -> str:
    """The comparison as a text table (one column and one gain column per variant)."""
    head = f"{'metric':<20} {'scope':<8} {BASELINE:>12}"
    for v in variants:
        head += f" {v:>18} {'gain %':>8}"
    head += f"  {'CIVIC':<14}"
    lines = [head, "-" * len(head)]
    for row in comparison:
        line = f"{row['metric']:<20} {row['scope']:<8} {fmt(row[BASELINE]):>12}"
        for v in variants:
            line += f" {fmt(row[v]):>18} {fmt(row[f'{v}_gain_pct'], digits=1):>8}"
        lines.append(line + f"  {row['civic_range']:<14}")
    return "\n".join(lines)


def _splits_text(splits: Splits) -> str:
    return "  ".join(f"cell{i}=({b:g},{c:g})" for i, (b, c) in enumerate(splits))


@dataclass
class PoolComparison:
    """What :func:`run_comparison` measured."""

    meta: dict[str, Any]  # run.json
    rows: list[dict[str, Any]]  # one per variant and episode
    summaries: dict[str, dict[str, Any]]  # by variant
    comparison: list[dict[str, Any]]  # :func:`compare`
    traces: dict[str, dict[str, Any]]  # by variant: the pool flows of the first episode

    def document(self) -> dict[str, Any]:
        """``{"meta", "summary", "comparison"}`` (``launch pool-compare --json``)."""
        return {"meta": self.meta, "summary": self.summaries, "comparison": self.comparison}

    def text(self) -> str:
        """The scenario, the rules' splits and the comparison table."""
        m, pool = self.meta, self.meta["pool"]
        return (
            f"scenario {m['preset']}: {m['n_cells']} cells, {m['episodes']} episodes from seed "
            f"{m['seed']}; endowment {pool['endowment']:g}, price {pool['price']:g}, backhaul "
            f"delay {pool['backhaul_delay']}\n"
            f"non-cooperative splits: {_splits_text(m['splits']['noncoop'])}\n"
            f"greedy splits:          {_splits_text(m['splits']['greedy'])}\n\n"
            + comparison_table(self.comparison, [v for v in self.summaries if v != BASELINE])
        )

    def write(self, out_dir: str | Path) -> None:
        """The result set, ``comparison.csv`` / ``comparison.json`` and ``trace.json``."""
        out = Path(out_dir)
        write_result_set(out, self.meta, self.rows, stats=summary_stats)
        write_json(out / COMPARISON_FILE, self.comparison)
        fields = list(self.comparison[0]) if self.comparison else []
        write_csv((out / COMPARISON_FILE).with_suffix(".csv"), self.comparison, fields)
        (out / TRACE_FILE).write_text(json.dumps(self.traces) + "\n")


def run_comparison(
    params: EnvParams,
    pool: PoolParams,
    rule: GreedyRule,
    episodes: int,
    seed: int,
    search: SplitSearch,
    preset: str,
    noncoop_splits: Splits | None = None,
    greedy_splits: Splits | None = None,
    policy: Any = None,
    say: Callable[[str], None] = lambda _msg: None,
    progress: Progress | None = None,
    search_progress: Progress | None = None,
) -> PoolComparison:
    """Search the rules' splits not given, evaluate every variant (``policy``: a trained pool
    controller, e.g. ``tune_configs.pool_export.load_any_pool_controller``'s) and compare."""
    t0 = time.perf_counter()
    if noncoop_splits is None or greedy_splits is None:
        say("searching the static splits of the rules ...")
    rules, splits = rule_baselines(
        params, pool, search.episodes, search.tune_seed, search.grid, search.objective, rule,
        noncoop_splits, greedy_splits, progress=search_progress, strategy=search.strategy,
    )  # fmt: skip
    variants: list[tuple[str, Any, PoolParams]] = [
        *rules,
        ("greedy_same_split",
         GreedyController(splits["noncoop"], rule, label="greedy_same_split"), pool),
    ]  # fmt: skip
    if policy is not None:
        off = pool.replace(cooperative=False)
        variants += [("ppo", policy, pool), ("ppo_pool_off", policy, off)]
    rows: list[dict[str, Any]] = []
    for name, ctrl, pp in variants:
        say(f"evaluating {name} ({episodes} episodes) ...")
        bar = progress(name) if progress is not None else None
        for m in evaluate_controller(params, pp, ctrl, episodes, seed, progress=bar):
            rows.append({"policy": name, "kind": "coop" if pp.cooperative else "noncoop",
                         "w_b": None, "w_c": None, "delta": params.reward.delta,
                         "penalty": params.reward.penalty, "preset": preset, "seed": m["seed"],
                         **flat_row(m)})  # fmt: skip
    summaries = {s["policy"]: s for s in aggregate_rows(rows, stats=summary_stats)}
    n_cells = params.scenario.n_cells
    traces = {}
    for name, ctrl, pp in variants:
        ps = PoolSimulator(params, pp, trace=True)
        ps.reset(seed)
        ctrl.reset(ps)
        while not ps.done:
            ps.step(*ctrl.act(ps))
        traces[name] = {k: v.tolist() for k, v in ps.trace_arrays().items()}
    info = policy.info if policy is not None else {}
    meta = run_metadata(
        "pool-compare", params, preset=preset, seed=seed, episodes=episodes,
        pool=pool.to_dict(), rule=asdict(rule), splits=splits, search=asdict(search),
        checkpoint=str(policy.checkpoint) if policy is not None else None,
        policy_controller=info.get("controller", "per-cell") if policy is not None else None,
        policy_manifest=info.get("manifest"), variants=[name for name, _, _ in variants],
        n_cells=n_cells, surge_step=params.scenario.surge_step,
        elapsed_s=round(time.perf_counter() - t0, 2),
    )  # fmt: skip
    return PoolComparison(meta, rows, summaries, compare(summaries, n_cells), traces)


def load_pool_result(result_dir: str | Path) -> dict[str, Any]:
    """``run.json``, ``summary.json`` (by variant), ``comparison.json``, ``trace.json`` of a run."""
    d = Path(result_dir)
    needed = (RUN_FILE, SUMMARY_FILE, COMPARISON_FILE, TRACE_FILE)
    missing = [f for f in needed if not (d / f).is_file()]
    if missing:
        raise FileNotFoundError(
            f"{d} is not a pool-compare result (missing {', '.join(missing)}); "
            "create one with `python -m launch pool-compare ... --out DIR`"
        )
    summary = json.loads((d / SUMMARY_FILE).read_text())
    return {
        "meta": json.loads((d / RUN_FILE).read_text()),
        "summary": {row["policy"]: row for row in summary},
        "comparison": json.loads((d / COMPARISON_FILE).read_text()),
        "trace": json.loads((d / TRACE_FILE).read_text()),
    }
