"""The report's "Claims over training runs" section: tables and figures of :mod:`analysis.runs`.

* ``run_scores.csv`` next to ``report.md``: one row per training run (scenario, setting,
  controller, seed, score and its parts), from which every interval of the section recomputes
  (:func:`recompute`);
* a per-setting table: IQM and mean of the normalised score, the mean margin to the static front,
  the front verdict and the probabilities of improvement, each with its 95 % interval over runs;
* figures drawn with ``rliable``'s plotting: the aggregate estimates (IQM, mean, optimality gap)
  and the performance profile over all settings, PPO beside the queue-aware rule (whose
  "runs" are the block-bootstrap pseudo-runs of :func:`analysis.runs.baseline_pseudo_runs`);
* learning curves over runs: per setting, the IQM over its runs of the training episode return
  with its 95 % band (one small panel per setting).
"""

from __future__ import annotations

import math
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from analysis import runs
from analysis.plot_style import save

RUN_SCORES = "run_scores.csv"
CURVE_METRIC = "env_runners/episode_return_mean"


def _ci(row: Any, stem: str, digits: int = 2) -> str:
    point, lo, hi = row[stem], row[f"{stem}_lo"], row[f"{stem}_hi"]
    if not all(math.isfinite(float(v)) for v in (point, lo, hi)):
        return "n/a"
    return f"{point:.{digits}f} [{lo:.{digits}f}, {hi:.{digits}f}]"


def _mean_ci_columns(stats: pd.DataFrame) -> pd.DataFrame:
    stats = stats.rename(columns={"score_iqm": "iqm", "score_iqm_lo": "iqm_lo",
                                  "score_iqm_hi": "iqm_hi", "score_mean": "mean",
                                  "score_mean_lo": "mean_lo", "score_mean_hi": "mean_hi",
                                  "margin_mean": "margin"})  # fmt: skip
    return stats


def stats_markdown(stats: pd.DataFrame) -> str:
    """The per-setting table of the section (Markdown)."""
    s = _mean_ci_columns(stats)
    head = (
        "| scenario | setting | runs (seeds) | score IQM [95 % CI] | score mean [95 % CI] | "
        "margin to the front [95 % CI] | verdict | P(better than best split) | "
        "P(better than queue-aware) |\n| :--- | :--- | ---: | ---: | ---: | ---: | :--- | ---: | "
        "---: |\n"
    )
    lines = [
        f"| {r['scenario']} | {runs.setting_name(r)} | {r['runs']} ({r['seeds']}) | "
        f"{_ci(r, 'iqm')} | {_ci(r, 'mean')} | {_ci(r, 'margin', 1)} | **{r['verdict']}** | "
        f"{_ci(r, 'poi_best_split')} | {_ci(r, 'poi_queue_aware')} |"
        for _, r in s.iterrows()
    ]
    return head + "\n".join(lines) + "\n"


def method_markdown() -> str:
    return (
        "Each training run (one training seed of a reward setting) gets one score: the mean "
        "episode return of its evaluation episodes under the setting's own reward, normalised "
        "between the worst (0) and the best (1) static split of the 0.1 grid for that return on "
        "the same episodes; above 1 is more return than every static split. Its **margin** is "
        "its signed distance to the static front in the (sync delay, served %) plane in noise "
        "units of 1 step and 1 pp (the lead over a front split it dominates, or minus the gap to "
        "a split that dominates it). Intervals are 95 % stratified bootstrap intervals over "
        f"runs ({runs.REPS} replications, {runs.POI_REPS} for the probability of improvement, "
        f"bootstrap seed {runs.BOOTSTRAP_SEED}), computed by "
        "`rliable`. The **verdict** comes from the interval [lo, hi] of the mean margin with a "
        f"threshold of {runs.THRESHOLD:g} noise unit: *beyond* if lo > 1, *behind* if hi < -1, "
        "*on* if lo >= -1, *inconclusive* otherwise. The **probability of improvement** "
        "P(X > Y) compares the runs' scores with a baseline that has no training seeds (the "
        "best static split for the setting's return, the queue-aware rule): the baseline's "
        f"per-episode normalised return is resampled in blocks of {runs.BLOCK} consecutive "
        f"episodes into {runs.PSEUDO_RUNS} pseudo-runs of as many episodes as the runs were "
        "evaluated on. Every interval recomputes from `run_scores.csv` "
        "(`analysis.runs_report.recompute`)."
    )


