"""The adaptivity section of the report: its figures and Markdown tables.

:func:`margin_figure` (each policy's signed distance to each variant's static front) and
:func:`planes_figure` (each variant's static grid and front against the candidates) draw the
study table of :func:`analysis.adaptivity.study_table`; :func:`report_section` writes the
report's "Adaptivity" section with them, the tables and the acceptance checks, and
:func:`reach_section` its "Reach" part from a ``reach.json`` of ``launch adapt reach``.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.patches import Rectangle
from numpy.typing import NDArray

from analysis import runs_report
from analysis.adaptivity import (
    ADAPTIVE,
    ADAPTIVE_SEED,
    GROUP_ORDER,
    PAPER_ONLY,
    PAPER_SPLIT,
    QUEUE_AWARE,
    VariantData,
    is_held_out,
    reach_summary,
    study_table,
    variant_data,
    verdicts,
)
from analysis.pareto import front_path
from analysis.placement import BEYOND, Noise, finite_mean
from analysis.plot_style import plt, save

TUNED_RULE = "tuned queue-aware rule"  # figure style only: the rule's group is QUEUE_AWARE


# --- figures ------------------------------------------------------------------------------------
_GROUP_STYLE: dict[str, dict[str, Any]] = {
    PAPER_SPLIT: {"marker": "s", "color": "#555555", "s": 46, "facecolors": "none"},
    QUEUE_AWARE: {"marker": "D", "color": "#ff7f0e", "s": 46},
    TUNED_RULE: {"marker": "D", "color": "#ff7f0e", "s": 46, "facecolors": "none"},
    PAPER_ONLY: {"marker": "^", "color": "#1f77b4", "s": 62},
    ADAPTIVE_SEED: {"marker": "o", "color": "#2ca02c", "s": 30, "alpha": 0.75},
    ADAPTIVE: {"marker": "*", "color": "#d62728", "s": 190},
}
_GROUP_NAME = {
    PAPER_SPLIT: "paper-tuned splits (0.3, 0.3), (0.3, 0.4)",
    QUEUE_AWARE: "queue-aware rule (default)",
    TUNED_RULE: "queue-aware rule tuned on paper_dynamic",
    PAPER_ONLY: "policy trained on the paper scenario only",
    ADAPTIVE_SEED: "traffic-randomised policy, each training seed",
    ADAPTIVE: "traffic-randomised policy, shipped",
}


def _style_key(row: Any) -> str:
    """The figure style of a candidate: its group, except that a queue-aware rule other than
    the default one (``qa(...)``) is drawn hollow."""
    if row["group"] == QUEUE_AWARE and row["candidate"] != "queue-aware":
        return TUNED_RULE
    return str(row["group"])


def _style(group: str) -> dict[str, Any]:
    return dict(_GROUP_STYLE.get(group, {"marker": "x", "color": "#9467bd", "s": 40}))


def _scatter(ax: Any, x: Any, y: Any, group: str, **kw: Any) -> Any:
    st = _style(group)
    face = st.pop("facecolors", None)
    color = st.pop("color")
    if face == "none":
        return ax.scatter(x, y, facecolors="none", edgecolors=color, linewidths=1.4, **st, **kw)
    return ax.scatter(x, y, color=color, edgecolors="white", linewidths=0.5, **st, **kw)


def margin_figure(table: pd.DataFrame, path: str | Path, clip: float = -6.0) -> Path | None:
    """One row per variant: every candidate's signed distance to the variant's static front
    (:attr:`analysis.placement.Placement.score`, noise units), with the behind / on / beyond
    bands. Points further behind than ``clip`` are drawn at ``clip``, their value beside them."""
    if table.empty:
        return None
    variants = list(dict.fromkeys(table["variant"]))
    n = len(variants)
    scores = table["score"].to_numpy(dtype=float)
    lo = max(clip, min(-2.0, float(np.nanmin(scores)) - 0.3))
    hi = max(2.5, float(np.nanmax(scores)) + 0.4)
    fig, ax = plt.subplots(figsize=(9.0, 0.55 * n + 1.6), dpi=130)
    ax.axvspan(lo - 1.2, -1, color="#f4cccc", zorder=0)
    ax.axvspan(-1, 1, color="#eeeeee", zorder=0)
    ax.axvspan(1, hi, color="#d9ead3", zorder=0)
    for x, text, color in (((lo - 1.2 - 1) / 2, "behind", "#990000"), (0.0, "on", "#444444"),
                           ((1 + hi) / 2, "beyond", "#274e13")):  # fmt: skip
        ax.text(x, n - 0.45, text, ha="center", va="center", fontsize=8.5, color=color,
                weight="bold")  # fmt: skip
    order = (PAPER_SPLIT, QUEUE_AWARE, TUNED_RULE, PAPER_ONLY, ADAPTIVE_SEED, ADAPTIVE)
    offsets = {g: (i - (len(order) - 1) / 2) * 0.12 for i, g in enumerate(order)}
    seen: set[str] = set()
    clipped: dict[tuple[str, str, float], list[float]] = {}
    for _, r in table.iterrows():
        key = _style_key(r)
        y = n - 1 - variants.index(r["variant"]) - offsets.get(key, 0.0)
        x = float(r["score"])
        if x < lo:
            clipped.setdefault((r["variant"], key, y), []).append(x)
            x = lo
        label = None if key in seen else _GROUP_NAME.get(key, key)
        seen.add(key)
        _scatter(ax, [x], [y], key, label=label, zorder=3)
    for (_v, _g, y), xs in clipped.items():  # the value of points drawn at the clip
        ax.text(lo - 0.15, y, " / ".join(f"{x:.1f}" for x in sorted(xs)), ha="right",
                va="center", fontsize=6, color="#555555")  # fmt: skip
    ax.set_yticks(range(n))
    ax.set_yticklabels([_variant_tick(table, v) for v in variants][::-1], fontsize=8)
    ax.set_ylim(-0.6, n - 0.1)
    ax.set_xlim(lo - 1.2, hi)
    for v in (-1, 0, 1):
        ax.axvline(v, color="#999999", lw=0.6, ls="-" if v == 0 else ":")
    ax.tick_params(axis="x", labelsize=8)
    ax.set_xlabel(
        "signed distance to the variant's static front, in noise units (1 step of sync delay, "
        "1 pp of served):\nlead over the best-beaten front split if positive, minus the gap "
        "to the best split beating it otherwise",
        fontsize=8,
    )
    ax.set_title("Adaptivity: each policy against each traffic variant's own static grid",
                 fontsize=10)  # fmt: skip
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.1 - 0.25 / max(n, 1)), ncol=2,
              fontsize=7.5, frameon=False)  # fmt: skip
    fig.tight_layout()
    return save(fig, path, bbox_inches="tight")


def _variant_tick(table: pd.DataFrame, variant: str) -> str:
    row = table.loc[table["variant"] == variant].iloc[0]
    tags = []
    if bool(row.get("switching", False)):
        tags.append("switching")
    if is_held_out(row["held_out"]):
        tags.append("held out")
    if int(row.get("room_splits", 1)) == 0:
        tags.append("no room beyond")
    return f"{variant}{' (' + '; '.join(tags) + ')' if tags else ''}"


def planes_figure(
    data: Sequence[VariantData], table: pd.DataFrame, path: str | Path, noise: Noise | None = None
) -> Path | None:
    """One panel per variant: the static grid (grey), its front (black staircase), the
    candidates, and a box of +-1 noise around the shipped adaptive policy. Each panel zooms on
    the front's part near the candidates."""
    if not data:
        return None
    noise = noise or Noise()
    n = len(data)
    cols = min(3, n)
    rows = math.ceil(n / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(4.4 * cols, 3.7 * rows + 0.9), dpi=130,
                             squeeze=False)  # fmt: skip
    handles: dict[str, Any] = {}
    for ax, vd in zip(axes.flat, data, strict=False):
        m = vd.grid.means
        ok = np.isfinite(m).all(axis=1)
        handles.setdefault("static", ax.scatter(m[ok, 0], m[ok, 1], s=9, color="#bbbbbb", zorder=1))
        xs, ys = front_path(m[ok], [False, True])
        ax.plot(xs, ys, color="#111111", lw=1.1, zorder=2)
        handles.setdefault("front", ax.plot([], [], color="#111111", lw=1.1)[0])
        pts = []
        for c in vd.candidates:
            x, y = finite_mean(np.asarray(c["sync"])), finite_mean(np.asarray(c["served"]))
            if not (math.isfinite(x) and math.isfinite(y)):
                continue
            pts.append((x, y))
            h = _scatter(ax, [x], [y], c["group"], zorder=4)
            handles.setdefault(c["group"], h)
            if c["group"] == ADAPTIVE:
                ax.add_patch(Rectangle((x - noise.sync, y - noise.served), 2 * noise.sync,
                                           2 * noise.served, fill=False, ls=":", lw=0.9,
                                           color="#d62728", zorder=3))  # fmt: skip
        _zoom(ax, m[vd.grid.front & ok], np.asarray(pts))
        row = table.loc[(table["variant"] == vd.name) & (table["group"] == ADAPTIVE)]
        verdict = f": shipped policy {row['verdict'].iloc[0]}" if not row.empty else ""
        note = vd.info.get("variant_note", "")
        ax.set_title(f"{vd.name}{verdict}" + (f"\n({note})" if note else ""), fontsize=8.5)
        ax.tick_params(labelsize=7)
        ax.grid(alpha=0.25)
    for ax in axes.flat[n:]:
        ax.axis("off")
    for ax in axes[-1]:
        ax.set_xlabel("sync delay [steps] (lower is better)", fontsize=8)
    for ax in axes[:, 0]:
        ax.set_ylabel("served [%] (higher is better)", fontsize=8)
    labels = {"static": "static split", "front": "static front", **_GROUP_NAME}
    keys = [k for k in ("static", "front", *GROUP_ORDER) if k in handles]
    fig.legend([handles[k] for k in keys], [labels[k] for k in keys], loc="lower center",
               ncol=3, fontsize=7.5, frameon=False)  # fmt: skip
    fig.suptitle(
        "Each variant's static grid and front against the candidates (dotted box: +-1 noise "
        "around the shipped policy)",
        fontsize=10,
    )
    fig.tight_layout(rect=(0, 0.05 + 0.02 / rows, 1, 0.97))
    return save(fig, path, bbox_inches="tight")


