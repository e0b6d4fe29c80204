"""The one experiment pipeline: typed sweep settings, one trial runner for single-cell and pool
runs, pool training and evaluation through the common CLI, pool trials in the report.

Run: ``pytest tests/tune_configs/sweeps/test_pipeline.py`` (about 1-2 minutes; the CLI runs join
the session's Ray).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.helpers.cli import run_launch as _cli

TINY_POOL = ("--set", "timesteps=400", "--set", "batch=400", "--set", "minibatch=200",
             "--set", "epochs=1", "--set", "envs=2", "--set", "eval_episodes=2",
             "--set", "tune_episodes=2", "--set", "scenario=three_cell_hetero")  # fmt: skip


# --- typed settings (no Ray) ----------------------------------------------------------------------
def test_every_sweep_declares_typed_settings_covering_its_budgets() -> None:
    from launch.sweep import SWEEPS, load_sweep
    from tune_configs.sweeps.settings import check_overrides

    for name in SWEEPS:
        module = load_sweep(name)
        names = {s.name for s in module.SETTINGS}
        for budget, values in module.BUDGETS.items():
            tunable = {k for k in values if k not in ("startup",)}  # startup: searcher internal
            assert tunable <= names, (name, budget, tunable - names)
            check_overrides(name, module.SETTINGS, {k: values[k] for k in tunable})


def test_settings_reject_unknown_ill_typed_and_out_of_range_values() -> None:
    from tune_configs.sweeps import paper_grid
    from tune_configs.sweeps import pool as pool_sweep
    from tune_configs.sweeps.settings import check_overrides

    s = paper_grid.SETTINGS
    assert check_overrides("paper-grid", s, {"seeds": [0, 1], "deltas": [0.5]}) == {
        "seeds": [0, 1],
        "deltas": [0.5],
    }
    for bad, match in (
        ({"timestep": 5}, "unknown --set key 'timestep'.*did you mean 'timesteps'"),
        ({"timesteps": 1.5}, "timesteps=1.5: must be an integer"),
        ({"timesteps": 0}, "timesteps=0: out of range"),
        ({"deltas": []}, "deltas=.*non-empty list"),
        ({"penalties": [1.0]}, "penalties=.*out of range"),
        ({"preset": "mars"}, "preset='mars'"),
        ({"with_static": "yes"}, "with_static='yes': must be true or false"),
        ({"hparams": [1]}, "hparams=.*JSON object"),
    ):
        with pytest.raises(ValueError, match=match):
            check_overrides("paper-grid", s, bad)
    with pytest.raises(ValueError, match=r"scopes=.*team, local"):
        check_overrides("pool", pool_sweep.SETTINGS, {"scopes": ["team", "global"]})


@pytest.mark.parametrize("command", ["sweep", "submit"])
def test_sweep_and_submit_refuse_a_bad_setting_before_ray(command: str, tmp_path: Path) -> None:
    extra = ["--address", "http://127.0.0.1:9"] if command == "submit" else []
    extra += ["--storage", str(tmp_path)] if command == "sweep" else []
    r = _cli(command, "static-grid", "--set", "bogus_key=1", *extra, timeout=60)
    assert r.returncode == 2, r.stderr
    assert "bogus_key" in r.stderr and "Traceback" not in r.stderr
    assert "Ray" not in r.stdout and not any(tmp_path.iterdir())  # nothing started or written
    r = _cli(command, "pool", "--set", "epochs=0", *extra, timeout=60)
    assert r.returncode == 2 and "epochs=0: out of range" in r.stderr


def test_sweep_lists_its_settings() -> None:
    r = _cli("sweep", "pool", "--list-settings", timeout=60)
    assert r.returncode == 0, r.stderr
    assert "endowment (float in [0, inf])" in r.stdout and "budget small:" in r.stdout


# --- one runner, one loop, one result-set contract ------------------------------------------------
@pytest.mark.ray
def test_pool_sweep_trials_reach_results_csv_and_report(ray_session: Any, tmp_path: Path) -> None:
    import pandas as pd

    from analysis.resultset import read_result_set

    address = str(ray_session.get_runtime_context().gcs_address)
    r = _cli("sweep", "pool", "--storage", str(tmp_path), "--name", "pool", "--address", address,
             "--max-concurrent", "1", "--set", "scopes=[\"team\"]", "--set",
             "controllers=[\"per-cell\",\"city\"]", *TINY_POOL)  # fmt: skip
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-3000:]
    exp = tmp_path / "pool"
    for trial in ("pool_team_s0_", "pool_city_s0_", "pool_rules_"):
        assert f"finished {trial}" in r.stdout, trial
    (trial,) = sorted(exp.glob("pool_team_s0_*"))
    meta, episodes, _ = read_result_set(trial)
    assert meta["kind"] == "pool-ppo-trial" and meta["controller"] == "per-cell"
    assert meta["git_commit"] and "sweep pool" in meta["command"] and meta["timesteps"] >= 400
    assert len(episodes) == 2 and "fulfillment_pct" in episodes and "cell0_units_lent" in episodes
    assert (
        json.loads((trial / "checkpoint" / "metalore_policy.json").read_text())["controller"]
        == "per-cell"
    )
    r = _cli("report", str(exp), timeout=240)
    assert r.returncode == 0, r.stderr[-3000:]
    results = pd.read_csv(exp / "results.csv")
    pool = results.loc[results["role"] == "pool"]
    assert set(pool["run_kind"]) == {"pool-ppo-trial", "pool-rules"}
    assert pool.groupby("policy").size().to_dict() == {
        "ppo(shared)": 2,
        "ppo(city)": 2,
        "noncoop": 2,
        "greedy": 2,
    }
    report = (exp / "report.md").read_text()
    section = report.split("## Multi-cell credit pool", 1)[1]
    assert "| three_cell_hetero | ppo(shared) |" in section and "| noncoop |" in section
    assert "| three_cell_hetero | ppo(city) |" in section
    (city,) = sorted(exp.glob("pool_city_s0_*"))
    info = json.loads((city / "checkpoint" / "metalore_policy.json").read_text())
    assert info["controller"] == "city" and info["env_config"]["identity"] is False
    # the trial's checkpoint is a pool policy for launch eval, on another scenario too
    r = _cli("eval", str(trial / "checkpoint"), "--episodes", "2", "--json",
             "--preset", "surge", "--set", "endowment=100", timeout=240)  # fmt: skip
    assert r.returncode == 0, r.stderr[-3000:]
    s = json.loads(r.stdout)
    assert s["controller"] == "per-cell" and s["preset"] == "surge" and s["episodes"] == 2
    for key in ("fulfillment_pct", "units_borrowed", "served_clients", "fairness"):
        assert key in s, key


@pytest.mark.ray
def test_launch_train_per_cell_controller(ray_session: Any, tmp_path: Path) -> None:
    address = str(ray_session.get_runtime_context().gcs_address)
    out = tmp_path / "pool"
    r = _cli("train", "--preset", "three_cell", "--controller", "per-cell", "--policies",
             "separate", "--timesteps", "400", "--hp", "train_batch_size=400", "--hp",
             "minibatch_size=200", "--hp", "num_epochs=1", "--envs-per-runner", "2",
             "--set", "reward=fulfilled", "--set", "endowment=500", "--eval-episodes", "2",
             "--address", address, "--out", str(out))  # fmt: skip
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-3000:]
    assert "fulfilled" in r.stdout and "traded" in r.stdout  # the pool's progress line
    info = json.loads((out / "checkpoint" / "metalore_policy.json").read_text())
    assert info["policies"] == "separate" and info["modules"] == ["cell_0", "cell_1", "cell_2"]
    assert info["env_config"]["endowment"] == 500.0
    train = json.loads((out / "train.json").read_text())
    assert train["controller"] == "per-cell" and train["status"] == "finished"
    meta = json.loads((out / "eval" / "run.json").read_text())
    assert meta["kind"] == "pool-eval" and meta["episodes"] == 2
    assert "env_runners/civic/fulfillment_pct" in (out / "progress.csv").read_text()


@pytest.mark.ray
def test_a_pool_training_repeats_exactly(tmp_path: Path) -> None:
    """Two ``launch train`` runs with one --seed, each started without ``PYTHONHASHSEED`` (so
    Python would draw each its own hash seed), agree on every learner metric: RLlib orders a
    multi-agent batch by a set of agent ids, and launch fixes the hash seed that orders it
    (docs/conventions.md#randomness). Before, they differed from the first iteration."""
    import csv
    import subprocess
    import sys

    from tests.helpers.cli import ROOT as root
    from tests.helpers.cli import launch_env

    env = {k: v for k, v in launch_env().items() if k != "PYTHONHASHSEED"}

    def train(out: Path) -> list[dict[str, str]]:
        cmd = [sys.executable, "-m", "launch", "train", "--preset", "seven_cell", "--timesteps",
               "400", "--seed", "3", "--hp", "train_batch_size=200", "--hp", "minibatch_size=100",
               "--hp", "num_epochs=1", "--envs-per-runner", "2", "--set", "episode_steps=20",
               "--out", str(out)]  # fmt: skip
        r = subprocess.run(cmd, cwd=root, env=env, capture_output=True, text=True, timeout=300)
        assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-3000:]
        with (out / "progress.csv").open() as fh:
            return [{k: v for k, v in row.items() if k.startswith("learners/")}
                    for row in csv.DictReader(fh)]  # fmt: skip

    first, second = train(tmp_path / "a"), train(tmp_path / "b")
    assert len(first) == 2 and all(first[0].values())
    assert first == second
    meta = json.loads((tmp_path / "a" / "train.json").read_text())
    assert meta["python_hash_seed"] == "0"
    assert meta["versions"]["torch"].startswith("2.13.0") and meta["versions"]["ray"].startswith(
        "2."
    )


