"""``python -m launch cluster up|status|down``: a local multi-node Ray cluster on loopback.

For laptops and tests: a head node and N worker nodes on this machine, every one on 127.0.0.1
(see :mod:`launch.raycluster` for why not 127.0.0.2, 127.0.0.3, ...), one CPU each by default, token
authentication on, dashboard on http://127.0.0.1:8265. Examples::

    python -m launch cluster up --workers 1            # head + 1 worker, ~15-30 s
    python -m launch cluster status                    # address, dashboard, nodes, client env
    eval "$(python -m launch cluster status --env)"    # export the client settings
    python -m launch submit static-grid --budget small # run a sweep on it as a Ray job
    python -m launch cluster down --node worker-1 --force   # crash one worker (fault drills)
    python -m launch cluster down                      # stop every process of this cluster

State lives in ``--dir`` (default ``$METALORE_CLUSTER_DIR`` or ``~/.metalore/cluster``):
``cluster.json`` (ports, session ids of the nodes' processes), ``auth_token`` (0600),
``logs/`` (``ray start`` output) and ``storage/`` (default result storage of submitted sweeps).
``down`` signals only the processes of that cluster (found by session id), never ``ray stop``.
Expect ``up`` to print one line per node, then the status; ``down`` prints how many processes it
stopped. Exit status 1 when the cluster cannot start, 2 on bad arguments.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from launch.cli import UsageError
from launch.raycluster import (
    AUTH_ENV_KEYS,
    DEFAULT_DASHBOARD_PORT,
    DEFAULT_GCS_PORT,
    LOOPBACK,
    TOKEN_FILE,
    ClusterError,
    ClusterState,
    NodeRecord,
    cluster_processes,
    default_cluster_dir,
    first_line,
    free_port,
    head_command,
    load_state,
    node_env,
    node_processes,
    port_is_free,
    psutil_module,
    ray_executables,
    terminate,
    wait_for,
    worker_command,
    write_token,
)

HELP = "local multi-node Ray cluster on 127.0.0.1: up, status, down (token auth on)"

MAX_WORKERS = 16
START_TIMEOUT_S = 180.0


def _int_in(lo: int, hi: int, what: str) -> Any:
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"{what}: expected a whole number, got {text!r}"
            ) from None
        if not lo <= value <= hi:
            raise argparse.ArgumentTypeError(f"{what}: must be in [{lo}, {hi}], got {value}")
        return value

    return parse


def _grace(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected seconds, got {text!r}") from None
    if not 0 <= value <= 600:
        raise argparse.ArgumentTypeError(f"must be in [0, 600] s, got {value}")
    return value


def add_arguments(p: argparse.ArgumentParser) -> None:
    sub = p.add_subparsers(dest="action", metavar="{up,status,down}")
    sub.required = True

    def with_dir(q: argparse.ArgumentParser) -> None:
        q.add_argument(
            "--dir",
            metavar="DIR",
            default=None,
            help="cluster directory (state, token, logs); default $METALORE_CLUSTER_DIR or "
            "~/.metalore/cluster",
        )

    up = sub.add_parser("up", help="start a head and N worker nodes on 127.0.0.1")
    up.add_argument(
        "--workers",
        type=_int_in(0, MAX_WORKERS, "--workers"),
        required=True,
        help=f"worker nodes besides the head (0..{MAX_WORKERS})",
    )
    up.add_argument(
        "--num-cpus",
        type=_int_in(1, 64, "--num-cpus"),
        default=1,
        help="CPUs each node advertises (default 1)",
    )
    up.add_argument(
        "--head-cpus",
        type=_int_in(0, 64, "--head-cpus"),
        default=None,
        help="CPUs of the head if different (0: head only runs drivers)",
    )
    up.add_argument(
        "--object-store-mb",
        type=_int_in(80, 65536, "--object-store-mb"),
        default=500,
        help="object store per node in MB (default 500)",
    )
    up.add_argument(
        "--port",
        type=_int_in(1024, 65535, "--port"),
        default=DEFAULT_GCS_PORT,
        help=f"GCS port (default {DEFAULT_GCS_PORT})",
    )
    up.add_argument(
        "--dashboard-port",
        type=_int_in(1024, 65535, "--dashboard-port"),
        default=DEFAULT_DASHBOARD_PORT,
        help=f"dashboard / Jobs API port (default {DEFAULT_DASHBOARD_PORT})",
    )
    up.add_argument(
        "--auth",
        choices=("token", "disabled"),
        default="token",
        help="token authentication (default) or none (not recommended)",
    )
    up.add_argument(
        "--storage",
        metavar="PATH",
        default=None,
        help="result storage shared by the nodes (default DIR/storage)",
    )
    with_dir(up)

    st = sub.add_parser("status", help="address, dashboard URL, nodes and client env vars")
    fmt = st.add_mutually_exclusive_group()
    fmt.add_argument(
        "--env",
        action="store_true",
        help='print only `export` lines, for eval "$(... status --env)"',
    )
    fmt.add_argument("--json", action="store_true", help="print JSON")
    with_dir(st)

    down = sub.add_parser("down", help="stop the processes of this cluster (never `ray stop`)")
    down.add_argument(
        "--node", metavar="NAME", default=None, help="stop only this worker node (e.g. worker-1)"
    )
    down.add_argument(
        "--force",
        action="store_true",
        help="SIGKILL at once (simulates a crash) instead of SIGTERM first",
    )
    down.add_argument(
        "--grace",
        type=_grace,
        default=10.0,
        help="seconds between SIGTERM and SIGKILL (default 10)",
    )
    with_dir(down)


def run(args: argparse.Namespace) -> int:
    directory = Path(args.dir).expanduser().resolve() if args.dir else default_cluster_dir()
    try:
        if args.action == "up":
            return _up(args, directory)
        if args.action == "status":
            return _status(args, directory)
        return _down(args, directory)
    except ClusterError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1


# --------------------------------------------------------------------------------------------
# up


def _check_storage(text: str | None, directory: Path) -> Path:
    if text is None:
        return directory / "storage"
    if "://" in text:
        raise UsageError("--storage of a local cluster must be a local directory")
    return Path(text).expanduser().resolve()


def _up(args: argparse.Namespace, directory: Path) -> int:
    storage = _check_storage(args.storage, directory)
    if args.port == args.dashboard_port:
        raise UsageError("--port and --dashboard-port must differ")
    old = load_state(directory)
    if old is not None:
        alive = {k: v for k, v in cluster_processes(old).items() if v}
        if alive:
            raise ClusterError(
                f"a cluster from {directory} is running ({', '.join(alive)}): "
                f"`python -m launch cluster down --dir {directory}` first"
            )
        _cleanup_files(old)
        print(f"removed the stale state of a stopped cluster in {directory}")
    for port, flag in ((args.port, "--port"), (args.dashboard_port, "--dashboard-port")):
        if not port_is_free(port):
            raise ClusterError(f"port {LOOPBACK}:{port} is in use: choose another {flag}")

    directory.mkdir(parents=True, exist_ok=True)
    os.chmod(directory, 0o700)
    (directory / "logs").mkdir(exist_ok=True)
    storage.mkdir(parents=True, exist_ok=True)
    token_path: Path | None = None
    if args.auth == "token":
        token_path = directory / TOKEN_FILE
        write_token(token_path)
    else:
        print(
            "warning: token authentication disabled: any local user can run code on this cluster",
            file=sys.stderr,
        )
    head_cpus = args.num_cpus if args.head_cpus is None else args.head_cpus
    ports = _distinct_free_ports(args.workers + 2, exclude={args.port, args.dashboard_port})
    nodes = [_node("head", "head", head_cpus, directory, ports[0])]
    nodes += [
        _node(f"worker-{i}", "worker", args.num_cpus, directory, ports[i])
        for i in range(1, args.workers + 1)
    ]
    state = ClusterState(
        directory=str(directory),
        created=time.time(),
        gcs_port=args.port,
        dashboard_port=args.dashboard_port,
        client_port=ports[-1],
        auth_mode=args.auth,
        token_path=str(token_path) if token_path else None,
        # Short path: Ray's unix sockets live below it (108-byte limit).
        temp_dir=tempfile.mkdtemp(prefix="metalore-ray-"),
        storage=str(storage),
        python=sys.executable,
        nodes=[],
    )
    env = node_env(state)
    _use_auth_of(state)
    store = args.object_store_mb * 1_000_000
    t0 = time.monotonic()
    try:
        print(f"starting head on {state.gcs_address} ({head_cpus} CPU) ...", flush=True)
        head = nodes[0]
        proc = _launch(head_command(state, head, store), head, env, directory)
        state.nodes.append(head)
        state.save()
        _wait_started([(head, proc)])
        print(f"  head up after {time.monotonic() - t0:.0f} s", flush=True)
        # One at a time, each tried twice: Ray gives a new raylet 30 s to register, which
        # parallel starts on a busy laptop can exceed.
        for node in nodes[1:]:
            print(f"starting {node.name} ...", flush=True)
            state.nodes.append(node)
            for attempt in (1, 2):
                proc = _launch(worker_command(state, node, store), node, env, directory)
                state.save()
                try:
                    _wait_started([(node, proc)])
                    break
                except ClusterError as exc:
                    if attempt == 2:
                        raise
                    print(f"  {exc}; retrying", file=sys.stderr, flush=True)
                    _stop_nodes(state, [node], grace=2.0)
            print(f"  {node.name} up after {time.monotonic() - t0:.0f} s", flush=True)
        expected = len(nodes)
        print(f"waiting for {expected} node(s) to register ...", flush=True)
        if not wait_for(lambda: _alive_ray_nodes(state) >= expected, timeout=60, interval=1):
            raise ClusterError(f"only {_alive_ray_nodes(state)} of {expected} nodes registered")
    except BaseException as exc:  # whatever failed, leave no process behind
        reason = str(exc) or type(exc).__name__
        print(f"cluster up failed ({reason}); stopping what was started", file=sys.stderr)
        _stop_nodes(state, state.nodes, grace=5.0)
        _cleanup_files(state)
        raise
    print(f"cluster up: {len(nodes)} node(s) in {time.monotonic() - t0:.0f} s\n")
    _print_status(state)
    return 0


def _distinct_free_ports(n: int, exclude: set[int]) -> list[int]:
    ports: list[int] = []
    while len(ports) < n:
        port = free_port()
        if port not in exclude and port not in ports:
            ports.append(port)
    return ports


def _node(name: str, role: str, cpus: int, directory: Path, agent_port: int) -> NodeRecord:
    return NodeRecord(
        name=name,
        role=role,
        sid=0,
        started=0.0,
        num_cpus=cpus,
        agent_port=agent_port,
        log=str(directory / "logs" / f"{name}.log"),
    )


def _launch(cmd: list[str], node: NodeRecord, env: dict[str, str], cwd: Path) -> Any:
    node.started = time.time()
    with open(node.log, "w") as log:
        log.write("$ " + shlex.join(cmd) + "\n")
        log.flush()
        proc = subprocess.Popen(
            cmd,
            env=env,
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    node.sid = proc.pid
    psutil = psutil_module()
    with contextlib.suppress(psutil.Error):
        node.sid_created = psutil.Process(proc.pid).create_time()
    return proc


def _wait_started(started: list[tuple[NodeRecord, Any]]) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    failed = []
    for node, proc in started:
        try:
            rc = proc.wait(timeout=max(1.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            proc.kill()
            rc = "timeout"
        if rc != 0:
            failed.append(f"{node.name} (`ray start` {rc}; log {node.log}: {_log_tail(node.log)})")
    if failed:
        raise ClusterError("could not start " + "; ".join(failed))


def _log_tail(path: str) -> str:
    try:
        lines = [ln for ln in Path(path).read_text().splitlines() if ln.strip()]
    except OSError:
        return "no log"
    errors = [ln for ln in lines if "error" in ln.lower() or "exception" in ln.lower()]
    return (errors or lines or ["empty log"])[-1].strip()[:300]


def _use_auth_of(state: ClusterState) -> None:
    """Set this process's Ray auth variables to the cluster's (before Ray reads them)."""
    for key in AUTH_ENV_KEYS:
        os.environ.pop(key, None)
    os.environ.update({k: v for k, v in state.client_env().items() if k.startswith("RAY_AUTH")})


def _ray_nodes(state: ClusterState) -> list[Any]:
    """Ray's view of the nodes (state API over the dashboard; auth set by _use_auth_of)."""
    from ray.util.state import list_nodes

    return list(list_nodes(address=state.dashboard_url, detail=True, timeout=10))


