"""Episode replays: the per-step trace of controllers on one episode, its timeline figure and video.

The acting (which controller, which env, stepping) is :mod:`tune_configs.replay` (the command is
``python -m launch replay``); this module records and draws, in rl-zoo's two stages:

1. :class:`Recorder` copies, after every step, the simulator's per-cell KPIs (the columns of
   :data:`envs.core.metrics.KPI_NAMES`), the regime in force and, with the credit pool, the last
   clearing per cell (:data:`envs.core.pool.clearing.POOL_ACC_NAMES`), the credit balances, the
   price and the matched units; plus the rendered frames (:mod:`envs.render`) if asked.
   :func:`trace_table` turns the traces of every controller into one tidy table, one row per
   controller, step and cell, with the derived columns :data:`DERIVED` (written as
   ``replay.csv``).
2. :func:`timeline_figure` draws only from that table (so a CSV read back redraws the figure):
   for one cell (or several without the pool) the actions, the MEC and uplink queues, the UE jobs
   completed per step, the mean AoSI and AoRI of the jobs completed in each step, the running
   served % and return, with the traffic regimes as bands; for the pool one column per
   controller with every cell's backlog, offers and asks, units traded, credit balance and
   running fulfilment.

:func:`compose_frames` puts the controllers' frames side by side under a label bar;
:func:`write_video` writes them as MP4 (imageio's ffmpeg plugin, ``imageio-ffmpeg``) or, where that
is missing or fails, as an animated GIF; :func:`gif_bytes` and :func:`figure_rgb` give the
animation and the figure as images for TensorBoard. :func:`write_replay` writes everything.
"""

from __future__ import annotations

import io
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from analysis.resultset import clean_json, command_line, git_commit
from envs.core.metrics import K_PEN, K_SYNC_R, KPI_NAMES
from envs.core.pool.clearing import G_MATCHED, G_PRICE, POOL_ACC_NAMES
from envs.render import CELL_COLOURS, FRAME_WIDTH, RENDER_FPS

CSV_FILE, FIGURE_FILE, META_FILE, VIDEO_STEM = "replay.csv", "timeline.png", "replay.json", "replay"
ID_COLUMNS = ("controller", "step", "cell", "regime")
POOL_COLUMNS = (*POOL_ACC_NAMES, "balance", "price", "matched")
# columns computed from the others (per controller and cell)
DERIVED = ("reward", "mean_aosi", "mean_aori", "served_so_far_pct", "fulfilled_so_far_pct")
LABEL_BAR = 32  # px above each controller's frame in the video
LEGEND_COLUMNS = 10  # cells per row of the timeline legend (a city's wrap onto more rows)

Frame = NDArray[np.uint8]


@dataclass
class EpisodeTrace:
    """One controller's episode: per-step arrays and (optionally) the rendered frames."""

    controller: str  # the name shown (the spec the user gave)
    pool: bool
    kpi: list[NDArray[np.float64]] = field(default_factory=list)  # per step (C, N_KPI)
    regime: list[int] = field(default_factory=list)
    pool_cells: list[NDArray[np.float64]] = field(default_factory=list)  # per step (C, 8)
    pool_global: list[tuple[float, float]] = field(default_factory=list)  # (price, matched)
    frames: list[Frame] = field(default_factory=list)  # after reset, then after every step
    summary: dict[str, Any] = field(default_factory=dict)  # the episode's metrics


class Recorder:
    """Records an :class:`EpisodeTrace` from a simulator (and pool) after every step."""

    def __init__(self, controller: str, sim: Any, ps: Any = None, frames: bool = True) -> None:
        self.trace = EpisodeTrace(controller, ps is not None)
        self.sim, self.ps, self.frames = sim, ps, frames

    def _frame(self) -> None:
        if not self.frames:
            return
        from envs.render import render_cell_frame, render_pool_frame

        if self.ps is not None:
            self.trace.frames.append(render_pool_frame(self.ps, self.trace.controller))
        else:
            self.trace.frames.append(render_cell_frame(self.sim, self.trace.controller))

    def start(self) -> None:
        """After ``reset``: the first frame."""
        self._frame()

    def step(self) -> None:
        """After every step."""
        from envs.core.traffic import TR_REGIME

        sim, tr = self.sim, self.trace
        tr.kpi.append(sim.kpi.copy())
        tr.regime.append(int(sim.trf[TR_REGIME]) if sim.trf.size else -1)
        if self.ps is not None:
            pool = self.ps.pool
            tr.pool_cells.append(np.column_stack([pool.last, pool.balance]))
            tr.pool_global.append((float(pool.glob[G_PRICE]), float(pool.glob[G_MATCHED])))
        self._frame()

    def finish(self, summary: dict[str, Any]) -> EpisodeTrace:
        self.trace.summary = summary
        return self.trace


