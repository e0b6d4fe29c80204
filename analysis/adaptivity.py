"""The adaptivity study's analysis: where a policy lies against a traffic variant's static front.

For every traffic variant the study (:mod:`tune_configs.studies.adaptivity`, ``python -m launch
adapt``) evaluates the variant's whole static grid and a few candidate policies on the same episode
seeds. This module places each candidate in the (sync delay, served %) plane against that grid:

* **noise**: 1 step of sync delay and 1 percentage point of served (:class:`Noise`);
* **margin of A over B**: the paired mean improvement of A over B in each objective (B's sync
  delay minus A's, A's served minus B's), over the episode seeds both were evaluated on (common
  random numbers; per objective, the seeds where both values are defined), with the standard
  error of the per-episode differences (:func:`margin`);
* **A dominates B beyond noise**: A's improvement exceeds the noise in *both* objectives,
  ``d_sync > 1 step`` and ``d_served > 1 pp`` (with ``z > 0`` also ``d - noise > z * se`` in
  both; the study's verdicts use ``z = 0``, the issue's definition);
* **behind**: some split of the variant's static grid dominates the policy beyond noise;
  **beyond**: the policy dominates beyond noise at least one split of the variant's static front
  (the non-dominated splits by mean); **on**: neither. Behind and beyond exclude each other
  (dominance beyond noise is transitive and nothing in the grid dominates a front split);
* **gap**: ``max`` over the grid's splits ``s`` of ``min(d_sync(s over P) / 1 step,
  d_served(s over P) / 1 pp)``, in noise units: above 1 means behind, above 0 means some split
  beats the policy's means in both objectives; **lead**: the same with the roles swapped, over
  the front's splits: above 1 means beyond. :attr:`Placement.score` combines them into one signed
  number (lead if positive, else minus the gap if positive, else 0);
* **return regret**: how much lower the policy's mean episode return is than the best static
  split's, in % of the latter (negative: the policy earns more than every static split);
* **room**: the front splits that *can* be dominated beyond noise at all (sync delay above 1
  step and served below 99 %). A variant whose front already reaches the (0 steps, 100 %) corner
  within the noise leaves no room: nothing can lie beyond it.

Table level: :func:`study_table` reads the tidy episode table of :func:`analysis.collect.collect`
(rows of result sets whose ``run.json`` has ``study: adaptivity``), and :func:`verdicts` states the
issue's done-when checks. :func:`margin_figure` and :func:`planes_figure` draw them;
:func:`report_section` writes the report's "Adaptivity" section.

Run ``python -m analysis.adaptivity DIR`` to print the table and the verdicts of a study directory.
"""

from __future__ import annotations

import json
import math
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike, NDArray

from analysis.pareto import improvement, non_dominated
from envs.core.policies import queue_aware
from envs.core.presets import make_params

STUDY = "adaptivity"
BEHIND, ON, BEYOND = "behind", "on", "beyond"
# Candidate groups (run.json "candidate_group" of policies; the rules are found in the grid).
ADAPTIVE, ADAPTIVE_SEED, PAPER_ONLY = "adaptive", "adaptive seed", "paper-only"
PAPER_SPLIT, QUEUE_AWARE = "paper-tuned split", "queue-aware rule"
TUNED_RULE = "tuned queue-aware rule"  # figure style only: the rule's group is QUEUE_AWARE
PAPER_SPLITS = ((0.3, 0.3), (0.3, 0.4))  # the splits tuned for the paper scenario
GROUP_ORDER = (PAPER_SPLIT, QUEUE_AWARE, PAPER_ONLY, ADAPTIVE_SEED, ADAPTIVE)
SERVED_MAX = 100.0


@dataclass(frozen=True)
class Noise:
    """The evaluation noise per objective: sync delay [steps] and served [percentage points]."""

    sync: float = 1.0
    served: float = 1.0


