"""The report: collect every result under a directory and write DIR/report.md.

The command is ``python -m launch report DIR`` (:mod:`launch.report`).

Examples::

    python -m launch static --grid 0.1 --episodes 100 --out results/static
    python -m launch report results           # -> results/report.md

It collects DIR recursively (result sets of ``launch static/eval --out``, PPO Tune trials and
``launch train`` outputs: :mod:`analysis.collect`), writes the tidy tables ``DIR/results.csv``
(and ``DIR/curves.csv`` when learning curves exist), the figures into ``DIR/figures/`` and the
tables as CSV into ``DIR/tables/``, then ``DIR/report.md`` with, per scenario: Table I (static
picks, baselines, trained points, mean ± std), our static splits beside the paper's numbers, the
paper's Fig. 4 and Fig. 5 with the static front, front and hypervolume tables, the claims check
(is any static split better than a trained policy beyond the evaluation noise?), the static-grid
heatmaps; then the learning curves, a multi-cell section when a pool comparison exists
(``analysis.pool_figures``), the paper's reported numbers, and what was read. A section without
data is one line saying what would fill it. Prints the report's path. A static grid of 0.1 x 100
episodes plus a few trained policies reports in 15-60 s (depending on the machine's load), most
of it drawing.
"""

from __future__ import annotations

import datetime as dt
import math
import sys
from pathlib import Path
from typing import Any


