"""Learning curves from the tidy curve table of :mod:`analysis.collect`.

* :func:`learning_curves`: the training metrics of every trial against env steps, one line per
  trial, coloured and named like the trained points of the Pareto figures (:mod:`analysis.figures`);
* :func:`trial_tags`: which training directory a trained point's tag belongs to.
"""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any

import pandas as pd
from matplotlib.ticker import FuncFormatter

from analysis.collect import METRIC_LABELS
from analysis.plot_style import DPI, legend_below, plt, save, tag_order, trained_colors

# Learning-curve panels: (candidate columns, first present wins; axis label).
CURVE_METRICS: tuple[tuple[tuple[str, ...], str], ...] = (
    (("env_runners/episode_return_mean",), "episode return (training mean)"),
    *(
        ((f"env_runners/metalore/{m}", f"env_runners/{m}"), METRIC_LABELS[m])
        for m in ("sync_delay", "e2e_delay", "served_pct")
    ),
    (("env_runners/metalore/mean_w_c", "env_runners/mean_w_c"), "mean UE compute share w_c"),
    (("learners/default_policy/entropy",), "policy entropy"),
)


def _steps_text(v: float, _pos: int | None = None) -> str:
    """Tick label for env steps: 0, 500, 20k, 1.5M."""
    a = abs(v)
    if a >= 1e6:
        return f"{v / 1e6:g}M"
    if a >= 1e3:
        return f"{v / 1e3:g}k"
    return f"{v:g}"


def learning_curves(
    curves: pd.DataFrame,
    out_png: str | Path,
    tags: dict[str, str] | None = None,
    title: str = "Learning curves",
) -> Path | None:
    """Training metrics against env steps, one line per trial (None without curves).

    ``tags`` maps a trial's ``source`` directory to the tag of its evaluated point, so lines and
    points share names.
    """
    if curves.empty:
        return None
    metrics: list[tuple[str, str]] = []
    for candidates, lab in CURVE_METRICS:
        for col in candidates:
            if col in curves.columns and curves[col].notna().any():
                metrics.append((col, lab))
                break
    if not metrics:
        return None
    x = (
        "env_steps"
        if "env_steps" in curves.columns and curves["env_steps"].notna().any()
        else ("iteration")
    )
    ncols = 2 if len(metrics) > 1 else 1
    nrows = math.ceil(len(metrics) / ncols)
    fig, axes = plt.subplots(
        nrows, ncols, figsize=(6.4 * ncols, 3.6 * nrows + 0.9), squeeze=False, dpi=DPI
    )
    trials = list(curves.groupby(["source", "trial_id"], sort=True, dropna=False))
    # tagged trials first, in tag order, so colours match the trained points of Fig. 4 and 5
    trials.sort(key=lambda t: tag_order(pd.Series([(tags or {}).get(str(t[0][0]), "~")]))[0])
    keys: list[tuple[str, str]] = []  # (colour key = reward setting, legend name) per trial
    for (source, trial), df in trials:
        delta, pen = df["delta"].iloc[0], df["penalty"].iloc[0]
        tag = (tags or {}).get(str(source), "")
        desc = f"δ={float(delta):g}, p={float(pen):g}" if pd.notna(delta) and pd.notna(pen) else ""
        letter = re.sub(r"\d+$", "", tag)
        keys.append((letter or desc or str(trial), f"{letter}: {desc}" if letter else desc))
    runs = pd.Series([k for k, _ in keys]).value_counts()
    order = list(dict.fromkeys(k for k, _ in keys))
    colors = dict(zip(order, trained_colors(len(order)), strict=True))
    lines: dict[str, Any] = {}
    for ((source, trial), df), (key, desc) in zip(trials, keys, strict=True):
        df = df.sort_values(x)
        tag = (tags or {}).get(str(source), "")
        if runs[key] > 1:
            first = f"{key}1-{runs[key]}: " if tag else ""
            name = f"{first}{desc.split(': ', 1)[-1]} ({runs[key]} runs)"
        else:
            name = f"{tag}: {desc.split(': ', 1)[-1]}" if tag else f"{desc or trial} ({trial})"
        for k, (metric, _) in enumerate(metrics):
            ax = axes[k // ncols, k % ncols]
            d = df[[x, metric]].dropna()
            if d.empty:
                continue
            (ln,) = ax.plot(
                d[x],
                d[metric],
                color=colors[key],
                lw=1.4,
                marker="o" if len(d) < 15 else None,
                ms=3,
            )
            lines.setdefault(name, ln)
    for k, (_, lab) in enumerate(metrics):
        ax = axes[k // ncols, k % ncols]
        ax.set_ylabel(lab, fontsize=9)
        ax.set_xlabel("env steps sampled" if x == "env_steps" else "training iteration")
        ax.grid(True, alpha=0.3)
        if x == "env_steps":
            ax.xaxis.set_major_formatter(FuncFormatter(_steps_text))
    for k in range(len(metrics), nrows * ncols):
        axes[k // ncols, k % ncols].set_visible(False)
    fig.suptitle(f"{title} (tags as in Fig. 4 and Table I)" if tags else title, fontsize=12)
    spare = nrows * ncols - len(metrics)
    if spare > 0 and len(lines) <= 14:
        # the legend fills the empty panel
        ax = axes[nrows - 1, ncols - 1]
        ax.set_visible(True)
        ax.axis("off")
        ax.legend(
            list(lines.values()),
            list(lines.keys()),
            loc="center",
            fontsize=9,
            frameon=False,
            title="trial (δ: delta, p: penalty)",
        )
        fig.tight_layout(rect=(0, 0, 1, 0.96))
    else:
        legend_below(fig, list(lines.values()), list(lines.keys()), ncol=min(4, len(lines)))
    return save(fig, out_png)


def trial_tags(points: pd.DataFrame) -> dict[str, str]:
    """Map a training directory to the tag of the trained point evaluated in it or below it.

    A Tune trial writes its result set into the trial directory itself; ``launch train --out D
    --eval-episodes N`` writes it to ``D/eval``: both ``D/eval`` and ``D`` get the tag.
    """
    tags: dict[str, str] = {}
    trained = points.loc[points["role"] == "trained"]
    for src, tag in zip(trained["source"], trained["tag"], strict=True):
        if not tag:
            continue
        tags.setdefault(str(src), str(tag))
        parent = Path(str(src)).parent.as_posix()
        if parent not in (".", ""):
            tags.setdefault(parent, str(tag))
    return tags