# --- the table --------------------------------------------------------------------------------
def trace_table(traces: Sequence[EpisodeTrace]) -> pd.DataFrame:
    """One row per controller, step (1-based) and cell: :data:`ID_COLUMNS`, the KPIs, the pool's
    columns (pool traces) and :data:`DERIVED`."""
    parts = []
    for tr in traces:
        kpi = np.stack(tr.kpi)  # (T, C, K)
        steps, cells = kpi.shape[0], kpi.shape[1]
        cols: dict[str, Any] = {
            "controller": tr.controller,
            "step": np.repeat(np.arange(1, steps + 1), cells),
            "cell": np.tile(np.arange(cells), steps),
            "regime": np.repeat(np.asarray(tr.regime, dtype=np.int64), cells),
        }
        for k, name in enumerate(KPI_NAMES):
            cols[name] = kpi[:, :, k].ravel()
        if tr.pool:
            pool = np.stack(tr.pool_cells)  # (T, C, 8)
            for k, name in enumerate((*POOL_ACC_NAMES, "balance")):
                cols[name] = pool[:, :, k].ravel()
            glob = np.asarray(tr.pool_global)
            cols["price"] = np.repeat(glob[:, 0], cells)
            cols["matched"] = np.repeat(glob[:, 1], cells)
        frame = pd.DataFrame(cols)
        frame["reward"] = kpi[:, :, K_SYNC_R].ravel() + kpi[:, :, K_PEN].ravel()
        done = frame["ue_completed"].to_numpy()
        with np.errstate(invalid="ignore", divide="ignore"):
            frame["mean_aosi"] = np.where(done > 0, frame["sum_aosi"] / done, np.nan)
            frame["mean_aori"] = np.where(done > 0, frame["sum_aori"] / done, np.nan)
            by_cell = frame.groupby("cell", sort=False)
            gen = by_cell["ue_generated"].cumsum().to_numpy()
            frame["served_so_far_pct"] = np.where(
                gen > 0, 100.0 * by_cell["ue_completed"].cumsum() / gen, np.nan
            )
            frame["fulfilled_so_far_pct"] = np.where(
                gen > 0, 100.0 * by_cell["ue_fulfilled"].cumsum() / gen, np.nan
            )
        parts.append(frame)
    return pd.concat(parts, ignore_index=True)


def system_series(table: pd.DataFrame) -> pd.DataFrame:
    """Per controller and step, the cells summed (actions and the regime: their mean / value),
    with the running served %, fulfilled % and return of the whole system."""
    sums = [c for c in (*KPI_NAMES, "reward") if c in table and c not in ("w_b", "w_c")]
    g = table.groupby(["controller", "step"], sort=False)
    out = g[sums].sum()
    out[["w_b", "w_c"]] = g[["w_b", "w_c"]].mean()
    out["regime"] = g["regime"].first()
    out = out.reset_index()
    by = out.groupby("controller", sort=False)
    gen = by["ue_generated"].cumsum()
    with np.errstate(invalid="ignore", divide="ignore"):
        out["served_so_far_pct"] = np.where(
            gen > 0, 100 * by["ue_completed"].cumsum() / gen, np.nan
        )
        out["fulfilled_so_far_pct"] = np.where(
            gen > 0, 100 * by["ue_fulfilled"].cumsum() / gen, np.nan
        )
        done = out["ue_completed"]
        out["mean_aosi"] = np.where(done > 0, out["sum_aosi"] / done, np.nan)
        out["mean_aori"] = np.where(done > 0, out["sum_aori"] / done, np.nan)
    out["return_so_far"] = by["reward"].cumsum()
    return out


# --- the figure -------------------------------------------------------------------------------
def _controller_colours(names: Sequence[str]) -> dict[str, Any]:
    from analysis.plot_style import plt

    tab10 = plt.get_cmap("tab10")
    picks = (0, 3, 2, 1, 4, 5, 6, 8, 9, 7)
    return {n: tab10(picks[i % len(picks)]) for i, n in enumerate(names)}