def _alive_ray_nodes(state: ClusterState) -> int:
    try:
        return sum(1 for n in _ray_nodes(state) if n.state == "ALIVE")
    except Exception:  # dashboard still starting: not an error while waiting
        return 0


# --------------------------------------------------------------------------------------------
# status


def _status(args: argparse.Namespace, directory: Path) -> int:
    state = load_state(directory)
    if state is None:
        print(
            f"no cluster recorded in {directory} (start one with `python -m launch cluster up`)",
            file=sys.stderr,
        )
        return 1
    if args.env:
        for key, value in state.client_env().items():
            print(f"export {key}={shlex.quote(value)}")
        return 0
    _use_auth_of(state)
    report = _status_report(state)
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        _print_status(state, report)
    return 0 if report["healthy"] else 1


def _status_report(state: ClusterState) -> dict[str, Any]:
    procs = cluster_processes(state)
    ray_error = None
    by_name: dict[str, Any] = {}
    try:
        for n in _ray_nodes(state):
            if n.state == "ALIVE" or n.node_name not in by_name:
                by_name[n.node_name] = n
    except Exception as exc:
        ray_error = f"{type(exc).__name__}: {first_line(str(exc))}"
    nodes = []
    for node in state.nodes:
        rn = by_name.get(node.name)
        nodes.append(
            {
                "name": node.name,
                "role": node.role,
                "ip": LOOPBACK,
                "num_cpus": node.num_cpus,
                "processes": len(procs.get(node.name, [])),
                "stopped": node.stopped,
                "ray_state": rn.state if rn else None,
                "node_id": rn.node_id if rn else None,
            }
        )
    running = [n for n in nodes if not n["stopped"]]
    healthy = (
        ray_error is None
        and bool(running)
        and all(n["ray_state"] == "ALIVE" and n["processes"] for n in running)
    )
    return {
        "directory": state.directory,
        "gcs_address": state.gcs_address,
        "dashboard_url": state.dashboard_url,
        "auth_mode": state.auth_mode,
        "token_path": state.token_path,
        "storage": state.storage,
        "nodes": nodes,
        "healthy": healthy,
        "error": ray_error,
        "env": state.client_env(),
    }


