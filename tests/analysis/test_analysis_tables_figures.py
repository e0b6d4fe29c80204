"""Table I, the paper's reference tables, Markdown output and the figures on synthetic tables."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from analysis import figures, tables
from analysis.collect import points
from analysis.curves import learning_curves, trial_tags
from tests.analysis.test_analysis_pareto import tidy


def grid_points(with_trained: bool = True) -> pd.DataFrame:
    """A 3x3 static grid with the paper's picks, the heuristic and two trained points."""
    spec: dict[str, dict[str, object]] = {}
    for b in (0.3, 0.4, 0.5):
        for c in (0.3, 0.4, 0.5):
            sync = 40 * c - 10 * b + 1
            e2e = 25 - 40 * c + 5 * b
            served = 60 + 80 * c - 20 * (b - 0.3)
            spec[f"static({b:g},{c:g})"] = {
                "role": "static",
                "w_b": b,
                "w_c": c,
                "split": f"({b:g}, {c:g})",
                "sync": sync + np.array([0.5, -0.5]),
                "e2e": e2e + np.array([0.2, -0.2]),
                "served": served + np.array([1.0, -1.0]),
            }
    spec["heuristic(0.4)"] = {
        "role": "baseline",
        "w_b": 0.4,
        "w_c": 0.4,
        "split": "(0.4, 0.4)",
        "sync": [13.0, 13.0],
        "e2e": [11.0, 11.0],
        "served": [92.0, 92.0],
    }
    if with_trained:
        for name, tag, sync, e2e, served in (
            ("ppo-a", "A", [11.0, 12.0], [9.0, 9.5], [90.0, 91.0]),
            ("ppo-b", "B", [7.0, 8.0], [15.0, 16.0], [82.0, 83.0]),
        ):
            spec[name] = {"role": "trained", "tag": tag, "sync": sync, "e2e": e2e, "served": served}
    ep = tidy(spec, 2)
    ep.loc[ep["policy"] == "ppo-a", ["delta", "penalty", "label"]] = [0.9, 0.0, "A: δ=0.9, p=0"]
    ep.loc[ep["policy"] == "ppo-b", ["delta", "penalty", "label"]] = [0.5, -1.0, "B: δ=0.5, p=-1"]
    return points(ep)


def test_fmt_and_markdown() -> None:
    assert tables.fmt_pm(7.641, 1.3) == "7.64 ± 1.30"
    assert tables.fmt_pm(7.641) == "7.64" and tables.fmt_pm(float("nan"), 1.0) == "n/a"
    assert tables.fmt_num(0.9) == "0.9" and tables.fmt_num(100) == "100"
    assert tables.fmt_num(None) == ""
    md = tables.markdown(pd.DataFrame({"a": ["x|y"], "b": [1]}), ["l", "r"])
    assert md.splitlines() == ["| a | b |", "| :--- | ---: |", "| x\\|y | 1 |"]
    assert tables.markdown(pd.DataFrame()) == "_(no rows)_"


def test_table_one_rows() -> None:
    t = tables.table_one(grid_points())
    rows = t["row"].tolist()
    # single-objective picks, the paper's picks merged into rows, baseline, trained in tag order
    assert rows[-3:] == ["heuristic", "trained A", "trained B"]
    by_split = t.set_index("split")
    assert "best sync delay" in by_split.loc["(0.5, 0.3)", "row"]
    assert "best E2E delay" in by_split.loc["(0.3, 0.5)", "row"]
    assert "best served" in by_split.loc["(0.3, 0.5)", "row"]
    assert "paper pick (0.3, 0.3)" in by_split.loc["(0.3, 0.3)", "row"]
    assert "paper pick (0.3, 0.4)" in by_split.loc["(0.3, 0.4)", "row"]
    assert t["split"].is_unique or t["split"].eq("").any()  # a split appears once
    a = t.loc[t["row"] == "trained A"].iloc[0]
    assert a["delta"] == 0.9 and a["sync_delay"] == pytest.approx(11.5)
    assert a["sync_delay_std"] == pytest.approx(np.std([11.0, 12.0], ddof=1))
    md = tables.table_one_markdown(t)
    assert "| trained B | ppo-b | 0.5 | -1 | 2 | 7.50 ± 0.71 |" in md


