"""Figure and tables of the credit-pool study, from ``python -m launch pool-compare --out DIR``.

* :func:`pool_table` (one result directory -> markdown): the headline CIVIC metrics
  (completion, fulfillment, served clients, fairness, cost) of the non-cooperative baseline and of
  every cooperative variant, mean +- std over the episodes, the relative gain, and CIVIC's reported
  range; before / after rows for a surge scenario.
* :func:`pool_tables` (several labelled result directories -> one markdown table): one gain
  column per scenario, e.g. ``{"normal (three_cell_hetero)": dir1, "surge": dir2}``.
* :func:`pool_flow_figure` (result directory -> PNG): the pool over the first evaluation episode
  of one cooperative variant: units lent (up) and received (down) per cell and step, credit
  balances, MEC capacity in effect, and the BS compute backlog of each cell with and without the
  pool (dashed), with the surge step marked. Beyond :data:`CITY_CELLS` cells (a city) it draws
  :func:`city_flow_figure` instead.
* :func:`city_flow_figure`: which cells borrow and which lend, over the episode: a heat map of
  every cell's net trade (lent minus received) per step, the cells ordered by their distance from
  the city centre, beside a map of the city with each cell coloured by its net trade over the
  episode and the cells' backlog with and without the pool.

Run ``python -m analysis.pool_figures DIR [DIR ...]`` to print the tables and write
``DIR/pool_flows.png`` for each directory.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from analysis.plot_style import plt, save
from analysis.pool_compare import BASELINE, gain, load_pool_result
from analysis.pool_compare import fmt as _fmt
from envs.core.pool.civic import civic_range_text

HEADLINE: tuple[tuple[str, str], ...] = (
    ("completion_pct", "completion %"),
    ("fulfillment_pct", "fulfillment %"),
    ("served_clients", "served clients"),
    ("fairness", "fairness (Jain)"),
    ("operational_cost", "operational cost"),
    ("cost_per_fulfilled", "cost per fulfilled job"),
    ("backhaul_units", "backhaul units"),
)
PHASE_HEADLINE = HEADLINE[:4]  # completion, fulfillment, served clients, fairness
VARIANT_NAMES: dict[str, str] = {
    "noncoop": "non-cooperative (best static)",
    "greedy": "cooperative, greedy rule",
    "greedy_same_split": "cooperative, greedy rule, non-coop splits",
    "ppo": "cooperative, learned (PPO)",
    "ppo_pool_off": "learned (PPO), pool off",
}


def _gain(coop: Any, base: Any) -> str:
    g = gain(coop, base)
    return "n/a" if g is None else f"{g:+.1f} %"


def _digits(key: str) -> int:
    return 3 if key == "fairness" else (2 if key == "served_clients" else 1)


def pool_table(result_dir: str | Path) -> str:
    """Markdown table of one pool-compare result (see the module docstring)."""
    res = load_pool_result(result_dir)
    meta, summary = res["meta"], res["summary"]
    variants = [v for v in summary if v != BASELINE]
    base = summary[BASELINE]
    head = ["metric", VARIANT_NAMES[BASELINE]]
    for v in variants:
        head += [VARIANT_NAMES.get(v, v), "gain"]
    head.append("CIVIC (reported gain)")
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]

    def add_rows(prefix: str, keys: Sequence[tuple[str, str]], label_suffix: str) -> None:
        for key, label in keys:
            col = f"{prefix}{key}"
            if col not in base:
                continue
            d = _digits(key)
            cells = [f"{label}{label_suffix}", _fmt(base.get(col), base.get(f"{col}_std"), d)]
            for v in variants:
                s = summary[v]
                cells += [
                    _fmt(s.get(col), s.get(f"{col}_std"), d),
                    _gain(s.get(col), base.get(col)),
                ]
            cells.append(civic_range_text(key) if not prefix else "")
            lines.append("| " + " | ".join(cells) + " |")

    add_rows("", HEADLINE, "")
    for phase in ("before", "after"):
        add_rows(f"{phase}_", PHASE_HEADLINE, f", {phase} surge")
    pool = meta.get("pool", {})
    note = (
        f"\n*{meta.get('preset')}: {meta.get('episodes')} episodes from seed {meta.get('seed')} "
        f"(the same seeds for every column); endowment {pool.get('endowment')} credits, price "
        f"{pool.get('price')}, backhaul delay {pool.get('backhaul_delay')} step(s), cost = "
        f"{pool.get('compute_cost')} x compute units + {pool.get('backhaul_cost')} x backhaul "
        "units. Gain = (coop - non-coop) / non-coop.*"
    )
    return "\n".join(lines) + "\n" + note


def pool_tables(result_dirs: Mapping[str, str | Path], variant: str = "greedy") -> str:
    """One markdown table: per labelled result, non-coop, ``variant`` and the gain."""
    results = {label: load_pool_result(d) for label, d in result_dirs.items()}
    head = ["metric"]
    for label in results:
        head += [f"{label}: non-coop", f"{label}: coop", f"{label}: gain"]
    head.append("CIVIC (reported gain)")
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for key, label in HEADLINE[:5]:
        cells = [label]
        for res in results.values():
            base = res["summary"][BASELINE]
            coop = res["summary"].get(variant, {})
            d = _digits(key)
            cells += [_fmt(base.get(key), None, d), _fmt(coop.get(key), None, d),
                      _gain(coop.get(key), base.get(key))]  # fmt: skip
        cells.append(civic_range_text(key))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


CITY_CELLS = 7  # more cells than this: the city view of the flows


def _traces(res: dict[str, Any], variant: str | None) -> tuple[str, dict[str, Any], dict[str, Any]]:
    """``(variant, its trace, the non-cooperative trace)`` as arrays (steps, cells)."""
    traces = res["trace"]
    if variant is None:
        variant = "ppo" if "ppo" in traces else "greedy"
    if variant not in traces:
        raise ValueError(f"no trace of variant {variant!r}; have {sorted(traces)}")
    tr = {k: np.asarray(v, dtype=float) for k, v in traces[variant].items()}
    base = {k: np.asarray(v, dtype=float) for k, v in traces[BASELINE].items()}
    return variant, tr, base


def _title(meta: dict[str, Any], variant: str) -> str:
    pool = meta.get("pool", {})
    return (
        f"{meta.get('preset')}: {VARIANT_NAMES.get(variant, variant)}, episode seed "
        f"{meta.get('seed')} (endowment {pool.get('endowment')}, price {pool.get('price')})"
    )


def pool_flow_figure(
    result_dir: str | Path, out_png: str | Path, variant: str | None = None
) -> Path:
    """Pool flows of the first evaluation episode of ``variant`` (default: ppo, else greedy);
    the city view (:func:`city_flow_figure`) beyond :data:`CITY_CELLS` cells."""
    res = load_pool_result(result_dir)
    meta = res["meta"]
    variant, tr, base = _traces(res, variant)
    steps = np.arange(tr["balance"].shape[0])
    n_cells = tr["balance"].shape[1]
    if n_cells > CITY_CELLS:
        return _city_flows(meta, variant, tr, base, out_png)
    colors = plt.get_cmap("tab10")(np.arange(n_cells) % 10)
    fig, axes = plt.subplots(4, 1, figsize=(9, 10.5), sharex=True)
    ax = axes[0]
    width = 0.8 / n_cells
    for c in range(n_cells):
        x = steps + (c - (n_cells - 1) / 2) * width
        ax.bar(x, tr["units_lent"][:, c], width, color=colors[c], label=f"cell {c}")
        ax.bar(x, -tr["units_borrowed"][:, c], width, color=colors[c], alpha=0.55)
    ax.axhline(0.0, color="black", lw=0.6)
    ax.set_ylabel("units lent (+) /\nreceived (−)")
    ax.legend(ncol=min(n_cells, 7), fontsize=8, loc="upper right")
    ax = axes[1]
    for c in range(n_cells):
        ax.plot(steps, tr["balance"][:, c], color=colors[c])
    ax.set_ylabel("credit balance")
    ax = axes[2]
    for c in range(n_cells):
        ax.plot(steps, tr["capacity"][:, c], color=colors[c])
    ax.set_ylabel("MEC capacity\nin effect [units]")
    ax = axes[3]
    for c in range(n_cells):
        ax.plot(steps, tr["queue_ue"][:, c] + tr["queue_sensor"][:, c], color=colors[c])
        ax.plot(steps, base["queue_ue"][:, c] + base["queue_sensor"][:, c], color=colors[c],
                ls="--", lw=0.9)  # fmt: skip
    ax.set_ylabel("BS compute backlog [jobs]\n(dashed: pool off)")
    ax.set_xlabel("step")
    surge = meta.get("surge_step", -1)
    if isinstance(surge, int) and 0 < surge < len(steps):
        for a in axes:
            a.axvline(surge, color="red", ls=":", lw=1.0)
        axes[0].text(surge, axes[0].get_ylim()[1], " surge", color="red", va="top", fontsize=8)
    fig.suptitle(_title(meta, variant), fontsize=10)
    fig.tight_layout()
    return save(fig, out_png, dpi=120)


def city_flow_figure(
    result_dir: str | Path, out_png: str | Path, variant: str | None = None
) -> Path:
    """Which cells of a city borrow and which lend over the first evaluation episode of
    ``variant`` (default: ppo, else greedy); any number of cells (see the module docstring)."""
    res = load_pool_result(result_dir)
    variant, tr, base = _traces(res, variant)
    return _city_flows(res["meta"], variant, tr, base, out_png)


def _city_flows(
    meta: dict[str, Any],
    variant: str,
    tr: dict[str, Any],
    base: dict[str, Any],
    out_png: str | Path,
) -> Path:
    net = tr["units_lent"] - tr["units_borrowed"]  # (steps, cells): + lends, - receives
    scen = meta.get("params", {}).get("scenario", {})
    xy = np.asarray(scen.get("bs_positions") or [], dtype=float).reshape(-1, 2)
    if xy.shape[0] != net.shape[1]:  # no layout recorded: a row of cells
        xy = np.stack([np.arange(net.shape[1], dtype=float), np.zeros(net.shape[1])], axis=1)
    fig = plt.figure(figsize=(12, 8.5))
    grid = fig.add_gridspec(2, 2, width_ratios=(1.5, 1.0), height_ratios=(1.6, 1.0))
    _trade_heat_map(fig, fig.add_subplot(grid[0, 0]), net, xy)
    _trade_map(fig, fig.add_subplot(grid[0, 1]), net.sum(axis=0), xy)
    _city_backlogs(fig.add_subplot(grid[1, :]), tr, base, meta.get("surge_step", -1))
    fig.suptitle(_title(meta, variant), fontsize=10)
    fig.tight_layout()
    return save(fig, out_png, dpi=120)


def _diverging(values: Any) -> Any:
    """Red-white-blue norm centred on 0 for ``values`` (lent +, received -)."""
    from matplotlib.colors import TwoSlopeNorm

    lim = max(float(np.abs(values).max()), 1e-9)
    return TwoSlopeNorm(vmin=-lim, vcenter=0.0, vmax=lim)


def _trade_heat_map(fig: Any, ax: Any, net: Any, xy: Any) -> None:
    """Every cell's net trade per step, the cells in order of their distance from the centre."""
    n_steps, n_cells = net.shape
    order = np.argsort(np.hypot(*(xy - xy.mean(axis=0)).T), kind="stable")
    im = ax.imshow(net[:, order].T, aspect="auto", cmap="RdBu_r", norm=_diverging(net),
                   interpolation="nearest", origin="lower",
                   extent=(-0.5, n_steps - 0.5, -0.5, n_cells - 0.5))  # fmt: skip
    ticks = np.arange(n_cells) if n_cells <= 25 else np.arange(0, n_cells, 4)
    ax.set_yticks(ticks, [str(order[t]) for t in ticks], fontsize=7)
    ax.set_ylabel("cell (nearest the centre at the bottom)")
    ax.set_xlabel("step")
    ax.set_title("net trade per step: red lends, blue receives [units]", fontsize=9)
    fig.colorbar(im, ax=ax, fraction=0.04, pad=0.02)


