"""Fast checks of `launch cluster`, `launch submit`, `launch jobs` (no Ray cluster is started).

Argument validation (exit 2 with a usage message), the state file, the auth token file, the
environment every node gets, client address/auth resolution, the job entry point, and the
process tracking that `cluster down` relies on (on a dummy process tree, not on Ray).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

from launch import submit
from tests.helpers.cli import run_launch_here
from tune_configs.ops.cluster import (
    ClusterState,
    NodeRecord,
    head_command,
    load_state,
    node_processes,
    worker_command,
    write_token,
)
from tune_configs.ops.jobs_client import check_dashboard_address, resolve_client
from tune_configs.ops.processes import is_loopback, psutil_module, ray_executables, terminate

ROOT = Path(__file__).resolve().parents[2]


def launch(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "launch", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )


def fake_state(directory: Path, sid: int = 0, dashboard_port: int = 8399) -> ClusterState:
    node = NodeRecord(
        name="head", role="head", sid=sid, started=time.time(), num_cpus=1, agent_port=52999,
        log=str(directory / "logs" / "head.log"),
    )  # fmt: skip
    worker = NodeRecord(
        name="worker-1", role="worker", sid=0, started=time.time(), num_cpus=1, agent_port=52998,
        log=str(directory / "logs" / "worker-1.log"),
    )  # fmt: skip
    directory.mkdir(parents=True, exist_ok=True)
    return ClusterState(
        directory=str(directory), created=time.time(), gcs_port=6399,
        dashboard_port=dashboard_port, client_port=10099, auth_mode="token",
        token_path=str(directory / "auth_token"), temp_dir=str(directory / "metalore-ray-x"),
        storage=str(directory / "storage"), python=sys.executable, nodes=[node, worker],
    )  # fmt: skip


# ------------------------------------------------------------------------------------------
# Argument validation through the real CLI (subprocess): usage message, exit 2, no traceback


@pytest.mark.parametrize(
    "args",
    [
        ["cluster"],
        ["cluster", "up"],  # --workers is required
        ["cluster", "up", "--workers", "-1"],
        ["cluster", "up", "--workers", "17"],
        ["cluster", "up", "--workers", "two"],
        ["cluster", "up", "--workers", "1", "--num-cpus", "0"],
        ["cluster", "up", "--workers", "1", "--port", "80"],
        ["cluster", "up", "--workers", "1", "--port", "7000", "--dashboard-port", "7000"],
        ["cluster", "up", "--workers", "1", "--storage", "s3://bucket/x"],
        ["cluster", "up", "--workers", "1", "--auth", "password"],
        ["cluster", "down", "--grace", "-1"],
        ["submit", "no-such-sweep", "--address", "http://127.0.0.1:1"],
        ["submit", "static-grid", "--address", "127.0.0.1:8265"],
        ["submit", "static-grid", "--address", "http://127.0.0.1:1", "--storage", "rel/dir"],
        ["submit", "static-grid", "--address", "http://127.0.0.1:1", "--set", "blocks"],
        ["submit", "static-grid", "--address", "http://127.0.0.1:1", "--max-concurrent", "0"],
        ["submit", "static-grid", "--address", "http://127.0.0.1:1", "--name", "a b"],
        ["submit", "static-grid", "--address", "http://127.0.0.1:1", "--budget", "huge"],
        ["submit", "static-grid", "--address", "http://127.0.0.1:1", "--working-dir", "/tmp"],
        ["jobs"],
        ["jobs", "stop"],
        ["jobs", "list", "--address", "ftp://127.0.0.1:8265"],
    ],
)
def test_bad_arguments_exit_2(args: list[str], tmp_path: Path) -> None:
    if args[:2] == ["cluster", "up"]:
        args = [*args, "--dir", str(tmp_path / "c")]
    r = run_launch_here(*args)
    assert r.returncode == 2, (r.stdout, r.stderr)
    assert "usage:" in r.stderr and "Traceback" not in r.stderr
    assert not (tmp_path / "c" / "cluster.json").exists()


def test_status_and_down_without_cluster(tmp_path: Path) -> None:
    r = launch("cluster", "status", "--dir", str(tmp_path))
    assert r.returncode == 1 and "no cluster recorded" in r.stderr
    r = launch("cluster", "down", "--dir", str(tmp_path))
    assert r.returncode == 0 and "nothing to stop" in r.stdout


def test_up_refuses_busy_port_and_clears_stale_state(tmp_path: Path) -> None:
    """A stale state (no live process) is removed; a busy GCS port stops `up` before any start."""
    fake_state(tmp_path).save()
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        r = launch("cluster", "up", "--workers", "1", "--port", str(port), "--dir", str(tmp_path))
    assert r.returncode == 1, r.stderr
    assert f"127.0.0.1:{port} is in use" in r.stderr and "Traceback" not in r.stderr
    assert "removed the stale state" in r.stdout
    assert not (tmp_path / "cluster.json").exists()


def test_clients_report_unreachable_cluster(tmp_path: Path) -> None:
    env = {**os.environ, "RAY_AUTH_MODE": "disabled", "HOME": str(tmp_path)}
    for args in (["jobs", "list"], ["submit", "static-grid", "--no-wait"]):
        r = launch(*args, "--address", "http://127.0.0.1:1", env=env)
        assert r.returncode == 1, (r.stdout, r.stderr)
        assert "cannot reach" in r.stderr and "Traceback" not in r.stderr


def test_clients_need_an_address(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "RAY_API_SERVER_ADDRESS"}
    env["METALORE_CLUSTER_DIR"] = str(tmp_path)
    r = launch("jobs", "list", env=env)
    assert r.returncode == 2 and "no cluster address" in r.stderr


def test_down_node_checks_name(tmp_path: Path) -> None:
    fake_state(tmp_path).save()
    for node, message in (("head", "stops a worker node"), ("worker-9", "no node 'worker-9'")):
        r = launch("cluster", "down", "--node", node, "--dir", str(tmp_path))
        assert r.returncode == 2 and message in r.stderr, r.stderr


def test_restart_node_checks_name_and_cluster(tmp_path: Path) -> None:
    r = launch("cluster", "restart", "--node", "worker-1", "--dir", str(tmp_path))
    assert r.returncode == 1 and "no cluster recorded" in r.stderr, r.stderr
    fake_state(tmp_path).save()
    for node, message in (("head", "the head is started by `up`"), ("worker-9", "no node")):
        r = launch("cluster", "restart", "--node", node, "--dir", str(tmp_path))
        assert r.returncode == 2 and message in r.stderr, r.stderr
    r = launch("cluster", "restart", "--dir", str(tmp_path))
    assert r.returncode == 2 and "--node" in r.stderr


def test_state_written_before_object_store_was_recorded_loads(tmp_path: Path) -> None:
    state = fake_state(tmp_path)
    data = state.to_dict()
    del data["object_store_mb"]
    assert ClusterState.from_dict(data).object_store_mb == 500  # the default of `up`
    del data["storage"]
    with pytest.raises(ValueError, match="storage"):
        ClusterState.from_dict(data)


# ------------------------------------------------------------------------------------------
# State, token, node environment


def test_state_roundtrip_and_client_env(tmp_path: Path) -> None:
    state = fake_state(tmp_path)
    state.save()
    back = load_state(tmp_path)
    assert back == state
    assert back is not None and back.gcs_address == "127.0.0.1:6399"
    assert back.dashboard_url == "http://127.0.0.1:8399"
    env = back.client_env()
    assert env["RAY_AUTH_MODE"] == "token" and env["RAY_AUTH_TOKEN_PATH"] == state.token_path
    assert env["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] == "0"
    assert env["RAY_ADDRESS"] == "127.0.0.1:6399"
    assert load_state(tmp_path / "none") is None
    assert back.node("worker-1").role == "worker"
    with pytest.raises(KeyError):
        back.node("worker-2")


def test_status_env_prints_exports(tmp_path: Path) -> None:
    fake_state(tmp_path).save()
    r = launch("cluster", "status", "--env", "--dir", str(tmp_path))
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert "export RAY_AUTH_MODE=token" in lines
    assert f"export RAY_AUTH_TOKEN_PATH={tmp_path / 'auth_token'}" in lines
    assert all(line.startswith("export RAY_") for line in lines)


def test_token_file_is_private_and_fresh(tmp_path: Path) -> None:
    path = tmp_path / "d" / "auth_token"
    write_token(path)
    first = path.read_text()
    assert len(first) == 64 and int(first, 16) >= 0
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    write_token(path)
    assert path.read_text() != first and stat.S_IMODE(path.stat().st_mode) == 0o600


def test_node_env(tmp_path: Path) -> None:
    state = fake_state(tmp_path)
    base = {"PATH": "/usr/bin", "RAY_ADDRESS": "10.0.0.1:6379", "RAY_AUTH_TOKEN": "leak",
            "PYTHONPATH": "/x"}  # fmt: skip
    env = state.node_env(base)
    assert env["RAY_AUTH_MODE"] == "token" and env["RAY_AUTH_TOKEN_PATH"] == state.token_path
    assert "RAY_ADDRESS" not in env and "RAY_AUTH_TOKEN" not in env
    assert env["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] == "0"
    assert env["PYTHONPATH"].split(os.pathsep) == [str(ROOT), "/x"]
    assert env["PATH"].split(os.pathsep)[0] == str(Path(sys.executable).parent)
    state.auth_mode, state.token_path = "disabled", None
    env = state.node_env(base)
    assert env["RAY_AUTH_MODE"] == "disabled" and "RAY_AUTH_TOKEN_PATH" not in env


def test_node_commands_stay_on_loopback(tmp_path: Path) -> None:
    state = fake_state(tmp_path)
    head = head_command(state, state.nodes[0], 100_000_000)
    worker = worker_command(state, state.nodes[1], 100_000_000)
    assert "--node-ip-address=127.0.0.1" in head and "--dashboard-host=127.0.0.1" in head
    assert "--node-ip-address=127.0.0.1" in worker and "--address=127.0.0.1:6399" in worker
    assert worker[1:4] == ["-m", "tune_configs.ops.cluster", "start-worker"]
    assert "--dashboard-agent-listen-port=52999" in head
    assert "--dashboard-agent-listen-port=52998" in worker
    assert "stop" not in head + worker


def test_each_node_has_its_own_temp_dir(tmp_path: Path) -> None:
    """A job's working_dir is unpacked below each node's temp dir: shared, the worker node's
    runtime-env agent would unpack it again under the head's running driver."""
    from tune_configs.ops.cluster import node_temp_dir

    state = fake_state(tmp_path)
    head, worker = state.nodes
    dirs = {node_temp_dir(state, head), node_temp_dir(state, worker)}
    assert node_temp_dir(state, head) == state.temp_dir and len(dirs) == 2
    assert Path(node_temp_dir(state, worker)).parent == Path(state.temp_dir)  # removed by `down`
    assert f"--temp-dir={state.temp_dir}" in head_command(state, head, 100_000_000)
    worker_args = worker_command(state, worker, 100_000_000)
    assert f"--temp-dir={node_temp_dir(state, worker)}" in worker_args