@dataclass(frozen=True)
class Margin:
    """How much better A is than B (paired means over common seeds; positive: A better)."""

    sync: float  # B's sync delay minus A's [steps]
    served: float  # A's served minus B's [pp]
    sync_se: float
    served_se: float
    n: int  # episodes paired (the smaller of the two objectives' counts)

    def in_noise(self, noise: Noise) -> float:
        """``min(d_sync / noise_sync, d_served / noise_served)``: above 1 is beyond noise."""
        if not (math.isfinite(self.sync) and math.isfinite(self.served)):
            return -math.inf
        return min(self.sync / noise.sync, self.served / noise.served)

    def beyond(self, noise: Noise, z: float = 0.0) -> bool:
        """Better by more than the noise (plus ``z`` standard errors) in both objectives."""
        pairs = ((self.sync, self.sync_se, noise.sync), (self.served, self.served_se, noise.served))
        for d, se, eps in pairs:
            if not math.isfinite(d) or not d > eps:
                return False
            if z > 0 and not (math.isfinite(se) and d - eps > z * se):
                return False
        return True


def margin(
    a_sync: ArrayLike, a_served: ArrayLike, b_sync: ArrayLike, b_served: ArrayLike
) -> Margin:
    """The margin of A over B from per-episode values aligned by episode seed."""
    s = improvement(a_sync, b_sync, maximise=False, paired=True)
    v = improvement(a_served, b_served, maximise=True, paired=True)
    return Margin(s.diff, v.diff, s.se, v.se, min(s.n, v.n))


@dataclass
class StaticGrid:
    """A variant's static splits: labels and per-episode values ``(splits, episodes)``."""

    labels: list[str]
    sync: NDArray[np.float64]
    served: NDArray[np.float64]
    ret: NDArray[np.float64]

    def __post_init__(self) -> None:
        self.sync = np.asarray(self.sync, dtype=np.float64).reshape(len(self.labels), -1)
        self.served = np.asarray(self.served, dtype=np.float64).reshape(self.sync.shape)
        self.ret = np.asarray(self.ret, dtype=np.float64).reshape(self.sync.shape)

    @cached_property
    def means(self) -> NDArray[np.float64]:
        """``(splits, 2)``: mean sync delay and mean served (NaN where never defined)."""
        with np.errstate(all="ignore"):
            sync = np.array([_nanmean(r) for r in self.sync])
            served = np.array([_nanmean(r) for r in self.served])
        return np.asarray(np.c_[sync, served], dtype=np.float64)

    @cached_property
    def front(self) -> NDArray[np.bool_]:
        """The splits no other split dominates by mean (splits with NaN means excluded)."""
        return non_dominated(self.means, maximise=[False, True])

    def room(self, noise: Noise) -> NDArray[np.bool_]:
        """Front splits that a point of the plane could dominate beyond noise at all."""
        m = self.means
        return self.front & (m[:, 0] > noise.sync) & (m[:, 1] < SERVED_MAX - noise.served)

    def index(self, label: str) -> int:
        return self.labels.index(label)


def _nanmean(x: NDArray[np.float64]) -> float:
    ok = np.isfinite(x)
    return float(x[ok].mean()) if ok.any() else math.nan


@dataclass(frozen=True)
class Placement:
    """Where one policy lies against a variant's static grid (see the module docstring)."""

    verdict: str
    gap: float  # noise units; > 1: a split dominates the policy beyond noise
    gap_split: str
    lead: float  # noise units; > 1: the policy dominates a front split beyond noise
    lead_split: str
    beaten_by: int  # grid splits dominating the policy beyond noise
    beats: int  # front splits the policy dominates beyond noise
    sync: float
    served: float
    ret: float
    return_regret_pct: float
    best_return_split: str

    @property
    def score(self) -> float:
        """Signed distance to the front in noise units: the lead when the policy dominates a
        front split by mean, minus the gap when a split dominates it, else 0. Above 1: beyond;
        below -1: behind."""
        if self.lead > 0:
            return self.lead
        if self.gap > 0:
            return -self.gap
        return 0.0


