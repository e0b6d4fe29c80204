"""Shared pieces of the fault drills (tests/tune_configs/ops/test_cluster_faults.py,
tests/tune_configs/ops/test_fault_drills.py).

Drills never wait for "enough time": trials stop at barriers (:mod:`tune_configs.ops.barrier`) until
the drill has done its damage, and the drill waits for events that are written down (an arrival,
a line in ``result.json``, a trial's state in Tune's saved experiment state). The checks after a
fault are the same in every drill (:func:`check_nothing_lost`): result sets of trials finished
before the fault unchanged byte for byte, one final result per trial, and ``launch report``
counting every trial exactly once.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tune_configs.ops.cluster import ClusterState, cluster_processes, free_port, load_state
from tune_configs.ops.processes import create_time, ray_executables, session_processes, terminate
from tune_configs.ops.tune_state import final_result

ROOT = Path(__file__).resolve().parents[2]
RESULT_SET = ("run.json", "episodes.csv", "summary.json")


def launch(
    *args: str, env: dict[str, str] | None = None, timeout: float = 900
) -> subprocess.CompletedProcess[str]:
    """``python -m launch ARGS`` to completion, output captured."""
    return subprocess.run(
        [sys.executable, "-m", "launch", *args],
        cwd=ROOT, capture_output=True, text=True, timeout=timeout, env=env,
    )  # fmt: skip


def start_launch(*args: str, env: dict[str, str] | None, log: Path) -> subprocess.Popen[bytes]:
    """``python -m launch ARGS`` in the background, in its own session (killed as a group)."""
    with open(log, "wb") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "launch", *args], cwd=ROOT, env=env,
            stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip


def kill_group(proc: subprocess.Popen[Any]) -> None:
    """SIGKILL a process started by :func:`start_launch` and everything in its session."""
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, 9)
    proc.wait(timeout=60)


def alive_or_fail(proc: subprocess.Popen[Any], log: Path) -> Callable[[], None]:
    """A check for :meth:`Barrier.wait`: fail at once, with the log, if ``proc`` has ended."""

    def check() -> None:
        if proc.poll() is not None:
            raise AssertionError(f"exited {proc.returncode} too early:\n{tail(log)}")

    return check


def tail(path: Path, lines: int = 40) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return f"(no {path})"


def wait_until(
    predicate: Callable[[], Any],
    timeout: float,
    what: str,
    check: Callable[[], None] | None = None,
    interval: float = 0.2,
) -> Any:
    """Poll ``predicate`` until truthy (returned); ``check`` may fail early. Only an upper bound
    against hangs: every wait is for an event, never for time to pass."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if check is not None:
            check()
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(interval)


# ------------------------------------------------------------------------------------------
# Tune's files


def result_lines(trial_dir: Path) -> list[dict[str, Any]]:
    """The results Tune's driver logged for a trial (``result.json``, one JSON per line)."""
    path = trial_dir / "result.json"
    if not path.is_file():
        return []
    out = []
    for line in path.read_text().splitlines():
        with contextlib.suppress(ValueError):  # a line being written
            out.append(json.loads(line))
    return out


def trial_files(trial_dir: Path) -> dict[str, bytes]:
    """Bytes of the trial's result set and Tune result log (what must survive a fault)."""
    return {
        name: (trial_dir / name).read_bytes()
        for name in (*RESULT_SET, "result.json")
        if (trial_dir / name).is_file()
    }


def complete_trials(exp: Path) -> dict[str, dict[str, bytes]]:
    """Trial dir name -> :func:`trial_files`, for trials whose result set is complete."""
    return {
        d.name: trial_files(d)
        for d in sorted(exp.iterdir())
        if d.is_dir() and all((d / n).is_file() for n in RESULT_SET)
    }


def finished(exp: Path, trial: str) -> bool:
    """The trial wrote its whole result set and the driver logged its final result."""
    d = exp / trial
    return all((d / n).is_file() for n in RESULT_SET) and any(map(final_result, result_lines(d)))


def experiment_trials(exp: Path) -> dict[str, dict[str, Any]]:
    """Trial dir -> {"status", "num_failures", "state"} from Tune's latest saved experiment state
    (``state`` is the raw runtime JSON, for :func:`state_has_checkpoint`)."""
    states = sorted(exp.glob("experiment_state-*.json"))
    if not states:
        return {}
    try:
        data = json.loads(states[-1].read_text())
    except (OSError, ValueError):  # being rewritten
        return {}
    out = {}
    for meta_json, runtime_json in data.get("trial_data", []):
        meta, runtime = json.loads(meta_json), json.loads(runtime_json)
        out[meta.get("relative_logdir") or meta["trial_id"]] = {
            "status": meta["status"], "num_failures": runtime.get("num_failures", 0),
            "state": runtime_json,
        }  # fmt: skip
    return out


