"""The adaptivity study's table and acceptance checks: each policy against each traffic variant's
own static front.

For every traffic variant the study (:mod:`tune_configs.studies.adaptivity`, ``python -m launch
adapt``) evaluates the variant's whole static grid and a few candidate policies on the same episode
seeds. :func:`study_table` reads the tidy episode table of :func:`analysis.collect.collect` (rows
of result sets whose ``run.json`` has ``study: adaptivity``) and places each candidate against its
variant's grid (:func:`analysis.placement.place`: behind / on / beyond, gap, lead, return regret,
room; the definitions are there). :func:`verdicts` states the study's acceptance checks
(docs/studies/adaptivity.md#acceptance-checks) on that table; :func:`reach_summary` and
:func:`reach_markdown` summarise ``launch adapt reach`` (controllers tuned per variant). The
figures and the report's "Adaptivity" section: :mod:`analysis.adaptivity_report`.

Run ``python -m analysis.adaptivity DIR`` to print the table and the acceptance checks of a study
directory.
"""

from __future__ import annotations

import json
import math
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from analysis.placement import BEHIND, BEYOND, Noise, StaticGrid, place
from analysis.tables import PAPER_PICKS
from envs.core.policies import queue_aware
from envs.core.presets import make_params

STUDY = "adaptivity"
# Candidate groups (run.json "candidate_group" of policies; the rules are found in the grid).
ADAPTIVE, ADAPTIVE_SEED, PAPER_ONLY = "adaptive", "adaptive seed", "paper-only"
PAPER_SPLIT, QUEUE_AWARE = "paper-tuned split", "queue-aware rule"
GROUP_ORDER = (PAPER_SPLIT, QUEUE_AWARE, PAPER_ONLY, ADAPTIVE_SEED, ADAPTIVE)


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
        for w in PAPER_PICKS:  # the splits tuned for the paper scenario
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


def is_held_out(text: Any) -> bool:
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
    """The acceptance checks (docs/studies/adaptivity.md#acceptance-checks) on a study table,
    one line each (PASS / FAIL / n/a)."""
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
    is_held = shipped["held_out"].map(is_held_out)
    switching = (shipped["switching"] if "switching" in shipped else pd.Series(False, shipped.index)
                 ).astype(bool)  # fmt: skip
    held = shipped.loc[is_held & ~switching]  # the checks' held-out variants: stationary traffic
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


# --- reach: controllers tuned per variant (tune_configs.studies.reach) -------------------------
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


def main(argv: Sequence[str] | None = None) -> int:
    """Print the study table and the acceptance checks of a study directory."""
    from analysis.collect import collect_for_cli

    _, data = collect_for_cli("python -m analysis.adaptivity", __doc__, argv)
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