@pytest.mark.ray
def test_launch_train_picks_the_city_controller_on_a_pool_preset(tmp_path: Path) -> None:
    """No --controller on a pool preset: the best measured one (city), driver only, no Ray; the
    policy then acts on another number of cells (no identity, no per-cell base splits)."""
    out = tmp_path / "city"
    r = _cli("train", "--preset", "three_cell", "--timesteps", "400", "--hp",
             "train_batch_size=400", "--hp", "minibatch_size=200", "--hp", "num_epochs=1",
             "--envs-per-runner", "2", "--set", "episode_steps=20", "--out", str(out))  # fmt: skip
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-3000:]
    assert "controller city: the best measured pool controller on three_cell" in r.stdout
    train = json.loads((out / "train.json").read_text())
    assert train["controller"] == "city" and train["hparams"]["log_std_clip_param"] == 1.0
    assert train["env_config"]["obs"] == "trader" and train["env_config"]["identity"] is False
    moved = _cli("eval", str(out / "checkpoint"), "--episodes", "1", "--json", "--preset",
                 "seven_cell", "--set", "episode_steps=20")  # fmt: skip
    assert moved.returncode == 0, moved.stderr[-3000:]
    s = json.loads(moved.stdout)
    assert s["controller"] == "city" and s["preset"] == "seven_cell"
    assert 0.0 <= s["fulfillment_pct"] <= 100.0