def state_has_checkpoint(exp: Path, trial: str, checkpoint: str) -> bool:
    """Tune's saved experiment state records ``checkpoint`` (e.g. ``checkpoint_000001``) for the
    trial: the driver has registered it, so a retry restores from it. (Tune stores its
    checkpoint manager pickled, as hex; the directory name is in it as bytes.)"""
    state = experiment_trials(exp).get(trial)
    if state is None:
        return False
    manager = json.loads(state["state"]).get("checkpoint_manager", {})
    blob = manager.get("value", "") if isinstance(manager, dict) else ""
    try:
        return checkpoint.encode() in bytes.fromhex(blob)
    except ValueError:
        return False


def check_nothing_lost(
    exp: Path,
    n_trials: int,
    before: dict[str, dict[str, bytes]],
    env: dict[str, str] | None = None,
) -> dict[str, dict[str, bytes]]:
    """After a fault and the recovery, in the experiment ``exp``:

    * every trial finished before the fault (``before``, from :func:`complete_trials`) keeps its
      result set and Tune result log byte for byte;
    * ``n_trials`` complete result sets, each trial with exactly one final result;
    * ``launch report`` lists every trial once: ``results.csv`` holds each trial's rows once
      (no duplicated policy and episode) and ``report.md`` reads each result set once.
    Returns :func:`complete_trials` after the recovery.
    """
    after = complete_trials(exp)
    for trial, files in before.items():
        assert trial in after, f"{trial} lost"
        for name, data in files.items():
            assert after[trial].get(name) == data, f"{trial}/{name} changed after the fault"
    assert len(after) == n_trials, sorted(after)
    for trial in after:
        finals = [r for r in result_lines(exp / trial) if final_result(r)]
        assert len(finals) == 1, (trial, len(finals))
    r = launch("report", str(exp), env=env)
    assert r.returncode == 0, r.stdout + r.stderr
    import pandas as pd

    rows = pd.read_csv(exp / "results.csv")
    assert set(rows["source"]) == set(after), (set(rows["source"]), sorted(after))
    dup = rows.duplicated(subset=["source", "policy", "seed"])
    assert not dup.any(), rows.loc[dup, ["source", "policy", "seed"]]
    read = _what_was_read(exp / "report.md")
    for trial in after:
        assert read.count(trial) == 1, (trial, read)
    return after


def _what_was_read(report: Path) -> list[str]:
    """Result sets in the report's "What was read" table (first cell of each row)."""
    text = report.read_text()
    section = text.split("## What was read", 1)[1].split("\n## ", 1)[0]
    rows = [ln for ln in section.splitlines() if ln.startswith("| ") and "---" not in ln]
    return [ln.split("|")[1].strip() for ln in rows[1:]]


# ------------------------------------------------------------------------------------------
# A local 2-node cluster (head + 1 worker, 1 CPU each)


@contextlib.contextmanager
def local_cluster(
    directory: Path,
    env: dict[str, str] | None = None,
    before_down: Callable[[], None] | None = None,
) -> Iterator[ClusterState]:
    """``launch cluster up --workers 1`` on free loopback ports (``env``: the nodes' environment,
    e.g. with a trial barrier); always ``cluster down`` at the end (``before_down`` first), then
    fails if any of its processes survived (they are killed) or its Ray temp dir is left."""
    up = launch(
        "cluster", "up", "--workers", "1", "--num-cpus", "1", "--object-store-mb", "200",
        "--port", str(free_port()), "--dashboard-port", str(free_port()), "--dir", str(directory),
        env=env,
    )  # fmt: skip
    state = load_state(directory)
    try:
        assert up.returncode == 0 and state is not None, up.stdout + up.stderr
        yield state
    finally:
        if before_down is not None:
            before_down()
        down = launch("cluster", "down", "--dir", str(directory), "--grace", "5")
        assert down.returncode == 0, down.stdout + down.stderr
        if state is not None:
            left = [p for procs in cluster_processes(state).values() for p in procs]
            survivors = [describe(p) for p in left]
            terminate(left, grace=0)  # never leave processes behind, even if `down` misbehaved
            assert not survivors, f"processes left after `cluster down`: {survivors}\n{down.stdout}"
            assert not Path(state.temp_dir).exists()