def _trade_map(fig: Any, ax: Any, total: Any, xy: Any) -> None:
    """The city's hexagons coloured by each cell's net trade over the episode."""
    from matplotlib.cm import ScalarMappable
    from matplotlib.patches import RegularPolygon

    gaps = np.hypot(*(xy[:, None, :] - xy[None, :, :]).transpose(2, 0, 1))
    np.fill_diagonal(gaps, np.inf)
    radius = 0.55 * float(gaps.min()) if len(xy) > 1 else 1.0
    cmap, norm = plt.get_cmap("RdBu_r"), _diverging(total)
    for c, (x, y) in enumerate(xy):
        ax.add_patch(RegularPolygon((x, y), 6, radius=radius, facecolor=cmap(norm(total[c])),
                                    edgecolor="grey", lw=0.5))  # fmt: skip
        ax.annotate(str(c), (x, y), ha="center", va="center", fontsize=7)
    pad = radius * 1.2
    ax.set_xlim(xy[:, 0].min() - pad, xy[:, 0].max() + pad)
    ax.set_ylim(xy[:, 1].min() - pad, xy[:, 1].max() + pad)
    ax.set_aspect("equal")
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_title("net trade over the episode [units]", fontsize=9)
    fig.colorbar(ScalarMappable(norm=norm, cmap=cmap), ax=ax, fraction=0.04, pad=0.02)


