"""A controller added from a test module runs through train, export, eval and a sweep, with no
other module edited: the registry finds it by its ``module:attr`` reference, in this process, in
CLI subprocesses and in Ray workers."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.tune_configs.extra_controller import REFERENCE
from tune_configs.controllers import controller_of_checkpoint, get_controller

pytestmark = pytest.mark.ray
ROOT = Path(__file__).resolve().parents[2]


def _launch(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run(
        [sys.executable, "-m", "launch", *args], cwd=ROOT, env=env, capture_output=True,
        text=True, timeout=600,
    )  # fmt: skip


def test_reference_resolves_and_bad_ones_are_named() -> None:
    ctl = get_controller(REFERENCE)
    assert ctl.name == REFERENCE and ctl.resolve_hparams()["fcnet_hiddens"] == [16]
    assert ctl.resolve_env_config({})["obs_age"] is True
    with pytest.raises(ValueError, match="cannot import"):
        get_controller("tests.tune_configs.no_such_module:make")
    with pytest.raises(ValueError, match="unknown controller 'singel'"):
        get_controller("singel")


def test_train_export_eval_and_a_one_trial_sweep(tmp_path: Path) -> None:
    run = tmp_path / "run"
    out = _launch("train", "--controller", REFERENCE, "--timesteps", "2000", "--quiet",
                  "--hp", "train_batch_size=1000", "--hp", "minibatch_size=500",
                  "--out", str(run))  # fmt: skip
    assert out.returncode == 0, out.stderr[-2000:]
    sidecar = json.loads((run / "checkpoint" / "metalore_policy.json").read_text())
    assert sidecar["controller"] == REFERENCE and sidecar["env_config"]["obs_age"] is True
    assert controller_of_checkpoint(run / "checkpoint").name == REFERENCE

    shipped = tmp_path / "shipped"
    out = _launch("export", str(run / "checkpoint"), "--out", str(shipped))
    assert out.returncode == 0, out.stderr[-2000:]
    desc = json.loads((shipped / "policy.json").read_text())
    assert desc["controller"] == REFERENCE and desc["interface"]["obs_age"] is True
    assert [layer["out"] for layer in desc["actors"]["default_policy"]["layers"]][:1] == [16]

    evals = [_launch("eval", str(p), "--episodes", "3", "--json")
             for p in (run / "checkpoint", shipped)]  # fmt: skip
    for e in evals:
        assert e.returncode == 0, e.stderr[-2000:]
    a, b = (json.loads(e.stdout) for e in evals)
    assert a["controller"] == b["controller"] == REFERENCE
    assert a["served_pct"] == b["served_pct"] and a["sync_delay"] == b["sync_delay"]

    sweep = _launch(
        "sweep", "paper-grid", "--budget", "small", "--storage", str(tmp_path / "sweeps"),
        "--name", "extra", "--set", f"controller={REFERENCE}", "--set", "deltas=[0.9]",
        "--set", "penalties=[0.0]", "--set", "with_static=false", "--set", "timesteps=1000",
        "--set", "eval_episodes=2", "--set", 'hparams={"train_batch_size": 1000, '
        '"minibatch_size": 500}',
    )  # fmt: skip
    assert sweep.returncode == 0, sweep.stdout[-2000:] + sweep.stderr[-2000:]
    runs = list((tmp_path / "sweeps" / "extra").glob("*/run.json"))
    assert len(runs) == 1, runs
    record = json.loads(runs[0].read_text())
    assert record["controller"] == REFERENCE and record["kind"] == "ppo-trial"