def describe(proc: Any) -> str:
    try:
        return (
            f"pid {proc.pid} ppid {proc.ppid()} sid {os.getsid(proc.pid)} {proc.status()} "
            f"created {time.ctime(proc.create_time())}: {' '.join(proc.cmdline())[:120]}"
        )
    except Exception as exc:  # gone meanwhile
        return f"pid {proc.pid}: {exc!r}"


def client_env(state: ClusterState, **extra: str) -> dict[str, str]:
    """This process's environment with the cluster's client settings (address, auth)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAY_AUTH")}
    return {**env, **state.client_env(), **extra}


# ------------------------------------------------------------------------------------------
# An unrelated Ray on the machine (a user's `ray start --head`)


@dataclass
class UnrelatedRay:
    """A Ray head started like a user would, with its own temp dir; stopped by its pids."""

    address: str
    tmpdir: Path  # RAY_TMPDIR under which its temp dir ("ray") and ray_current_cluster live
    session: Path  # its session directory (logs of every driver that connects)
    sid: int
    started: float
    sid_created: float

    def processes(self) -> list[Any]:
        return session_processes(
            self.sid, self.started, self.sid_created, ray_executables(sys.executable)
        )

    def drivers_seen(self) -> list[str]:
        """Log files of drivers that connected to it (Ray writes one per driver)."""
        return sorted(p.name for p in (self.session / "logs").glob("python-core-driver-*"))

    def current_cluster_file(self) -> str:
        return (self.tmpdir / "ray" / "ray_current_cluster").read_text()


@contextlib.contextmanager
def unrelated_ray() -> Iterator[UnrelatedRay]:
    """``ray start --head`` on 127.0.0.1 with a free port, 1 CPU, no dashboard, its temp dir in a
    fresh ``RAY_TMPDIR`` (short path: Ray's sockets live below it). Give a command
    ``RAY_TMPDIR=<tmpdir>`` and it finds this cluster exactly as it would find a user's in
    /tmp/ray. Always stopped by its session's pids, never ``ray stop``."""
    tmpdir = Path(tempfile.mkdtemp(prefix="mlr-", dir="/tmp"))
    env = {k: v for k, v in os.environ.items() if k not in ("RAY_ADDRESS", "RAY_TMPDIR")}
    env.update(
        RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER="0", RAY_AUTH_MODE="disabled",
        RAY_USAGE_STATS_ENABLED="0",
    )  # fmt: skip
    port = free_port()
    cmd = [
        sys.executable, "-m", "ray.scripts.scripts", "start", "--head",
        "--node-ip-address=127.0.0.1", f"--port={port}", "--num-cpus=1",
        "--include-dashboard=false", f"--temp-dir={tmpdir / 'ray'}", "--disable-usage-stats",
        "--object-store-memory=100000000", f"--dashboard-agent-listen-port={free_port()}",
        f"--ray-client-server-port={free_port()}", "--min-worker-port=0", "--max-worker-port=0",
    ]  # fmt: skip
    started = time.time()
    log = tmpdir / "start.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(cmd, env=env, stdin=subprocess.DEVNULL, stdout=out,
                                stderr=subprocess.STDOUT, start_new_session=True)  # fmt: skip
    other = UnrelatedRay(
        address=f"127.0.0.1:{port}", tmpdir=tmpdir, session=tmpdir, sid=proc.pid,
        started=started, sid_created=create_time(proc.pid),
    )  # fmt: skip
    try:
        assert proc.wait(timeout=300) == 0, tail(log)
        other.session = (tmpdir / "ray" / "session_latest").resolve()
        yield other
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        left = terminate(other.processes(), grace=5)
        assert left == [], f"unrelated Ray processes survived: {[p.pid for p in left]}"
        shutil.rmtree(tmpdir, ignore_errors=True)


# ------------------------------------------------------------------------------------------
# An Optuna sweep's driver killed mid-study, then resumed


# Four optuna-static evaluations (3 episodes each), one at a time.
OPTUNA_SMALL = ["optuna-static", "--budget", "small", "--set", "samples=4", "--set", "episodes=3",
                "--max-concurrent", "1"]  # fmt: skip


