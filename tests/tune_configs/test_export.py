"""Shipped policies (tune_configs.export, launch export): export -> load -> same actions as the
RLModule; a shipped directory evaluates to exactly its checkpoint's numbers; it loads without
pickle, torch or Ray; broken directories are usage errors."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from envs.core.metrics import CLI_KEYS
from tune_configs.policies.shipped import (
    DESCRIPTION,
    SINGLE_ACTOR,
    WEIGHTS,
    Dense,
    MLPActor,
    ShippedPolicyError,
    load_shipped,
    to_env_actions,
    write_shipped,
)

ROOT = Path(__file__).resolve().parents[2]
TINY_HP = {"train_batch_size": 400, "minibatch_size": 100, "num_epochs": 1, "fcnet_hiddens": [16]}
ENV_CONFIG = {"preset": "paper", "obs_mode": "log1p", "delta": 0.7, "penalty": -1.0}


@pytest.fixture(scope="module")
def checkpoint(ray_session: Any, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A single-cell PPO checkpoint after one tiny training iteration (with its sidecar)."""
    from tune_configs.controllers import get_controller
    from tune_configs.ppo import Resources

    controller = get_controller("single")
    cfg = controller.resolve_env_config(ENV_CONFIG)
    algo = controller.build_config(cfg, TINY_HP, Resources(num_envs_per_env_runner=4), seed=2)
    algo = algo.build_algo()
    try:
        algo.train()
        path = tmp_path_factory.mktemp("ckpt") / "checkpoint"
        controller.save(algo, path, cfg, seed=2, timesteps=400, hparams=TINY_HP)
    finally:
        algo.stop()
    (path.parent / "train.json").write_text(
        json.dumps({"command": "python -m launch train --test", "seed": 2, "elapsed_s": 1.5})
    )
    return path


def _rl_module_actions(checkpoint: Path, obs: np.ndarray) -> np.ndarray:
    import torch
    from ray.rllib.core.rl_module.rl_module import RLModule

    from tune_configs.policies.single import MODULE_SUBDIR

    module: Any = RLModule.from_checkpoint(str(checkpoint / MODULE_SUBDIR))
    with torch.no_grad():
        out = module.forward_inference({"obs": torch.as_tensor(obs)})
        dist = module.get_inference_action_dist_cls().from_logits(out["action_dist_inputs"])
        mean: np.ndarray = dist.to_deterministic().sample().numpy()
    return mean


@pytest.mark.ray
def test_export_load_gives_the_rl_module_actions(checkpoint: Path, tmp_path: Path) -> None:
    from tune_configs.export import export_checkpoint

    out = export_checkpoint(checkpoint, tmp_path / "shipped")
    assert sorted(p.name for p in out.iterdir()) == sorted([DESCRIPTION, WEIGHTS])
    pol = load_shipped(out)
    obs = np.random.default_rng(0).uniform(0.0, 6.0, (64, 2)).astype(np.float32)
    mean = _rl_module_actions(checkpoint, obs)
    assert np.allclose(pol.actors[SINGLE_ACTOR](obs), mean, atol=1e-5)
    expected = np.clip((mean.astype(np.float64) + 1.0) * 0.5, 0.0, 1.0)
    assert np.allclose(pol.actions(obs), expected, atol=1e-5)
    desc = json.loads((out / DESCRIPTION).read_text())
    assert desc["controller"] == "single" and desc["trained_on"]["delta"] == 0.7
    assert desc["actors"][SINGLE_ACTOR]["layers"][0] == {"in": 2, "out": 16, "activation": "tanh"}
    m = desc["manifest"]
    assert m["command"] == "python -m launch train --test" and m["seed"] == 2
    assert m["env_steps"] == 400 and m["train_wall_s"] == 1.5
    assert m["git_commit"] and m["source_checkpoint"] == str(checkpoint)


