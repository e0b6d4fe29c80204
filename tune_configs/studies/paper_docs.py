"""The paper study's documentation: ``docs/results`` from a finished ``paper-grid`` study.

Figures (Fig. 4 and 5 per penalty), Table I, the claims check and the shipped policies, written as
``OUT/README.md`` plus PNGs. Run after ``python -m launch sweep paper-grid --budget paper`` and
``python -m launch report``::

    python -m tune_configs.studies.paper_docs results/paper-grid-paper docs/results \
        --models models/paper --timing "sweep 215 s + report 29 s on a quiet 2-core machine"
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tune_configs.sweeps.common import PAPER_DELTAS as DELTAS
from tune_configs.sweeps.common import PAPER_PENALTIES as PENALTIES

PENALTY_FIGURES = (0.0, -1.0, -5.0)


def _fmt_pm(mean: Any, std: Any, digits: int = 2) -> str:
    import math

    if mean is None or not math.isfinite(float(mean)):
        return "n/a"
    if std is None or not math.isfinite(float(std)):
        return f"{float(mean):.{digits}f}"
    return f"{float(mean):.{digits}f} ± {float(std):.{digits}f}"


def write_docs(
    exp_dir: str | Path,
    out_dir: str | Path,
    models: str | Path | None = None,
    timing: str | None = None,
) -> Path:
    """Figures (Fig. 4 and 5 per penalty), Table I, the claims check and the shipped policies of
    a finished ``paper-grid`` study as ``out_dir/README.md`` plus PNGs; returns the Markdown.

    ``exp_dir``: the sweep's experiment directory (after ``launch report``, or not); ``models``:
    the directory ``launch export --sweep`` shipped to (its ``index.json``); ``timing``: a
    sentence on how long the study took, quoted as given.
    """
    import json

    from analysis import figures, placement, plot_style, tables
    from analysis.collect import collect, points

    exp, out = Path(exp_dir).resolve(), Path(out_dir).resolve()
    out.mkdir(parents=True, exist_ok=True)
    data = collect(exp, write=False)
    allp = points(data.episodes)
    pts = allp.loc[~allp["superseded"] & (allp["scenario"] == "paper") & (allp["role"] != "pool")]
    trained = pts.loc[pts["role"] == "trained"]
    seeds = trained.groupby(["delta", "penalty"]).size()
    lo, hi = int(seeds.min()), int(seeds.max())
    n_seeds = str(lo) if lo == hi else f"{lo}-{hi}"
    lines = [
        "# Results: the paper study",
        "",
        "Everything here comes from one run of the paper's reward grid (δ in "
        f"{{{', '.join(f'{d:g}' for d in DELTAS)}}} x penalty in "
        f"{{{', '.join(f'{p:g}' for p in PENALTIES)}}}, {n_seeds} training seeds each, "
        f"{int(trained['timesteps'].max()):,} env steps per seed with the "
        "default PPO settings), evaluated deterministically on the 100 episodes of the static "
        "baselines (seeds 0..99), and its report:",
        "",
        "```bash",
        "python -m launch sweep paper-grid --budget paper          # -> results/paper-grid-paper",
        "python -m launch report results/paper-grid-paper          # report.md, figures, tables",
        "python -m launch export --sweep results/paper-grid-paper --out models/paper",
        "```",
        "",
    ]
    if timing:
        lines += [timing, ""]
    lines += [
        "Figures: per penalty, the exhaustive static grid (grey, its Pareto front black) with "
        "every trained policy (one point per training seed, tags as in Table I; bars ±1 std "
        "over episodes). The report draws all 63 policies in one plane; split by penalty they "
        "can be told apart.",
        "",
    ]
    for p in PENALTY_FIGURES:
        sub = pts.loc[(pts["role"] != "trained") | (pts["penalty"] == p)]
        if not (sub["role"] == "trained").any():
            continue
        for key, plane, what in (
            ("fig4", "sync_served", "sync delay vs traffic served"),
            ("fig5", "sync_e2e", "sync delay vs end-to-end delay"),
        ):
            name = f"{key}_penalty{p:g}.png"
            title = f"Fig. {key[-1]} ({what}): PPO with delay penalty {p:g}, δ 0.9 ... 0.1"
            if figures.plane_figure(sub, plane, out / name, title=title) is not None:
                lines += [f"![{title}]({name})", ""]
    idle = trained.loc[trained["served_pct"] < 10.0].sort_values("tag", key=plot_style.tag_order)
    if not idle.empty:
        lines += [
            "Reading them: "
            + ", ".join(str(t) for t in idle["tag"])
            + " serve under 10 % of the UE jobs: with a small δ the sync reward is tiny, so "
            "not serving at all avoids the delay penalty (the reward is maximised, not the "
            "paper's objectives). Their delays average over the few jobs they complete, hence "
            "the wide bars at the far left.",
            "",
        ]
    lines += _claims_over_runs(out, data)
    t1 = tables.table_one(pts)
    lines += [
        "## Table I: static picks, rule-based baselines, trained policies",
        "",
        "Mean ± std over the 100 evaluation episodes (pooled rows: over all seeds' episodes). "
        "Tags: A-G penalty 0, H-N penalty -1, O-U penalty -5, δ from 0.9 down to 0.1 within "
        "each; the digit is the training seed + 1.",
        "",
        tables.table_one_markdown(t1),
        "",
    ]
    pooled = t1.loc[~t1["row"].astype(str).str.match(r"trained [A-Z]+\d+$")]
    (out / "table_one_pooled.md").write_text(tables.table_one_markdown(pooled) + "\n")
    cc = placement.claims_check(pts, data.episodes)
    if not cc.empty:
        verdicts = cc.pivot_table(
            index=["tag", "label"], columns="plane", values="verdict", aggfunc="first"
        ).reset_index()
        ours = cc.loc[cc["role"] == "trained"]
        counts = {
            plane: ours.loc[ours["plane"] == plane, "verdict"].value_counts().to_dict()
            for plane in ours["plane"].unique()
        }
        lines += [
            "## Claims check: is a static split better beyond the noise?",
            "",
            "Paired over the common episode seeds, z = 1.96 per objective "
            "(`analysis.placement.claims_check`). Counts over the trained policies: "
            + "; ".join(
                f"{plane}: " + ", ".join(f"{n} {v}" for v, n in sorted(c.items()))
                for plane, c in counts.items()
            )
            + ".",
            "",
            "| policy | sync vs served | sync vs E2E |",
            "| :--- | :--- | :--- |",
        ]
        for _, r in verdicts.loc[verdicts["tag"].astype(str) != ""].iterrows():
            lines.append(f"| {r['label']} | {r.get('sync_served', '')} | {r.get('sync_e2e', '')} |")
        lines.append("")
    if models is not None and (Path(models) / "index.json").is_file():
        index = json.loads((Path(models) / "index.json").read_text())
        rel = Path(models).resolve()
        lines += [
            "## Shipped policies",
            "",
            f"One policy per reward setting in `{rel.name}/<setting>/` of `models/` "
            "(`policy.safetensors` + `policy.json`, no pickle): the training seed with the "
            "highest mean return on 100 tuning episodes (seeds 1,000,000..1,000,099, never "
            "used for evaluation) is shipped. Try one: `python -m launch eval "
            "models/paper/d0.9_p0`. Every seed (evaluation on seeds 0..99):",
            "",
            "| setting | seed | tuning return | shipped | sync delay | E2E delay | served % "
            "| return |",
            "| :--- | ---: | ---: | :---: | ---: | ---: | ---: | ---: |",
        ]
        for r in index:
            ev = r.get("eval", {})
            lines.append(
                f"| {r['setting']} | {r['seed']} | {r['tuning_return']:.1f} | "
                f"{'yes' if r['shipped'] else ''} | "
                f"{_fmt_pm(ev.get('sync_delay'), ev.get('sync_delay_std'))} | "
                f"{_fmt_pm(ev.get('e2e_delay'), ev.get('e2e_delay_std'))} | "
                f"{_fmt_pm(ev.get('served_pct'), ev.get('served_pct_std'))} | "
                f"{_fmt_pm(ev.get('episode_return'), ev.get('episode_return_std'), 0)} |"
            )
        lines.append("")
    md = out / "README.md"
    md.write_text("\n".join(lines))
    return md


def _claims_over_runs(out: Path, data: Any) -> list[str]:
    """The report's section on claims over training runs (analysis.runs_report), here."""
    from analysis import runs_report
    from analysis.report import MarkdownDoc

    doc = MarkdownDoc(out)
    runs_report.report_section(doc, out, data.episodes, data.curves, out, out)
    return [doc.text(), ""] if doc.parts else []


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser(
        prog="python -m tune_configs.studies.paper_docs",
        description="write docs/results from a finished paper-grid study",
    )
    parser.add_argument("exp_dir", help="the sweep's experiment directory")
    parser.add_argument("out_dir", help="where to write README.md and the figures")
    parser.add_argument("--models", default=None, help="shipped policies (launch export --sweep)")
    parser.add_argument("--timing", default=None, help="a sentence on the study's wall time")
    a = parser.parse_args()
    print(write_docs(a.exp_dir, a.out_dir, a.models, a.timing))