def _zoom(ax: Any, front: NDArray[np.float64], pts: NDArray[np.float64]) -> None:
    """Limits around the candidates and the front splits near them (not the whole grid)."""
    if pts.size == 0:
        return
    x0, x1 = float(pts[:, 0].min()), float(pts[:, 0].max())
    y0, y1 = float(pts[:, 1].min()), float(pts[:, 1].max())
    near = front[(front[:, 0] <= x1 + 8) & (front[:, 1] >= y0 - 15)] if front.size else front
    if near.size:
        x0, x1 = min(x0, float(near[:, 0].min())), max(x1, float(near[:, 0].max()))
        y0, y1 = min(y0, float(near[:, 1].min())), max(y1, float(near[:, 1].max()))
    x0, x1 = min(x0, x1 - 4.0), max(x1, x0 + 4.0)
    y0, y1 = min(y0, y1 - 4.0), max(y1, y0 + 4.0)
    px, py = 0.08 * (x1 - x0), 0.08 * (y1 - y0)
    ax.set_xlim(max(-0.5, x0 - px), x1 + px)
    ax.set_ylim(y0 - py, min(101.0, y1 + py))


# --- the report section -------------------------------------------------------------------------
def _fmt(v: Any, digits: int = 2) -> str:
    try:
        f = float(v)
    except (TypeError, ValueError):
        return str(v)
    return "" if math.isnan(f) else ("-inf" if f == -math.inf else f"{f:.{digits}f}")


