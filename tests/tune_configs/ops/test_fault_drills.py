"""Fault drills on an embedded Ray (no cluster): each sweep runs in its own `launch sweep` process.

Slow (about 4-6 min on a quiet 2-core machine):
``pytest -m slow tests/tune_configs/ops/test_fault_drills.py``.
Every drill is driven by trial barriers (:mod:`tune_configs.ops.barrier`), never by timing:

* a PPO trial's worker process is killed while it waits after iteration 2's checkpoint: the
  trial is retried from that checkpoint (iterations 1 and 2 are not trained again);
* two sweeps with the same storage and name start at once: one is refused with a clear error
  naming the other, which finishes untouched (and so is a later ``--resume`` while it runs);
* a half-written result set (a trial killed while writing it) next to complete ones: ``launch
  report`` skips it with a warning naming it and keeps everything else;
* an Optuna sweep's driver killed (SIGKILL, with its Ray) while one trial has finished and the
  next waits at its start: ``--resume`` continues the same stored study, keeps the finished
  trial (its result set byte for byte, its Optuna trial as it was), re-runs or replaces the
  unfinished one and ends with exactly the budgeted number of complete trials;
* a driver killed while Tune copied its state, leaving the grid search state cut short: the
  next ``--resume`` mends it (:mod:`tune_configs.ops.tune_state`) and runs every trial once;
* with an unrelated Ray running on the machine (a user's ``ray start --head``), ``launch sweep``
  and the test suite's Ray fixture (which would find it through the ``ray_current_cluster`` file
  in Ray's temp folder) and ``launch train`` (through ``RAY_ADDRESS`` too) each run on their own
  Ray and leave the other one untouched.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers.drills import (
    ROOT,
    alive_or_fail,
    check_nothing_lost,
    check_study_after_resume,
    complete_trials,
    experiment_trials,
    kill_group,
    kill_optuna_driver_and_resume,
    launch,
    result_lines,
    start_launch,
    state_has_checkpoint,
    tail,
    unrelated_ray,
    wait_until,
)
from tune_configs.ops.barrier import Barrier

pytestmark = [pytest.mark.slow, pytest.mark.ray]

# One PPO trial of 3 iterations (2000 env steps each), a Tune checkpoint after every iteration.
ONE_PPO_TRIAL = [
    "paper-grid", "--budget", "small", "--set", "deltas=[0.9]", "--set", "penalties=[0]",
    "--set", "seeds=[0]", "--set", "with_static=false", "--set", "timesteps=6000",
    "--set", "checkpoint_every=1", "--set", "eval_episodes=2",
    "--set", 'hparams={"train_batch_size": 2000, "minibatch_size": 500, "num_epochs": 1}',
]  # fmt: skip
# The small static grid (2 trials) with 10 instead of 100 episodes per split.
STATIC_SMALL = ["static-grid", "--budget", "small", "--set", "episodes=10"]


def barrier_env(b: Barrier, **extra: str) -> dict[str, str]:
    return {**os.environ, **b.env(), **extra}


def test_killed_trial_process_resumes_from_its_checkpoint(tmp_path: Path) -> None:
    b = Barrier(tmp_path / "barrier")
    b.allow("*@start#*")
    b.allow("*@iteration-1#*")  # ... and hold every trial after iteration 2's checkpoint
    storage, log = tmp_path / "results", tmp_path / "sweep.log"
    exp = storage / "ppo"
    sweep = start_launch("sweep", *ONE_PPO_TRIAL, "--storage", str(storage), "--name", "ppo",
                         env=barrier_env(b), log=log)  # fmt: skip
    try:
        alive = alive_or_fail(sweep, log)
        (held,) = b.wait("*@iteration-2#0", timeout=600, check=alive)
        trial = held.trial
        # The driver has registered iteration 2's checkpoint (a retry restores the latest one
        # the driver knows): Tune's saved experiment state names it.
        wait_until(lambda: state_has_checkpoint(exp, trial, "checkpoint_000001"), 300,
                   "the driver to record iteration 2's checkpoint", check=alive)  # fmt: skip
        steps_at_checkpoint = result_lines(exp / trial)[-1]["timesteps"]
        os.kill(held.pid, signal.SIGKILL)  # the Ray worker running the trial, mid-training
        b.open()
        rc = sweep.wait(timeout=900)
    finally:
        b.open()
        kill_group(sweep)
    assert rc == 0, tail(log)
    state = experiment_trials(exp)[trial]
    assert state["status"] == "TERMINATED" and state["num_failures"] == 1, state
    # Retried from iteration 2's checkpoint: started twice, iterations 1 and 2 trained once.
    assert [a.n for a in b.arrivals(f"{trial}@start#*")] == [0, 1]
    assert len(b.arrivals(f"{trial}@iteration-1#*")) == 1
    assert len(b.arrivals(f"{trial}@iteration-2#*")) == 1
    assert b.arrivals(f"{trial}@start#1")[0].pid != held.pid
    steps = [r["timesteps"] for r in result_lines(exp / trial)]
    assert steps == sorted(steps) and len(set(steps)) == len(steps), steps  # never from 0 again
    assert steps[2] > steps_at_checkpoint
    run = json.loads((exp / trial / "run.json").read_text())
    assert run["resumed_from_steps"] == steps_at_checkpoint  # the trial's own record
    check_nothing_lost(exp, 1, before={})


def test_second_sweep_on_the_same_experiment_is_refused(tmp_path: Path) -> None:
    b = Barrier(tmp_path / "barrier")  # closed: the running sweep holds its trials at start
    storage = tmp_path / "results"
    exp = storage / "same"
    args = ["sweep", *STATIC_SMALL, "--storage", str(storage), "--name", "same"]
    logs = [tmp_path / "one.log", tmp_path / "two.log"]
    both = [start_launch(*args, env=barrier_env(b), log=log) for log in logs]
    try:
        # Whichever locks the experiment first runs; the other is refused at once. The running
        # sweep may have started more than one trial by the time the barrier is polled.
        first = b.wait("*@start#0", timeout=600)[0]
        wait_until(lambda: any(p.poll() is not None for p in both), 300, "one sweep to be refused")
        refused = next(i for i, p in enumerate(both) if p.poll() is not None)
        running = both[1 - refused]
        assert both[refused].returncode == 2, tail(logs[refused])
        message = logs[refused].read_text()
        assert f"experiment {exp} is in use by another sweep (pid {running.pid}" in message
        assert "Traceback" not in message
        assert running.poll() is None and first.pid != running.pid  # its trial runs in a worker
        # The experiment's own files (not the trial directories: the running sweep may still be
        # starting a second trial) and Tune's state must be left as they are.
        files = sorted(p.name for p in exp.iterdir() if p.is_file())
        tuner = (exp / "tuner.pkl").read_bytes()
        # A --resume of the running experiment is refused the same way and changes nothing.
        again = launch(*args, "--resume", env=barrier_env(b))
        assert again.returncode == 2 and "is in use by another sweep" in again.stderr, again.stderr
        after = sorted(p.name for p in exp.iterdir() if p.is_file())
        assert after == files, (files, after)
        assert (exp / "tuner.pkl").read_bytes() == tuner
        b.open()
        rc = running.wait(timeout=900)
    finally:
        b.open()
        for p in both:
            kill_group(p)
    assert rc == 0, tail(logs[1 - refused])
    check_nothing_lost(exp, 2, before={})


def test_resume_mends_a_search_state_cut_by_a_killed_driver(tmp_path: Path) -> None:
    """What the full-budget chaos soak hit: the driver killed while Tune copied its state into
    the experiment directory, the grid search state cut short. The next ``--resume`` brings an
    earlier session's search state forward to the trials Tune saved and runs each trial once."""
    b = Barrier(tmp_path / "barrier")  # closed: trials are held at their start
    storage, exp = tmp_path / "results", tmp_path / "results" / "cut"
    args = ["sweep", *STATIC_SMALL, "--storage", str(storage), "--name", "cut"]

    def sessions() -> list[Path]:
        return sorted(exp.glob("basic-variant-state-*.json"))

    for n, extra in enumerate(([], ["--resume"])):  # the first driver, then a resumed one
        log = tmp_path / f"driver{n}.log"
        sweep = start_launch(*args, *extra, env=barrier_env(b), log=log)
        try:
            alive = alive_or_fail(sweep, log)
            b.wait(f"*@start#{n}", timeout=600, check=alive)
            wait_until(lambda n=n: len(sessions()) == n + 1 and len(experiment_trials(exp)) == 2,
                       300, f"driver {n}'s saved state", check=alive)  # fmt: skip
        finally:
            kill_group(sweep)
    newest = sessions()[-1]
    newest.write_bytes(newest.read_bytes()[:100])  # the copy cut by the kill
    b.open()
    r = launch(*args, "--resume", env=barrier_env(b))
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    assert f"resume: {newest.name} is cut short" in r.stdout, r.stdout[-3000:]
    assert (exp / "cut-state" / newest.name).is_file()
    check_nothing_lost(exp, 2, before={})