def place(
    grid: StaticGrid,
    sync: ArrayLike,
    served: ArrayLike,
    ret: ArrayLike,
    noise: Noise | None = None,
    z: float = 0.0,
    exclude: str | None = None,
) -> Placement:
    """Place a policy (per-episode values on the grid's episode seeds) against ``grid``;
    ``exclude``: a split's label left out of the comparison (a grid split placed against the
    others)."""
    noise = noise or Noise()
    p_sync = np.asarray(sync, dtype=np.float64).reshape(-1)
    p_served = np.asarray(served, dtype=np.float64).reshape(-1)
    p_ret = np.asarray(ret, dtype=np.float64).reshape(-1)
    if p_sync.shape[0] != grid.sync.shape[1]:
        raise ValueError(f"{p_sync.shape[0]} episodes for a grid of {grid.sync.shape[1]}")
    gap, gap_i, lead, lead_i, beaten_by, beats = -math.inf, -1, -math.inf, -1, 0, 0
    front = grid.front
    for i in range(len(grid.labels)):
        if grid.labels[i] == exclude:
            continue
        over = margin(grid.sync[i], grid.served[i], p_sync, p_served)  # split over policy
        g = over.in_noise(noise)
        if g > gap:
            gap, gap_i = g, i
        beaten_by += over.beyond(noise, z)
        if front[i]:
            under = margin(p_sync, p_served, grid.sync[i], grid.served[i])  # policy over split
            ld = under.in_noise(noise)
            if ld > lead:
                lead, lead_i = ld, i
            beats += under.beyond(noise, z)
    verdict = BEHIND if beaten_by else (BEYOND if beats else ON)
    grid_ret = np.nanmean(grid.ret, axis=1)
    best = int(np.nanargmax(grid_ret))
    mean_ret = _nanmean(p_ret)
    regret = 100.0 * (grid_ret[best] - mean_ret) / abs(grid_ret[best]) if grid_ret[best] else 0.0
    return Placement(
        verdict=verdict,
        gap=gap,
        gap_split=grid.labels[gap_i] if gap_i >= 0 else "",
        lead=lead,
        lead_split=grid.labels[lead_i] if lead_i >= 0 else "",
        beaten_by=int(beaten_by),
        beats=int(beats),
        sync=_nanmean(p_sync),
        served=_nanmean(p_served),
        ret=mean_ret,
        return_regret_pct=float(regret),
        best_return_split=grid.labels[best],
    )


# --- the study's result sets --------------------------------------------------------------------
def study_episodes(episodes: pd.DataFrame) -> pd.DataFrame:
    """The rows of the tidy episode table that belong to an adaptivity study."""
    if episodes.empty or "run_study" not in episodes.columns:
        return episodes.iloc[0:0]
    return episodes.loc[episodes["run_study"].astype(str) == STUDY]


def _split_label(w_b: Any, w_c: Any) -> str:
    return f"({float(w_b):g}, {float(w_c):g})"


@dataclass
class VariantData:
    """One variant of a study: its grid and its candidates' per-episode values."""

    name: str
    info: dict[str, Any]
    seeds: list[int]
    grid: StaticGrid
    candidates: list[dict[str, Any]]  # name, group, sync, served, ret (arrays on ``seeds``)


def variant_data(episodes: pd.DataFrame) -> list[VariantData]:
    """Split the study rows of ``episodes`` into variants (in order of first appearance)."""
    rows = study_episodes(episodes)
    out: list[VariantData] = []
    if rows.empty:  # no study here (a table without its columns)
        return out
    for name in dict.fromkeys(rows["run_variant"].astype(str)):
        v = rows.loc[rows["run_variant"].astype(str) == name].copy()
        v["seed"] = pd.to_numeric(v["seed"], errors="coerce").astype("Int64")
        static = v.loc[v["kind"].astype(str) == "static"].copy()
        if static.empty:
            continue
        static["_label"] = [_split_label(b, c) for b, c in zip(static["w_b"], static["w_c"],
                                                                 strict=True)]  # fmt: skip
        seeds = sorted(int(s) for s in static["seed"].dropna().unique())
        labels = list(dict.fromkeys(static["_label"]))
        grid = StaticGrid(
            labels,
            _reindexed(static, labels, "sync_delay", seeds),
            _reindexed(static, labels, "served_pct", seeds),
            _reindexed(static, labels, "episode_return", seeds),
        )
        cands: list[dict[str, Any]] = []
        for w in PAPER_SPLITS:
            label = _split_label(*w)
            if label in labels:
                i = labels.index(label)
                cands.append({"name": label, "group": PAPER_SPLIT, "sync": grid.sync[i],
                              "served": grid.served[i], "ret": grid.ret[i],
                              "exclude": label})  # fmt: skip
        others = v.loc[v["kind"].astype(str) != "static"].copy()
        named = others["run_candidate"] if "run_candidate" in others.columns else others["policy"]
        others["_name"] = [
            str(c) if isinstance(c, str) and c else _rule_name(k, p)
            for c, k, p in zip(named, others["kind"], others["policy"], strict=True)
        ]
        for cname in dict.fromkeys(others["_name"]):
            c = others.loc[others["_name"] == cname]
            group = _group_of(c)
            cands.append({"name": cname, "group": group,
                          **{k: _reindexed(c.assign(_label=cname), [cname], m, seeds)[0]
                             for k, m in (("sync", "sync_delay"), ("served", "served_pct"),
                                          ("ret", "episode_return"))}})  # fmt: skip
        info = {
            key: v[f"run_{key}"].dropna().astype(str).iloc[0]
            for key in (
                "variant_note",
                "held_out",
                "variant_overrides",
                "variant_preset",
                "variant_order",
            )
            if f"run_{key}" in v.columns and v[f"run_{key}"].notna().any()
        }
        out.append(VariantData(name, info, seeds, grid, cands))
    return sorted(out, key=lambda vd: (_order(vd.info.get("variant_order")), vd.name))