def study_trials(url: str, study: str) -> list[dict[str, Any]]:
    """The study's trials, read back from its database: number, state, params, values, attrs."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    s = optuna.load_study(study_name=study, storage=url)
    return [
        {"number": t.number, "state": t.state.name, "params": t.params, "values": t.values,
         "attrs": dict(t.user_attrs)}
        for t in s.get_trials(deepcopy=False)
    ]  # fmt: skip


@dataclass
class KilledStudy:
    """What :func:`kill_optuna_driver_and_resume` saw before the kill and after the resume."""

    exp: Path
    url: str
    study: str
    first: str  # the trial that finished before the kill
    held: str  # the trial held at its start when the driver was killed
    before: dict[str, dict[str, bytes]]  # complete_trials before the kill
    study_before: list[dict[str, Any]]
    resumed: subprocess.CompletedProcess[str]
    barrier: Any


def kill_optuna_driver_and_resume(
    tmp_path: Path, url: str | None = None, study: str = "opt", env: dict[str, str] | None = None
) -> KilledStudy:
    """``launch sweep optuna-static`` (4 evaluations, one at a time) on the study at ``url``
    (default: the experiment's SQLite file): the first trial finishes and Tune's saved state
    records it, the second is held at its start, then the driver and its Ray are killed
    (SIGKILL) and the sweep is resumed with ``--resume`` and the barrier open."""
    from tune_configs.ops.barrier import Barrier

    b = Barrier(tmp_path / "barrier")  # closed
    storage, log = tmp_path / "results", tmp_path / "sweep.log"
    exp = storage / "opt"
    url = url or f"sqlite:///{exp / 'optuna.db'}"
    sets = ["--set", f"optuna_storage={url}", "--set", f"study={study}"]
    args = ["sweep", *OPTUNA_SMALL, *sets, "--storage", str(storage), "--name", "opt"]
    full_env = {**(env or os.environ), **b.env()}
    sweep = start_launch(*args, env=full_env, log=log)
    try:
        alive = alive_or_fail(sweep, log)
        (first,) = b.wait("*@start#0", timeout=600, check=alive)
        b.release(first)

        def first_recorded() -> bool:
            state = experiment_trials(exp).get(first.trial, {})
            return finished(exp, first.trial) and state.get("status") == "TERMINATED"

        wait_until(first_recorded, 600, "the first trial to finish and be saved", check=alive)
        held = next(a for a in b.wait("*@start#0", count=2, timeout=600, check=alive) if a != first)
        before = complete_trials(exp)
        study_before = study_trials(url, study)
        kill_group(sweep)
    finally:
        b.open()
        kill_group(sweep)
    resumed = launch(*args, "--resume", env=full_env)
    return KilledStudy(exp, url, study, first.trial, held.trial, before, study_before, resumed, b)


def check_study_after_resume(k: KilledStudy, n_trials: int = 4) -> list[dict[str, Any]]:
    """The study after :func:`kill_optuna_driver_and_resume`: exactly ``n_trials`` complete trials,
    none left running, each linked to its own Tune trial of the experiment (the finished ones
    unchanged, nothing evaluated twice); the experiment's result sets as
    :func:`check_nothing_lost` wants them. Returns the study's trials."""
    assert k.resumed.returncode == 0, k.resumed.stdout[-3000:] + k.resumed.stderr[-3000:]
    after = check_nothing_lost(k.exp, n_trials, k.before)
    trials = study_trials(k.url, k.study)
    complete = [t for t in trials if t["state"] == "COMPLETE"]
    assert len(complete) == n_trials, [(t["number"], t["state"]) for t in trials]
    assert not [t for t in trials if t["state"] in ("RUNNING", "WAITING")], trials
    dirs = [Path(t["attrs"]["tune_trial_dir"]).name for t in complete]
    assert sorted(dirs) == sorted(after), (dirs, sorted(after))  # one study trial per Tune trial
    params = [tuple(sorted(t["params"].items())) for t in complete]
    assert len(set(params)) == n_trials, params  # no finished trial proposed again
    (done_before,) = [t for t in k.study_before if t["state"] == "COMPLETE"]
    (same,) = [t for t in complete if t["number"] == done_before["number"]]
    assert same == done_before  # the finished trial kept as it was
    assert Path(same["attrs"]["tune_trial_dir"]).name == k.first
    assert len(k.barrier.arrivals(f"{k.first}@start#*")) == 1  # never run again
    return trials