def _print_status(state: ClusterState, report: dict[str, Any] | None = None) -> None:
    report = report or _status_report(state)
    print(f"cluster dir:  {state.directory}")
    print(f"address:      {state.gcs_address}   (drivers: --address {state.gcs_address})")
    print(f"dashboard:    {state.dashboard_url}   (Jobs API: --address {state.dashboard_url})")
    auth = f"token, {state.token_path} (0600)" if state.auth_mode == "token" else "DISABLED"
    print(f"auth:         {auth}")
    print(f"storage:      {state.storage}")
    if report["error"]:
        print(f"ray:          unreachable ({report['error']})")
    print("nodes:")
    for n in report["nodes"]:
        where = "stopped" if n["stopped"] else (n["ray_state"] or "not registered")
        node_id = (n["node_id"] or "-")[:12]
        print(
            f"  {n['name']:<10} {n['ip']}  CPU {n['num_cpus']}  {where:<14} "
            f"node {node_id}  {n['processes']} process(es)"
        )
    print('client environment (eval "$(python -m launch cluster status --env)"):')
    for key, value in state.client_env().items():
        print(f"  export {key}={shlex.quote(value)}")


# --------------------------------------------------------------------------------------------
# down


def _down(args: argparse.Namespace, directory: Path) -> int:
    state = load_state(directory)
    if state is None:
        print(f"no cluster recorded in {directory}: nothing to stop")
        return 0
    grace = 0.0 if args.force else args.grace
    if args.node is not None:
        try:
            node = state.node(args.node)
        except KeyError as exc:
            raise UsageError(str(exc.args[0])) from None
        if node.role == "head":
            raise UsageError("--node stops a worker node; stop the head with plain `down`")
        if node.stopped:
            print(f"{node.name} is already stopped")
            return 0
        count = _stop_nodes(state, [node], grace)
        node.stopped = True
        state.save()
        print(f"stopped {node.name}: {count} process(es) {'killed' if args.force else 'ended'}")
        return 0
    count = _stop_nodes(state, list(reversed(state.nodes)), grace)
    _cleanup_files(state)
    print(f"cluster in {directory} stopped: {count} process(es)")
    return 0


