"""``python -m launch replay``: the figure, the video and the CSV; usage errors exit 2."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from tests.helpers.cli import run_launch, run_launch_here


def test_adaptive_policy_against_a_split_on_paper_dynamic(tmp_path: Path) -> None:
    out = tmp_path / "rep"
    r = run_launch(
        "replay", "models/paper/adaptive", "split:0.3,0.3", "--preset", "paper_dynamic",
        "--seed", "20000", "--out", str(out),
    )  # fmt: skip
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-3000:]
    assert {p.name for p in out.iterdir()} == {
        "timeline.png", "replay.mp4", "replay.csv", "replay.json"
    }  # fmt: skip
    table = pd.read_csv(out / "replay.csv")
    assert table.groupby("controller").size().to_dict() == {
        "models/paper/adaptive": 100, "split:0.3,0.3": 100
    }  # fmt: skip
    meta = json.loads((out / "replay.json").read_text())
    assert meta["seed"] == 20000 and meta["preset"] == "paper_dynamic"
    assert "launch replay" in meta["command"]
    served = meta["summaries"]["models/paper/adaptive"]["served_pct"]
    assert f"served {served:.1f} %" in r.stdout
    assert (out / "replay.mp4").stat().st_size > 10_000


def test_pool_policy_against_greedy_as_gif(tmp_path: Path) -> None:
    out = tmp_path / "pool"
    r = run_launch("replay", "models/pool/three_cell_hetero", "rule:greedy", "--seed", "7000",
                   "--out", str(out), "--video", "gif")  # fmt: skip
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-3000:]
    assert (out / "replay.gif").read_bytes()[:6] == b"GIF89a"
    table = pd.read_csv(out / "replay.csv")
    assert len(table) == 2 * 100 * 3 and "balance" in table
    assert "rule:greedy: splits [[0.6, 0.5], [0.4, 0.4], [0.5, 0.5]]" in r.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["split:0.3"], "is not W_B,W_C"),
        (["rule:best"], "unknown rule 'best'"),
        (["no/such/policy"], "is not a directory; a controller is"),
        (["models/paper/adaptive", "rule:greedy"], "single-cell policy"),
        (["rule:queue_aware", "--preset", "mars"], "invalid choice: 'mars'"),
    ],
)
def test_bad_controllers_are_usage_errors(args: list[str], message: str) -> None:
    r = run_launch_here("replay", *args, "--video", "none", "--out", "/nonexistent/never")
    assert r.returncode == 2
    assert message in r.stderr
    assert "usage:" in r.stderr
