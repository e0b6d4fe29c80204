"""The searched-front study's runner (tune_configs.studies.searched_front, ``launch front-study``).

Its numbers (hypervolume ratios at equal trial counts) are tested with known answers in
tests/analysis/test_optuna_studies.py; here: which sweeps it runs, its usage errors, and a tiny
static part end to end (two sampler seeds, three evaluations each), rerun without redoing it.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.helpers.cli import run_launch, run_launch_here
from tune_configs.studies import searched_front


def test_the_parts_are_ordinary_sweeps_with_checked_settings() -> None:
    from tune_configs.sweeps import sweep_module
    from tune_configs.sweeps.common import check_settings

    todo = searched_front.experiments((0, 1), 63, 60_000, (0, 1, 2))
    names = [name for name, _, _ in todo]
    assert names == ["static-search-s0", "static-search-s1", "reward-grid",
                     "reward-search-s0", "reward-search-s1"]  # fmt: skip
    for name, sweep, overrides in todo:
        module = sweep_module(sweep)
        assert check_settings(module, overrides) == overrides, name
        n = module.total_trials("small", **overrides)
        # every part's trial budget: 63 evaluations / PPO trials (the grid: 21 settings x 3 seeds,
        # the seeds of one setting in one Tune trial)
        assert n == (21 if sweep == "paper-grid" else 63), name
    grid = {name: o for name, _, o in todo}["reward-grid"]
    assert grid["seeds"] == [0, 1, 2] and grid["timesteps"] == 60_000
    assert grid["eval_episodes"] == 100 and grid["with_static"] is False
    only = searched_front.experiments((3,), 10, 1000, (0,), parts=("search",))
    assert [n for n, _, _ in only] == ["reward-search-s3"]


def test_usage_errors(tmp_path: Path) -> None:
    r = run_launch_here("front-study", "--out", str(tmp_path), "--parts", "static,bogus")
    assert r.returncode == 2 and "bogus" in r.stderr
    r = run_launch_here("front-study", "--out", str(tmp_path / "none"), "--analyze-only")
    assert r.returncode == 2 and "no study directory" in r.stderr
    r = run_launch_here("front-study", "--out", str(tmp_path), "--seeds", "a,b")
    assert r.returncode == 2


@pytest.mark.ray
def test_tiny_static_part_end_to_end(tmp_path: Path) -> None:
    out = tmp_path / "study"
    args = ["front-study", "--out", str(out), "--parts", "static", "--seeds", "0,1",
            "--trials", "3", "--counts", "2,3"]  # fmt: skip
    r = run_launch(*args, timeout=600)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-3000:]
    result = json.loads((out / searched_front.RESULT_FILE).read_text())
    static = result["static"]
    assert static["grid_trials"] == 121 and static["seeds"] == [0, 1]
    for n in ("2", "3"):
        row = static["at"][n]
        assert row["search_2d"]["n"] == 2 and 0 < row["search_2d"]["mean"] <= 1.5
        assert 0 < row["grid_2d"]["mean"] <= 1.0
    assert "reward" not in result  # no reward part run
    assert (out / searched_front.FIGURE_FILE).is_file()
    assert "static n=  3: search/grid hypervolume 2-D" in r.stdout
    again = run_launch(*args, timeout=600)  # finished parts are kept, not run again
    assert again.returncode == 0, again.stderr[-3000:]
    assert "static-search-s0: done before, kept" in again.stdout
    assert json.loads((out / searched_front.RESULT_FILE).read_text())["static"] == static
