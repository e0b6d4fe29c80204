"""A real 2-node loopback Ray cluster (head + 1 worker, 1 CPU each): jobs, faults, security.

Slow (about 5-7 min on a quiet 2-core machine):
``pytest -m slow tests/tune_configs/ops/test_cluster_faults.py``.
One cluster serves the whole module (started with ``python -m launch cluster up`` and always
stopped with ``cluster down`` in the fixture's teardown, even when a test fails); the worker-kill
test runs last because it removes the worker node. The nodes are started with a trial barrier
(:mod:`tune_configs.ops.barrier`) in their environment, open except while a drill holds trials, so
every fault lands at a known point of the sweep whatever the machine's speed:

* a sweep submitted as a job runs trials on both nodes at once and its result sets land in the
  cluster's storage;
* a client with a wrong or missing token is refused (Jobs API and GCS); every socket the cluster's
  processes listen on is on loopback;
* the driver is killed while one trial has finished and the others wait at their start; ``launch
  sweep ... --resume`` finishes the sweep without redoing the finished trial;
* the worker node is killed while its trial waits at its start and the head's trial has finished;
  the sweep completes, the lost trial is retried on the head, nothing finished is lost.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers.drills import (
    alive_or_fail,
    check_nothing_lost,
    client_env,
    complete_trials,
    experiment_trials,
    finished,
    kill_group,
    launch,
    local_cluster,
    start_launch,
    wait_until,
)
from tune_configs.ops.barrier import Arrival, Barrier
from tune_configs.ops.cluster import (
    ClusterState,
    cluster_processes,
    node_processes,
)
from tune_configs.ops.processes import is_loopback, listening_sockets

pytestmark = [pytest.mark.slow, pytest.mark.ray]

# 4 static-grid trials (blocks of whole w_b rows), 10 episodes per split: a few seconds each.
FOUR_TRIALS = ["--set", "blocks=4", "--set", "episodes=10"]
N_TRIALS = 4


@pytest.fixture(scope="module")
def barrier(tmp_path_factory: pytest.TempPathFactory) -> Barrier:
    b = Barrier(tmp_path_factory.mktemp("barrier"))
    b.open()
    return b


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory, barrier: Barrier) -> Iterator[ClusterState]:
    env = {**os.environ, **barrier.env()}  # the nodes' trials see the barrier
    with local_cluster(tmp_path_factory.mktemp("cluster"), env, before_down=barrier.open) as state:
        yield state


@pytest.fixture
def held(barrier: Barrier) -> Iterator[Barrier]:
    """The barrier closed for one drill (every trial waits at its start), opened afterwards."""
    barrier.reset()
    try:
        yield barrier
    finally:
        barrier.open()


def node_of(state: ClusterState, arrival: Arrival) -> str:
    """The node whose processes include the arrival's (the trial's Ray worker)."""
    for name, procs in cluster_processes(state).items():
        if arrival.pid in {p.pid for p in procs}:
            return name
    raise AssertionError(f"no node runs pid {arrival.pid} ({arrival.key})")


# ------------------------------------------------------------------------------------------
# tests (in this order: the last one removes the worker node)


def test_job_runs_on_both_nodes_and_writes_shared_storage(
    cluster: ClusterState, held: Barrier
) -> None:
    r = launch("submit", "static-grid", "--budget", "small", "--name", "job-both",
               "--job-id", "job-both", "--no-wait", "--set", "episodes=10",
               "--cluster-dir", cluster.directory)  # fmt: skip
    assert r.returncode == 0, r.stdout + r.stderr
    # Both trials start before either may finish: one CPU per node puts them on both nodes.
    started = held.wait("*@start#0", count=2, timeout=600)
    assert {node_of(cluster, a) for a in started} == {"head", "worker-1"}
    held.open()
    follow = launch("jobs", "logs", "job-both", "--follow", "--cluster-dir", cluster.directory)
    assert follow.returncode == 0, follow.stdout + follow.stderr
    assert "2 trials with results, 0 failed" in follow.stdout
    exp = Path(cluster.storage) / "job-both"  # the cluster's storage is the default
    check_nothing_lost(exp, 2, before={})
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
    code = "import sys; from tune_configs.ops.ray_internals import gcs_accepts; "
    code += "print(gcs_accepts(sys.argv[1]))"
    for token, expected in ((str(bad), "AuthenticationError"), (None, "accepted")):
        env = client_env(cluster)
        if token:
            env["RAY_AUTH_TOKEN_PATH"] = token
        r = subprocess.run([sys.executable, "-c", code, cluster.gcs_address], env=env,
                           capture_output=True, text=True, timeout=120)  # fmt: skip
        assert r.stdout.strip().splitlines()[-1:] == [expected], r.stdout + r.stderr


def test_nothing_listens_outside_loopback(cluster: ClusterState) -> None:
    procs = [p for ps in cluster_processes(cluster).values() for p in ps]
    sockets = listening_sockets(procs)
    ports = {port for _, _, _, port in sockets}
    assert cluster.gcs_port in ports and cluster.dashboard_port in ports
    assert len(sockets) >= 8  # GCS, raylets, dashboard, agents of both nodes
    outside = [s for s in sockets if not is_loopback(s[2])]
    assert outside == [], f"listening beyond loopback: {outside}"


def test_killed_driver_resumes_without_redoing_trials(
    cluster: ClusterState, held: Barrier, tmp_path: Path
) -> None:
    storage = Path(cluster.storage) / "driver-kill"
    exp = storage / "exp"
    args = ["sweep", "static-grid", "--address", cluster.gcs_address, "--storage", str(storage),
            "--name", "exp", *FOUR_TRIALS]  # fmt: skip
    env = client_env(cluster)
    log = tmp_path / "driver.log"
    driver = start_launch(*args, env=env, log=log)
    try:
        alive = alive_or_fail(driver, log)
        first = held.wait("*@start#0", count=2, timeout=600, check=alive)[0]
        held.release(first)  # one trial finishes; every other one waits at its start
        done = first.trial

        # Kill the driver once Tune's saved experiment state (what --resume reads) records the
        # finished trial; the sweep cannot end meanwhile, its other trials are held.
        def saved_finished() -> bool:
            trials = experiment_trials(exp)
            return trials.get(done, {}).get("status") == "TERMINATED"

        wait_until(saved_finished, 300, f"the saved experiment state to record {done}",
                   check=alive)  # fmt: skip
        before = complete_trials(exp)
        assert set(before) == {done}
        statuses = [t["status"] for t in experiment_trials(exp).values()]
        assert statuses.count("TERMINATED") == 1
    finally:
        kill_group(driver)
    held.open()
    r = launch(*args, "--resume", env=env)
    assert r.returncode == 0, r.stdout + r.stderr
    after = experiment_trials(exp)
    assert len(after) == N_TRIALS and all(t["status"] == "TERMINATED" for t in after.values())
    assert len(held.arrivals(f"{done}@start#*")) == 1  # the finished trial did not run again
    check_nothing_lost(exp, N_TRIALS, before)


def test_killed_worker_node_trials_are_retried(cluster: ClusterState, held: Barrier) -> None:
    """Last test: it kills the worker node (the fixture's teardown stops the rest)."""
    r = launch("submit", "static-grid", "--name", "worker-kill", "--job-id", "worker-kill",
               "--no-wait", *FOUR_TRIALS, "--cluster-dir", cluster.directory)  # fmt: skip
    assert r.returncode == 0, r.stderr
    exp = Path(cluster.storage) / "worker-kill"
    started = held.wait("*@start#0", count=2, timeout=600)
    on = {node_of(cluster, a): a for a in started}
    assert set(on) == {"head", "worker-1"}, on
    lost = on["worker-1"].trial
    held.release(on["head"])  # the head's trial finishes; the worker's waits at its start
    wait_until(lambda: finished(exp, on["head"].trial), 300, "the head's trial to finish")
    before = complete_trials(exp)
    assert set(before) == {on["head"].trial}
    # SIGKILL every process of the worker node, like a crash, and record it as stopped.
    down = launch("cluster", "down", "--node", "worker-1", "--force", "--dir", cluster.directory)
    assert down.returncode == 0, down.stderr
    assert node_processes(cluster.node("worker-1")) == []
    held.open()

    follow = launch("jobs", "logs", "worker-kill", "--follow", "--cluster-dir", cluster.directory)
    assert follow.returncode == 0, follow.stdout + follow.stderr
    assert f"{N_TRIALS} trials with results, 0 failed" in follow.stdout
    trials = experiment_trials(exp)
    assert len(trials) == N_TRIALS and all(t["status"] == "TERMINATED" for t in trials.values())
    assert trials[lost]["num_failures"] >= 1, trials[lost]
    again = held.arrivals(f"{lost}@start#*")
    assert len(again) >= 2 and again[-1].pid != on["worker-1"].pid  # retried, on the head
    assert len(held.arrivals(f"{on['head'].trial}@start#*")) == 1
    check_nothing_lost(exp, N_TRIALS, before)
    status = launch("cluster", "status", "--json", "--dir", cluster.directory)
    assert '"stopped": true' in status.stdout, status.stdout
