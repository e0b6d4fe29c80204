"""Ray's job client as its docs teach it, on a freshly started local cluster: ``ray job submit
--working-dir .`` of a small sweep succeeds (it died with "Intel oneMKL FATAL ERROR: Cannot load
.../libtorch_cpu.so" while both nodes shared one Ray temp dir: the worker node's runtime-env agent
unpacked the job's package again under the running driver), and ``launch submit --working-dir``
ships the local checkout the same way.

Slow (about 2-3 min on a quiet 2-core machine): ``pytest -m slow
tests/launch/test_submit_working_dir.py``. The cluster is started with ``launch cluster up
--workers 1`` and always stopped with ``cluster down``."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers.drills import ROOT, client_env, complete_trials, launch, local_cluster
from tune_configs.ops.cluster import ClusterState

pytestmark = [pytest.mark.slow, pytest.mark.ray]

SMALL = ["static-grid", "--budget", "small", "--set", "episodes=10"]


@pytest.fixture
def fresh_cluster(tmp_path: Path) -> Iterator[ClusterState]:
    with local_cluster(tmp_path / "cluster") as state:
        yield state


def _client_env(state: ClusterState) -> dict[str, str]:
    path = os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])
    return client_env(state, PATH=path)


def test_ray_job_submit_with_working_dir_on_a_fresh_cluster(
    fresh_cluster: ClusterState, tmp_path: Path
) -> None:
    state = fresh_cluster
    storage = Path(state.storage)
    ray = shutil.which("ray", path=_client_env(state)["PATH"])
    assert ray is not None
    cmd = [
        ray, "job", "submit", "--address", state.dashboard_url, "--working-dir", ".", "--",
        "python", "-m", "launch", "sweep", *SMALL, "--address", "auto",
        "--storage", str(storage), "--name", "wd",
    ]  # fmt: skip
    r = subprocess.run(cmd, cwd=ROOT, env=_client_env(state), capture_output=True, text=True,
                       timeout=900)  # fmt: skip
    out = r.stdout + r.stderr
    assert r.returncode == 0, out[-4000:]
    assert "oneMKL" not in out and "succeeded" in out, out[-2000:]
    assert len(complete_trials(storage / "wd")) == 2
    # the job ran the shipped package (unpacked without .git, so its result sets name no git
    # commit), not the checkout on the nodes' PYTHONPATH (which would name one)
    assert "_ray_pkg_" in out
    for trial in complete_trials(storage / "wd"):
        assert json.loads((storage / "wd" / trial / "run.json").read_text())["git_commit"] is None

    # `launch submit --working-dir` ships the checkout the same way (a second job)
    r = launch("submit", *SMALL, "--working-dir", str(ROOT), "--name", "wd2",
               "--cluster-dir", state.directory, env=_client_env(state))  # fmt: skip
    assert r.returncode == 0, (r.stdout + r.stderr)[-4000:]
    assert len(complete_trials(storage / "wd2")) == 2
