"""Sweep modules (tune_configs/*) and ``launch sweep``: spaces, tiny runs, interrupt and resume.

Run: ``pytest tests/tune_configs/sweeps/test_sweeps.py`` (about 1-2 minutes; one embedded Ray per
session, the CLI runs in subprocesses connected to it). Budgets are tiny: these tests check wiring,
files and resume semantics, not learning.
"""

from __future__ import annotations

import importlib
import json
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from launch.sweep import SWEEPS
from tests.helpers.cli import launch_env, run_launch_here

ROOT = Path(__file__).resolve().parents[3]
TINY_PPO = [
    "--set", "rewards=[[0.9,0.0]]", "--set", "seeds=[0]", "--set", "timesteps=400",
    "--set", "eval_episodes=4",
    "--set", "episodes=4", "--set", "grid_step=0.5",
    "--set", 'hparams={"train_batch_size":400,"minibatch_size":100,"num_epochs":1}',
    "--set", 'resources={"num_envs_per_env_runner":4}',
]  # fmt: skip


_env = launch_env


# --- importable and buildable without running --------------------------------------------------
@pytest.mark.parametrize("name", sorted(SWEEPS))
def test_sweep_module_exposes_space_stop_metrics(name: str) -> None:
    module = importlib.import_module(SWEEPS[name])
    assert name == module.NAME
    assert isinstance(module.SPACE, dict) and module.SPACE
    assert module.STOP is None or isinstance(module.STOP, dict)
    assert len(module.METRICS) == len(module.MODES) >= 1
    assert set(module.MODES) <= {"max", "min"}
    for budget in ("small", "paper"):
        assert isinstance(module.param_space(budget), dict)
        assert module.total_trials(budget) >= 1
    with pytest.raises(ValueError, match="budget"):
        module.param_space("huge")


def test_paper_grid_space_is_the_papers_grid() -> None:
    from tune_configs.sweeps import paper_grid
    from tune_configs.sweeps.common import grid_size

    space = paper_grid.param_space("paper")
    jobs = space["job"]["grid_search"]
    static = [(j["delta"], j["penalty"]) for j in jobs if j["kind"] == "static"]
    ppo = [(j["delta"], j["penalty"], s) for j in jobs if j["kind"] == "ppo" for s in j["seeds"]]
    deltas, penalties = (0.9, 0.8, 0.7, 0.6, 0.5, 0.3, 0.1), (0.0, -1.0, -5.0)
    assert static == [(d, p) for d in deltas for p in penalties]  # the baselines, first
    assert [j["kind"] for j in jobs[: len(static)]] == ["static"] * len(static)
    # ten training seeds per setting, five after one another in each trial
    assert sorted(ppo) == sorted((d, p, s) for d in deltas for p in penalties for s in range(10))
    assert grid_size(space) == 21 + 21 * 2
    assert grid_size(paper_grid.param_space("paper", with_static=False)) == 42
    assert space["eval_episodes"] == 100 and space["timesteps"] == 60_000
    assert paper_grid.stop("paper") == {"timesteps": 5 * 60_000}  # a trial counts all its seeds
    assert paper_grid.stop("small", timesteps=999) == {"timesteps": 999}


def test_static_grid_blocks_cover_the_grid_once() -> None:
    from tune_configs.sweeps import static_grid
    from tune_configs.sweeps.common import split_blocks

    for n_blocks in (1, 2, 4, 11, 20):
        blocks = split_blocks(0.1, n_blocks)
        splits = [tuple(s) for b in blocks for s in b]
        assert len(splits) == 121 == len(set(splits))
    jobs = static_grid.jobs(0.1, 4)
    assert [j["baselines"] for j in jobs] == [True, False, False, False]


def test_optuna_spaces_and_quickstart_order() -> None:
    from tune_configs.sweeps import optuna_reward, optuna_static, quickstart

    assert (
        optuna_reward.SEARCH_SPACE["delta"].low > 0
        and optuna_reward.SEARCH_SPACE["delta"].high <= 1
    )
    assert optuna_reward.SEARCH_SPACE["penalty"].high == 0
    assert set(optuna_static.SEARCH_SPACE) == {"w_b", "w_c"}
    kinds = [j["kind"] for j in quickstart.param_space("small")["job"]["grid_search"]]
    assert kinds == ["static"] * 3 + ["ppo"] * 9  # cheap static trials first; 3 seeds each


