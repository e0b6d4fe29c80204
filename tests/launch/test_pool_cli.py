"""``python -m launch pool-compare`` end to end (tiny budget), its errors, and the pool figures."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from analysis.pool_compare import compare, gain, load_pool_result
from analysis.pool_figures import city_flow_figure, pool_flow_figure, pool_table, pool_tables
from launch.cli import main

ROOT = Path(__file__).resolve().parents[2]
TINY = [
    "--episodes", "2", "--seed", "0", "--tune-episodes", "1", "--grid", "0.5",
    "--set", "episode_steps=30",
]  # fmt: skip


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run(
        [sys.executable, "-m", "launch", "pool-compare", *args],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=600,
    )  # fmt: skip


@pytest.fixture(scope="module")
def surge_result(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("pool") / "surge"
    proc = run_cli("--scenario", "surge", *TINY, "--set", "surge_step=15", "--endowment", "500",
                   "--out", str(out), "--json")  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    assert doc["meta"]["kind"] == "pool-compare" and doc["meta"]["pool"]["endowment"] == 500.0
    assert set(doc["summary"]) == {"noncoop", "greedy", "greedy_same_split"}
    assert "searching" in proc.stderr  # progress goes to stderr
    return out


def test_pool_compare_outputs(surge_result: Path) -> None:
    for name in ("run.json", "episodes.csv", "summary.json", "comparison.csv", "comparison.json",
                 "trace.json"):  # fmt: skip
        assert (surge_result / name).is_file(), name
    res = load_pool_result(surge_result)
    comparison = res["comparison"]
    rows = {(r["metric"], r["scope"]): r for r in comparison}
    for key in ("completion_pct", "fulfillment_pct", "served_clients", "fairness",
                "operational_cost"):  # fmt: skip
        row = rows[(key, "overall")]
        assert row["noncoop"] is not None and "greedy_gain_pct" in row
    assert rows[("fulfillment_pct", "overall")]["civic_range"] == "+23-70 %"
    assert ("fulfillment_pct", "after") in rows and ("units_lent", "cell0") in rows
    trace = res["trace"]["greedy"]
    assert len(trace["balance"]) == 30 and len(trace["balance"][0]) == 3
    # the episodes file has one row per variant and episode
    lines = (surge_result / "episodes.csv").read_text().strip().splitlines()
    assert len(lines) == 1 + 3 * 2


def test_pool_figures(surge_result: Path, tmp_path: Path) -> None:
    table = pool_table(surge_result)
    assert "| fulfillment % |" in table and "+23-70 %" in table and "after surge" in table
    both = pool_tables({"normal": surge_result, "surge": surge_result})
    assert both.count("\n") >= 7 and "surge: gain" in both
    png = pool_flow_figure(surge_result, tmp_path / "flows.png")
    assert png.stat().st_size > 10_000
    with pytest.raises(ValueError, match="no trace"):
        pool_flow_figure(surge_result, tmp_path / "x.png", variant="ppo")
    with pytest.raises(FileNotFoundError, match="pool-compare"):
        pool_table(tmp_path)


def test_city_flow_figure_of_the_shipped_city_policy(surge_result: Path, tmp_path: Path) -> None:
    """A city (more than 7 cells) gets the city view: the shipped city policy beside the rules,
    its trades as a heat map and a map of the city; any pool-compare result draws it too."""
    out = tmp_path / "city"
    proc = run_cli("--scenario", "city_19", *TINY, "--endowment", "1000", "--checkpoint",
                   str(ROOT / "models" / "pool" / "city_19"), "--out", str(out))  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    res = load_pool_result(out)
    assert {"ppo", "ppo_pool_off", "greedy"} <= set(res["summary"])
    assert len(res["trace"]["ppo"]["balance"][0]) == 19
    png = pool_flow_figure(out, tmp_path / "city.png")  # > 7 cells: the city view
    assert png.stat().st_size > 10_000
    small = city_flow_figure(surge_result, tmp_path / "small.png", variant="greedy")
    assert small.stat().st_size > 10_000


def test_pool_compare_table_output(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["pool-compare", "--scenario", "three_cell", *TINY,
                 "--splits", "0.5,0.5;0.5,0.5;0.5,0.5",
                 "--greedy-splits", "0.4,0.4;0.4,0.4;0.4,0.4"])  # fmt: skip
    out, err = capsys.readouterr()
    assert code == 0, err
    assert "fulfillment_pct" in out and "CIVIC" in out
    assert "cell0=(0.5,0.5)" in out
    assert "searching" not in err  # fixed splits: no search


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--scenario", "nowhere"], "unknown scenario"),
        (["--scenario", "paper"], "one cell"),
        (["--scenario", "three_cell", "--splits", "0.5,0.5"], "1 splits for 3 cells"),
        (["--scenario", "three_cell", "--checkpoint", "/no/such/ckpt"], "not a directory"),
        (["--scenario", "three_cell", "--endowment", "-3"], "endowment"),
        (["--scenario", "three_cell", "--episodes", "0"], "must be >= 1"),
        (["--scenario", "three_cell", "--tune-seed", "0"], "overlap"),
        (["--scenario", "three_cell", "--set", "n_uez=3"], "unknown parameter"),
    ],
)
def test_pool_compare_usage_errors(
    args: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    try:
        code = main(["pool-compare", *args])
    except SystemExit as exc:  # argparse rejects malformed values itself
        code = int(exc.code or 0)
    out, err = capsys.readouterr()
    assert code == 2, (out, err)
    assert message in err and "usage:" in err


def test_gain_and_compare() -> None:
    assert gain(60.0, 40.0) == pytest.approx(50.0)
    assert gain(1.0, 0.0) is None and gain(None, 1.0) is None
    summaries = {
        "noncoop": {"fulfillment_pct": 40.0, "cell0_fulfillment_pct": 10.0},
        "greedy": {"fulfillment_pct": 50.0, "cell0_fulfillment_pct": 30.0},
    }
    rows = compare(summaries, n_cells=1)
    assert rows[0]["greedy_gain_pct"] == pytest.approx(25.0)
    assert rows[1]["scope"] == "cell0" and rows[1]["greedy_gain_pct"] == pytest.approx(200.0)


def test_pool_compare_on_a_city_built_with_set(capsys: pytest.CaptureFixture[str]) -> None:
    # a city of 7 cells built from city_19's generator, searched by classes; a bad city value is a
    # usage error naming the field
    proc = run_cli("--scenario", "city_19", *TINY, "--set", "city_rings=1", "--set",
                   "city_hotspots=2", "--search", "classes", "--json")  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    meta = doc["meta"]
    assert meta["n_cells"] == 7 and meta["search"]["strategy"] == "classes"
    assert len({tuple(s) for s in meta["splits"]["greedy"]}) <= 3  # one split per class
    assert main(["pool-compare", "--scenario", "city_19", *TINY, "--set", "city_rings=-1"]) == 2
    assert "city_rings=-1" in capsys.readouterr().err


def test_pool_load_reports_demand_against_capacity_per_class() -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    r = subprocess.run(
        [sys.executable, "-m", "launch", "pool-load", "--scenario", "city_19", "--episodes", "2",
         "--json"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    load = json.loads(r.stdout)
    assert [c["capacity"] for c in load["classes"]] == [70.0, 100.0, 130.0]
    assert sum(c["cells"] for c in load["classes"]) == 19
    assert load["capacity_total"] == 1870.0
    bad = subprocess.run(
        [sys.executable, "-m", "launch", "pool-load", "--scenario", "paper"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert bad.returncode == 2 and "unknown multi-cell scenario 'paper'" in bad.stderr
