"""The scaling measurements of ``launch bench --pool`` (:mod:`tune_configs.studies.scaling`):
their model and their shape, never their figures (timings vary with the machine's load)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tune_configs.studies.scaling import projection

ROOT = Path(__file__).resolve().parents[3]


def test_projection_is_runners_sampling_in_parallel_then_one_learner() -> None:
    # 1000 cell-steps/s per runner, 100 us per cell-step to learn: B/(n*1000) + B*1e-4 seconds
    assert projection(1000.0, 1e-4, 1) == pytest.approx(1 / (1e-3 + 1e-4))
    assert projection(1000.0, 1e-4, 10) == pytest.approx(1 / (1e-4 + 1e-4))
    assert projection(1000.0, 0.0, 63) == pytest.approx(63_000.0)
    assert projection(1000.0, 1e-4, 10_000) < 1e4  # the learner bounds it
    with pytest.raises(ValueError):
        projection(1000.0, 1e-4, 0)


def bench_pool(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "launch", "bench", "--pool", *args],
        cwd=ROOT, capture_output=True, text=True, timeout=600,
    )  # fmt: skip


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--scenarios", "three_cell_hetero,atlantis"], "unknown pool scenario(s) ['atlantis']"),
        (["--env-runners", "0,-1"], "comma-separated integers in [0, 64] expected"),
        (["--env-runners", "x"], "comma-separated integers in [0, 64] expected"),
    ],
)
def test_bad_arguments_are_refused(args: list[str], message: str) -> None:
    r = bench_pool(*args)
    assert r.returncode == 2 and message in r.stderr, r.stderr


@pytest.mark.ray
def test_bench_pool_measures_each_scenario_in_the_driver() -> None:
    r = bench_pool("--scenarios", "three_cell", "--env-runners", "0", "--iterations", "1",
                   "--json")  # fmt: skip
    assert r.returncode == 0, r.stderr[-3000:]
    out = json.loads(r.stdout)
    (sim,) = out["simulator"]
    (train,) = out["training"]
    assert sim["cells"] == train["cells"] == 3
    assert sim["cell_steps_per_s"] == pytest.approx(3 * sim["env_steps_per_s"])
    assert train["cell_steps_per_s_median"] > 0 and train["learn_s"] >= 0  # a difference of timings
    assert out["env_runners"] == [train]  # 0 runners on the largest scenario: the same run
    assert out["projection"] == []  # needs a 1-runner figure