def _regime_bands(axes: Sequence[Any], steps: NDArray[np.int64], regime: NDArray[np.int64]) -> None:
    """Shade each run of one regime (x: steps); label the runs on the first axes."""
    if len(regime) == 0 or regime.max() < 0:
        return
    shades = ("#f2f2f2", "#fdf0d5", "#e3eefa", "#e8f5e1", "#f6e1ef", "#eeeeee")
    start = 0
    for i in range(1, len(regime) + 1):
        if i == len(regime) or regime[i] != regime[start]:
            lo, hi = steps[start] - 0.5, steps[i - 1] + 0.5
            for ax in axes:
                ax.axvspan(lo, hi, color=shades[int(regime[start]) % len(shades)], zorder=0)
            axes[0].text(
                (lo + hi) / 2, 1.02, f"R{int(regime[start])}", ha="center", va="bottom",
                transform=axes[0].get_xaxis_transform(), fontsize=7, color="#7a4a00",
            )  # fmt: skip
            start = i


def _final_text(series: pd.DataFrame, pool: bool) -> str:
    last = series.iloc[-1]
    if pool:
        fulfilled, served = last["fulfilled_so_far_pct"], last["served_so_far_pct"]
        return f"fulfilled {fulfilled:.1f} %, served {served:.1f} %"
    done = series["ue_completed"].sum()
    sync = series["sum_aosi"].sum() / done if done else math.nan
    e2e = series["sum_aori"].sum() / done if done else math.nan
    return (
        f"return {last['return_so_far']:.0f}, served {last['served_so_far_pct']:.1f} %, "
        f"sync delay {sync:.1f}, E2E delay {e2e:.1f}"
    )


def timeline_figure(table: pd.DataFrame, title: str = "", regimes: str = "") -> Any:
    """The timeline of a replay table (:func:`trace_table`): single-cell layout, or the pool's
    (one column per controller) when the table has the pool's columns."""
    if "balance" in table:
        return _pool_timeline(table, title)
    return _cell_timeline(table, title, regimes)


def _cell_timeline(table: pd.DataFrame, title: str, regimes: str) -> Any:
    from analysis.plot_style import DPI, plt

    series = system_series(table)
    names = list(dict.fromkeys(series["controller"]))
    colours = _controller_colours(names)
    fig, axes = plt.subplots(6, 1, figsize=(11, 11.5), sharex=True, dpi=DPI)
    first = series[series["controller"] == names[0]]
    steps = first["step"].to_numpy()
    _regime_bands(axes, steps, first["regime"].to_numpy())
    n = len(names)
    width = 0.8 / n
    for i, name in enumerate(names):
        s = series[series["controller"] == name]
        x, col = s["step"].to_numpy(), colours[name]
        axes[0].plot(x, s["w_c"], color=col, lw=1.6, drawstyle="steps-mid")
        axes[0].plot(x, s["w_b"], color=col, lw=1.2, ls="--", drawstyle="steps-mid")
        axes[1].plot(x, s["queue_ue"], color=col, lw=1.6)
        axes[1].plot(x, s["queue_sensor"], color=col, lw=1.2, ls="--")
        axes[2].plot(x, s["uplink_ue"], color=col, lw=1.6)
        axes[2].plot(x, s["uplink_sensor"], color=col, lw=1.2, ls="--")
        axes[3].bar(x - 0.4 + width * (i + 0.5), s["ue_completed"], width=width, color=col)
        size = 6 + 4 * np.sqrt(s["ue_completed"].to_numpy())
        axes[4].scatter(x, s["mean_aosi"], s=size, color=col, marker="o", alpha=0.8, lw=0)
        axes[4].scatter(x, s["mean_aori"], s=size, color=col, marker="x", alpha=0.8, lw=1)
        axes[5].plot(x, s["served_so_far_pct"], color=col, lw=1.8,
                     label=f"{name}: {_final_text(s, False)}")  # fmt: skip
    axes[0].set_ylabel("UE share\nw_c (solid), w_b (--)")
    axes[0].set_ylim(-0.03, 1.03)
    axes[1].set_ylabel("MEC queue [jobs]\nUE (solid), sensor (--)")
    axes[2].set_ylabel("uplink backlog [jobs]\nUE (solid), sensor (--)")
    axes[3].set_ylabel("UE jobs completed\nper step")
    axes[4].set_ylabel("delay of the jobs\ncompleted [steps]\nAoSI (o), AoRI (x)")
    axes[5].set_ylabel("served so far [%]")
    axes[5].set_xlabel("step")
    axes[5].set_xlim(steps[0] - 1, steps[-1] + 1)
    for ax in axes:
        ax.grid(alpha=0.3, lw=0.5)
        ax.tick_params(labelsize=8)
        ax.yaxis.label.set_size(8)
    axes[5].legend(loc="lower right", fontsize=8, frameon=True)
    import textwrap

    head = "\n".join([title, *textwrap.wrap(regimes, 150)])
    fig.suptitle(head, fontsize=10)
    fig.tight_layout(rect=(0, 0, 1, 1.0 - 0.015 * head.count("\n") - 0.015))
    return fig


