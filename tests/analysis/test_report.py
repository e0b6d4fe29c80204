"""``python -m launch report``: end to end on a tiny static run, and on a synthetic full sweep."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from analysis import pool_figures
from analysis.report import write_report
from analysis.resultset import write_result_set
from tests.analysis.test_analysis_collect import fake_rows, make_results_dir, write_set
from tests.helpers.cli import run_launch_here

ROOT = Path(__file__).resolve().parents[2]


def launch(*args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "launch", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def test_report_end_to_end_on_a_tiny_static_run(tmp_path: Path) -> None:
    out = tmp_path / "static"
    r = launch("static", "--grid", "0.5", "--episodes", "3", "--out", str(out))
    assert r.returncode == 0, r.stderr
    r = launch("report", str(tmp_path))
    assert r.returncode == 0, r.stderr
    report = tmp_path / "report.md"
    assert f"report: {report}" in r.stdout
    text = report.read_text()
    for png in ("fig4_paper.png", "fig5_paper.png", "heatmap_key_paper.png"):
        assert (tmp_path / "figures" / png).stat().st_size > 10_000
        assert f"](figures/{png})" in text  # relative links
    results = pd.read_csv(tmp_path / "results.csv")
    assert len(results) == 11 * 3 and set(results["source"]) == {"static"}
    t1 = pd.read_csv(tmp_path / "tables" / "table_one_paper.csv")
    assert t1["row"].tolist()[-2:] == ["heuristic", "queue-aware"]
    # on a 0.5 grid only (0.5, 0.5) serves anybody: it is every static pick
    assert t1["split"].tolist()[0] == "(0.5, 0.5)" and len(t1) == 3
    assert "| heuristic | (0.4, 0.4) |" in text
    # sections without data say what would fill them
    assert "_No trained policies in this scenario" in text
    assert "_No training logs" in text and "_No pool comparison here" in text
    assert "The paper's reported numbers" in text


def test_report_usage_errors(tmp_path: Path) -> None:
    r = run_launch_here("report", str(tmp_path / "missing"))
    assert r.returncode == 2 and "not a directory" in r.stderr and "Traceback" not in r.stderr
    r = run_launch_here("report", str(tmp_path))
    assert r.returncode == 2 and "no result sets" in r.stderr and "Traceback" not in r.stderr


def test_report_on_a_full_synthetic_sweep(tmp_path: Path) -> None:
    make_results_dir(tmp_path)
    path = write_report(tmp_path, reps=200)
    text = path.read_text()
    assert (tmp_path / "figures" / "learning_curves.png").exists()
    assert "![Learning curves](figures/learning_curves.png)" in text
    for row in ("trained A", "trained B", "trained C", "trained D"):
        assert f"| {row} |" in text
    claims = pd.read_csv(tmp_path / "tables" / "claims_paper.csv")
    assert set(claims["tag"].dropna()) == {"A", "B", "C", "D"}
    assert set(claims["verdict"]) <= {"on front", "within noise", "dominated"}
    hv = pd.read_csv(tmp_path / "tables" / "hypervolume_paper.csv")
    assert set(hv["set"]) == {"static grid", "trained", "static + trained"}
    assert "## At a glance" in text and "trained policies on the static front" in text
    assert "Skipped broken" in text  # the run.json without episodes
    assert "used once" in text  # the repeated static split


def test_report_includes_a_pool_comparison(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write_set(
        tmp_path / "static",
        "static",
        fake_rows("static(0.3,0.3)", "static", 0.3, 0.3, 2, 9, 21, 75),
    )
    # launch pool-compare's layout: run.json (kind pool-compare), one episode row per variant
    pool = tmp_path / "pool"
    rows = [
        {"policy": pol, "kind": kind, "seed": seed, "completion_pct": pct}
        for seed, pcts in ((0, (80.0, 84.0)), (1, (81.0, 85.0)))
        for (pol, kind), pct in zip((("noncoop", "noncoop"), ("greedy", "coop")), pcts, strict=True)
    ]
    write_result_set(pool, {"kind": "pool-compare", "preset": "three_cell"}, rows)
    calls: list[Path] = []

    def pool_flow_figure(result_dir: Path, out_png: Path) -> Path:
        calls.append(Path(result_dir))
        Path(out_png).write_bytes(b"png")
        return Path(out_png)

    monkeypatch.setattr(pool_figures, "pool_flow_figure", pool_flow_figure)
    table = "| cell | credits |\n| --- | --- |\n| 0 | 3 |"
    monkeypatch.setattr(pool_figures, "pool_table", lambda d: table)
    text = write_report(tmp_path, reps=200).read_text()
    assert calls == [tmp_path / "pool"]
    assert "### Pool comparison: pool" in text and "| 0 | 3 |" in text
    assert "](figures/pool_flow_0.png)" in text
    # pool rows stay out of the single-cell planes and Table I
    assert "## Scenario three_cell" not in text
    results = pd.read_csv(tmp_path / "results.csv")
    pool_rows = results.loc[results["source"] == "pool"]
    assert set(pool_rows["role"]) == {"pool"} and set(pool_rows["policy"]) == {"noncoop", "greedy"}


def test_report_flags_result_sets_of_training_resumed_from_a_checkpoint(tmp_path: Path) -> None:
    static = fake_rows("static(0.3,0.3)", "static", 0.3, 0.3, 2, 9, 21, 75)
    write_set(tmp_path / "static", "static", static)
    trained = fake_rows("ppo", "ppo", None, None, 2, 8, 20, 80)
    write_set(tmp_path / "calm", "ppo-trial", trained, resumed_from_steps=0)
    write_set(tmp_path / "crashed", "ppo-trial", trained, resumed_from_steps=40_000)
    text = write_report(tmp_path, reps=50).read_text()
    assert "1 result set(s) come from training resumed from a mid-run checkpoint" in text
    assert "crashed (40,000 steps)" in text and "calm (" not in text
    rows = pd.read_csv(tmp_path / "results.csv")
    flags = rows.groupby("source")["run_resumed_from_steps"].max()
    assert flags["crashed"] == 40_000 and flags["calm"] == 0