def table_markdown(table: pd.DataFrame) -> str:
    """The study table as Markdown (one row per variant and candidate)."""
    from analysis.tables import markdown

    disp = pd.DataFrame({
        "variant": table["variant"],
        "candidate": table["candidate"],
        "group": table["group"],
        "sync delay": table["sync_delay"].map(_fmt),
        "served %": table["served_pct"].map(_fmt),
        "return": table["episode_return"].map(lambda v: _fmt(v, 0)),
        "verdict": table["verdict"],
        "gap": [f"{_fmt(g)} ({s})" if g > 0 else _fmt(g) for g, s in
                zip(table["gap"], table["gap_split"], strict=True)],
        "lead": [f"{_fmt(g)} ({s})" if g > 0 else _fmt(g) for g, s in
                 zip(table["lead"], table["lead_split"], strict=True)],
        "return regret %": table["return_regret_pct"].map(lambda v: _fmt(v, 1)),
    })  # fmt: skip
    return markdown(disp, ["l", "l", "l", "r", "r", "r", "l", "r", "r", "r"])


def variants_markdown(table: pd.DataFrame) -> str:
    from analysis.tables import markdown

    first = table.drop_duplicates("variant")
    disp = pd.DataFrame({
        "variant": first["variant"],
        "traffic": first["note"],
        "held out (relative to the adaptive policy's training ranges)": first["held_out"],
        "front splits": first["front_splits"],
        "with room to be beaten": first["room_splits"],
        "episodes (seeds)": [f"{e} ({s})" for e, s in zip(first["episodes"], first["seeds"],
                                                          strict=True)],
    })  # fmt: skip
    return markdown(disp, ["l", "l", "l", "r", "r", "l"])