def _order(value: Any) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.inf


def _reindexed(
    rows: pd.DataFrame, labels: Sequence[str], metric: str, seeds: Sequence[int]
) -> NDArray[np.float64]:
    table = rows.pivot_table(index="_label", columns="seed", values=metric, aggfunc="mean")
    table = table.reindex(index=list(labels), columns=list(seeds))
    return np.asarray(table.to_numpy(dtype=np.float64))


DEFAULT_RULE_LABEL = queue_aware().label  # the default rule's label in result sets


def _rule_name(kind: Any, policy: Any) -> str:
    """``queue-aware`` for the default rule, ``qa(w_b,lo-hi)`` for another parameterisation."""
    if str(kind) != "queue_aware":
        return str(policy)
    label = str(policy)
    return "queue-aware" if label == DEFAULT_RULE_LABEL else "qa" + label[len("queue_aware") :]


def _group_of(rows: pd.DataFrame) -> str:
    if "run_candidate_group" in rows.columns and rows["run_candidate_group"].notna().any():
        return str(rows["run_candidate_group"].dropna().iloc[0])
    kind = str(rows["kind"].iloc[0])
    return QUEUE_AWARE if kind == "queue_aware" else kind


def study_table(episodes: pd.DataFrame, noise: Noise | None = None, z: float = 0.0) -> pd.DataFrame:
    """One row per (variant, candidate): means, verdict, gap, lead, return regret, room."""
    noise = noise or Noise()
    rows: list[dict[str, Any]] = []
    for vd in variant_data(episodes):
        room = vd.grid.room(noise)
        for c in vd.candidates:
            pl = place(vd.grid, c["sync"], c["served"], c["ret"], noise, z, c.get("exclude"))
            rows.append({
                "variant": vd.name,
                "held_out": vd.info.get("held_out", ""),
                "switching": _switching(vd.info),
                "note": vd.info.get("variant_note", ""),
                "candidate": c["name"],
                "group": c["group"],
                "sync_delay": pl.sync,
                "served_pct": pl.served,
                "episode_return": pl.ret,
                "verdict": pl.verdict,
                "score": pl.score,
                "gap": pl.gap,
                "gap_split": pl.gap_split,
                "lead": pl.lead,
                "lead_split": pl.lead_split,
                "beaten_by": pl.beaten_by,
                "beats": pl.beats,
                "return_regret_pct": pl.return_regret_pct,
                "best_return_split": pl.best_return_split,
                "front_splits": int(vd.grid.front.sum()),
                "room_splits": int(room.sum()),
                "grid_splits": len(vd.grid.labels),
                "episodes": len(vd.seeds),
                "seeds": f"{vd.seeds[0]}-{vd.seeds[-1]}" if vd.seeds else "",
            })  # fmt: skip
    table = pd.DataFrame(rows)
    if table.empty:
        return table
    rank = {g: i for i, g in enumerate(GROUP_ORDER)}
    table["_g"] = table["group"].map(lambda g: rank.get(g, len(rank)))
    table["_v"] = table["variant"].map(
        {v: i for i, v in enumerate(dict.fromkeys(table["variant"]))}
    )
    table = table.sort_values(["_v", "_g", "candidate"], kind="stable")
    return table.drop(columns=["_g", "_v"]).reset_index(drop=True)