@pytest.mark.ray
def test_build_tuners_without_running(tmp_path: Path) -> None:
    import ray

    was_running = ray.is_initialized()
    for name, module_name in SWEEPS.items():
        module = importlib.import_module(module_name)
        tuner = module.build_tuner(budget="small", storage=tmp_path, name=name, progress=False)
        assert type(tuner).__name__ == "Tuner"
        with pytest.raises(ValueError, match="exists already"):
            module.build_tuner(budget="small", storage=tmp_path, name=name, progress=False)
    assert ray.is_initialized() == was_running  # building started nothing
    from tune_configs.sweeps import static_grid

    with pytest.raises(ValueError, match="nothing to resume"):
        static_grid.build_tuner(storage=tmp_path, name="never-ran", resume=True)


def test_optuna_static_convergence_counts() -> None:
    from tune_configs.sweeps.optuna_static import convergence

    grid = [
        {"w_b": 0.1, "w_c": 0.1, "sync_delay": 5.0, "served_pct": 50.0, "e2e_delay": 20.0},
        {"w_b": 0.2, "w_c": 0.2, "sync_delay": 10.0, "served_pct": 80.0, "e2e_delay": 10.0},
        {"w_b": 0.3, "w_c": 0.3, "sync_delay": 12.0, "served_pct": 70.0, "e2e_delay": 12.0},
    ]
    for g in grid:
        g.update(episodes=100, sync_delay_std=0.0, served_pct_std=0.0)
    pts = [
        {"sync_delay": 11.0, "served_pct": 60.0, "e2e_delay": 15.0},  # covers nothing
        {"sync_delay": 10.0, "served_pct": 80.0, "e2e_delay": 10.0},  # covers the 2nd
        {"sync_delay": 4.0, "served_pct": 55.0, "e2e_delay": 20.0},  # covers the 1st
    ]
    out = convergence(pts, grid)
    assert len(out["grid_front_2d"]) == 2
    assert out["coverage_within_noise"] == 3
    assert out["hv_2d_100pct"] == 3 and out["hv_2d_ratio_final"] > 1.0
    assert out["hv_2d_ratio"][0] < out["hv_2d_ratio"][1] < out["hv_2d_ratio"][2]


def test_sweep_cli_usage_errors(tmp_path: Path) -> None:
    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return run_launch_here("sweep", *args)

    r = cli("no-such-sweep")
    assert r.returncode == 2 and "invalid choice" in r.stderr
    r = cli("static-grid", "--storage", str(tmp_path), "--resume")
    assert r.returncode == 2 and "nothing to resume" in r.stderr and "Traceback" not in r.stderr
    r = cli("static-grid", "--storage", str(tmp_path), "--set", "bogus=1")
    assert r.returncode == 2 and "unknown --set key" in r.stderr


# --- tiny runs ----------------------------------------------------------------------------------
@pytest.mark.ray
def test_tiny_static_sweep_writes_result_sets(ray_session: Any, tmp_path: Path) -> None:
    from analysis.resultset import read_result_set
    from tune_configs.sweeps import static_grid

    tuner = static_grid.build_tuner(
        budget="small", storage=tmp_path, name="tiny", episodes=3, grid_step=0.5, blocks=2,
        progress=False,
    )  # fmt: skip
    results = tuner.fit()
    assert len(results) == 2 and not results.errors
    splits = set()
    for res in results:
        path = Path(res.path)
        assert path.name.startswith(("static_b0_d0.9_p0_", "static_b1_d0.9_p0_"))
        assert len(path.name) < 40
        meta, episodes, summaries = read_result_set(path)
        assert meta["kind"] == "static" and meta["episodes"] == 3
        assert "default_worker" not in meta["command"]
        splits |= {(s["w_b"], s["w_c"]) for s in summaries if s["kind"] == "static"}
        assert set(episodes["seed"]) == {0, 1, 2}
    assert len(splits) == 9  # the 3 x 3 grid, each split once


@pytest.mark.ray
def test_optuna_reward_sweep_with_intermediate_reports(ray_session: Any, tmp_path: Path) -> None:
    """Optuna's metrics arrive with a PPO trial's last report only (after training iterations)."""
    from tune_configs.sweeps import optuna_reward

    tuner = optuna_reward.build_tuner(
        budget="small", storage=tmp_path, name="opt", samples=1, timesteps=800, eval_episodes=2,
        hparams={"train_batch_size": 400, "minibatch_size": 100, "num_epochs": 1},
        resources={"num_envs_per_env_runner": 4}, progress=False,
    )  # fmt: skip
    results = tuner.fit()
    assert len(results) == 1 and not results.errors
    (res,) = results
    assert res.metrics["training_iteration"] == 2  # one training report, then the final one
    assert res.config["delta"] == 0.9 and res.config["penalty"] == 0.0  # points_to_evaluate
    for key in optuna_reward.METRICS:
        assert key in res.metrics, key