def test_killed_optuna_driver_resumes_its_stored_study(tmp_path: Path) -> None:
    killed = kill_optuna_driver_and_resume(tmp_path)
    trials = check_study_after_resume(killed, n_trials=4)
    assert (killed.exp / "optuna.db").is_file()
    # the held trial was either re-run under its own Optuna trial or, if the killed driver had
    # not saved it yet, replaced (its Optuna trial marked FAIL): never left running
    assert {t["state"] for t in trials} <= {"COMPLETE", "FAIL"}


def test_report_skips_a_half_written_result_set(tmp_path: Path) -> None:
    storage = tmp_path / "results"
    exp = storage / "grid"
    r = launch("sweep", *STATIC_SMALL, "--storage", str(storage), "--name", "grid")
    assert r.returncode == 0, r.stdout + r.stderr
    complete = complete_trials(exp)
    assert len(complete) == 2
    # A trial killed while writing its result set: run.json written, episodes.csv cut in the
    # middle of a row, summary.json (written last) missing.
    source = exp / sorted(complete)[0]
    half = exp / "static_b9_d0.9_p0_dead0_00009"
    half.mkdir()
    (half / "run.json").write_bytes((source / "run.json").read_bytes())
    rows = (source / "episodes.csv").read_bytes()
    (half / "episodes.csv").write_bytes(rows[: len(rows) // 2 + 7])
    assert not (half / "episodes.csv").read_bytes().endswith(b"\n")

    report = launch("report", str(exp))
    assert report.returncode == 0, report.stdout + report.stderr
    warnings = [ln for ln in report.stderr.splitlines() if half.name in ln]
    assert warnings and "skip" in warnings[0].lower(), report.stderr
    import pandas as pd

    table = pd.read_csv(exp / "results.csv")
    assert set(table["source"]) == set(complete)  # everything else kept, the half set not
    assert not table.duplicated(subset=["source", "policy", "seed"]).any()
    text = (exp / "report.md").read_text()
    assert f"Skipped {half.name}" in text
    for trial, files in complete.items():  # untouched by the report
        assert complete_trials(exp)[trial] == files


def test_commands_run_on_their_own_ray_beside_an_unrelated_one(tmp_path: Path) -> None:
    with unrelated_ray() as other:
        current = other.current_cluster_file()
        assert current.strip() == other.address
        procs = {p.pid for p in other.processes()}
        assert procs and other.drivers_seen() == []
        # RAY_TMPDIR: Ray's temp folder is the other cluster's, so its ray_current_cluster file
        # is found exactly as a user's in /tmp/ray would be; RAY_ADDRESS names it outright.
        found_by_file = {**os.environ, "RAY_TMPDIR": str(other.tmpdir)}
        found_by_both = {**found_by_file, "RAY_ADDRESS": other.address}

        storage = tmp_path / "results"
        r = launch("sweep", *STATIC_SMALL, "--storage", str(storage), "--name", "g",
                   env=found_by_file)  # fmt: skip
        assert r.returncode == 0, r.stdout + r.stderr
        assert "2 trials with results, 0 failed" in r.stdout
        out = tmp_path / "train"
        r = launch("train", "--timesteps", "2000", "--out", str(out), "--eval-episodes", "2",
                   env=found_by_both)  # fmt: skip
        assert r.returncode == 0, r.stdout + r.stderr
        assert (out / "checkpoint").is_dir()
        # The test suite's Ray fixture, in a pytest run of its own.
        r = subprocess.run(
            [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
             "tests/tune_configs/ops/test_ray_internals.py::test_session_ray_is_its_own"],
            cwd=ROOT, env=found_by_file, capture_output=True, text=True, timeout=600,
        )  # fmt: skip
        assert r.returncode == 0 and "1 passed" in r.stdout, r.stdout + r.stderr

        # The other Ray: same processes, no driver ever connected, its address file unchanged,
        # and it still works (one node, one CPU).
        assert {p.pid for p in other.processes()} >= procs
        assert other.drivers_seen() == []
        assert other.current_cluster_file() == current
        probe = (
            "import json, ray\n"
            "ray.init(address='auto', logging_level='ERROR')\n"
            "print(json.dumps([len(ray.nodes()), ray.cluster_resources().get('CPU')]))\n"
        )
        r = subprocess.run([sys.executable, "-c", probe], env=found_by_both, cwd=ROOT,
                           capture_output=True, text=True, timeout=300)  # fmt: skip
        assert r.returncode == 0, r.stderr
        assert json.loads(r.stdout.strip().splitlines()[-1]) == [1, 1.0]
