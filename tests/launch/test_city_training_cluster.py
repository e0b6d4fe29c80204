"""The city controller trains through Ray's env runners on a local 2-node cluster: ``launch train
--controller per-cell --preset city_19 --env-runners 1 --address ...`` (the driver learns, one
env runner samples on the cluster) for a few iterations, then its checkpoint is evaluated.

Slow (about 2-3 min on a quiet 2-core machine): ``pytest -m slow
tests/launch/test_city_training_cluster.py``. The cluster is started with ``launch cluster up
--workers 1`` and always stopped with ``cluster down``."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.helpers.drills import client_env, launch, local_cluster

pytestmark = [pytest.mark.slow, pytest.mark.ray]

RECIPE = [
    "--set", "obs=trader", "--set", "action_mode=residual", "--set", "base_splits=greedy",
    "--set", "reward=fulfilled", "--set", "reward_scale=0.01", "--hp", "log_std_clip_param=1.0",
]  # fmt: skip
BATCH = ["--hp", "train_batch_size=100", "--hp", "minibatch_size=50", "--hp", "num_epochs=1"]


def test_city_controller_trains_with_an_env_runner_on_the_local_cluster(tmp_path: Path) -> None:
    out = tmp_path / "city19"
    with local_cluster(tmp_path / "cluster") as state:
        r = launch(
            "train", "--controller", "per-cell", "--preset", "city_19", *RECIPE, *BATCH,
            "--timesteps", "300", "--env-runners", "1", "--address", state.gcs_address,
            "--eval-episodes", "1", "--out", str(out),
            env=client_env(state), timeout=1200,
        )  # fmt: skip
        assert r.returncode == 0, (r.stdout + r.stderr)[-4000:]
        # the env runner was an actor of this cluster (not a process of the driver)
        logs = Path(state.temp_dir).rglob("*.out")
        assert any("MultiAgentEnvRunner" in p.read_text(errors="replace") for p in logs), (
            "no MultiAgentEnvRunner actor in the cluster's worker logs"
        )
    meta = json.loads((out / "train.json").read_text())
    assert meta["status"] == "finished", meta
    assert meta["resources"]["num_env_runners"] == 1
    assert meta["env_config"]["preset"] == "city_19"
    assert (out / "checkpoint").is_dir()
    assert (out / "eval").is_dir()
