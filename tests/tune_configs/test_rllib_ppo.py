"""RLlib PPO on MetaLore: env registration, config builder, metrics callback, train -> eval.

Run: ``pytest tests/tune_configs/test_rllib_ppo.py`` (about a minute; starts one embedded Ray per
session).
Budgets are tiny (a few hundred env steps): these tests check wiring, files and determinism,
not learning.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from envs.core.metrics import SUMMARY_KEYS
from tests.helpers.cli import run_launch as _cli
from tune_configs.callbacks import LOGGED_KEYS, PREFIX

pytestmark = pytest.mark.ray  # tune_configs.callbacks imports Ray

ROOT = Path(__file__).resolve().parents[2]
TINY_HP = {"train_batch_size": 400, "minibatch_size": 100, "num_epochs": 1}
CLI_KEYS = (
    "w_b", "w_c", "episodes", "sync_delay", "sync_delay_std", "e2e_delay", "e2e_delay_std",
    "served_pct", "served_pct_std", "episode_return", "episode_return_std",
)  # fmt: skip


def _gcs_address(ray: Any) -> str:
    return str(ray.get_runtime_context().gcs_address)


# --- no Ray needed ------------------------------------------------------------------------------
def test_env_creator_ignores_rllib_keys_and_validates() -> None:
    from tune_configs.env import env_creator, params_from_env_config

    env = env_creator({"preset": "paper", "delta": 0.7, "obs_mode": "log1p", "num_envs": 8})
    assert env.params.reward.delta == 0.7
    obs, _ = env.reset(seed=1)
    assert obs.shape == (2,)
    with pytest.raises(ValueError, match="delta"):
        params_from_env_config({"delta": 1.5})
    with pytest.raises(ValueError, match="unknown parameter"):
        params_from_env_config({"detla": 0.5})


def test_hparams_and_resources_validation() -> None:
    from tune_configs.ppo import Resources, resolve_hparams
    from tune_configs.training import fit_batch_to_budget

    with pytest.raises(ValueError, match="unknown PPO hyper-parameter"):
        resolve_hparams({"learning_rate": 1e-3})
    with pytest.raises(ValueError, match="minibatch_size"):
        resolve_hparams({"train_batch_size": 100, "minibatch_size": 200})
    with pytest.raises(ValueError, match="num_envs_per_env_runner"):
        Resources(num_envs_per_env_runner=0)
    assert Resources().cpus == 1.0  # the default fits two trials on a 2-core machine
    assert Resources(num_env_runners=2).cpus == 3.0
    hp = fit_batch_to_budget(resolve_hparams(), 300)
    assert hp["train_batch_size"] == 300 and hp["minibatch_size"] <= 300


def test_eval_missing_or_corrupt_checkpoint_is_a_usage_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from launch.cli import main

    assert main(["eval", str(tmp_path / "nope"), "--episodes", "2"]) == 2
    assert "does not exist" in capsys.readouterr().err
    not_ckpt = tmp_path / "empty"
    not_ckpt.mkdir()
    assert main(["eval", str(not_ckpt)]) == 2
    assert "not an RLlib PPO checkpoint" in capsys.readouterr().err
    corrupt = tmp_path / "corrupt"
    module_dir = corrupt / "learner_group" / "learner" / "rl_module" / "default_policy"
    module_dir.mkdir(parents=True)
    (module_dir / "module_state.pkl").write_bytes(b"garbage")
    (module_dir / "class_and_ctor_args.pkl").write_bytes(b"garbage")
    (module_dir / "metadata.json").write_text("{}")
    (corrupt / "metalore_policy.json").write_text(json.dumps({"env_config": {"preset": "paper"}}))
    assert main(["eval", str(corrupt)]) == 2
    assert "cannot restore the policy network" in capsys.readouterr().err
    (corrupt / "metalore_policy.json").write_text("{not json")
    assert main(["eval", str(corrupt)]) == 2
    assert "unreadable" in capsys.readouterr().err


# --- with Ray -----------------------------------------------------------------------------------
def test_ppo_one_iteration_smoke(ray_session: Any) -> None:
    from tune_configs.ppo import Resources, build_ppo_config
    from tune_configs.training import select_metrics

    config = build_ppo_config(
        {"delta": 0.9, "penalty": -1.0}, TINY_HP, Resources(num_envs_per_env_runner=4), seed=3
    )
    assert config.num_env_runners == 0 and config.num_envs_per_env_runner == 4
    algo = config.build_algo()
    try:
        result = algo.train()
    finally:
        algo.stop()
    runners = result["env_runners"]
    assert runners["num_env_steps_sampled"] == 400
    ours = runners[PREFIX]
    # 4 envs x 100 steps: every env finished exactly one episode and the callback logged it.
    assert runners["num_episodes"] == 4
    for key in ("served_pct", "sync_delay", "e2e_delay", "mean_w_b", "mean_w_c", "left_queued"):
        assert key in ours, key
    assert 0.0 <= ours["served_pct"] <= 100.0
    assert 0.0 <= ours["mean_w_b"] <= 1.0 and 0.0 <= ours["mean_w_c"] <= 1.0
    assert ours["delay_penalty"] <= 0.0
    assert math.isclose(
        ours["episode_return"], ours["sync_reward"] + ours["delay_penalty"], rel_tol=1e-9
    )
    assert math.isclose(ours["episode_return"], runners["episode_return_mean"], rel_tol=1e-6)
    flat = select_metrics(result)
    assert flat["timesteps"] == 400.0
    assert f"env_runners/{PREFIX}/served_pct" in flat


@pytest.fixture(scope="module")
def trained(ray_session: Any, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``launch train`` in a subprocess on the session's Ray: 2 tiny iterations."""
    out = tmp_path_factory.mktemp("train") / "run"
    r = _cli(
        "train", "--delta", "0.8", "--penalty", "-1", "--timesteps", "800", "--seed", "4",
        "--out", str(out), "--envs-per-runner", "4", "--hp", "train_batch_size=400",
        "--hp", "minibatch_size=100", "--hp", "num_epochs=1",
        "--address", _gcs_address(ray_session),
    )  # fmt: skip
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-4000:]
    assert "iter    2  steps       800/800" in r.stdout
    assert "tensorboard --logdir" in r.stdout
    return out