def _pseudo_matrix(scores: pd.DataFrame, episodes: pd.DataFrame, names: list[str]) -> Any:
    """``(pseudo-runs, settings)`` of the queue-aware rule, in the settings' order."""
    cols = []
    for key, g in scores.groupby(list(runs.SETTING_KEYS), sort=False):
        row = g.iloc[0]
        if runs.setting_name(dict(zip(runs.SETTING_KEYS, key, strict=True))) not in names:
            continue
        per_ep = runs._baseline_scores(episodes, row, None, "rule")
        cols.append(runs.baseline_pseudo_runs(per_ep))
    return np.column_stack(cols) if cols else np.empty((0, 0))


def aggregate_figure(matrices: dict[str, Any], path: Path, reps: int = runs.REPS) -> Path | None:
    """rliable's interval-estimate plot: IQM, mean and optimality gap per method."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from rliable import plot_utils
    points, cis = {}, {}
    for name, m in matrices.items():
        if m.size == 0 or not np.isfinite(m).all():
            continue
        agg = runs.aggregate(m, reps)
        points[name] = np.array([agg[k][0] for k in ("iqm", "mean", "optimality_gap")])
        cis[name] = np.array([[agg[k][1] for k in ("iqm", "mean", "optimality_gap")],
                              [agg[k][2] for k in ("iqm", "mean", "optimality_gap")]])  # fmt: skip
    if not points:
        return None
    fig, _ = plot_utils.plot_interval_estimates(
        points, cis, metric_names=["IQM", "Mean", "Optimality gap"],
        algorithms=list(points), xlabel="normalised score (0 worst, 1 best static split)",
        row_height=0.75, subfigure_width=3.6, xlabel_y_coordinate=-0.3,
    )  # fmt: skip
    return save(fig, path, bbox_inches="tight", dpi=110)


def profile_figure(matrices: dict[str, Any], path: Path, reps: int = runs.REPS) -> Path | None:
    """rliable's performance profile: the fraction of runs scoring above tau, with bands."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import matplotlib.pyplot as plt
        from rliable import plot_utils
    finite = {k: m for k, m in matrices.items() if m.size and np.isfinite(m).all()}
    if not finite:
        return None
    hi = max(1.2, max(float(m.max()) for m in finite.values()) + 0.05)
    lo = min(0.0, min(float(m.min()) for m in finite.values()) - 0.05)
    taus = np.linspace(lo, hi, 101)
    prof, band = {}, {}
    for name, m in finite.items():
        prof[name], band[name] = runs.profiles(m, taus, reps)
    fig, ax = plt.subplots(figsize=(7, 4.2))
    plot_utils.plot_performance_profiles(
        prof, taus, performance_profile_cis=band, xlabel=r"normalised score $\tau$",
        ylabel=r"fraction of runs with score > $\tau$", ax=ax, labelsize="medium",
        ticklabelsize="medium",
    )  # fmt: skip
    ax.axvline(1.0, color="#888888", lw=0.8, ls="--")
    ax.legend(ax.get_lines()[: len(prof)], list(prof), loc="lower left", fontsize="small",
              frameon=False)  # fmt: skip
    ax.set_title("Performance profile over all settings (dashed: the best static split)")
    return save(fig, path, bbox_inches="tight")