@pytest.mark.ray
def test_launch_export_then_eval_gives_the_checkpoint_numbers(
    checkpoint: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from launch.cli import main

    shipped = tmp_path / "model"
    assert main(["export", str(checkpoint), "--out", str(shipped)]) == 0
    assert "shipped single policy" in capsys.readouterr().out
    results = []
    for path in (checkpoint, shipped):
        assert main(["eval", str(path), "--episodes", "4", "--seed", "3", "--json"]) == 0
        results.append(json.loads(capsys.readouterr().out))
    assert results[0] == results[1]
    assert list(results[1])[: len(CLI_KEYS)] == list(CLI_KEYS)
    # on another scenario too
    for path in (checkpoint, shipped):
        assert main(["eval", str(path), "--episodes", "2", "--json", "--set", "n_ues=12"]) == 0
        results.append(json.loads(capsys.readouterr().out))
    assert results[2] == results[3]


@pytest.mark.ray
def test_shipped_policy_loads_without_pickle_torch_or_ray(checkpoint: Path, tmp_path: Path) -> None:
    from tune_configs.export import export_checkpoint

    shipped = export_checkpoint(checkpoint, tmp_path / "model")
    assert not list(shipped.rglob("*.pkl"))
    code = f"""
import pickle, sys
sys.modules["torch"] = None  # any import of torch or ray fails from here on
sys.modules["ray"] = None
import safetensors.numpy
from tune_configs.policies.single import load_policy
def refuse(*a, **k):
    raise RuntimeError("unpickling attempted")
saved = pickle.load, pickle.loads, pickle.Unpickler
pickle.load = pickle.loads = pickle.Unpickler = refuse
policy = load_policy({str(shipped)!r})  # the whole loading step, pickle disabled
pickle.load, pickle.loads, pickle.Unpickler = saved  # numba's own compile cache uses pickle
from launch.cli import main
rc = main(["eval", {str(shipped)!r}, "--episodes", "2", "--json"])
assert policy.module is None
sys.exit(rc)
"""
    r = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300
    )
    assert r.returncode == 0, r.stderr[-3000:]
    assert json.loads(r.stdout)["episodes"] == 2


@pytest.mark.ray
def test_broken_shipped_dirs_are_usage_errors(
    checkpoint: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from launch.cli import main
    from tune_configs.export import export_checkpoint

    shipped = export_checkpoint(checkpoint, tmp_path / "model")
    (shipped / WEIGHTS).write_bytes(b"not safetensors")
    assert main(["eval", str(shipped), "--episodes", "1"]) == 2
    assert "unreadable" in capsys.readouterr().err
    (shipped / DESCRIPTION).write_text(json.dumps({"format": "other", "controller": "single"}))
    assert main(["eval", str(shipped), "--episodes", "1"]) == 2
    assert "format: must be 'metalore-policy'" in capsys.readouterr().err
    assert main(["export", str(tmp_path / "nope"), "--out", str(tmp_path / "x")]) == 2
    capsys.readouterr()


def test_actor_math_and_validation(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    w1, b1 = rng.normal(size=(3, 2)).astype(np.float32), rng.normal(size=3).astype(np.float32)
    w2, b2 = rng.normal(size=(4, 3)).astype(np.float32), rng.normal(size=4).astype(np.float32)
    actor = MLPActor((Dense(w1, b1, "relu"), Dense(w2, b2)), action_dim=2)
    x = rng.normal(size=(5, 2)).astype(np.float32)
    expected = (np.maximum(x @ w1.T + b1, 0.0) @ w2.T + b2)[:, :2]
    assert np.allclose(actor(x), expected, atol=1e-6)
    with pytest.raises(ValueError, match="outputs"):
        MLPActor((Dense(w1, b1),), action_dim=2)  # 3 outputs for 2 Gaussian actions
    with pytest.raises(ValueError, match="activation"):
        Dense(w1, b1, "swish9")
    # per-cell style: two actors in one file, bounds per action entry
    out = write_shipped(
        tmp_path / "pool", {"shared": actor, "cell_1": actor}, controller="per-cell",
        env_config={"preset": "three_cell"}, interface=(),
        action={"normalize": True, "low": [0, -1], "high": [1, 1]}, manifest={"seed": 0},
    )  # fmt: skip
    pol = load_shipped(out)
    assert set(pol.actors) == {"shared", "cell_1"} and pol.controller == "per-cell"
    a = pol.actions(x, "cell_1")
    assert np.allclose(a, to_env_actions(actor(x), pol.description["action"]))
    assert a[:, 0].min() >= 0.0 and a[:, 1].min() >= -1.0 and a.max() <= 1.0
    with pytest.raises(ShippedPolicyError):
        load_shipped(tmp_path)