def _is_held_out(text: Any) -> bool:
    return isinstance(text, str) and bool(text) and not text.startswith("no:")


def _switching(info: dict[str, Any]) -> bool:
    """Whether a variant's traffic switches within an episode (its preset plus overrides have
    regimes), from the preset and overrides its runs recorded."""
    preset = info.get("variant_preset")
    if not preset:
        return False
    overrides = json.loads(info.get("variant_overrides") or "{}")
    return bool(make_params(str(preset), **overrides).scenario.has_regimes)


def _held_counts(held: pd.DataFrame) -> tuple[list[str], list[str], list[str]]:
    """Variants of ``held`` where the policy is behind, beyond, and that leave room."""
    return (
        held.loc[held["verdict"] == BEHIND, "variant"].tolist(),
        held.loc[held["verdict"] == BEYOND, "variant"].tolist(),
        held.loc[held["room_splits"] > 0, "variant"].tolist(),
    )


def verdicts(table: pd.DataFrame, dynamic: str = "paper_dynamic") -> list[str]:
    """The issue's done-when checks on a study table, one line each (PASS / FAIL / n/a)."""
    lines: list[str] = []
    if table.empty:
        return ["n/a: no adaptivity study rows"]
    shipped = table.loc[table["group"] == ADAPTIVE]
    if shipped.empty:
        return ["n/a: no shipped adaptive policy (candidate group 'adaptive') in the study"]
    dyn = shipped.loc[shipped["variant"] == dynamic]
    if dyn.empty:
        lines.append(f"n/a: {dynamic} is not among the variants")
    else:
        r = dyn.iloc[0]
        ok_a = r["beaten_by"] == 0
        ok_b = r["beats"] > 0
        lines.append(
            f"{'PASS' if ok_a else 'FAIL'}: on {dynamic}, no static split dominates the adaptive "
            f"policy beyond noise ({int(r['beaten_by'])} do; largest gap {r['gap']:.2f} noise "
            f"units, {r['gap_split']})"
        )
        lines.append(
            f"{'PASS' if ok_b else 'FAIL'}: on {dynamic}, the adaptive policy dominates "
            f"{int(r['beats'])} of {int(r['front_splits'])} front splits beyond noise (largest "
            f"lead {r['lead']:.2f} noise units, over {r['lead_split']})"
        )
    is_held = shipped["held_out"].map(_is_held_out)
    switching = (shipped["switching"] if "switching" in shipped else pd.Series(False, shipped.index)
                 ).astype(bool)  # fmt: skip
    held = shipped.loc[is_held & ~switching]  # the held-out variants: stationary traffic
    if held.empty:
        lines.append("n/a: no held-out variant with stationary traffic")
    else:
        behind, beyond, room = _held_counts(held)
        n = len(held)
        lines.append(
            f"{'PASS' if not behind else 'FAIL'}: held-out stationary variants where a static "
            f"split dominates the adaptive policy beyond noise: {len(behind)} of {n}"
            + (f" ({', '.join(behind)})" if behind else "")
        )
        lines.append(
            f"{'PASS' if 2 * len(beyond) > n else 'FAIL'}: held-out stationary variants where "
            f"the adaptive policy lies beyond the front: {len(beyond)} of {n} "
            f"({', '.join(beyond) or 'none'}); {len(room)} of {n} leave room to be beaten beyond "
            f"noise"
        )
    moving = shipped.loc[is_held & switching]
    if not moving.empty:  # reported apart: the checks are about the stationary ones
        behind, beyond, _ = _held_counts(moving)
        lines.append(
            f"INFO (not one of the checks): held-out switching variants where a static split "
            f"dominates the adaptive policy beyond noise: {len(behind)} of {len(moving)}"
            + (f" ({', '.join(behind)})" if behind else "")
            + f"; where it lies beyond the front: {len(beyond)} of {len(moving)} "
            f"({', '.join(beyond) or 'none'})"
        )
    return lines


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
    (:attr:`Placement.score`, noise units), with the behind / on / beyond bands. Points further
    behind than ``clip`` are drawn at ``clip`` with their value written beside them."""
    if table.empty:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

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
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, bbox_inches="tight")
    plt.close(fig)
    return out


def _variant_tick(table: pd.DataFrame, variant: str) -> str:
    row = table.loc[table["variant"] == variant].iloc[0]
    tags = []
    if bool(row.get("switching", False)):
        tags.append("switching")
    if _is_held_out(row["held_out"]):
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
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Rectangle

    from analysis.pareto import front_path

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
            x, y = _nanmean(np.asarray(c["sync"])), _nanmean(np.asarray(c["served"]))
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
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, bbox_inches="tight")
    plt.close(fig)
    return out


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


def report_section(
    md: Any, episodes: pd.DataFrame, figs: Path, tabs: Path, reach: Path | None = None
) -> None:
    """The report's "Adaptivity" section (``md``: the report's Markdown builder; ``reach``: a
    ``reach.json`` of ``launch adapt reach`` to show beside the study)."""
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
    md.p("**Done-when checks** (shipped adaptive policy):\n\n" + "\n".join(
        f"- {line}" for line in verdicts(table)))  # fmt: skip
    p = margin_figure(table, figs / "adaptivity_margins.png")
    if p is not None:
        md.img(p, "Adaptivity: distance of each policy to each variant's static front")
    p = planes_figure(variant_data(episodes), table, figs / "adaptivity_planes.png")
    if p is not None:
        md.img(p, "Adaptivity: the variants' static fronts and the policies")
    md.p(table_markdown(table))
    md.p(f"CSV: {md.link(path)}.")
    if reach is not None:
        try:
            reach_section(md, table, json.loads(reach.read_text()), reach)
        except (OSError, ValueError, KeyError, TypeError) as exc:  # keep the rest of the report
            md.p(f"_Could not read {md.link(reach)}: {type(exc).__name__}: {exc}_")


# --- reach: controllers tuned per variant (tune_configs.studies.reach)
# ---------------------------------
def reach_summary(rows: Sequence[dict[str, Any]]) -> list[str]:
    """Per family: in how many held-out stationary (and switching) variants it is beyond."""
    lines = []
    for f in dict.fromkeys(r["family"] for r in rows):
        mine = [r for r in rows if r["family"] == f and r["is_held_out"]]
        for kind, switching in (("stationary", False), ("switching", True)):
            sel = [r for r in mine if r["switching"] == switching]
            if not sel:
                continue
            beyond = [r["variant"] for r in sel if r["verdict"] == BEYOND]
            lines.append(f"{f}: beyond the front in {len(beyond)} of {len(sel)} held-out {kind} "
                         f"variants ({', '.join(beyond) or 'none'})")  # fmt: skip
    return lines


def reach_markdown(rows: Sequence[dict[str, Any]]) -> str:
    """The reach rows as a Markdown table (score: lead if beyond, minus the gap if behind, in
    noise units; in brackets on the tuning seeds) and the summary."""
    lines = ["| variant | kind | room | family | verdict | score (tuning) | sync / served | "
             "parameters |", "|---|---|---|---|---|---|---|---|"]  # fmt: skip
    for r in rows:
        kind = ("switching" if r["switching"] else "stationary") + (
            ", held out" if r["is_held_out"] else "")  # fmt: skip
        prm = ", ".join(f"{k}={v:g}" for k, v in r["params"].items())
        lines.append(f"| {r['variant']} | {kind} | {r['room_splits']} | {r['family']} | "
                     f"{r['verdict']} | {r['score']:.2f} ({r['tuning_score']:.2f}) | "
                     f"{r['sync_delay']:.2f} / {r['served_pct']:.1f} | {prm} |")  # fmt: skip
    return "\n".join(lines + [""] + [f"- {line}" for line in reach_summary(rows)]) + "\n"


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


def main(argv: Sequence[str] | None = None) -> int:
    """Print the study table and the done-when checks of a study directory."""
    from analysis.collect import collect_for_cli

    _, data = collect_for_cli("python -m analysis.adaptivity", __doc__, argv)
    if data is None:
        return 2
    table = study_table(data.episodes)
    if table.empty:
        print("no adaptivity study rows found")
        return 0
    cols = ["variant", "candidate", "sync_delay", "served_pct", "episode_return", "verdict",
            "gap", "lead", "return_regret_pct"]  # fmt: skip
    with pd.option_context("display.width", 200, "display.max_columns", 20):
        print(table[cols].to_string(index=False, float_format=lambda v: f"{v:.2f}"))
    print("\n".join(verdicts(table)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
