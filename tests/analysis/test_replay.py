"""Replay traces, their table, the timeline figure and the video (analysis/replay.py)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from analysis.replay import (
    DERIVED,
    ID_COLUMNS,
    POOL_COLUMNS,
    Recorder,
    compose_frames,
    gif_bytes,
    timeline_figure,
    trace_table,
    write_replay,
    write_video,
)
from envs.core.metrics import KPI_NAMES
from envs.core.pool.clearing import PoolParams
from envs.core.pool.rules import GreedyController, run_episode
from envs.core.pool.sim import PoolSimulator
from envs.core.presets import make_params
from envs.core.sim import Simulator
from envs.render import FRAME_HEIGHT, FRAME_WIDTH


def _cell_trace(name: str, split: tuple[float, float], seed: int = 5, frames: bool = False):
    sim = Simulator(make_params("paper_dynamic", episode_steps=30))
    sim.reset(seed)
    rec = Recorder(name, sim, frames=frames)
    rec.start()
    while not sim.done:
        sim.step(np.array([split]))
        rec.step()
    return rec.finish(sim.summary())


def _pool_trace(name: str, seed: int = 3):
    params = make_params("three_cell_hetero", episode_steps=25)
    ps = PoolSimulator(params, PoolParams())
    ctrl = GreedyController(((0.6, 0.5), (0.4, 0.4), (0.5, 0.5)))
    ps.reset(seed)
    ctrl.reset(ps)
    rec = Recorder(name, ps.sim, ps, frames=True)
    rec.start()
    while not ps.done:
        ps.step(*ctrl.act(ps))
        rec.step()
    return rec.finish(ps.metrics()), ctrl, params


def test_table_has_one_row_per_controller_step_and_cell_and_adds_up_to_the_summary() -> None:
    a, b = _cell_trace("a", (0.3, 0.3)), _cell_trace("b", (0.4, 0.4))
    table = trace_table([a, b])
    assert list(table.columns[:4]) == list(ID_COLUMNS)
    assert set(KPI_NAMES) | set(DERIVED) <= set(table.columns)
    assert not set(POOL_COLUMNS) & set(table.columns)
    assert len(table) == 2 * 30 and table["step"].tolist()[:3] == [1, 2, 3]
    for tr in (a, b):
        rows = table[table["controller"] == tr.controller]
        assert rows["served_so_far_pct"].iloc[-1] == pytest.approx(tr.summary["served_pct"])
        done = rows["ue_completed"].sum()
        assert rows["sum_aosi"].sum() / done == pytest.approx(tr.summary["sync_delay"])
        assert rows["reward"].sum() == pytest.approx(tr.summary["episode_return"])
    # the same episode seed: the regime path does not depend on the actions
    ra = table[table["controller"] == "a"]["regime"].to_numpy()
    assert np.array_equal(ra, table[table["controller"] == "b"]["regime"].to_numpy())
    assert ra.min() >= 0 and len(set(ra.tolist())) >= 1


def test_pool_table_carries_the_clearing_and_the_figure_has_a_column_per_controller() -> None:
    tr, _, _ = _pool_trace("greedy")
    other, _, _ = _pool_trace("again")
    table = trace_table([tr, other])
    assert set(POOL_COLUMNS) <= set(table.columns) and len(table) == 2 * 25 * 3
    lent = table.groupby(["controller", "step"])["units_lent"].sum()
    got = table.groupby(["controller", "step"])["units_borrowed"].sum()
    assert np.allclose(lent, got)  # every unit lent is received
    assert table.groupby(["controller", "step"])["balance"].sum().round(6).nunique() == 1
    last = table[table["controller"] == "greedy"].groupby("step").sum(numeric_only=True).iloc[-1]
    assert last["ue_generated"] > 0
    fig = timeline_figure(table, "pool")
    assert len(fig.axes) == 5 * 2
    from analysis.plot_style import plt

    plt.close(fig)


def test_figure_is_drawn_from_the_csv_alone(tmp_path: Path) -> None:
    traces = [_cell_trace("a", (0.3, 0.3)), _cell_trace("b", (0.5, 0.2))]
    paths = write_replay(tmp_path, traces, {"kind": "replay"}, video=None, title="t")
    assert {p.name for p in paths.values()} == {"replay.csv", "timeline.png", "replay.json"}
    back = pd.read_csv(paths["csv"])
    pd.testing.assert_frame_equal(back, trace_table(traces), check_dtype=False)
    fig = timeline_figure(back, "again")
    assert len(fig.axes) == 6
    from analysis.plot_style import plt

    plt.close(fig)
    assert paths["figure"].read_bytes()[:4] == b"\x89PNG"


def test_frames_compose_side_by_side_and_encode_as_mp4_and_gif(tmp_path: Path) -> None:
    import imageio.v2 as iio

    a, b = _cell_trace("a", (0.3, 0.3), frames=True), _cell_trace("b", (0.4, 0.4), frames=True)
    frames = compose_frames([a, b])
    assert len(frames) == 31  # after reset, then every step
    h, w, _ = frames[0].shape
    assert (w, h % 16, w % 16) == (2 * FRAME_WIDTH, 0, 0) and h > FRAME_HEIGHT
    mp4 = write_video(frames, tmp_path / "v")
    assert mp4.suffix == ".mp4"
    reader = iio.get_reader(mp4)
    assert reader.count_frames() == 31 and reader.get_data(0).shape == frames[0].shape
    reader.close()
    gif = write_video(frames, tmp_path / "g", fmt="gif")
    assert gif.read_bytes()[:6] == b"GIF89a"
    assert len(iio.mimread(gif)) == 31
    assert gif_bytes(frames[:3], scale=0.5)[:6] == b"GIF89a"


def test_a_video_falls_back_to_gif_where_mp4_cannot_be_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import imageio.v2 as iio

    def no_ffmpeg(*_args: object, **_kwargs: object) -> None:
        raise RuntimeError("no ffmpeg here")

    monkeypatch.setattr(iio, "get_writer", no_ffmpeg)
    tr, _, _ = _pool_trace("p")
    out = write_video(compose_frames([tr]), tmp_path / "replay")
    assert out.name == "replay.gif" and not (tmp_path / "replay.mp4").exists()
    with pytest.raises(ValueError, match="mp4 or gif"):
        write_video(compose_frames([tr]), tmp_path / "x", fmt="avi")


def test_recording_does_not_change_the_episode() -> None:
    tr, ctrl, params = _pool_trace("p", seed=11)
    plain = run_episode(PoolSimulator(params, PoolParams()), ctrl, 11)
    for key in ("fulfillment_pct", "completion_pct", "units_borrowed", "fairness"):
        assert tr.summary[key] == plain[key]
