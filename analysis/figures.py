"""Single-cell figures from the tidy tables: the paper's Fig. 4 and Fig. 5, grid heatmaps.

All functions take tables made by :mod:`analysis.collect` (the points table of
:func:`analysis.collect.points`, without superseded rows, and the learning-curve table), write one
PNG and return its path (or None when there is nothing to draw). The look (Agg backend, colours of
the trained policies) is shared with the learning curves: :mod:`analysis.plot_style`.

* :func:`plane_figure`: one Pareto plane. ``sync_served`` is the paper's Fig. 4 (sync delay vs
  traffic served), ``sync_e2e`` its Fig. 5 (sync delay vs E2E delay). Static splits (grey), their
  front (black staircase, front splits labelled (w_b, w_c) where there is room), the heuristic and
  queue-aware rules, trained points with error bars (+-1 std over episodes) labelled by their tag
  (A, B, ...; the legend maps tags to (delta, penalty)). When non-static points sit in a small part
  of the plane, a second panel zooms on them.
* :func:`heatmaps`: one panel per metric over the static grid (w_b rows, w_c columns), every cell
  annotated; colours run from worse (dark) to better (bright) for metrics with a direction.

Run ``python -m analysis.figures DIR`` to draw every figure of the results under DIR, the learning
curves of :mod:`analysis.curves` included, into DIR/figures.
"""

from __future__ import annotations

import math
import re
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.patches import Rectangle
from matplotlib.transforms import Bbox

from analysis.collect import METRIC_LABELS
from analysis.curves import learning_curves, trial_tags
from analysis.pareto import PLANES, Plane, front_path, non_dominated
from analysis.plot_style import DPI, legend_below, plt, save, tag_order, trained_colors
from analysis.tables import PAPER_PICKS

STATIC_COLOR = "#9a9a9a"
FRONT_COLOR = "#111111"
HEURISTIC_STYLE: dict[str, Any] = {"marker": "*", "color": "#d62728", "s": 190}
QUEUE_STYLE: dict[str, Any] = {"marker": "D", "color": "#ff7f0e", "s": 70}
PAPER_PICK_STYLE: dict[str, Any] = {
    "marker": "s",
    "facecolors": "none",
    "edgecolors": "#000000",
    "s": 90,
}

# +1: larger is better, -1: smaller is better, 0: no direction (colour scale only).
METRIC_SENSE: dict[str, int] = {
    "sync_delay": -1,
    "e2e_delay": -1,
    "served_pct": 1,
    "episode_return": 1,
    "sync_reward": 1,
    "delay_penalty": 1,
    "on_time_pct": 1,
    "fulfilled_pct": 1,
    "ue_completed": 1,
    "left_queued": -1,
    "sensor_completed": 1,
    "sensor_left_queued": -1,
    "mean_queue_ue": -1,
    "mean_queue_sensor": -1,
    "compute_used": 0,
}
_REWARD_METRICS = ("episode_return", "sync_reward", "delay_penalty")
KEY_HEATMAP_METRICS: tuple[str, ...] = (
    "sync_delay",
    "e2e_delay",
    "served_pct",
    "on_time_pct",
    "fulfilled_pct",
    "episode_return",
)
MORE_HEATMAP_METRICS: tuple[str, ...] = (
    "left_queued",
    "sensor_left_queued",
    "mean_queue_ue",
    "mean_queue_sensor",
    "ue_completed",
    "sensor_completed",
    "sync_reward",
    "delay_penalty",
    "compute_used",
)

MAX_FORCED_TAGS = 15


def _settings(trained: pd.DataFrame) -> dict[str, str]:
    """point -> its reward-setting letter (the ``setting`` column, else the tag's letters)."""
    out: dict[str, str] = {}
    for _, t in trained.iterrows():
        setting = str(t.get("setting") or "") or re.sub(r"\d+$", "", str(t["tag"]))
        out[str(t["point"])] = setting or str(t["point"])
    return out