def learning_figure(curves: pd.DataFrame, path: Path) -> Path | None:
    """Per setting (scenario, δ, penalty), the IQM over its runs of the training return with a
    95 % band: the paper's reward grid, pool and adaptivity runs alike, TensorBoard-free."""
    if curves.empty or CURVE_METRIC not in curves or "source" not in curves:
        return None
    import matplotlib.pyplot as plt

    c = curves.dropna(subset=[CURVE_METRIC, "delta", "penalty"])
    c = c.assign(preset=c["preset"].fillna("?") if "preset" in c else "?")
    settings = sorted(c.groupby(["preset", "penalty", "delta"]).groups,
                      key=lambda k: (str(k[0]), -k[1], -k[2]))  # fmt: skip
    if not settings:
        return None
    several = len({s[0] for s in settings}) > 1
    cols = min(7, len(settings))
    nrows = math.ceil(len(settings) / cols)
    fig, axes = plt.subplots(nrows, cols, figsize=(2.6 * cols, 2.2 * nrows + 0.6), squeeze=False)
    for ax, (preset, penalty, delta) in zip(axes.flat, settings, strict=False):
        sub = c.loc[(c["preset"] == preset) & (c["penalty"] == penalty) & (c["delta"] == delta)]
        table = sub.pivot_table(index="iteration", columns="source", values=CURVE_METRIC)
        table = table.dropna()
        steps = sub.groupby("iteration")["env_steps"].mean().reindex(table.index)
        if table.empty:
            continue
        x = table.to_numpy(dtype=np.float64).T[:, None, :]  # (runs, 1 task, iterations)
        iqm, lo, hi = _curve_iqm(x)
        ax.plot(steps / 1000, iqm, color="#1f77b4", lw=1.4)
        ax.fill_between(steps / 1000, lo, hi, color="#1f77b4", alpha=0.25, lw=0)
        name = f"{preset}: " if several else ""
        ax.set_title(f"{name}δ {delta:g}, penalty {penalty:g} ({x.shape[0]} runs)",
                     fontsize="small")  # fmt: skip
        ax.tick_params(labelsize="x-small")
    for ax in list(axes.flat)[len(settings) :]:
        ax.set_visible(False)
    fig.supxlabel("env steps [thousands]", fontsize="small")
    fig.supylabel("training episode return (IQM over runs)", fontsize="small")
    fig.tight_layout()
    return save(fig, path)


def _curve_iqm(x: NDArray[np.float64]) -> tuple[Any, Any, Any]:
    """IQM over runs per iteration with rliable's 95 % stratified bootstrap band."""
    library, metrics = runs._rliable()

    def func(s: NDArray[np.float64]) -> NDArray[np.float64]:
        return np.array([metrics.aggregate_iqm(s[..., i]) for i in range(s.shape[-1])])

    point, ci = runs._estimate(library, {"c": x}, func, 500, runs.BOOTSTRAP_SEED)
    return point["c"], ci["c"][0], ci["c"][1]


def recompute(path: str | Path, episodes: pd.DataFrame, reps: int = runs.REPS) -> pd.DataFrame:
    """The per-setting statistics from a ``run_scores.csv`` (and the episode table for the
    baselines' pseudo-runs): what the report's table shows."""
    return runs.setting_stats(pd.read_csv(path), episodes, reps)


def report_section(
    md: Any,
    root: Path,
    episodes: pd.DataFrame,
    curves: pd.DataFrame,
    figs: Path,
    tabs: Path,
    reps: int = runs.REPS,
) -> pd.DataFrame:
    """Write the section into ``md`` (see the module docstring); returns the per-setting
    statistics (empty when no trained run has a static grid to be scored against)."""
    scores = runs.run_scores(episodes)
    if scores.empty:  # no reward-grid runs: still the learning curves of any runs (pool, ...)
        fig_path = learning_figure(curves, figs / "runs_learning_curves.png")
        if fig_path is not None:
            md.h(2, "Learning curves over runs")
            md.p("Per setting, the IQM over its training runs of the training episode return "
                 "with its 95 % stratified bootstrap band (`rliable`).")  # fmt: skip
            md.img(fig_path, "Learning curves over runs")
        return pd.DataFrame()
    scores.to_csv(root / RUN_SCORES, index=False)
    stats = runs.setting_stats(scores, episodes, reps)
    stats.to_csv(tabs / "run_statistics.csv", index=False)
    md.h(2, "Claims over training runs")
    counts = stats["verdict"].value_counts().to_dict()
    good = counts.get(runs.ON, 0) + counts.get(runs.BEYOND, 0)
    md.p(
        f"**{good} of {len(stats)} reward settings on the static front or beyond by the "
        f"run-level verdict** ({', '.join(f'{v} {k}' for k, v in counts.items())}; "
        f"{len(scores)} training runs, per-run scores in {md.link(root / RUN_SCORES)})."
    )
    md.p(method_markdown())
    md.p(stats_markdown(stats))
    matrix, names = runs.score_matrix(scores)
    matrices = {"PPO": matrix, "queue-aware rule": _pseudo_matrix(scores, episodes, names)}
    if matrix.size:
        agg = runs.aggregate(matrix, reps)
        md.p(
            f"Over all {len(names)} settings with {matrix.shape[0]} runs each: IQM "
            f"{agg['iqm'][0]:.2f} [{agg['iqm'][1]:.2f}, {agg['iqm'][2]:.2f}], mean "
            f"{agg['mean'][0]:.2f} [{agg['mean'][1]:.2f}, {agg['mean'][2]:.2f}], optimality gap "
            f"{agg['optimality_gap'][0]:.2f} [{agg['optimality_gap'][1]:.2f}, "
            f"{agg['optimality_gap'][2]:.2f}] (normalised score)."
        )
    for fig_path, title in (
        (aggregate_figure(matrices, figs / "runs_aggregate.png", reps), "Aggregate estimates"),
        (profile_figure(matrices, figs / "runs_profile.png", reps), "Performance profile"),
        (learning_figure(curves, figs / "runs_learning_curves.png"), "Learning curves over runs"),
    ):
        if fig_path is not None:
            md.img(fig_path, title)
    return stats