def _say(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


class EmptyResultsError(ValueError):
    """A directory with neither result sets nor learning curves (nothing to report)."""


REPORT_NAME = "report.md"
FIG_DIR = "figures"
TABLE_DIR = "tables"


# --- the report -----------------------------------------------------------------------------
def write_report(root: Path, z: float = 1.96, fmt: str = "csv", reps: int | None = None) -> Path:
    """Collect ``root``, draw, tabulate and write ``root/report.md``; returns its path.

    Raises :class:`EmptyResultsError` when ``root`` holds neither result sets nor learning curves.
    """
    from analysis import adaptivity_report, optuna_studies, runs_report
    from analysis.collect import collect, points, write_tables

    _say(f"collecting {root} ...")
    data = collect(root, write=False, fmt=fmt)
    for path, why in data.skipped:  # e.g. a result set half-written by a killed trial
        _say(f"warning: skipped {path}: {why}")
    if data.episodes.empty and data.curves.empty:
        why = "".join(f"\n  skipped {p}: {w}" for p, w in data.skipped)
        raise EmptyResultsError(
            f"no result sets (run.json + episodes.csv) and no learning curves under {root}; "
            f"produce some with `python -m launch static --grid 0.1 --out {root}/static`{why}"
        )
    write_tables(data, fmt)  # only once there is something to report
    all_points = points(data.episodes)
    pts = all_points.loc[~all_points["superseded"]] if not all_points.empty else all_points
    _say(f"  {len(data.sets)} result sets, {len(pts)} policies, {len(data.curves)} curve rows")
    figs = root / FIG_DIR
    tabs = root / TABLE_DIR
    figs.mkdir(exist_ok=True)
    tabs.mkdir(exist_ok=True)
    md = MarkdownDoc(root)
    md.h(1, f"MetaLore results: {root.resolve().name}")
    md.p(
        f"Written by `python -m launch report {root}` on "
        f"{dt.datetime.now(dt.UTC).isoformat(timespec='seconds')}. Every number below comes "
        f"from the tidy table {md.link(data.files['results'])} (one row per policy and episode"
        + (
            f"; learning curves in {md.link(data.files['curves'])}"
            if "curves" in data.files
            else ""
        )
        + "). Means and standard deviations are over episodes; delays are in steps (1 step = "
        "1 s); served is the share of generated UE jobs completed within the episode."
    )
    scenarios = sorted(pts.loc[pts["role"] != "pool", "scenario"].unique()) if len(pts) else []
    if not scenarios:
        md.p(
            "_No single-cell evaluations here: result sets from `python -m launch static --out`, "
            "`python -m launch eval --out` or PPO Tune trials would fill Table I and the "
            "Pareto figures._"
        )
    top = len(md.parts)
    glance = []
    for scenario in scenarios:
        sub = pts.loc[(pts["scenario"] == scenario) & (pts["role"] != "pool")]
        glance.append(
            _scenario_sections(
                md, sub, data.episodes, str(scenario), len(scenarios) > 1, z, figs, tabs
            )
        )
    if glance:
        md.parts[top:top] = [
            "## At a glance\n",
            "\n".join(f"- {g}" for g in glance) + "\n",
            "Sections: "
            + ", ".join(f"[{s}](#scenario-{_anchor(s)})" for s in scenarios)
            + ", [claims over training runs](#claims-over-training-runs), "
            "[learning curves](#learning-curves), "
            "[multi-cell credit pool](#multi-cell-credit-pool), "
            "[the paper's numbers](#the-papers-reported-numbers-for-reference), "
            + ("[Optuna studies](#optuna-studies), " if optuna_studies.find_studies(root) else "")
            + "[what was read](#what-was-read).\n",
        ]
    from analysis.runs import REPS

    reps = REPS if reps is None else reps
    runs_report.report_section(md, root, data.episodes, data.curves, figs, tabs, reps)
    _curves_section(md, data.curves, pts, figs)
    _pool_section(md, root, data.episodes, figs, tabs, reps)
    adaptivity_report.report_section(md, data.episodes, figs, tabs)
    optuna_studies.studies_section(md, root, figs, tabs)
    _paper_section(md, tabs)
    _inputs_section(md, data, int(all_points["superseded"].sum()))
    out = root / REPORT_NAME
    out.write_text(md.text())
    return out


def _anchor(scenario: str) -> str:
    """GitHub's anchor of the heading ``Scenario <scenario>`` (without the prefix)."""
    text = str(scenario).lower()
    text = "".join(ch for ch in text if ch.isalnum() or ch in " -_")
    return text.replace(" ", "-")


class MarkdownDoc:
    """A tiny Markdown builder with links relative to the report's directory."""

    def __init__(self, root: Path) -> None:
        self.root = root.resolve()
        self.parts: list[str] = []

    def rel(self, path: Path) -> str:
        try:
            return path.resolve().relative_to(self.root).as_posix()
        except ValueError:
            return path.resolve().as_posix()

    def link(self, path: Path, text: str | None = None) -> str:
        return f"[{text or self.rel(path)}]({self.rel(path)})"

    def h(self, level: int, text: str) -> None:
        self.parts.append(f"{'#' * level} {text}\n")

    def p(self, text: str) -> None:
        self.parts.append(text.strip() + "\n")

    def img(self, path: Path, alt: str) -> None:
        self.parts.append(f"![{alt}]({self.rel(path)})\n")

    def text(self) -> str:
        return "\n".join(self.parts)


def _csv(df: Any, path: Path) -> Path:
    df.to_csv(path, index=False)
    return path


def _scenario_sections(
    md: MarkdownDoc,
    pts: Any,
    episodes: Any,
    scenario: str,
    several: bool,
    z: float,
    figs: Path,
    tabs: Path,
) -> str:
    """Write the sections of one scenario; returns its one-line summary for the top."""
    from analysis import figures, pareto, placement, tables

    glance: list[str] = []
    suffix = f" (scenario {scenario})" if several else ""
    tag = figures.safe_name(scenario)
    n_static = int((pts["role"] == "static").sum())
    n_base = int((pts["role"] == "baseline").sum())
    n_trained = int((pts["role"] == "trained").sum())
    md.h(2, f"Scenario {scenario}")
    counts = (
        f"{n_static} static splits, {n_base} rule-based baselines, {n_trained} trained policies"
    )
    md.p(counts + ".")
    glance.append(counts)

    # Table I
    _say(f"tables for {scenario} ...")
    md.h(3, f"Table I: static picks, baselines and trained policies{suffix}")
    t1 = tables.table_one(pts)
    if t1.empty:
        md.p("_No policy with metrics in this scenario._")
    else:
        path = _csv(t1, tabs / f"table_one_{tag}.csv")
        md.p(tables.table_one_markdown(t1))
        md.p(
            "Static picks: the best split for each single objective (these sit at the ends of "
            "the front), the paper's exhaustive-search picks, and the front split nearest the "
            "ideal point of each plane after scaling both objectives to [0, 1] over the front "
            f'("knee"). CSV: {md.link(path)}.'
        )
    if n_trained == 0:
        md.p(
            "_No trained policies in this scenario: PPO Tune trials or `python -m launch eval "
            "CHECKPOINT --out DIR/...` result sets would add rows here and points to the "
            "figures._"
        )
    cmp = tables.paper_comparison(pts) if scenario == "paper" else None
    if cmp is not None and not cmp.empty:
        md.h(3, f"Our static splits beside the paper's numbers{suffix}")
        path = _csv(cmp, tabs / f"paper_comparison_{tag}.csv")
        md.p(tables.paper_comparison_markdown(cmp))
        md.p(f"The paper's own table is shown corrected (see below). CSV: {md.link(path)}.")

    # Figures 4 and 5
    _say(f"figures for {scenario} ...")
    md.h(3, f"Pareto planes: the paper's Fig. 4 and Fig. 5{suffix}")
    drawn = figures.scenario_figures(pts, scenario, figs)
    for key, caption in (
        ("fig4", "Fig. 4: sync delay (down) against traffic served (up)."),
        ("fig5", "Fig. 5: sync delay (down) against end-to-end delay (down)."),
    ):
        p = drawn[key]
        if p is not None:
            md.img(p, caption)
            md.p(
                f"{caption} Grey: static splits; black staircase: their Pareto front (front "
                "splits labelled (w_b, w_c) where there is room); hollow squares: the paper's "
                "picks; star: heuristic split; diamond: queue-aware rule; coloured points: "
                "trained policies (tags as in Table I), bars ±1 std over episodes. Splits "
                "with no completed UE job have no delay and are not drawn."
            )
    if drawn["fig4"] is None and drawn["fig5"] is None:
        md.p("_No policy with a defined sync delay: nothing to draw._")

    # Fronts and hypervolumes
    fr = pareto.fronts(pts)
    if n_static:
        md.h(3, f"Static Pareto fronts{suffix}")
        for name, front in fr.items():
            if front.empty:
                continue
            disp = tables.display_table(front, ["split", "episodes"])
            path = _csv(
                front[
                    ["split", "w_b", "w_c", "episodes"]
                    + [k for m in tables.KEY_METRICS for k in (m, f"{m}_std")]
                ],
                tabs / f"front_{name}_{tag}.csv",
            )
            md.p(
                f"Front in the plane {pareto.PLANES[name].title} ({len(front)} of {n_static} "
                f"splits; CSV: {md.link(path)}):"
            )
            md.p(tables.markdown(disp, ["l", "r", "r", "r", "r"]))
    hv = pareto.hypervolume_table(pts)
    if not hv.empty:
        md.h(3, f"Hypervolume{suffix}")
        path = _csv(hv, tabs / f"hypervolume_{tag}.csv")
        gains = hv.loc[hv["set"] == "static + trained"]
        if not gains.empty:
            glance.append(
                "hypervolume gain of static + trained over the static grid: "
                + ", ".join(
                    f"{g:+.1f} % ({pareto.PLANES[n].title})"
                    for n, g in zip(gains["plane"], gains["gain_pct"], strict=True)
                )
            )
        disp = hv.copy()
        disp["reference point"] = [
            f"({a:.2f}, {b:.2f})" for a, b in zip(hv["ref_x"], hv["ref_y"], strict=True)
        ]
        disp["hypervolume"] = [f"{v:.1f}" for v in hv["hypervolume"]]
        disp["gain over static [%]"] = [
            "" if math.isnan(g) else f"{g:+.1f}" for g in hv["gain_pct"]
        ]
        disp["plane"] = [pareto.PLANES[n].title for n in hv["plane"]]
        disp["front points"] = hv["front_points"]
        disp = disp[
            [
                "plane",
                "set",
                "points",
                "front points",
                "hypervolume",
                "reference point",
                "gain over static [%]",
            ]
        ]
        md.p(tables.markdown(disp, ["l", "l", "r", "r", "r", "r", "r"]))
        md.p(
            "Hypervolume: the area of the plane dominated by a set and bounded by the reference "
            "point (units: steps x % for sync vs served, steps x steps for sync vs E2E). One "
            "reference point per plane, shared by the sets: the worst value of each objective "
            "over the static front and the trained front, pushed out by 10 % of its range. "
            f"Larger is better. CSV: {md.link(path)}."
        )

    # Claims check
    md.h(3, f"Claims check: is any static split better beyond the noise?{suffix}")
    cc = placement.claims_check(pts, episodes, z=z)
    if cc.empty or n_static == 0:
        md.p(
            "_Needs static splits and trained or rule-based policies in the same scenario: a "
            "static grid (`python -m launch static --grid 0.1 --out ...`) and trained policies "
            "would fill it._"
        )
    else:
        path = _csv(cc, tabs / f"claims_{tag}.csv")
        trained = cc.loc[cc["role"] == "trained"]
        ok = trained.groupby("point")["verdict"].apply(lambda v: (v != "dominated").all())
        md.p(_claims_text(ok, z))
        if not trained.empty:
            glance.append(
                f"{int(ok.sum())} of {len(ok)} trained policies on the static front or within "
                "noise of it in both planes"
            )
        md.p(_claims_markdown(cc))
        md.p(f"CSV: {md.link(path)}.")

    # Heatmaps
    md.h(3, f"Static grid heatmaps{suffix}")
    made = [drawn["heatmap_key"], drawn["heatmap_more"]]
    if not any(made):
        md.p(
            "_Needs a static grid with at least two values of each share: "
            "`python -m launch static --grid 0.1 --out ...` would fill it._"
        )
    for p, alt in zip(made, ("key metrics", "queues and other metrics"), strict=True):
        if p is not None:
            md.img(p, f"Static grid heatmaps: {alt}")
    return f"**{scenario}**: " + "; ".join(glance) + "."


def _claims_text(ok: Any, z: float) -> str:
    """What the claims check means; ``ok``: per trained policy, never dominated beyond noise."""
    lines = [
        "For each trained or rule-based policy and each plane: `on front` when no static split "
        "dominates its mean point; `within noise` when some do, but none beyond the noise; "
        "`dominated` when at least one static split is better in both objectives beyond the "
        f"noise. Beyond the noise means: the split's improvement in each objective exceeds "
        f"z = {z:g} standard errors of that improvement. The standard error is that of the "
        "per-episode differences when both were evaluated on the same episode seeds (common "
        "random numbers, paired over the shared seeds), else Welch's sqrt(s1²/n1 + s2²/n2) over "
        "episodes. "
        "`strongest` is the dominating split with the largest smaller z-score; its gains are "
        "positive when the split is better.",
    ]
    if len(ok):
        lines.append(
            f"\n**{int(ok.sum())} of {len(ok)} trained policies** are on the static front or "
            "within noise of it in both planes."
        )
    return "\n".join(lines)


def _claims_markdown(cc: Any) -> str:
    from analysis.pareto import PLANES
    from analysis.tables import markdown

    def pm(v: float, se: float) -> str:
        if math.isnan(v):
            return ""
        return f"{v:+.2f} ± {se:.2f}" if math.isfinite(se) else f"{v:+.2f}"

    rows = []
    for _, r in cc.iterrows():
        rows.append(
            {
                "policy": r["label"],
                "plane": PLANES[r["plane"]].title,
                "verdict": r["verdict"],
                "splits dominating the means": r["dominating"],
                "beyond noise": r["beyond_noise"],
                "strongest": r["strongest"],
                "its sync delay gain": pm(r["x_gain"], r["x_se"]),
                "its other gain": pm(r["y_gain"], r["y_se"]),
                "paired": "" if r["paired"] is None else ("yes" if r["paired"] else "no"),
            }
        )
    import pandas as pd

    return markdown(pd.DataFrame(rows), ["l", "l", "l", "r", "r", "l", "r", "r", "l"])


def _curves_section(md: MarkdownDoc, curves: Any, pts: Any, figs: Path) -> None:
    from analysis.curves import learning_curves, trial_tags

    md.h(2, "Learning curves")
    if curves.empty:
        md.p(
            "_No training logs: PPO Tune trial directories (result.json / progress.csv) or "
            "`python -m launch train --out` outputs under this directory would fill it._"
        )
        return
    _say("learning curves ...")
    p = learning_curves(
        curves, figs / "learning_curves.png", tags=trial_tags(pts) if len(pts) else None
    )
    n = curves.groupby(["source", "trial_id"], dropna=False).ngroups
    if p is None:
        md.p(f"_{n} training logs, but none has the metrics the curves show._")
        return
    md.img(p, "Learning curves")
    md.p(
        f"{n} trials. Training metrics are RLlib's running means over the last episodes of "
        "the stochastic training policy, not the deterministic evaluation of Table I."
    )


def _pool_section(
    md: MarkdownDoc, root: Path, episodes: Any, figs: Path, tabs: Path, reps: int
) -> None:
    """The credit pool: every evaluated pool policy, then the pool-compare runs drawn."""
    from analysis import pool_figures, tables

    md.h(2, "Multi-cell credit pool")
    table = tables.pool_policy_table(episodes)
    if not table.empty:
        md.p(
            "Every pool policy evaluated here (rules from `pool-rules` trials and `launch "
            "pool-compare`, learned controllers from pool PPO trials and `launch eval`), mean ± "
            "std over its evaluation episodes, with the pool on unless the policy is `noncoop` "
            f"or `*_pool_off`. Table: {md.link(_csv(table, tabs / 'pool_policies.csv'))}."
        )
        md.p(tables.pool_policy_markdown(table))
    from analysis import runs_report

    runs_report.pool_runs_section(md, episodes, tabs, reps)
    dirs: list[Path] = []
    if not episodes.empty and "run_kind" in episodes:
        srcs = episodes.loc[episodes["run_kind"].astype(str) == "pool-compare", "source"]
        dirs = [root / s for s in sorted(srcs.unique())]
    if not dirs and table.empty:
        md.p(
            "_No pool comparison here: `python -m launch sweep pool` or `python -m launch "
            "pool-compare --out DIR/pool` would fill it._"
        )
    for i, d in enumerate(dirs):
        name = md.rel(d)
        md.h(3, f"Pool comparison: {name}")
        try:
            png = pool_figures.pool_flow_figure(d, figs / f"pool_flow_{i}.png")
            md.img(png, f"Pool comparison {name}")
            md.p(pool_figures.pool_table(d))
        except Exception as exc:  # keep the rest of the report
            md.p(f"_Could not draw {name}: {type(exc).__name__}: {exc}_")


def _paper_section(md: MarkdownDoc, tabs: Path) -> None:
    from analysis import tables

    md.h(2, "The paper's reported numbers (for reference)")
    ref = tables.paper_reference()
    for key, df in ref.items():
        _csv(df, tabs / f"paper_{key}.csv")
    md.p(tables.paper_reference_markdown())
    md.p(
        "Source: the MetaLore paper and its authors' code (docs/model/cell.md). CSV: "
        + ", ".join(md.link(tabs / f"paper_{k}.csv") for k in ref)
        + "."
    )


def _resumed_sources(episodes: Any) -> list[tuple[str, int]]:
    """``(source, env steps restored)`` of result sets whose training resumed from a checkpoint."""
    import pandas as pd

    if "run_resumed_from_steps" not in episodes:
        return []
    steps = pd.to_numeric(episodes["run_resumed_from_steps"], errors="coerce").fillna(0)
    hit = episodes.loc[steps > 0, ["source"]].assign(steps=steps[steps > 0])
    return [(str(src), int(g["steps"].max())) for src, g in hit.groupby("source", sort=True)]


def _inputs_section(md: MarkdownDoc, data: Any, sup: int) -> None:
    """What was read; ``sup``: evaluations superseded by a repeat (see ``collect.points``)."""
    import pandas as pd

    from analysis.tables import markdown

    md.h(2, "What was read")
    e = data.episodes
    if e.empty:
        md.p("_No result sets._")
    else:
        rows = []
        for src, g in e.groupby("source", sort=True):
            per = g.groupby("point").size()
            seeds = pd.to_numeric(g["seed"], errors="coerce")
            rows.append(
                {
                    "result set": src,
                    "kind": g["run_kind"].iloc[0],
                    "scenario": ", ".join(sorted(g["scenario"].astype(str).unique())),
                    "policies": int(g["point"].nunique()),
                    "episodes / policy": f"{per.min()}"
                    if per.min() == per.max()
                    else f"{per.min()}-{per.max()}",
                    "episode seeds": f"{int(seeds.min())}-{int(seeds.max())}"
                    if seeds.notna().any()
                    else "",
                    "δ, penalty": ", ".join(
                        sorted(
                            {
                                f"{d:g}/{p:g}"
                                for d, p in zip(g["delta"], g["penalty"], strict=True)
                                if pd.notna(d) and pd.notna(p)
                            }
                        )
                    ),
                    "git commit": str(g["git_commit"].iloc[0] or "")[:12],
                }
            )
        md.p(markdown(pd.DataFrame(rows), ["l", "l", "l", "r", "r", "r", "l", "l"]))
        resumed = _resumed_sources(e)
        if resumed:
            md.p(
                f"{len(resumed)} result set(s) come from training resumed from a mid-run "
                "checkpoint after a crash (column `run_resumed_from_steps` of results.csv: the "
                "env steps restored). Their training was not one uninterrupted run, so their "
                "numbers can differ from those of the same run without the crash: "
                + ", ".join(f"{src} ({steps:,} steps)" for src, steps in resumed)
                + "."
            )
    if sup:
        md.p(
            f"{sup} static or baseline evaluation(s) repeated in several result sets were "
            "used once (the set with the most episodes, then the newest)."
        )
    for path, why in data.skipped:
        md.p(f"Skipped {md.rel(path)}: {why}")