def report_section(md: Any, episodes: pd.DataFrame, figs: Path, tabs: Path) -> None:
    """The report's "Adaptivity" section (``md``: the report's Markdown builder), with the newest
    ``reach.json`` of ``launch adapt reach`` under the report's directory beside the study."""
    md.h(2, "Adaptivity")
    table = study_table(episodes)
    if table.empty:
        md.p(
            "_No adaptivity study here: `python -m launch adapt study --out DIR/adapt` evaluates "
            "the traffic variants' static grids and the policies and would fill it._"
        )
        return
    path = tabs / "adaptivity.csv"
    table.to_csv(path, index=False)
    md.p(
        "For every traffic variant: its own static grid and front (batched evaluator), the "
        "splits tuned for the paper scenario, the queue-aware rule and the learned policies, all "
        "on the same episode seeds. A policy is **behind** when a static split of the variant's "
        "grid dominates it beyond noise, **beyond** when it dominates beyond noise at least one "
        "split of the variant's static front, **on** otherwise. Beyond noise: better by more "
        "than 1 step of sync delay *and* more than 1 pp of served, as paired mean differences "
        "over the common episode seeds. Gap and lead are those margins in noise units (gap: the "
        "best split over the policy; lead: the policy over its best-beaten front split); return "
        "regret is the shortfall against the best static split's mean episode return."
    )
    md.p(variants_markdown(table))
    over_seeds = runs_report.adaptivity_runs_markdown(table, (ADAPTIVE, ADAPTIVE_SEED))
    if over_seeds:
        md.p(
            "Over training seeds: the traffic-randomised recipe's seeds (the shipped policy and "
            "its other training seeds), per variant, their margins to the static front (noise "
            "units), the mean with its 95 % stratified bootstrap interval over seeds (`rliable`) "
            "and the run-level verdict (beyond if the interval lies above 1, behind if below -1, "
            "on if its lower end is at least -1, inconclusive otherwise; `analysis.runs`).\n\n"
            + over_seeds
        )
    checks = "\n".join(f"- {line}" for line in verdicts(table))
    md.p("**Acceptance checks** (shipped adaptive policy; "
         "docs/studies/adaptivity.md#acceptance-checks):\n\n" + checks)  # fmt: skip
    p = margin_figure(table, figs / "adaptivity_margins.png")
    if p is not None:
        md.img(p, "Adaptivity: distance of each policy to each variant's static front")
    p = planes_figure(variant_data(episodes), table, figs / "adaptivity_planes.png")
    if p is not None:
        md.img(p, "Adaptivity: the variants' static fronts and the policies")
    md.p(table_markdown(table))
    md.p(f"CSV: {md.link(path)}.")
    for reach in sorted(md.root.rglob("reach.json"), key=lambda p: p.stat().st_mtime)[-1:]:
        try:
            reach_section(md, table, json.loads(reach.read_text()), reach)
        except (OSError, ValueError, KeyError, TypeError) as exc:  # keep the rest of the report
            md.p(f"_Could not read {md.link(reach)}: {type(exc).__name__}: {exc}_")