def test_train_without_cluster_starts_no_ray(tmp_path: Path) -> None:
    """The default ``launch train`` (no --address, no remote env runners) samples and learns in
    the driver without starting a Ray node; its phases are timed in train.json."""
    out = tmp_path / "run"
    r = _cli(
        "train", "--timesteps", "400", "--seed", "1", "--out", str(out), "--envs-per-runner", "4",
        "--hp", "train_batch_size=400", "--hp", "minibatch_size=100", "--hp", "num_epochs=1",
    )  # fmt: skip
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-4000:]
    assert "Started a local Ray instance" not in r.stdout + r.stderr
    meta = json.loads((out / "train.json").read_text())
    assert meta["status"] == "finished" and meta["ray"] == "none (driver only)"
    assert set(meta["phases_s"]) == {"imports", "build", "train", "checkpoint", "stop"}
    assert all(v >= 0 for v in meta["phases_s"].values())
    assert (out / "checkpoint" / "metalore_policy.json").is_file()
    ev = _cli("eval", str(out / "checkpoint"), "--episodes", "2", "--json")
    assert ev.returncode == 0, ev.stderr[-3000:]
    assert json.loads(ev.stdout)["episodes"] == 2


def test_train_writes_checkpoint_metadata_and_progress(trained: Path) -> None:
    ckpt = trained / "checkpoint"
    assert (ckpt / "learner_group" / "learner" / "rl_module" / "default_policy").is_dir()
    sidecar = json.loads((ckpt / "metalore_policy.json").read_text())
    assert sidecar["env_config"]["delta"] == 0.8 and sidecar["env_config"]["obs_mode"] == "log1p"
    meta = json.loads((trained / "train.json").read_text())
    assert meta["kind"] == "train" and meta["status"] == "finished"
    assert " train " in meta["command"] and "git_commit" in meta
    assert meta["params"]["reward"]["penalty"] == -1.0
    assert meta["hparams"]["num_epochs"] == 1 and meta["seed"] == 4
    assert meta["iterations"] == 2
    progress = (trained / "progress.csv").read_text().splitlines()
    assert len(progress) == 3 and f"env_runners/{PREFIX}/sync_delay" in progress[0]