def _city_backlogs(ax: Any, tr: dict[str, Any], base: dict[str, Any], surge: Any) -> None:
    """The city's and its most loaded cell's BS compute backlog, pool on and off."""
    on = tr["queue_ue"] + tr["queue_sensor"]
    off = base["queue_ue"] + base["queue_sensor"]
    steps = np.arange(on.shape[0])
    ax.plot(steps, on.sum(axis=1), color="tab:blue", label="all cells, pool on")
    ax.plot(steps, off.sum(axis=1), color="tab:blue", ls="--", label="all cells, pool off")
    ax.plot(steps, on.max(axis=1), color="tab:red", label="the most loaded cell, pool on")
    ax.plot(steps, off.max(axis=1), color="tab:red", ls="--", label="the most loaded cell, off")
    ax.set_ylabel("BS compute backlog [jobs]")
    ax.set_xlabel("step")
    ax.legend(fontsize=8, ncol=2, loc="upper left")
    if isinstance(surge, int) and 0 < surge < len(steps):
        ax.axvline(surge, color="red", ls=":", lw=1.0)


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m analysis.pool_figures", description=__doc__)
    p.add_argument("dirs", nargs="+", help="pool-compare result directories (--out DIR)")
    args = p.parse_args(argv)
    for d in args.dirs:
        try:
            print(f"## {d}\n\n{pool_table(d)}\n")
            print(f"figure: {pool_flow_figure(d, Path(d) / 'pool_flows.png')}\n")
        except (FileNotFoundError, ValueError) as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