def pool_runs_section(md: Any, episodes: pd.DataFrame, tabs: Path, reps: int = runs.REPS) -> None:
    """The pool section's run-level table: each learned controller's fulfilment over its
    training runs against the greedy rule and non-cooperation (:func:`analysis.runs.pool_stats`)."""
    stats = runs.pool_stats(episodes, reps=reps)
    if stats.empty:
        return
    stats.to_csv(tabs / "pool_run_statistics.csv", index=False)
    lines = [
        "| scenario | controller | setting | runs | fulfilment IQM [95 % CI] | mean [95 % CI] | "
        "greedy | P(better than greedy) | non-coop. | P(better than non-coop.) |",
        "| :--- | :--- | :--- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    lines += [
        f"| {r['scenario']} | {r['controller']} | {r['setting']} | {r['runs']} | "
        f"{_ci(r, 'iqm', 1)} | "
        f"{_ci(r, 'mean', 1)} | {r['rule_greedy']:.1f} | {_ci(r, 'poi_greedy')} | "
        f"{r['rule_noncoop']:.1f} | {_ci(r, 'poi_noncoop')} |"
        for _, r in stats.iterrows()
    ]
    md.p(
        "Over training runs: each learned controller's fulfilment (%) per run (the mean over its "
        "evaluation episodes), IQM and mean with 95 % stratified bootstrap intervals over runs, "
        "and the probability that a run beats the rule on the same episodes (the rules, without "
        f"training seeds, resampled in blocks of {runs.BLOCK} episodes into "
        f"{runs.PSEUDO_RUNS} pseudo-runs; `analysis.runs`)."
    )
    md.p("\n".join(lines) + "\n")


def adaptivity_runs_markdown(
    table: pd.DataFrame, groups: tuple[str, ...], reps: int = runs.REPS
) -> str:
    """Per variant, the margins of one recipe's training seeds (the candidates of ``groups``)
    with their mean, its 95 % interval over seeds and the run-level front verdict."""
    sub = table.loc[table["group"].isin(groups)]
    if sub["candidate"].nunique() < 2:
        return ""
    stats = runs.margin_stats(sub, "variant", reps=reps)
    lines = [
        "| variant | seeds | margins | mean margin [95 % CI] | verdict over seeds |",
        "| :--- | ---: | :--- | ---: | :--- |",
    ]
    lines += [
        f"| {r['variant']} | {r['runs']} | {r['margins']} | "
        f"{_ci(r.rename({'margin_mean': 'm', 'margin_lo': 'm_lo', 'margin_hi': 'm_hi'}), 'm', 1)}"
        f" | {r['verdict']} |"
        for _, r in stats.iterrows()
    ]
    return "\n".join(lines) + "\n"