def reach_against(table: pd.DataFrame, rows: Sequence[dict[str, Any]]) -> str:
    """Markdown: per variant, each family's placement score beside the shipped policy's (from
    the study ``table``), beyond in bold."""
    families = list(dict.fromkeys(r["family"] for r in rows))
    score = {(r["variant"], r["family"]): (r["score"], r["verdict"]) for r in rows}
    shipped = pd.DataFrame()
    if not table.empty:
        shipped = table.loc[table["group"] == ADAPTIVE].set_index("variant")

    def cell(s: float, verdict: str) -> str:
        return f"**{s:.2f}**" if verdict == BEYOND else f"{s:.2f}"

    head = ["variant", "room", *families, "shipped policy"]
    lines = ["| " + " | ".join(head) + " |", "|---|" + "---:|" * (len(head) - 1)]
    for v in dict.fromkeys(r["variant"] for r in rows):
        room = next(r["room_splits"] for r in rows if r["variant"] == v)
        cells = [cell(*score[v, f]) if (v, f) in score else "" for f in families]
        mine = ""
        if v in shipped.index:
            mine = cell(float(shipped.at[v, "score"]), str(shipped.at[v, "verdict"]))
        lines.append(f"| {v} | {room} | " + " | ".join(cells) + f" | {mine} |")
    return "\n".join(lines)


def reach_section(md: Any, table: pd.DataFrame, doc: dict[str, Any], source: Path) -> None:
    """The "Reach" part of the Adaptivity section from a ``reach.json`` document ``doc``: what
    controllers tuned per variant reach, beside the shipped policy."""
    rows = doc["rows"]
    st = doc.get("settings", {})
    n, tune, seed = st.get("episodes"), st.get("tune_seed"), st.get("seed")
    seeds = f"{seed}-{seed + n - 1}" if isinstance(seed, int) and isinstance(n, int) else "?"
    md.h(3, "Reach: controllers tuned for each variant")
    text = (
        f"From {md.link(source)} (`python -m launch adapt reach`). Each family's member was "
        f"chosen for each variant separately, knowing it, by its placement on tuning episode "
        f"seeds (from {tune}), then placed on episode seeds {seeds}. Scores in noise units (lead "
        "if beyond, minus the gap if behind); **bold**: beyond the front. `horizon` is a probe "
        "that reads the step counter and gives the UEs all the compute in the last steps of the "
        "episode; no policy of the study observes the step."
    )
    study_seeds = set(table["seeds"]) if "seeds" in table else set()
    if study_seeds and study_seeds != {seeds}:
        text += f" **Note:** the study above ran on seeds {', '.join(sorted(study_seeds))}."
    md.p(text)
    md.p(reach_against(table, rows))
    md.p("\n".join(f"- {line}" for line in reach_summary(rows)))