def _tb_tags(directory: Path) -> set[str]:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    tags: set[str] = set()
    files = list(directory.rglob("events.out.tfevents.*"))
    assert files, f"no TensorBoard event file under {directory}"
    for f in files:
        acc = EventAccumulator(str(f))
        acc.Reload()
        tags |= set(acc.Tags()["scalars"])
    return tags


def test_train_tensorboard_has_callback_metrics(trained: Path) -> None:
    tags = _tb_tags(trained / "tb")
    for key in LOGGED_KEYS:
        assert f"ray/tune/env_runners/{PREFIX}/{key}" in tags, key


def test_eval_round_trip_is_deterministic_and_writes_a_result_set(
    trained: Path, tmp_path: Path
) -> None:
    out = tmp_path / "eval"
    r = _cli("eval", str(trained / "checkpoint"), "--episodes", "3", "--seed", "5", "--json",
             "--out", str(out))  # fmt: skip
    assert r.returncode == 0, r.stderr[-3000:]
    s = json.loads(r.stdout)
    assert list(s)[: len(CLI_KEYS)] == list(CLI_KEYS)
    assert s["episodes"] == 3 and s["kind"] == "ppo" and s["seed"] == 5
    assert s["w_b"] == s["mean_w_b"] and s["w_c"] == s["mean_w_c"]
    assert 0.0 <= s["w_b"] <= 1.0 and 0.0 <= s["served_pct"] <= 100.0
    from analysis.resultset import read_result_set

    meta, episodes, summaries = read_result_set(out)
    assert meta["kind"] == "eval" and meta["episodes"] == 3 and meta["delta"] == 0.8
    assert meta["checkpoint"].endswith("checkpoint")
    assert list(episodes["seed"]) == [5, 6, 7]
    assert set(SUMMARY_KEYS) <= set(episodes.columns)
    assert summaries[0]["served_pct"] == pytest.approx(s["served_pct"])
    # Same checkpoint, same seeds -> the same numbers (in-process this time).
    from tune_configs.policies.single import evaluate_policy, load_policy

    policy = load_policy(trained / "checkpoint")
    rows = evaluate_policy(policy, episodes=3, seed=5)
    assert [r["served_pct"] for r in rows] == pytest.approx(list(episodes["served_pct"]))
    obs = np.array([[0.0, 0.0], [1.0, 3.0], [5.0, 5.0]], dtype=np.float32)
    a1, a2 = policy.act(obs), policy.act(obs)
    assert a1.shape == (3, 2) and np.array_equal(a1, a2)
    assert np.all((a1 >= 0.0) & (a1 <= 1.0))


def test_progress_line_of_a_pool_run_before_any_episode_has_ended() -> None:
    import time as _time

    from tune_configs.training import progress_line

    started = _time.perf_counter() - 2.0
    bare = {"training_iteration": 1, "timesteps": 4032}
    assert "sync n/a" in progress_line(bare, 8000, started)  # nothing says it is a pool run
    line = progress_line(bare, 8000, started, pool=True)
    assert "fulfilled n/a%" in line and "sync" not in line
    seen = {**bare, "env_runners/civic/fulfillment_pct": 71.25}
    assert "fulfilled  71.2%" in progress_line(seen, 8000, started)