def _pool_timeline(table: pd.DataFrame, title: str) -> Any:
    from analysis.plot_style import DPI, plt

    names = list(dict.fromkeys(table["controller"]))
    cells = sorted(int(c) for c in table["cell"].unique())
    fig, axes = plt.subplots(
        5, len(names), figsize=(5.5 * len(names) + 1, 10.5), sharex=True, sharey="row",
        dpi=DPI, squeeze=False,
    )  # fmt: skip
    series = system_series(table)
    for j, name in enumerate(names):
        t = table[table["controller"] == name]
        col_axes = axes[:, j]
        for c in cells:
            r = t[t["cell"] == c]
            x = r["step"].to_numpy()
            colour = tuple(v / 255 for v in CELL_COLOURS[c % len(CELL_COLOURS)])
            label = f"cell {c}"
            col_axes[0].plot(x, r["queue_ue"] + r["queue_sensor"], color=colour, lw=1.4,
                             label=label)  # fmt: skip
            col_axes[1].plot(x, r["units_offered"] - r["units_asked"], color=colour, lw=1.2)
            col_axes[2].bar(x, r["units_borrowed"] - r["units_lent"], color=colour, width=0.9,
                            alpha=0.75)  # fmt: skip
            col_axes[3].plot(x, r["balance"], color=colour, lw=1.4)
            col_axes[4].plot(x, r["fulfilled_so_far_pct"], color=colour, lw=1.2)
        s = series[series["controller"] == name]
        col_axes[4].plot(s["step"], s["fulfilled_so_far_pct"], color="black", lw=2.0,
                         label="all cells")  # fmt: skip
        col_axes[0].set_title(f"{name}\n{_final_text(s, True)}", fontsize=9)
        col_axes[4].set_xlabel("step")
        for ax in col_axes:
            ax.grid(alpha=0.3, lw=0.5)
            ax.tick_params(labelsize=8)
        for ax in col_axes[1:3]:
            ax.axhline(0.0, color="black", lw=0.6)
    axes[0, 0].set_ylabel("MEC backlog [jobs]\n(UE + sensor queues)", fontsize=8)
    axes[1, 0].set_ylabel("offered (+) / asked (-)\n[units]", fontsize=8)
    axes[2, 0].set_ylabel("received (+) / lent (-)\n[units]", fontsize=8)
    axes[3, 0].set_ylabel("credit balance", fontsize=8)
    axes[4, 0].set_ylabel(
        "fulfilled so far [%]\n(a cell: done at its MEC /\ngenerated in it; "
        "handovers\nmay exceed 100)",
        fontsize=8,
    )
    handles, labels = axes[0, 0].get_legend_handles_labels()
    h4, l4 = axes[4, 0].get_legend_handles_labels()
    ncol = min(len(cells) + 1, LEGEND_COLUMNS)  # a city's cells wrap onto more legend rows
    rows = -(-(len(cells) + 1) // ncol)
    fig.legend(handles + h4[-1:], labels + l4[-1:], loc="lower center",
               ncol=ncol, fontsize=8, frameon=False)  # fmt: skip
    fig.suptitle(title, fontsize=10)
    fig.tight_layout(rect=(0, 0.015 + 0.018 * rows, 1, 0.97))
    return fig


def figure_rgb(fig: Any, dpi: int = 90) -> Frame:
    """A figure as an RGB array ``(H, W, 3)`` (the figure is closed)."""
    from analysis.plot_style import plt

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi)
    plt.close(fig)
    from PIL import Image

    buf.seek(0)
    return np.array(Image.open(buf).convert("RGB"), dtype=np.uint8)


# --- video ------------------------------------------------------------------------------------
def _label_bar(text: str, width: int) -> Frame:
    from PIL import Image, ImageDraw, ImageFont

    img = Image.new("RGB", (width, LABEL_BAR), (40, 40, 40))
    ImageDraw.Draw(img).text((10, 7), text, fill=(255, 255, 255),
                             font=ImageFont.load_default(size=15))  # fmt: skip
    return np.array(img, dtype=np.uint8)