def _stop_nodes(state: ClusterState, nodes: list[NodeRecord], grace: float) -> int:
    """Signal the nodes' processes; rescan, since Ray may spawn or re-parent some meanwhile."""
    exes = ray_executables(state.python)
    stopped: set[int] = set()
    for attempt in range(3):
        procs = [p for node in nodes for p in node_processes(node, exes)]
        if not procs:
            break
        stopped |= {p.pid for p in procs}
        survivors = terminate(procs, grace if attempt == 0 else 0.0)
        if survivors:
            pids = ", ".join(str(p.pid) for p in survivors)
            raise ClusterError(f"processes {pids} survived SIGKILL; check them with ps")
    else:
        left = [p.pid for node in nodes for p in node_processes(node, exes)]
        if left:
            raise ClusterError(f"processes {left} keep appearing; stop them by pid")
    return len(stopped)


def _cleanup_files(state: ClusterState) -> None:
    """Remove the state file, the token and Ray's temp dir; logs and storage stay."""
    directory = Path(state.directory)
    temp = Path(state.temp_dir)
    if temp.name.startswith("metalore-ray-") and temp.is_dir():
        shutil.rmtree(temp, ignore_errors=True)
    for name in ("cluster.json", TOKEN_FILE):
        (directory / name).unlink(missing_ok=True)
