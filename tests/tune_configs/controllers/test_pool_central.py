"""The central pool controller end to end: one PPO iteration, checkpoint, replay, export to
weights + JSON, numpy replay equal to the RLModule, ``launch eval`` and ``pool-compare``."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from envs.core import make_params
from envs.core.pool.clearing import PoolParams
from envs.core.pool.rules import GreedyController, GreedyRule, evaluate_controller

pytestmark = pytest.mark.ray

ray = pytest.importorskip("ray")

from tune_configs.controllers import (  # noqa: E402
    CENTRAL,
    controller_of_checkpoint,
    evaluate_checkpoint,
    get_controller,
    load_any_pool_controller,
)
from tune_configs.controllers.central import (  # noqa: E402
    FlatPoolEnv,
    load_central_controller,
    resolve_central_env_config,
)
from tune_configs.export import export_pool_policy  # noqa: E402
from tune_configs.policies.shipped import DESCRIPTION, WEIGHTS  # noqa: E402
from tune_configs.ppo import Resources  # noqa: E402
from tune_configs.training import train  # noqa: E402

ROOT = Path(__file__).resolve().parents[3]
SPLITS = [[0.6, 0.5], [0.4, 0.4], [0.5, 0.5]]
ENV = {"preset": "three_cell_hetero", "endowment": 1000.0, "base_splits": SPLITS,
       "episode_steps": 30}  # fmt: skip
TINY = {"train_batch_size": 300, "minibatch_size": 150, "num_epochs": 1, "fcnet_hiddens": [16]}


def test_flat_env_and_config() -> None:
    cfg = resolve_central_env_config(ENV)
    assert cfg["obs"] == "trader" and cfg["action_mode"] == "residual"
    assert cfg["base_splits"] == SPLITS  # given splits are kept (no search)
    env = FlatPoolEnv(cfg)
    obs, _ = env.reset(seed=0)
    assert obs.shape == env.observation_space.shape == (env.obs_dim,) and env.act_dim == 9
    obs, r, term, trunc, _ = env.step(np.zeros(9, np.float32))
    assert obs.shape == (env.obs_dim,) and math.isfinite(r) and not term and not trunc
    with pytest.raises(ValueError, match="action_mode"):
        resolve_central_env_config({**ENV, "action_mode": "wild"})


@pytest.fixture(scope="module")
def central_checkpoint(ray_session: Any, tmp_path_factory: pytest.TempPathFactory) -> Path:
    controller = get_controller(CENTRAL)
    cfg = controller.resolve_env_config(ENV)
    algo = controller.build_config(cfg, TINY, Resources(0, 2), seed=0).build_algo()
    try:
        metrics = train(algo, 1)
        ckpt = controller.save(algo, tmp_path_factory.mktemp("central") / "checkpoint", cfg,
            seed=0, timesteps=int(metrics["timesteps"]), hparams=TINY,
        )  # fmt: skip
    finally:
        algo.stop()
    assert 0.0 <= metrics["env_runners/civic/fulfillment_pct"] <= 100.0
    assert "env_runners/civic/cell0/units_borrowed" in metrics  # trades per cell are logged
    return ckpt


def test_central_checkpoint_replay_and_export(central_checkpoint: Path, tmp_path: Path) -> None:
    assert controller_of_checkpoint(central_checkpoint).name == CENTRAL
    ctrl = load_central_controller(central_checkpoint)
    params = make_params("three_cell_hetero", episode_steps=30)
    pool = PoolParams(endowment=1000.0)
    rl = evaluate_controller(params, pool, ctrl, 2, seed=0)
    out = export_pool_policy(central_checkpoint, tmp_path / "shipped", {"seed": 0})
    info = json.loads((out / DESCRIPTION).read_text())
    assert info["controller"] == "central" and info["manifest"]["seed"] == 0
    assert sorted(p.name for p in out.iterdir()) == sorted([DESCRIPTION, WEIGHTS])
    assert info["action"]["mode"] == "residual" and not info["action"]["normalize"]
    shipped = load_any_pool_controller(out)
    obs = np.random.default_rng(0).normal(size=(5, info["actors"]["central"]["in_features"]))
    obs = obs.astype(np.float32)
    assert shipped.forward(obs) == pytest.approx(ctrl.forward(obs), abs=1e-5)
    np_rows = evaluate_controller(params, pool, shipped, 2, seed=0)
    for a, b in zip(rl, np_rows, strict=True):
        assert a["fulfillment_pct"] == pytest.approx(b["fulfillment_pct"])
        assert a["units_borrowed"] == pytest.approx(b["units_borrowed"], rel=1e-4)
    # a policy with zero output is exactly the greedy rule with its base splits
    shipped.forward = lambda o: np.zeros((o.shape[0], 9))
    zero = evaluate_controller(params, pool, shipped, 1, seed=0)[0]
    greedy = evaluate_controller(
        params, pool, GreedyController(tuple(map(tuple, SPLITS)), GreedyRule()), 1, seed=0
    )[0]
    assert zero["fulfillment_pct"] == pytest.approx(greedy["fulfillment_pct"])


def test_central_eval_and_pool_compare(central_checkpoint: Path, tmp_path: Path) -> None:
    summary = evaluate_checkpoint(central_checkpoint, 2, 0, tmp_path / "eval")
    assert summary["controller"] == CENTRAL and summary["policy"] == "ppo(central)"
    assert 0.0 <= summary["fulfillment_pct"] <= 100.0
    run = json.loads((tmp_path / "eval" / "run.json").read_text())
    assert run["kind"] == "pool-eval"
    shipped = export_pool_policy(central_checkpoint, tmp_path / "shipped")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.run(
        [sys.executable, "-m", "launch", "pool-compare", "--scenario", "three_cell_hetero",
         "--endowment", "1000", "--episodes", "2", "--seed", "5", "--set", "episode_steps=30",
         "--splits", "0.4,0.6;0.4,0.4;0.4,0.3", "--greedy-splits", "0.6,0.5;0.4,0.4;0.5,0.5",
         "--checkpoint", str(shipped), "--json"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    assert set(doc["summary"]) == {"noncoop", "greedy", "greedy_same_split", "ppo", "ppo_pool_off"}
    for variant in ("noncoop", "greedy", "ppo", "ppo_pool_off"):
        for key in ("fulfillment_pct", "units_borrowed", "served_clients", "fairness",
                    "operational_cost"):  # fmt: skip
            assert key in doc["summary"][variant], (variant, key)
    assert doc["summary"]["ppo_pool_off"]["units_borrowed"] == 0.0
    assert doc["meta"]["policy_controller"] == "central"


def test_launch_export_ships_a_pool_checkpoint_with_its_run_manifest(
    central_checkpoint: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import shutil

    from launch.cli import main

    run = tmp_path / "run"
    shutil.copytree(central_checkpoint, run / "checkpoint_00010")
    train_json = {
        "command": "python -m launch train --controller central --seed 7", "seed": 7,
        "git_commit": "abc", "timesteps": 1000, "elapsed_s": 12.5, "status": "finished",
        "final_metrics": {"timesteps": 1000},
    }  # fmt: skip
    (run / "train.json").write_text(json.dumps(train_json))
    (run / "progress.csv").write_text(
        "training_iteration,timesteps,time_total_s\n10,500,6.0\n20,1000,12.0\n"
    )
    assert main(["export", str(run / "checkpoint_00010"), "--out", str(tmp_path / "ship")]) == 0
    assert "central policy (preset three_cell_hetero" in capsys.readouterr().out
    manifest = json.loads((tmp_path / "ship" / DESCRIPTION).read_text())["manifest"]
    assert manifest["command"] == train_json["command"] and manifest["seed"] == 7
    assert manifest["env_steps"] == 500 and manifest["training_iteration"] == 10  # up to it
    # bad input is a usage error (exit status 2) before anything is evaluated
    assert main(["export", "--pool-runs", str(run), "--out", str(tmp_path / "x")]) == 2
    assert "needs --scenario" in capsys.readouterr().err
    bad = ["export", "--pool-runs", str(run), "--scenario", "paper", "--out", str(tmp_path / "x")]
    assert main(bad) == 2
    assert "not a multi-cell preset" in capsys.readouterr().err
    assert main(["export", "--pool-runs", str(tmp_path), "--scenario", "surge",
                 "--out", str(tmp_path / "x")]) == 2  # fmt: skip
    assert "no train.json" in capsys.readouterr().err
    assert main(["export", str(run / "checkpoint_00010"), "--every", "5",
                 "--out", str(tmp_path / "x")]) == 2  # fmt: skip
    assert "--every goes with --pool-runs" in capsys.readouterr().err
    # the candidates of a run: every K-th iteration's checkpoint, then the final one
    from tune_configs.selection import candidates

    for it in (5, 15, 20):
        (run / f"checkpoint_{it:05d}").mkdir()
    (run / "checkpoint").mkdir()
    names = [p.name for p in candidates(run, every=10)]
    assert names == ["checkpoint_00010", "checkpoint_00020", "checkpoint"]
    assert len(candidates(run)) == 5
    # the final checkpoint of a run whose last iteration was also saved is not evaluated twice
    (run / "train.json").write_text(json.dumps({**train_json, "iterations": 20}))
    assert [p.name for p in candidates(run, every=10)] == ["checkpoint_00010", "checkpoint_00020"]