def compose_frames(traces: Sequence[EpisodeTrace]) -> list[Frame]:
    """The controllers' frames side by side, each under a bar with its name; one per step (the
    shortest trace sets the length)."""
    with_frames = [tr for tr in traces if tr.frames]
    if not with_frames:
        return []
    bars = [_label_bar(tr.controller, FRAME_WIDTH) for tr in with_frames]
    length = min(len(tr.frames) for tr in with_frames)
    out = []
    for t in range(length):
        cols = [np.vstack([bar, tr.frames[t]]) for bar, tr in zip(bars, with_frames, strict=True)]
        out.append(np.ascontiguousarray(np.hstack(cols)))
    return out


def write_gif(frames: Sequence[Frame], path: Path, fps: float = RENDER_FPS) -> Path:
    path.write_bytes(gif_bytes(frames, fps))
    return path


def gif_bytes(frames: Sequence[Frame], fps: float = RENDER_FPS, scale: float = 1.0) -> bytes:
    """An animated GIF of ``frames`` (looping), optionally scaled down. One palette for every
    frame (built from a few frames spread over the episode, no dithering): several times faster
    and smaller than a palette per frame."""
    from PIL import Image

    images = [Image.fromarray(f) for f in frames]
    if scale != 1.0:
        size = (round(images[0].width * scale), round(images[0].height * scale))
        images = [im.resize(size, Image.Resampling.BILINEAR) for im in images]
    picks = np.unique(np.linspace(0, len(images) - 1, 4).round().astype(int))
    sample = Image.fromarray(np.vstack([np.asarray(images[i]) for i in picks]))
    palette = sample.quantize(colors=128, method=Image.Quantize.MEDIANCUT)
    indexed = [im.quantize(palette=palette, dither=Image.Dither.NONE) for im in images]
    buf = io.BytesIO()
    indexed[0].save(buf, format="GIF", save_all=True, append_images=indexed[1:],
                    duration=int(1000 / fps), loop=0)  # fmt: skip
    return buf.getvalue()


def write_video(
    frames: Sequence[Frame], stem: str | Path, fps: float = RENDER_FPS, fmt: str = "mp4"
) -> Path:
    """``stem.mp4`` through imageio's ffmpeg plugin, or ``stem.gif`` (``fmt="gif"``, or when
    the MP4 cannot be written: imageio-ffmpeg missing, no ffmpeg binary). Returns the path."""
    stem = Path(stem)
    stem.parent.mkdir(parents=True, exist_ok=True)
    if not frames:
        raise ValueError("no frames to write")
    if fmt == "mp4":
        mp4 = stem.with_suffix(".mp4")
        try:
            import imageio.v2 as iio

            writer = iio.get_writer(
                mp4, format="FFMPEG", mode="I", fps=fps, codec="libx264", quality=7,
                pixelformat="yuv420p", macro_block_size=16,
            )  # fmt: skip
            with writer:
                for f in frames:
                    writer.append_data(f)
            return mp4
        except (ImportError, RuntimeError, OSError) as exc:
            mp4.unlink(missing_ok=True)
            print(f"MP4 not written ({type(exc).__name__}: {exc}); writing a GIF instead")
    elif fmt != "gif":
        raise ValueError(f"video format must be mp4 or gif, got {fmt!r}")
    return write_gif(frames, stem.with_suffix(".gif"), fps)


# --- everything -------------------------------------------------------------------------------
def write_replay(
    out_dir: str | Path,
    traces: Sequence[EpisodeTrace],
    meta: dict[str, Any],
    video: str | None = "mp4",
    title: str = "",
    regimes: str = "",
) -> dict[str, Path]:
    """``replay.csv`` (the table), ``timeline.png`` (drawn from it), the video (``video``: mp4,
    gif or None) and ``replay.json`` (the run's record). Returns the paths by kind."""
    from analysis.plot_style import save

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    table = trace_table(traces)
    paths = {"csv": out / CSV_FILE}
    table.to_csv(paths["csv"], index=False)
    paths["figure"] = save(timeline_figure(table, title, regimes), out / FIGURE_FILE)
    if video is not None:
        frames = compose_frames(traces)
        if frames:
            paths["video"] = write_video(frames, out / VIDEO_STEM, fmt=video)
    record = {
        **meta,
        "command": command_line(),
        "git_commit": git_commit(),
        "summaries": {tr.controller: tr.summary for tr in traces},
        "files": {k: p.name for k, p in paths.items()},
    }
    paths["meta"] = out / META_FILE
    paths["meta"].write_text(json.dumps(clean_json(record), indent=2) + "\n")
    return paths
