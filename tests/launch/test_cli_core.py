"""The simulator's CLI subcommands, once each, in a subprocess."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers.cli import run_launch_here

ROOT = Path(__file__).resolve().parents[2]
KEYS = {"w_b", "w_c", "episodes", "sync_delay", "sync_delay_std", "e2e_delay", "e2e_delay_std",
        "served_pct", "served_pct_std", "episode_return", "episode_return_std"}  # fmt: skip


def launch(*args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "launch", *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=timeout)  # fmt: skip


def test_static_split_json() -> None:
    r = launch("static", "--split", "0.3,0.4", "--episodes", "5", "--seed", "0", "--json")
    assert r.returncode == 0, r.stderr
    obj = json.loads(r.stdout)
    assert set(obj) >= KEYS and obj["w_b"] == 0.3 and obj["episodes"] == 5


def test_static_grid_json_and_out(tmp_path: Path) -> None:
    r = launch("static", "--grid", "0.5", "--episodes", "3", "--json", "--out", str(tmp_path))
    assert r.returncode == 0, r.stderr
    rows = json.loads(r.stdout)
    assert [(o["w_b"], o["w_c"]) for o in rows if o["kind"] == "static"] == [
        (b, c) for b in (0.0, 0.5, 1.0) for c in (0.0, 0.5, 1.0)
    ]
    assert {o["kind"] for o in rows} == {"static", "heuristic", "queue_aware"}
    assert all(set(o) >= KEYS for o in rows)
    meta = json.loads((tmp_path / "run.json").read_text())
    assert meta["kind"] == "static" and meta["params"]["reward"]["delta"] == 0.9
    assert len((tmp_path / "episodes.csv").read_text().splitlines()) == 1 + 11 * 3


def test_static_table() -> None:
    r = launch("static", "--split", "0.3,0.3", "--split", "0.4,0.4", "--episodes", "2")
    assert r.returncode == 0, r.stderr
    assert "static(0.3,0.3)" in r.stdout and "sync delay" in r.stdout


@pytest.mark.parametrize(
    "args",
    [
        ["static", "--split", "0.3"],
        ["static", "--split", "0.3,1.4"],
        ["static", "--grid", "0.3"],
        ["static", "--split", "0.3,0.4", "--episodes", "0"],
        ["static", "--split", "0.3,0.4", "--set", "n_ues=-1"],
        ["static", "--split", "0.3,0.4", "--preset", "nope"],
        ["static"],
        ["no-such-command"],
    ],
)
def test_bad_arguments_give_usage_and_exit_2(args: list[str]) -> None:
    r = run_launch_here(*args)
    assert r.returncode == 2
    assert "usage:" in r.stderr and "Traceback" not in r.stderr


def test_bench_times_a_sync_into_each_storage() -> None:
    r = launch("bench", "--storage", "--trials", "3", "--repeats", "2", "--json")
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert (out["trials"], out["files"]) == (3, 15)
    assert set(out["sync_s"]) == {"local", "whole"}
    assert all(0 < fig["best"] <= fig["median"] for fig in out["sync_s"].values())


def test_bench_runs_quick() -> None:
    r = launch("bench", "--json", "--single-steps", "2000", "--repeats", "1", "--memory-steps",
               "2000", "--grid-episodes", "5")  # fmt: skip
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["single_env_steps_per_s"]["best"] > 0
    assert out["paper_static_grid_s"]["best"] > 0
    assert len(out["memory"]["rss_mb_samples"]) == 10