@pytest.mark.parametrize(
    ("ip", "loopback"),
    [("127.0.0.1", True), ("127.3.4.5", True), ("::1", True), ("::ffff:127.0.0.1", True),
     ("0.0.0.0", False), ("::", False), ("192.0.2.2", False), ("::ffff:10.0.0.1", False)],
)  # fmt: skip
def test_is_loopback(ip: str, loopback: bool) -> None:
    assert is_loopback(ip) is loopback


def test_check_dashboard_address() -> None:
    assert check_dashboard_address("http://127.0.0.1:8265/") == "http://127.0.0.1:8265"
    assert check_dashboard_address("https://ray.example.org") == "https://ray.example.org"
    for bad in ("127.0.0.1:8265", "http://", "http://h:99999", "http://h:8265/api", "tcp://h:1"):
        with pytest.raises(ValueError):
            check_dashboard_address(bad)


# ------------------------------------------------------------------------------------------
# Client address and auth resolution


@pytest.fixture
def clean_auth_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    for key in ("RAY_AUTH_MODE", "RAY_AUTH_TOKEN", "RAY_AUTH_TOKEN_PATH", "RAY_API_SERVER_ADDRESS"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("METALORE_CLUSTER_DIR", str(tmp_path / "default-cluster"))
    return tmp_path


def test_resolve_client_uses_local_cluster(clean_auth_env: Path) -> None:
    state = fake_state(clean_auth_env / "default-cluster")
    state.save()
    address, how = resolve_client(None, None, None)
    assert address == state.dashboard_url and "local cluster" in how
    assert os.environ["RAY_AUTH_TOKEN_PATH"] == state.token_path
    assert os.environ["RAY_AUTH_MODE"] == "token"


def test_resolve_client_token_file_wins(clean_auth_env: Path) -> None:
    fake_state(clean_auth_env / "default-cluster").save()
    token = clean_auth_env / "tok"
    token.write_text("abc")
    address, how = resolve_client("http://10.1.2.3:8265", str(token), None)
    assert address == "http://10.1.2.3:8265" and str(token) in how
    assert os.environ["RAY_AUTH_TOKEN_PATH"] == str(token)
    with pytest.raises(ValueError, match="no such file"):
        resolve_client(None, str(clean_auth_env / "missing"), None)


def test_resolve_client_keeps_explicit_env(
    clean_auth_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake_state(clean_auth_env / "default-cluster").save()
    monkeypatch.setenv("RAY_AUTH_MODE", "disabled")
    monkeypatch.setenv("RAY_API_SERVER_ADDRESS", "http://127.0.0.1:9999")
    address, how = resolve_client(None, None, None)
    assert address == "http://127.0.0.1:9999" and "environment" in how
    assert "RAY_AUTH_TOKEN_PATH" not in os.environ


def test_resolve_client_local_cluster_beats_env(
    clean_auth_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    state = fake_state(clean_auth_env / "default-cluster")
    state.save()
    monkeypatch.setenv("RAY_AUTH_MODE", "disabled")
    monkeypatch.setenv("RAY_AUTH_TOKEN", "stale")
    _, how = resolve_client(state.dashboard_url, None, None)
    assert "local cluster" in how and os.environ["RAY_AUTH_MODE"] == "token"
    assert os.environ["RAY_AUTH_TOKEN_PATH"] == state.token_path
    assert "RAY_AUTH_TOKEN" not in os.environ


def test_resolve_client_without_anything(clean_auth_env: Path) -> None:
    with pytest.raises(ValueError, match="no cluster address"):
        resolve_client(None, None, None)


# ------------------------------------------------------------------------------------------
# Job entry point


def submit_args(*argv: str) -> argparse.Namespace:
    p = argparse.ArgumentParser()
    submit.add_arguments(p)
    return p.parse_args(list(argv))


def test_entrypoint() -> None:
    args = submit_args("static-grid", "--budget", "small", "--name", "e1", "--resume")
    submit.validate(args)
    cmd = submit.entrypoint(args, "/shared/results dir")
    assert cmd == (
        "python -m launch sweep static-grid --address auto --budget small "
        "--storage '/shared/results dir' --name e1 --resume"
    )
    plain = submit_args("quickstart")
    submit.validate(plain)
    assert submit.entrypoint(plain, None) == "python -m launch sweep quickstart --address auto"
    assert submit.default_job_id("paper-grid").startswith("paper-grid-")


def test_entrypoint_parses_with_the_sweep_command() -> None:
    """The job's command line is accepted by `launch sweep`'s own parser (the contract)."""
    from launch.cli import build_parser

    sweep_cli = pytest.importorskip("launch.sweep", reason="launch sweep not merged yet")
    args = submit_args("static-grid", "--budget", "small", "--name", "e1", "--resume")
    argv = submit.entrypoint(args, "/shared/results").split()[3:]
    _, subparsers = build_parser("sweep")
    parsed = subparsers["sweep"].parse_args(argv[1:])
    assert parsed._module is sweep_cli
    for name in submit.SWEEPS:
        subparsers["sweep"].parse_args([name, "--address", "auto"])


# ------------------------------------------------------------------------------------------
# Process tracking (what `cluster down` signals), on a dummy process tree


def test_node_processes_and_terminate(tmp_path: Path) -> None:
    # A session like a node's: a leader that exits, leaving a child and a grandchild behind
    # (as `ray start` leaves the GCS, the raylet and their children).
    script = "sleep 300 & (sleep 300 &) ; trap '' TERM; sleep 300 & wait"
    leader = subprocess.Popen(["sh", "-c", script], start_new_session=True)
    outsider = subprocess.Popen(["sleep", "300"])
    try:
        node = NodeRecord(
            name="worker-1", role="worker", sid=leader.pid, started=time.time() - 5, num_cpus=1,
            agent_port=1, log=str(tmp_path / "log"),
        )  # fmt: skip
        deadline = time.monotonic() + 10
        procs = node_processes(node)
        while len(procs) < 4 and time.monotonic() < deadline:
            time.sleep(0.1)
            procs = node_processes(node)
        pids = {p.pid for p in procs}
        assert leader.pid in pids and len(pids) == 4, pids
        assert outsider.pid not in pids and os.getpid() not in pids
        # Members must run Ray's executables when asked (sh and sleep do not).
        assert node_processes(node, ray_executables(sys.executable)) == []
        # The session id belongs to another process than the recorded leader: pid reuse.
        node.sid_created = psutil_module().Process(leader.pid).create_time()
        assert len(node_processes(node)) == 4
        reused = NodeRecord(**{**node.__dict__, "sid_created": node.sid_created - 100})
        assert node_processes(reused) == []
        # The shell ignores SIGTERM: terminate() must escalate to SIGKILL.
        assert terminate(procs, grace=0.5) == []
        leader.wait(timeout=10)
        assert node_processes(node) == []
        assert outsider.poll() is None
        # A record from "the future" (a reused session id would be older than the node): no match.
        late = NodeRecord(**{**node.__dict__, "sid": os.getsid(0), "started": time.time() + 60})
        assert node_processes(late) == []
    finally:
        for p in (leader, outsider):
            if p.poll() is None:
                p.send_signal(signal.SIGKILL)
                p.wait()


def test_status_json_of_a_dead_cluster(tmp_path: Path) -> None:
    """Recorded but not running (e.g. after a reboot): status says so and exits 1."""
    fake_state(tmp_path, dashboard_port=1).save()
    r = launch("cluster", "status", "--json", "--dir", str(tmp_path))
    assert r.returncode == 1, r.stderr
    report = json.loads(r.stdout)
    assert report["healthy"] is False and report["error"]
    assert [n["processes"] for n in report["nodes"]] == [0, 0]