def safe_name(text: str) -> str:
    """A file-name-safe version of a scenario name."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", text).strip("_") or "x"


# --- label placement ------------------------------------------------------------------------
class _Placer:
    """Greedy label placement that avoids overlapping labels and markers (display coords)."""

    OFFSETS = (
        (7, 4), (7, -12), (-7, 4), (-7, -12), (0, 9), (0, -17), (14, -4), (-14, -4),
        (7, 14), (-7, 14), (7, -22), (-7, -22), (22, 4), (-22, 4),
    )  # fmt: skip

    def __init__(self, ax: Axes, obstacles: np.ndarray, sizes: np.ndarray) -> None:
        self.ax = ax
        self.fig = ax.figure
        self.renderer = self.fig.canvas.get_renderer()  # type: ignore[attr-defined]
        self.placed: list[Bbox] = []
        pts = ax.transData.transform(obstacles) if len(obstacles) else np.zeros((0, 2))
        self.centers = pts
        self.obstacles = [
            Bbox.from_bounds(x - w / 2, y - w / 2, w, w)
            for (x, y), w in zip(pts, sizes, strict=True)
        ]
        self.axes_box = ax.get_window_extent(self.renderer)

    @staticmethod
    def _overlap(a: Bbox, b: Bbox) -> float:
        w = min(a.x1, b.x1) - max(a.x0, b.x0)
        h = min(a.y1, b.y1) - max(a.y0, b.y0)
        return float(max(w, 0.0) * max(h, 0.0))

    def add(self, x: float, y: float, text: str, force: bool = False, **kw: Any) -> bool:
        """Annotate (x, y) with ``text`` where it fits.

        Tries the offsets in order and keeps the first one that stays inside the axes and clear
        of other labels and markers. With ``force`` a label that fits nowhere goes where it
        overlaps least; without, it is left out. Returns whether the label was placed.
        """
        anchor = self.ax.transData.transform((x, y))
        others = [
            o
            for o, c in zip(self.obstacles, self.centers, strict=True)
            if abs(c[0] - anchor[0]) > 1 or abs(c[1] - anchor[1]) > 1
        ]
        best: tuple[float, Any, Bbox] | None = None
        for dx, dy in self.OFFSETS:
            ha = "left" if dx > 0 else ("right" if dx < 0 else "center")
            t = self.ax.annotate(
                text, (x, y), xytext=(dx, dy), textcoords="offset points", ha=ha, va="bottom", **kw
            )
            bb = t.get_window_extent(self.renderer).expanded(1.05, 1.1)
            inside = self.axes_box.contains(bb.x0, bb.y0) and self.axes_box.contains(bb.x1, bb.y1)
            cost = sum(self._overlap(bb, o) for o in self.placed) + sum(
                self._overlap(bb, o) for o in others
            )
            if inside and cost == 0:
                if best is not None:
                    best[1].remove()
                self.placed.append(bb)
                return True
            cost += 0.0 if inside else 1e6
            if force and (best is None or cost < best[0]):
                if best is not None:
                    best[1].remove()
                best = (cost, t, bb)
            else:
                t.remove()
        if best is not None:
            self.placed.append(best[2])
            return True
        return False


# Natural range of a metric: axis limits never go further than a small pad beyond it.
_BOUNDS: dict[str, tuple[float, float]] = {
    "served_pct": (0.0, 100.0),
    "sync_delay": (0.0, math.inf),
    "e2e_delay": (0.0, math.inf),
}


def _clamp(metric: str, lo: float, hi: float, pad: float) -> tuple[float, float]:
    b0, b1 = _BOUNDS.get(metric, (-math.inf, math.inf))
    small = 0.3 * pad
    return max(lo, b0 - small), min(hi, b1 + small)


# --- planes ---------------------------------------------------------------------------------
def _finite_xy(df: pd.DataFrame, plane: Plane) -> pd.DataFrame:
    xy = df[[plane.x, plane.y]].to_numpy(dtype=np.float64)
    return df.loc[np.isfinite(xy).all(axis=1)]


def _zoom_box(
    pts: pd.DataFrame, plane: Plane, full: tuple[float, float, float, float]
) -> tuple[float, float, float, float] | None:
    """Limits around the non-static points (with error bars), or None if not worth a panel."""
    focus = pts.loc[pts["role"] != "static"]
    if focus.empty:
        return None
    xs = np.concatenate(
        [
            focus[plane.x] - focus[f"{plane.x}_std"].fillna(0),
            focus[plane.x] + focus[f"{plane.x}_std"].fillna(0),
        ]
    )
    ys = np.concatenate(
        [
            focus[plane.y] - focus[f"{plane.y}_std"].fillna(0),
            focus[plane.y] + focus[f"{plane.y}_std"].fillna(0),
        ]
    )
    x0, x1, y0, y1 = float(xs.min()), float(xs.max()), float(ys.min()), float(ys.max())
    fx0, fx1, fy0, fy1 = full
    wx = max(x1 - x0, 0.08 * (fx1 - fx0))
    wy = max(y1 - y0, 0.08 * (fy1 - fy0))
    box = (
        max(x0 - 0.35 * wx, fx0),
        min(x1 + 0.35 * wx, fx1),
        max(y0 - 0.35 * wy, fy0),
        min(y1 + 0.35 * wy, fy1),
    )
    area = (box[1] - box[0]) * (box[3] - box[2])
    if area > 0.35 * (fx1 - fx0) * (fy1 - fy0):
        return None
    return box


def _draw_plane(
    ax: Axes,
    pts: pd.DataFrame,
    plane: Plane,
    limits: tuple[float, float, float, float] | None,
    label_front: bool,
    label_trained: bool = True,
) -> dict[str, Any]:
    """Draw one panel; returns legend handles by name."""
    handles: dict[str, Any] = {}
    static = pts.loc[pts["role"] == "static"]
    if limits is not None:
        ax.set_xlim(limits[0], limits[1])
        ax.set_ylim(limits[2], limits[3])
    if not static.empty:
        handles["static splits"] = ax.scatter(
            static[plane.x],
            static[plane.y],
            s=18,
            color=STATIC_COLOR,
            alpha=0.8,
            zorder=2,
            linewidths=0,
        )
        arr = static[[plane.x, plane.y]].to_numpy(dtype=np.float64)
        xs, ys = front_path(arr, plane.maximise)
        if xs.size:
            (handles["static front"],) = ax.plot(
                xs, ys, color=FRONT_COLOR, lw=1.2, zorder=3, drawstyle="default"
            )
            mask = non_dominated(arr, plane.maximise)
            ax.scatter(arr[mask, 0], arr[mask, 1], s=22, color=FRONT_COLOR, zorder=4)
        picks = static.loc[
            [
                (round(b, 6), round(c, 6)) in PAPER_PICKS
                for b, c in zip(static["w_b"], static["w_c"], strict=True)
            ]
        ]
        if not picks.empty:
            handles["paper's picks (0.3, 0.3), (0.3, 0.4)"] = ax.scatter(
                picks[plane.x], picks[plane.y], zorder=5, linewidths=1.4, **PAPER_PICK_STYLE
            )
    base = pts.loc[pts["role"] == "baseline"]
    for _, b in base.iterrows():
        style = HEURISTIC_STYLE if b["kind"] == "heuristic" else QUEUE_STYLE
        name = f"heuristic split {b['split']}" if b["kind"] == "heuristic" else str(b["policy"])
        handles[name] = ax.scatter(
            [b[plane.x]], [b[plane.y]], zorder=7, edgecolors="black", linewidths=0.6, **style
        )
    trained = pts.loc[pts["role"] == "trained"].sort_values("tag", key=tag_order)
    setting_of = _settings(trained)
    order = list(dict.fromkeys(setting_of.values()))
    colors = dict(zip(order, trained_colors(len(order)), strict=True))
    runs = pd.Series(list(setting_of.values())).value_counts()
    for _, t in trained.iterrows():
        setting = setting_of[t["point"]]
        c = colors[setting]
        h = ax.errorbar(
            t[plane.x],
            t[plane.y],
            xerr=t.get(f"{plane.x}_std"),
            yerr=t.get(f"{plane.y}_std"),
            fmt="o",
            ms=7,
            color=c,
            mec="black",
            mew=0.6,
            elinewidth=1.0,
            capsize=3,
            zorder=8,
        )
        if runs[setting] > 1:  # one legend entry per reward setting trained several times
            name = f"{setting}1-{runs[setting]}: " + str(t["label"]).split(": ", 1)[-1]
        else:
            name = str(t["label"])
        handles.setdefault(name, h)
    ax.figure.canvas.draw()
    visible = pts
    if limits is not None:
        inx = pts[plane.x].between(limits[0], limits[1])
        iny = pts[plane.y].between(limits[2], limits[3])
        visible = pts.loc[inx & iny]
    sizes = np.where(visible["role"] == "static", 6.0, 16.0)
    placer = _Placer(ax, visible[[plane.x, plane.y]].to_numpy(dtype=np.float64), sizes)
    many = len(trained) > MAX_FORCED_TAGS  # then tags go only where they fit
    for _, t in trained.iterrows():
        if label_trained and t.name in visible.index:
            placer.add(
                t[plane.x],
                t[plane.y],
                str(t["tag"]),
                force=not many,
                fontsize=10,
                fontweight="bold",
                zorder=9,
            )
    if label_front and not static.empty:
        arr = static[[plane.x, plane.y]].to_numpy(dtype=np.float64)
        front = static.loc[non_dominated(arr, plane.maximise)]
        order = sorted(
            front.index,
            key=lambda i: (
                (round(front.at[i, "w_b"], 6), round(front.at[i, "w_c"], 6)) not in PAPER_PICKS
            ),
        )
        for i in order:
            if i in visible.index:
                placer.add(
                    front.at[i, plane.x],
                    front.at[i, plane.y],
                    str(front.at[i, "split"]),
                    fontsize=7,
                    color="#333333",
                    zorder=6,
                    bbox={"boxstyle": "round,pad=0.1", "fc": "white", "ec": "none", "alpha": 0.75},
                )
    ax.set_xlabel(METRIC_LABELS[plane.x])
    ax.set_ylabel(METRIC_LABELS[plane.y])
    ax.grid(True, alpha=0.3)
    return handles


def _arrow_note(ax: Axes, plane: Plane) -> None:
    want = "upper left" if plane.y_max else "lower left"
    ax.text(
        0.99,
        0.01 if plane.y_max else 0.99,
        f"better: {want}",
        transform=ax.transAxes,
        ha="right",
        va="bottom" if plane.y_max else "top",
        fontsize=8,
        color="#555555",
    )


def plane_figure(
    points: pd.DataFrame, plane_name: str, out_png: str | Path, title: str | None = None
) -> Path | None:
    """Draw Fig. 4 (``sync_served``) or Fig. 5 (``sync_e2e``) of one scenario into ``out_png``.

    ``points``: the points table of one scenario without superseded rows. Returns None when no
    point has both objectives defined.
    """
    plane = PLANES[plane_name]
    pts = _finite_xy(points.loc[points["role"].isin(["static", "baseline", "trained"])], plane)
    if pts.empty:
        return None
    xs = np.concatenate([pts[plane.x], pts[plane.x] + pts[f"{plane.x}_std"].fillna(0)])
    ys = np.concatenate(
        [
            pts[plane.y],
            pts[plane.y] - pts[f"{plane.y}_std"].fillna(0),
            pts[plane.y] + pts[f"{plane.y}_std"].fillna(0),
        ]
    )
    padx = 0.04 * max(float(np.ptp(xs)), 1.0)
    pady = 0.05 * max(float(np.ptp(ys)), 1.0)
    x0, x1 = _clamp(plane.x, float(xs.min()) - padx, float(xs.max()) + padx, padx)
    y0, y1 = _clamp(plane.y, float(ys.min()) - pady, float(ys.max()) + pady, pady)
    full = (x0, x1, y0, y1)
    zoom = _zoom_box(pts, plane, full)
    ncols = 2 if zoom is not None else 1
    fig, axes = plt.subplots(1, ncols, figsize=(7.2 * ncols, 5.6), squeeze=False, dpi=DPI)
    # with a zoom panel the overview stays unlabelled: the zoom holds every non-static point
    handles = _draw_plane(
        axes[0, 0], pts, plane, full, label_front=zoom is None, label_trained=zoom is None
    )
    axes[0, 0].set_title("all policies" if zoom is not None else "")
    _arrow_note(axes[0, 0], plane)
    if zoom is not None:
        axz = axes[0, 1]
        _draw_plane(axz, pts, plane, zoom, label_front=True)
        axz.set_title("zoom on the learned and rule-based policies")
        _arrow_note(axz, plane)
        a0 = axes[0, 0]
        a0.add_patch(
            Rectangle(
                (zoom[0], zoom[2]),
                zoom[1] - zoom[0],
                zoom[3] - zoom[2],
                fill=False,
                ls="--",
                lw=0.8,
                color="#555555",
            )
        )
    fig_title = (
        title
        or {
            "sync_served": "Fig. 4: sync delay vs traffic served",
            "sync_e2e": "Fig. 5: sync delay vs end-to-end delay",
        }[plane_name]
    )
    fig.suptitle(fig_title, fontsize=13)
    legend_below(
        fig,
        list(handles.values()),
        list(handles.keys()),
        ncol=min(4, len(handles)),
        title="error bars: ±1 std over episodes" if (points["role"] == "trained").any() else None,
    )
    return save(fig, out_png)


# --- heatmaps -------------------------------------------------------------------------------
def on_lattice(static: pd.DataFrame, step: float = 0.05) -> pd.DataFrame:
    """The static splits whose shares are multiples of ``step`` (the grids 0.5 ... 0.05).

    Off-lattice splits (e.g. from an Optuna search over continuous shares) would turn a heatmap
    into a sparse matrix; they stay in the Pareto planes. If fewer than 2 x 2 splits remain,
    everything is kept.
    """

    def on(v: pd.Series) -> pd.Series:
        q = v / step
        return (q - q.round()).abs() < 1e-6

    keep = static.loc[on(static["w_b"]) & on(static["w_c"])]
    if keep["w_b"].nunique() < 2 or keep["w_c"].nunique() < 2:
        return static
    return keep


def _grid(static: pd.DataFrame, metric: str) -> tuple[np.ndarray, list[float], list[float]]:
    wb = sorted({round(float(v), 6) for v in static["w_b"].dropna()})
    wc = sorted({round(float(v), 6) for v in static["w_c"].dropna()})
    mat = np.full((len(wb), len(wc)), np.nan)
    ib = {v: i for i, v in enumerate(wb)}
    ic = {v: i for i, v in enumerate(wc)}
    for b, c, v in zip(static["w_b"], static["w_c"], static[metric], strict=True):
        if pd.notna(b) and pd.notna(c):
            mat[ib[round(float(b), 6)], ic[round(float(c), 6)]] = float(v)
    return mat, wb, wc


def _cell_text(v: float) -> str:
    if not math.isfinite(v):
        return ""
    a = abs(v)
    if a >= 1000:
        return f"{v / 1000:.1f}k"
    if a >= 100:
        return f"{v:.0f}"
    if a >= 10:
        return f"{v:.1f}" if a < 99.95 else f"{v:.0f}"
    return f"{v:.2f}"


def heatmaps(
    points: pd.DataFrame, metrics: Sequence[str], out_png: str | Path, title: str = ""
) -> Path | None:
    """Heatmaps of ``metrics`` over the static grid of one scenario (None without a 2x2 grid).

    Undefined cells (e.g. no UE job completed: no delay) are hatched grey.
    """
    static = on_lattice(points.loc[points["role"] == "static"].dropna(subset=["w_b", "w_c"]))
    # a metric without variation over the grid (e.g. no penalty) gets no panel
    metrics = [m for m in metrics if m in static.columns and static[m].nunique(dropna=True) > 1]
    if static["w_b"].nunique() < 2 or static["w_c"].nunique() < 2 or not metrics:
        return None
    ncols = min(3, len(metrics))
    nrows = math.ceil(len(metrics) / ncols)
    n_cells = max(static["w_b"].nunique(), static["w_c"].nunique())
    size = 4.6 if n_cells <= 11 else 7.0
    fig, axes = plt.subplots(
        nrows,
        ncols,
        figsize=(size * ncols + 0.6, size * nrows * 0.93 + 0.4),
        squeeze=False,
        dpi=DPI,
    )
    font = 8 if n_cells <= 8 else (6.5 if n_cells <= 11 else 5)
    for k, metric in enumerate(metrics):
        ax = axes[k // ncols, k % ncols]
        mat, wb, wc = _grid(static, metric)
        sense = METRIC_SENSE.get(metric, 0)
        cmap = plt.get_cmap("viridis_r" if sense < 0 else "viridis").with_extremes(bad="#dddddd")
        im = ax.imshow(np.ma.masked_invalid(mat), origin="lower", cmap=cmap, aspect="auto")
        ax.set_xticks(range(len(wc)), [f"{v:g}" for v in wc], fontsize=7)
        ax.set_yticks(range(len(wb)), [f"{v:g}" for v in wb], fontsize=7)
        ax.set_xlabel("UE compute share w_c")
        ax.set_ylabel("UE bandwidth share w_b")
        hint = {1: " (bright = better)", -1: " (bright = better)", 0: ""}[sense]
        ax.set_title(f"{METRIC_LABELS.get(metric, metric)}{hint}", fontsize=9)
        norm = im.norm
        for i in range(mat.shape[0]):
            for j in range(mat.shape[1]):
                v = mat[i, j]
                if not math.isfinite(v):
                    ax.add_patch(
                        Rectangle(
                            (j - 0.5, i - 0.5), 1, 1, fill=False, hatch="///", lw=0, color="#aaaaaa"
                        )
                    )
                    continue
                lum = norm(v)
                lum = 1 - lum if sense < 0 else lum
                ax.text(
                    j,
                    i,
                    _cell_text(v),
                    ha="center",
                    va="center",
                    fontsize=font,
                    color="black" if lum > 0.55 else "white",
                )
        fig.colorbar(im, ax=ax, fraction=0.046, pad=0.03).ax.tick_params(labelsize=7)
    for k in range(len(metrics), nrows * ncols):
        axes[k // ncols, k % ncols].set_visible(False)
    notes = []
    if any(not np.isfinite(_grid(static, m)[0]).all() for m in metrics):
        notes.append("hatched: undefined (no UE job completed, so no delay)")
    settings = static[["delta", "penalty"]].drop_duplicates()
    if any(m in _REWARD_METRICS for m in metrics) and len(settings) == 1:
        d, p = settings.iloc[0]
        notes.append(f"return and reward parts for δ={float(d):g}, penalty={float(p):g}")
    head = "\n".join(t for t in (title, "; ".join(notes)) if t)
    if head:
        fig.suptitle(head, fontsize=11)
    fig.tight_layout()  # makes room for the suptitle itself
    return save(fig, out_png)


def scenario_figures(points: pd.DataFrame, scenario: str, out: Path) -> dict[str, Path | None]:
    """Fig. 4, Fig. 5 and the two heatmaps of one scenario's points (no superseded rows) as
    ``out/<name>_<scenario>.png``: name (``fig4``, ``fig5``, ``heatmap_key``, ``heatmap_more``)
    -> path, None where there is nothing to draw."""
    s, title = safe_name(scenario), f"Static grid, scenario {scenario} (mean over episodes)"
    made: dict[str, Path | None] = {}
    for key, plane in (("fig4", "sync_served"), ("fig5", "sync_e2e")):
        made[key] = plane_figure(points, plane, out / f"{key}_{s}.png")
    heat = (("heatmap_key", KEY_HEATMAP_METRICS), ("heatmap_more", MORE_HEATMAP_METRICS))
    for key, metrics in heat:
        made[key] = heatmaps(points, metrics, out / f"{key}_{s}.png", title)
    return made


def draw_all(points: pd.DataFrame, curves: pd.DataFrame, out_dir: str | Path) -> dict[str, Path]:
    """Every figure for every scenario of ``points`` into ``out_dir``; returns name -> path.

    Names: ``fig4_<scenario>``, ``fig5_<scenario>``, ``heatmap_key_<scenario>``,
    ``heatmap_more_<scenario>``, ``learning_curves``.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    made: dict[str, Path] = {}
    current = points.loc[~points["superseded"]] if "superseded" in points else points
    current = current.loc[current["role"] != "pool"]
    for scenario, pts in current.groupby("scenario", sort=True):
        for key, p in scenario_figures(pts, str(scenario), out).items():
            if p is not None:
                made[f"{key}_{safe_name(str(scenario))}"] = p
    tags = trial_tags(current)
    p = learning_curves(curves, out / "learning_curves.png", tags=tags)
    if p is not None:
        made["learning_curves"] = p
    return made


def main(argv: Sequence[str] | None = None) -> int:
    from analysis.collect import collect_for_cli, points

    args, data = collect_for_cli(
        "python -m analysis.figures", __doc__, argv,
        lambda p: p.add_argument("--out", help="where to write the PNGs (default: DIR/figures)"),
    )  # fmt: skip
    made = draw_all(points(data.episodes), data.curves, args.out or Path(args.dir) / "figures")
    for path in made.values():
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