@pytest.mark.ray
def test_launch_eval_on_another_scenario(ray_session: Any, tmp_path: Path) -> None:
    address = str(ray_session.get_runtime_context().gcs_address)
    out = tmp_path / "single"
    r = _cli("train", "--timesteps", "400", "--hp", "train_batch_size=400", "--hp",
             "minibatch_size=200", "--hp", "num_epochs=1", "--envs-per-runner", "2",
             "--address", address, "--out", str(out))  # fmt: skip
    assert r.returncode == 0, r.stderr[-3000:]
    ckpt = str(out / "checkpoint")
    base = json.loads(_cli("eval", ckpt, "--episodes", "3", "--json").stdout)
    moved = _cli("eval", ckpt, "--episodes", "3", "--json", "--preset", "paper_20ue",
                 "--set", "ue_job_prob=0.5", "--out", str(tmp_path / "ev"))  # fmt: skip
    assert moved.returncode == 0, moved.stderr[-3000:]
    s = json.loads(moved.stdout)
    assert list(s)[:3] == ["w_b", "w_c", "episodes"] and s["preset"] == "paper_20ue"
    assert s["controller"] == "single" and base["preset"] == "paper"
    meta = json.loads((tmp_path / "ev" / "run.json").read_text())
    assert meta["params"]["scenario"]["n_ues"] == 20
    assert meta["params"]["scenario"]["ue_job_prob"] == 0.5
    bad = _cli("eval", ckpt, "--set", "n_uez=3", timeout=120)
    assert bad.returncode == 2 and "n_uez" in bad.stderr and "Traceback" not in bad.stderr