def test_paper_reference_and_comparison() -> None:
    ref = tables.paper_reference()
    assert ref["rerun"].set_index("split").loc["(0.4, 0.4)", "e2e_delay"] == 2.09
    # the swapped (0.4, 0.4) delays of the paper are stored corrected
    assert ref["static"].set_index("split").loc["(0.4, 0.4)", "sync_delay"] == 19.84
    assert len(ref["drl"]) == 5
    text = tables.paper_reference_markdown()
    assert "| A | delta 0.9, no penalty | 15.81 ± 2.71 | 7.07 ± 1.46 | 91.57 |" in text
    cmp = tables.paper_comparison(grid_points())
    assert set(cmp["split"]) == {"(0.3, 0.3)", "(0.3, 0.4)", "(0.4, 0.3)", "(0.4, 0.4)"}
    assert cmp.groupby("split").size().to_dict() == {
        "(0.3, 0.3)": 3,
        "(0.3, 0.4)": 3,
        "(0.4, 0.3)": 2,
        "(0.4, 0.4)": 3,
    }


def test_plane_figures_heatmaps_and_curves_are_written(tmp_path: Path) -> None:
    pts = grid_points()
    for plane in ("sync_served", "sync_e2e"):
        out = figures.plane_figure(pts, plane, tmp_path / f"{plane}.png")
        assert out is not None and out.stat().st_size > 10_000
    hm = figures.heatmaps(pts, figures.KEY_HEATMAP_METRICS, tmp_path / "hm.png")
    assert hm is not None and hm.exists()
    # one static split only: no heatmap; no curves: no figure
    one = pts.loc[(pts["role"] != "static") | (pts["policy"] == "static(0.3,0.3)")]
    assert figures.heatmaps(one, ["sync_delay"], tmp_path / "none.png") is None
    assert learning_curves(pd.DataFrame(), tmp_path / "lc.png") is None
    curves = pd.DataFrame(
        {
            "source": ["t0"] * 3 + ["t1"] * 3,
            "trial_id": ["a"] * 3 + ["b"] * 3,
            "delta": [0.9] * 3 + [0.5] * 3,
            "penalty": [0.0] * 6,
            "iteration": [1, 2, 3] * 2,
            "env_steps": [100, 200, 300] * 2,
            "env_runners/episode_return_mean": [1, 2, 3, 2, 3, 4],
            "env_runners/metalore/sync_delay": [9, 8, 7, 6, 5, 4],
        }
    )
    lc = learning_curves(curves, tmp_path / "lc.png", tags={"t0": "A"})
    assert lc is not None and lc.exists()
    assert not (tmp_path / "none.png").exists()


def test_plane_figure_without_delays_returns_none(tmp_path: Path) -> None:
    pts = grid_points(with_trained=False)
    pts["sync_delay"] = np.nan
    assert figures.plane_figure(pts, "sync_served", tmp_path / "x.png") is None


def test_trial_tags_cover_the_training_directory() -> None:
    pts = pd.DataFrame(
        {
            "role": ["trained", "trained", "static"],
            "source": ["sweep/t0", "train-a/eval", "static"],
            "tag": ["A", "B", ""],
        }
    )
    tags = trial_tags(pts)
    assert tags == {"sweep/t0": "A", "sweep": "A", "train-a/eval": "B", "train-a": "B"}


def test_heatmaps_keep_the_lattice_and_drop_off_grid_splits() -> None:
    pts = grid_points(with_trained=False)
    off = pts.loc[pts["policy"] == "static(0.3,0.3)"].copy()
    off["point"], off["policy"], off["w_b"], off["w_c"] = "x::opt", "opt", 0.3471, 0.2913
    both = pd.concat([pts, off], ignore_index=True)
    lat = figures.on_lattice(both.loc[both["role"] == "static"])
    assert "opt" not in set(lat["policy"]) and len(lat) == 9
    # only off-lattice splits: nothing to drop them for, all are kept
    assert len(figures.on_lattice(off)) == 1


def test_pooled_runs_use_all_their_episodes() -> None:
    spec = {
        "r1": {"role": "trained", "tag": "A1", "sync": [1.0, 3.0], "e2e": [1.0, 1.0],
               "served": [90.0, 92.0]},
        "r2": {"role": "trained", "tag": "A2", "sync": [5.0, 7.0], "e2e": [1.0, 1.0],
               "served": [80.0, 82.0]},
    }  # fmt: skip
    ep = tidy(spec, 2)
    ep["setting"] = "A"
    pts = points(ep)
    pooled = tables.pool_points(pts)
    assert pooled["sync_delay"] == pytest.approx(4.0)
    assert pooled["sync_delay_std"] == pytest.approx(np.std([1, 3, 5, 7], ddof=1))
    assert pooled["e2e_delay_std"] == pytest.approx(0.0) and pooled["episodes"] == 4
    t = tables.table_one(pts)
    assert t["row"].tolist() == ["trained A (2 runs pooled)", "trained A1", "trained A2"]