@pytest.fixture(scope="module")
def interrupted_then_resumed(
    ray_session: Any, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, Any]:
    """A tiny quickstart sweep (1 static + 1 PPO trial) via the CLI, interrupted after the static
    trial finished (SIGINT, as Ctrl-C), then resumed with ``--resume``."""
    storage = tmp_path_factory.mktemp("sweeps")
    args = [
        sys.executable, "-m", "launch", "sweep", "quickstart", "--storage", str(storage),
        "--name", "qs", "--max-concurrent", "1",
        "--address", str(ray_session.get_runtime_context().gcs_address), *TINY_PPO,
    ]  # fmt: skip
    proc = subprocess.Popen(
        args, cwd=ROOT, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    first_lines = []
    assert proc.stdout is not None
    deadline = time.monotonic() + 240
    for line in proc.stdout:
        first_lines.append(line)
        if line.split("]", 1)[-1].strip().startswith("finished static_"):
            proc.send_signal(signal.SIGINT)
            break
        assert time.monotonic() < deadline, "no trial finished in time"
    out, err = proc.communicate(timeout=240)
    first = {"code": proc.returncode, "stdout": "".join(first_lines) + out, "stderr": err}
    exp = storage / "qs"
    static_dirs = sorted(exp.glob("static_*"))
    run_json_before = (static_dirs[0] / "run.json").read_text() if static_dirs else ""
    second = subprocess.run(
        [*args, "--resume"], cwd=ROOT, env=_env(), capture_output=True, text=True, timeout=300
    )
    return {
        "exp": exp, "first": first, "second": second, "run_json_before": run_json_before,
    }  # fmt: skip


@pytest.mark.ray
def test_interrupted_sweep_resumes_without_redoing_finished_trials(
    interrupted_then_resumed: dict[str, Any],
) -> None:
    r = interrupted_then_resumed
    first, second, exp = r["first"], r["second"], r["exp"]
    assert first["code"] == 130, first["stdout"][-2000:] + first["stderr"][-3000:]
    assert "--resume" in first["stderr"]
    assert second.returncode == 0, second.stdout[-2000:] + second.stderr[-3000:]
    assert "finished ppo_d0.9_p0_s0_" in second.stdout
    assert "started  static_" not in second.stdout  # the finished static trial was not rerun
    static_dirs = sorted(exp.glob("static_*"))
    assert len(static_dirs) == 1 and len(sorted(exp.glob("ppo_*"))) == 1
    assert (static_dirs[0] / "run.json").read_text() == r["run_json_before"]
    assert f"results: {exp}" in second.stdout and f"tensorboard --logdir {exp}" in second.stdout


@pytest.mark.ray
def test_ppo_trial_has_eval_metrics_result_set_and_tensorboard(
    interrupted_then_resumed: dict[str, Any],
) -> None:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    from analysis.resultset import read_result_set

    exp = interrupted_then_resumed["exp"]
    (trial,) = sorted(exp.glob("ppo_*"))
    meta, episodes, summaries = read_result_set(trial)
    assert meta["kind"] == "ppo-trial" and meta["timesteps"] >= 400
    assert "sweep quickstart" in meta["command"] and meta["trial_id"] in trial.name
    assert len(episodes) == 4 and summaries[0]["kind"] == "ppo"
    assert (trial / "checkpoint" / "metalore_policy.json").is_file()
    last = [json.loads(x) for x in (trial / "result.json").read_text().splitlines()][-1]
    for key in ("eval/served_pct", "eval/sync_delay", "eval/e2e_delay", "eval/mean_w_b"):
        assert key in last, key
    assert last["eval/served_pct"] == pytest.approx(summaries[0]["served_pct"])
    tags: set[str] = set()
    for f in trial.glob("events.out.tfevents.*"):
        acc = EventAccumulator(str(f))
        acc.Reload()
        tags |= set(acc.Tags()["scalars"])
    for key in ("served_pct", "sync_delay", "e2e_delay", "left_queued", "mean_w_b", "sync_reward"):
        assert f"ray/tune/env_runners/metalore/{key}" in tags, key
    assert "ray/tune/eval/served_pct" in tags
    # tb_replay (on in quickstart): the policy acting, in the same TensorBoard run
    from tune_configs.replay import TB_EPISODE, TB_SUFFIX, TB_TIMELINE

    (replay_events,) = trial.glob(f"events.out.tfevents.*{TB_SUFFIX}")
    acc = EventAccumulator(str(replay_events), size_guidance={"images": 0})
    acc.Reload()
    assert sorted(acc.Tags()["images"]) == sorted([TB_EPISODE, TB_TIMELINE])
    (episode,) = acc.Images(TB_EPISODE)
    assert episode.encoded_image_string[:6] == b"GIF89a" and episode.step == meta["timesteps"]
    (timeline,) = acc.Images(TB_TIMELINE)
    assert timeline.encoded_image_string[:4] == b"\x89PNG" and timeline.height > 500


@pytest.mark.ray
def test_tensorboard_page_shows_the_replay_of_a_ppo_trial(
    interrupted_then_resumed: dict[str, Any], browser: Any, tmp_path: Path
) -> None:
    """TensorBoard (on loopback) serves the trial's replay images and Chromium displays them."""
    import socket
    import urllib.request

    exp = interrupted_then_resumed["exp"]
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    tb = subprocess.Popen(
        [sys.executable, "-m", "tensorboard.main", "--logdir", str(exp), "--host", "127.0.0.1",
         "--port", str(port)],
        env=_env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/data/runs", timeout=2).read()
                break
            except OSError:
                assert tb.poll() is None, tb.communicate()[1][-2000:]
                assert time.monotonic() < deadline, "TensorBoard did not start"
                time.sleep(0.5)
        page = browser.open(
            f"http://127.0.0.1:{port}/?darkMode=false#images", wait_for_text="replay/episode"
        )
        browser.wait_for_text(page, "replay/timeline")
        images = page.locator("img[src*='individualImage']")  # Playwright pierces shadow DOM
        images.nth(1).wait_for(state="visible")
        loaded = "els => els.map(i => i.complete ? [i.naturalWidth, i.naturalHeight] : [0, 0])"
        deadline = time.monotonic() + 60
        sizes = images.evaluate_all(loaded)
        while not all(w > 0 for w, _ in sizes) and time.monotonic() < deadline:
            time.sleep(0.5)  # the images decode after they show
            sizes = images.evaluate_all(loaded)
        browser.screenshot(page, tmp_path / "tensorboard_replay.png")
    finally:
        tb.terminate()
        tb.wait(timeout=30)
    assert len(sizes) == 2 and all(w > 300 and h > 200 for w, h in sizes), sizes


@pytest.mark.ray
def test_several_seeds_in_one_trial_write_one_result_set_each(
    ray_session: Any, tmp_path: Path
) -> None:
    from analysis.collect import collect
    from analysis.runs import run_scores

    args = [
        sys.executable, "-m", "launch", "sweep", "paper-grid", "--budget", "small", "--storage",
        str(tmp_path), "--name", "ms", "--address",
        str(ray_session.get_runtime_context().gcs_address), "--set", "deltas=[0.9]",
        "--set", "penalties=[0]", "--set", "seeds=[3,4]", "--set", "seeds_per_trial=2",
        "--set", "timesteps=400", "--set", "eval_episodes=4", "--set", "episodes=4",
        "--set", 'hparams={"train_batch_size":400,"minibatch_size":100,"num_epochs":1}',
        "--set", 'resources={"num_envs_per_env_runner":4}',
    ]  # fmt: skip
    r = subprocess.run(args, cwd=ROOT, env=_env(), capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-3000:]
    (trial,) = sorted((tmp_path / "ms").glob("ppo_d0.9_p0_s3-4_*"))
    for seed in (3, 4):
        meta = json.loads((trial / f"seed_{seed}" / "run.json").read_text())
        assert meta["train_seed"] == seed and meta["kind"] == "ppo-trial"
        assert (trial / f"seed_{seed}" / "checkpoint" / "metalore_policy.json").is_file()
        assert (trial / f"seed_{seed}" / "progress.csv").is_file()
    scores = run_scores(collect(tmp_path / "ms", write=False).episodes)
    assert sorted(scores["seed"]) == [3, 4]  # two runs of one setting, scored apart
