"""A real 2-node loopback Ray cluster (head + 1 worker, 1 CPU each): jobs, faults, security.

Slow (about 4-6 min on a quiet 2-core machine): run with ``pytest -m slow
tests/test_cluster_faults.py``. One cluster serves the whole module (started with ``python -m
launch cluster up`` and always stopped with ``cluster down`` in the fixture's teardown, even when
a test fails); the worker-kill test runs last because it removes the worker node.

* a sweep submitted as a job runs its trials on both nodes and its results land in the storage;
* a client with a wrong or missing token is refused (Jobs API and GCS); every socket the cluster's
  processes listen on is on loopback;
* killing the driver, then ``launch sweep ... --resume``: finished trials are not redone;
* killing the worker node in the middle of a sweep: the sweep completes, the lost trial is
  retried on the head, nothing finished is lost.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tune_configs.cluster import (
    ClusterState,
    cluster_processes,
    free_port,
    load_state,
    node_processes,
)
from tune_configs.processes import is_loopback, listening_sockets, terminate

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parent.parent
# 8 static-grid trials (4 blocks of up to 3 w_b rows x 2 rewards), ~5-10 s each. Not shorter:
# with Tune's actor reuse, trials shorter than the start of a new trial actor on the other node
# all run one after another on the first actor (see the report in docker/RUNNING.md).
MANY_TRIALS = ["--set", "blocks=4", "--set", "deltas=[0.9,0.5]"]
N_TRIALS = 8


def launch(
    *args: str, env: dict[str, str] | None = None, timeout: float = 600
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "launch", *args],
        cwd=ROOT, capture_output=True, text=True, timeout=timeout, env=env,
    )  # fmt: skip


def client_env(state: ClusterState, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAY_AUTH")}
    env.update(state.client_env())
    env.update(extra)
    return env


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ClusterState]:
    directory = tmp_path_factory.mktemp("cluster")
    up = launch(
        "cluster", "up", "--workers", "1", "--num-cpus", "1", "--object-store-mb", "200",
        "--port", str(free_port()), "--dashboard-port", str(free_port()), "--dir", str(directory),
    )  # fmt: skip
    state = load_state(directory)
    try:
        assert up.returncode == 0, up.stdout + up.stderr
        assert state is not None
        yield state
    finally:
        down = launch("cluster", "down", "--dir", str(directory), "--grace", "5")
        assert down.returncode == 0, down.stdout + down.stderr
        if state is not None:
            left = {name: procs for name, procs in cluster_processes(state).items() if procs}
            details = {name: [describe(p) for p in procs] for name, procs in left.items()}
            if left:  # never leave processes behind, even if `down` misbehaved
                terminate([p for procs in left.values() for p in procs], grace=0)
            assert not left, f"processes left after `cluster down`: {details}\n{down.stdout}"
            assert not Path(state.temp_dir).exists()


def describe(proc: Any) -> str:
    try:
        return (
            f"pid {proc.pid} ppid {proc.ppid()} sid {os.getsid(proc.pid)} {proc.status()} "
            f"created {time.ctime(proc.create_time())}: {' '.join(proc.cmdline())[:120]}"
        )
    except Exception as exc:  # gone meanwhile
        return f"pid {proc.pid}: {exc!r}"


# ------------------------------------------------------------------------------------------
# helpers reading Tune's files


def finished_results(exp: Path) -> dict[str, bytes]:
    """Trial directory name -> bytes of its result.json, for trials that reported."""
    out = {}
    for path in exp.glob("*/result.json"):
        data = path.read_bytes()
        if data.strip():
            out[path.parent.name] = data
    return out


def experiment_trials(exp: Path) -> dict[str, dict[str, Any]]:
    """trial_id -> {"status", "num_failures", "dir"} from the latest experiment state file."""
    states = sorted(exp.glob("experiment_state-*.json"))
    if not states:
        return {}
    try:
        data = json.loads(states[-1].read_text())
    except ValueError:  # being rewritten
        return {}
    out = {}
    for meta_json, runtime_json in data.get("trial_data", []):
        meta, runtime = json.loads(meta_json), json.loads(runtime_json)
        out[meta["trial_id"]] = {
            "status": meta["status"], "num_failures": runtime.get("num_failures", 0),
            "dir": meta.get("relative_logdir") or "",
        }  # fmt: skip
    return out


def wait_until(predicate: Any, timeout: float, what: str, interval: float = 0.2) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(interval)


def actor_nodes(state: ClusterState, job_id: str) -> dict[int, str]:
    """pid -> node id of the job's Tune trial actors (ImplicitFunc), via the state API."""
    code = (
        "import json, sys\n"
        "from ray.job_submission import JobSubmissionClient\n"
        "from ray.util.state import list_actors\n"
        "url = sys.argv[1]\n"
        "job = JobSubmissionClient(url).get_job_info(sys.argv[2]).job_id\n"
        "acts = list_actors(address=url, detail=True, limit=1000)\n"
        "print(json.dumps({a.pid: a.node_id for a in acts\n"
        "                  if a.class_name == 'ImplicitFunc' and a.job_id == job}))\n"
    )
    r = subprocess.run(
        [sys.executable, "-c", code, state.dashboard_url, job_id], env=client_env(state),
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    return {int(k): v for k, v in json.loads(r.stdout.strip().splitlines()[-1]).items()}


def ray_node_ids(state: ClusterState) -> dict[str, str]:
    code = (
        "import json, sys\n"
        "from ray.util.state import list_nodes\n"
        "print(json.dumps({n.node_name: n.node_id for n in list_nodes(address=sys.argv[1])\n"
        "                  if n.state == 'ALIVE'}))\n"
    )
    r = subprocess.run(
        [sys.executable, "-c", code, state.dashboard_url], env=client_env(state),
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    return dict(json.loads(r.stdout.strip().splitlines()[-1]))


# ------------------------------------------------------------------------------------------
# tests (in this order: the last one removes the worker node)


def test_job_runs_on_both_nodes_and_writes_shared_storage(cluster: ClusterState) -> None:
    nodes = ray_node_ids(cluster)
    assert set(nodes) == {"head", "worker-1"}
    r = launch("submit", "static-grid", "--budget", "small", "--name", "job-both",
               "--job-id", "job-both", "--cluster-dir", cluster.directory)  # fmt: skip
    assert r.returncode == 0, r.stdout + r.stderr
    assert "SUCCEEDED" in r.stderr and "2 trials with results, 0 failed" in r.stdout
    exp = Path(cluster.storage) / "job-both"  # the cluster's storage is the default
    results = finished_results(exp)
    assert len(results) == 2
    pids = {json.loads(data.splitlines()[-1])["pid"] for data in results.values()}
    where = actor_nodes(cluster, "job-both")
    assert {where[pid] for pid in pids} == set(nodes.values()), (where, pids, nodes)
    for trial in results:  # the result sets written by the trials themselves
        for name in ("run.json", "summary.json", "episodes.csv"):
            assert (exp / trial / name).stat().st_size > 0, (trial, name)
    listed = launch("jobs", "list", "--cluster-dir", cluster.directory)
    assert listed.returncode == 0 and "job-both" in listed.stdout and "SUCCEEDED" in listed.stdout


def test_wrong_token_is_refused(cluster: ClusterState, tmp_path: Path) -> None:
    bad = tmp_path / "bad_token"
    bad.write_text("0" * 64)
    bad.chmod(0o600)
    r = launch("jobs", "list", "--cluster-dir", cluster.directory, "--token-file", str(bad))
    assert r.returncode == 1 and "refused" in r.stderr and "Invalid authentication" in r.stderr
    no_token = client_env(cluster, RAY_AUTH_MODE="disabled")
    r = launch("jobs", "list", "--address", cluster.dashboard_url, env=no_token)
    assert r.returncode == 1 and "refused" in r.stderr
    # GCS (gRPC): the token is checked there too; the right token is the control.
    code = (
        "import sys\n"
        "from ray._raylet import GcsClient\n"
        "try:\n"
        "    GcsClient(address=sys.argv[1]).internal_kv_get(b'x', None, timeout=5)\n"
        "    print('ACCEPTED')\n"
        "except Exception as exc:\n"
        "    print('REFUSED', type(exc).__name__)\n"
    )
    for token, expected in ((str(bad), "REFUSED AuthenticationError"), (None, "ACCEPTED")):
        env = client_env(cluster)
        if token:
            env["RAY_AUTH_TOKEN_PATH"] = token
        r = subprocess.run([sys.executable, "-c", code, cluster.gcs_address], env=env,
                           capture_output=True, text=True, timeout=120)  # fmt: skip
        assert r.stdout.strip().splitlines()[-1] == expected, r.stdout + r.stderr


def test_nothing_listens_outside_loopback(cluster: ClusterState) -> None:
    procs = [p for ps in cluster_processes(cluster).values() for p in ps]
    sockets = listening_sockets(procs)
    ports = {port for _, _, _, port in sockets}
    assert cluster.gcs_port in ports and cluster.dashboard_port in ports
    assert len(sockets) >= 8  # GCS, raylets, dashboard, agents of both nodes
    outside = [s for s in sockets if not is_loopback(s[2])]
    assert outside == [], f"listening beyond loopback: {outside}"


def test_killed_driver_resumes_without_redoing_trials(cluster: ClusterState) -> None:
    storage = Path(cluster.storage) / "driver-kill"
    args = ["sweep", "static-grid", "--address", cluster.gcs_address, "--storage", str(storage),
            "--name", "exp", "--max-concurrent", "1", *MANY_TRIALS]  # fmt: skip
    exp = storage / "exp"
    env = client_env(cluster)
    driver = subprocess.Popen(
        [sys.executable, "-m", "launch", *args], cwd=ROOT, env=env, start_new_session=True,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        # Kill once the saved experiment state records some, not all, trials as finished.
        def some_terminated() -> bool:
            done = [t for t in experiment_trials(exp).values() if t["status"] == "TERMINATED"]
            return 1 <= len(done) < N_TRIALS

        wait_until(some_terminated, 300, "a saved experiment state with finished trials")
    finally:
        os.killpg(driver.pid, signal.SIGKILL)
        driver.wait(timeout=30)
    before = experiment_trials(exp)
    finished = {tid for tid, t in before.items() if t["status"] == "TERMINATED"}
    results_before = finished_results(exp)
    kept = {before[tid]["dir"] for tid in finished}
    assert kept <= set(results_before)

    r = launch(*args, "--resume", env=env)
    assert r.returncode == 0, r.stdout + r.stderr
    after = experiment_trials(exp)
    assert len(after) == N_TRIALS and all(t["status"] == "TERMINATED" for t in after.values())
    results_after = finished_results(exp)
    assert set(results_after) == {t["dir"] for t in after.values()}
    for trial_dir in kept:  # finished before the kill: untouched, reported exactly once
        assert results_after[trial_dir] == results_before[trial_dir], trial_dir
        assert len(results_after[trial_dir].strip().splitlines()) == 1
    # A trial that was running when the driver died may already have reported, before the saved
    # experiment state recorded it as finished: Tune runs it again, so it can have two lines.
    for trial_dir, data in results_after.items():
        assert len(data.strip().splitlines()) >= 1, trial_dir


def test_killed_worker_node_trials_are_retried(cluster: ClusterState) -> None:
    """Last test: it kills the worker node (the fixture's teardown stops the rest)."""
    worker = cluster.node("worker-1")
    r = launch("submit", "static-grid", "--name", "worker-kill", "--job-id", "worker-kill",
               "--no-wait", *MANY_TRIALS, "--cluster-dir", cluster.directory)  # fmt: skip
    assert r.returncode == 0, r.stderr
    exp = Path(cluster.storage) / "worker-kill"

    # Kill the worker node (SIGKILL, like a crash) while it runs a trial, once some trial has
    # finished. A Ray worker's title is "ray::ImplicitFunc.train" while it executes a trial.
    def running_on_worker() -> list[Any]:
        if not finished_results(exp):
            return []
        procs = node_processes(worker)
        for p in procs:
            try:
                if "ImplicitFunc.train" in " ".join(p.cmdline()):
                    return procs
            except Exception:
                continue
        return []

    wait_until(lambda: bool(running_on_worker()), 180, "a trial running on the worker node",
               interval=0.05)  # fmt: skip
    procs = running_on_worker()
    killed_at = finished_results(exp)
    assert terminate(procs, grace=0) == []
    assert len(killed_at) < N_TRIALS
    # Record the crash in the cluster state (the CLI finds nothing left to stop).
    down = launch("cluster", "down", "--node", "worker-1", "--force", "--dir", cluster.directory)
    assert down.returncode == 0, down.stderr

    follow = launch("jobs", "logs", "worker-kill", "--follow", "--cluster-dir", cluster.directory)
    assert follow.returncode == 0, follow.stdout + follow.stderr
    assert f"{N_TRIALS} trials with results, 0 failed" in follow.stdout
    trials = experiment_trials(exp)
    assert len(trials) == N_TRIALS and all(t["status"] == "TERMINATED" for t in trials.values())
    retried = [t for t in trials.values() if t["num_failures"] >= 1]
    assert retried, "the trial lost with the worker node was not retried"
    results = finished_results(exp)
    assert len(results) == N_TRIALS
    for trial_dir, data in killed_at.items():  # finished before the crash: kept as they were
        assert results[trial_dir] == data
    for trial in results:
        assert (exp / trial / "summary.json").stat().st_size > 0
    status = json.loads(launch("cluster", "status", "--json", "--dir", cluster.directory).stdout)
    assert [n["stopped"] for n in status["nodes"]] == [False, True]
