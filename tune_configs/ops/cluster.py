"""Local multi-node Ray clusters on loopback: state, node commands, start, status, stop.

Library side of ``python -m launch cluster up|status|down`` (which only parses arguments and
prints). Nothing here imports Ray at module import time.

Why every node of a local cluster uses 127.0.0.1 (and not 127.0.0.2, 127.0.0.3, ...):
Ray 2.60 treats only ``127.0.0.1``/``localhost`` as local. For any other node address, loopback or
not, the GCS, the raylets and the dashboard agents listen on *all* interfaces (measured with
``ss -ltnp``: ``*:6390``, ``0.0.0.0:<agent port>``). With node address 127.0.0.1 they listen on
127.0.0.1 only. Several nodes on one address is how Ray's own test clusters run; each node gets
its own ports. ``ray start --address`` refuses to add a node while
``RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0`` (the setting that stops Ray from replacing 127.0.0.1 by the
machine's interface address), so worker nodes start through ``python -m tune_configs.ops.cluster
start-worker``, which lifts that one check (:func:`tune_configs.ops.ray_internals.
allow_loopback_worker`) and pins the node address to 127.0.0.1.

Process tracking: each node is started with ``ray start`` in a new session (``setsid``); its
processes are found by session id (:mod:`tune_configs.ops.processes`) and :func:`stop_nodes` signals
exactly those, never ``ray stop``. The nodes' environment is
:func:`tune_configs.ops.runtime.node_env`
of the starting process's environment (so e.g. ``METALORE_TRIAL_BARRIER`` reaches the trials).
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import secrets
import shlex
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from tune_configs.ops import runtime
from tune_configs.ops.processes import (
    create_time,
    ray_executables,
    session_processes,
    terminate,
)

LOOPBACK = runtime.LOOPBACK
STATE_FILE = "cluster.json"
TOKEN_FILE = "auth_token"
DEFAULT_GCS_PORT = 6390
DEFAULT_DASHBOARD_PORT = 8265
CLUSTER_DIR_ENV = "METALORE_CLUSTER_DIR"
TEMP_PREFIX = "metalore-ray-"
START_TIMEOUT_S = 180.0
REGISTER_TIMEOUT_S = 60.0


class ClusterError(Exception):
    """A cluster operation failed for a reason other than bad arguments (exit status 1)."""


def default_cluster_dir() -> Path:
    """``$METALORE_CLUSTER_DIR`` or ``~/.metalore/cluster``."""
    env = os.environ.get(CLUSTER_DIR_ENV)
    return Path(env).expanduser() if env else Path.home() / ".metalore" / "cluster"


# --------------------------------------------------------------------------------------------
# State file


@dataclasses.dataclass
class NodeRecord:
    """One node of a local cluster as started by ``cluster up``."""

    name: str  # "head", "worker-1", ... (also Ray's node name)
    role: str  # "head" | "worker"
    sid: int  # session id of the node's processes (pid of its `ray start`)
    started: float  # epoch seconds when `ray start` was launched
    num_cpus: int
    agent_port: int  # dashboard agent HTTP port (distinct per node on one address)
    log: str  # output of `ray start`
    stopped: bool = False
    sid_created: float = 0.0  # create time of the session leader (`ray start`), to spot pid reuse


@dataclasses.dataclass
class ClusterState:
    """What ``cluster up`` started; written to ``<dir>/cluster.json``."""

    directory: str
    created: float
    gcs_port: int
    dashboard_port: int
    client_port: int
    auth_mode: str  # "token" | "disabled"
    token_path: str | None
    temp_dir: str  # Ray's --temp-dir (sessions, sockets, logs), removed by `down`
    storage: str  # default result storage shared by the nodes
    python: str
    nodes: list[NodeRecord]
    object_store_mb: int = 500  # per node (a restarted worker gets the same)

    @property
    def gcs_address(self) -> str:
        return f"{LOOPBACK}:{self.gcs_port}"

    @property
    def dashboard_url(self) -> str:
        return f"http://{LOOPBACK}:{self.dashboard_port}"

    def client_env(self) -> dict[str, str]:
        """Environment a client (driver, Jobs SDK, ``ray`` CLI) needs for this cluster."""
        return runtime.client_env(
            self.gcs_address, self.dashboard_url, self.auth_mode, self.token_path
        )

    def node_env(self, base: dict[str, str] | None = None) -> dict[str, str]:
        """Environment of every process of the cluster (see :func:`runtime.node_env`)."""
        return runtime.node_env(self.auth_mode, self.token_path, self.python, base)

    def use_auth(self) -> None:
        """Switch this process's Ray auth variables to the cluster's (before Ray reads them)."""
        runtime.use_auth(self.auth_mode, self.token_path)

    def node(self, name: str) -> NodeRecord:
        for node in self.nodes:
            if node.name == name:
                return node
        names = ", ".join(n.name for n in self.nodes)
        raise KeyError(f"no node {name!r} in this cluster (nodes: {names})")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ClusterState:
        fields = {f.name for f in dataclasses.fields(cls)}
        required = {
            f.name
            for f in dataclasses.fields(cls)
            if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
        }
        missing = required - set(data)
        if missing:
            raise ValueError(f"cluster state lacks {sorted(missing)}")
        values = {k: data[k] for k in fields if k in data}
        values["nodes"] = [NodeRecord(**n) for n in data["nodes"]]
        return cls(**values)

    def save(self) -> Path:
        path = Path(self.directory) / STATE_FILE
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.to_dict(), indent=2) + "\n")
        os.replace(tmp, path)
        return path


def load_state(directory: Path) -> ClusterState | None:
    """The recorded cluster of ``directory``, or None if there is none."""
    path = Path(directory) / STATE_FILE
    if not path.is_file():
        return None
    try:
        return ClusterState.from_dict(json.loads(path.read_text()))
    except (ValueError, TypeError, KeyError) as exc:
        raise ClusterError(f"unreadable cluster state {path}: {exc}") from None


# --------------------------------------------------------------------------------------------
# Token, ports, node commands


def write_token(path: Path) -> None:
    """Write a fresh random token (256 bits, hex) to ``path`` with permissions 0600."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with contextlib.suppress(FileNotFoundError):
        path.unlink()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(secrets.token_hex(32))
    os.chmod(path, 0o600)  # in case a umask or an existing ACL interfered


def port_is_free(port: int, host: str = LOOPBACK) -> bool:
    """Nothing listens on host:port (connections in TIME_WAIT, as after `down`, do not count)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError:
            return False
    return True


def free_port(host: str = LOOPBACK) -> int:
    """A port the OS reports free on ``host`` right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def distinct_free_ports(n: int, exclude: set[int]) -> list[int]:
    ports: list[int] = []
    while len(ports) < n:
        port = free_port()
        if port not in exclude and port not in ports:
            ports.append(port)
    return ports


def head_command(state: ClusterState, node: NodeRecord, object_store_bytes: int) -> list[str]:
    ports = [f"--port={state.gcs_port}", f"--dashboard-host={LOOPBACK}",
             f"--dashboard-port={state.dashboard_port}",
             f"--ray-client-server-port={state.client_port}"]  # fmt: skip
    entry = ["ray.scripts.scripts", "start", "--head"]
    return _node_command(state, node, object_store_bytes, entry, ports)


def worker_command(state: ClusterState, node: NodeRecord, object_store_bytes: int) -> list[str]:
    entry = ["tune_configs.ops.cluster", "start-worker", f"--address={state.gcs_address}"]
    return _node_command(state, node, object_store_bytes, entry)


def _node_command(
    state: ClusterState,
    node: NodeRecord,
    object_store_bytes: int,
    entry: list[str],
    own: Sequence[str] = (),
) -> list[str]:
    """``python -m <entry>`` on loopback, the node's ``own`` arguments, then every node's."""
    return [
        state.python,
        "-m",
        *entry,
        f"--node-ip-address={LOOPBACK}",
        *own,
        f"--num-cpus={node.num_cpus}",
        f"--object-store-memory={object_store_bytes}",
        f"--dashboard-agent-listen-port={node.agent_port}",
        # Workers of all nodes share one address: let the OS pick their ports.
        "--min-worker-port=0",
        "--max-worker-port=0",
        f"--temp-dir={node_temp_dir(state, node)}",
        f"--node-name={node.name}",
        "--disable-usage-stats",
    ]


def node_temp_dir(state: ClusterState, node: NodeRecord) -> str:
    """Ray's ``--temp-dir`` of one node: the cluster's for the head, a sub-directory of it named
    after the node for each worker.

    Nodes must not share a temp dir: each node's runtime-env agent unpacks a job's
    ``working_dir`` into ``<temp dir>/session_*/runtime_resources/`` and, the first time it sees
    the package, removes what is there and unpacks it again (``overwrite=True``). With one shared
    temp dir the worker node's agent did that under the running job driver (whose working
    directory it is) when the driver connected, and the driver died on its next file access
    (``ray job submit --working-dir .`` on a fresh cluster: "Intel oneMKL FATAL ERROR: Cannot
    load .../libtorch_cpu.so"). Ray 2.60 honours ``--temp-dir`` per node.
    """
    if node.role == "head":
        return state.temp_dir
    return str(Path(state.temp_dir) / node.name)


def start_loopback_worker(ray_start_args: list[str]) -> int:
    """``ray start <args>`` for a worker node whose address stays 127.0.0.1.

    Must run with ``RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0`` in the environment (the node's children
    inherit it and keep every address on 127.0.0.1); only this process lifts the "no multi-node
    cluster" check that the setting implies.
    """
    from tune_configs.ops import ray_internals

    if os.environ.get(ray_internals.ENABLE_CLUSTER_ENV) != "0":
        print(f"start-worker needs {ray_internals.ENABLE_CLUSTER_ENV}=0", file=sys.stderr)
        return 2
    try:
        ray_internals.allow_loopback_worker()
    except RuntimeError as exc:
        print(exc, file=sys.stderr)
        return 2
    return ray_internals.run_ray_cli(["start", *ray_start_args])


# --------------------------------------------------------------------------------------------
# Processes of the nodes


def node_processes(node: NodeRecord, executables: tuple[str, ...] | None = None) -> list[Any]:
    """Live processes of ``node`` (see :func:`tune_configs.ops.processes.session_processes`)."""
    return session_processes(node.sid, node.started, node.sid_created, executables)


def cluster_processes(state: ClusterState) -> dict[str, list[Any]]:
    exes = ray_executables(state.python)
    return {node.name: node_processes(node, exes) for node in state.nodes if not node.stopped}


def stop_nodes(state: ClusterState, nodes: list[NodeRecord], grace: float) -> int:
    """Signal the nodes' processes; rescan, since Ray may spawn or re-parent some meanwhile.
    Returns how many processes were signalled."""
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


def cleanup_files(state: ClusterState) -> None:
    """Remove the state file, the token and Ray's temp dir; logs and storage stay."""
    directory = Path(state.directory)
    temp = Path(state.temp_dir)
    if temp.name.startswith(TEMP_PREFIX) and temp.is_dir():
        shutil.rmtree(temp, ignore_errors=True)
    for name in (STATE_FILE, TOKEN_FILE):
        (directory / name).unlink(missing_ok=True)


# --------------------------------------------------------------------------------------------
# up


@dataclasses.dataclass(frozen=True)
class ClusterSpec:
    """What ``cluster up`` should start."""

    directory: Path
    workers: int
    num_cpus: int = 1
    head_cpus: int | None = None  # None: num_cpus
    object_store_mb: int = 500
    gcs_port: int = DEFAULT_GCS_PORT
    dashboard_port: int = DEFAULT_DASHBOARD_PORT
    auth: str = "token"  # "token" | "disabled"
    storage: Path | None = None  # default directory/storage

    def __post_init__(self) -> None:
        if self.workers < 0:
            raise ValueError(f"workers must be >= 0, got {self.workers}")
        if self.auth not in ("token", "disabled"):
            raise ValueError(f"auth must be 'token' or 'disabled', got {self.auth!r}")
        if self.gcs_port == self.dashboard_port:
            raise ValueError("--port and --dashboard-port must differ")


def start_cluster(spec: ClusterSpec, say: Callable[[str], None] = print) -> ClusterState:
    """Start a head and ``spec.workers`` worker nodes on 127.0.0.1; returns the saved state.

    Refuses (ClusterError) when a cluster of the same directory still runs or a port is taken;
    removes the state of a stopped one. Whatever fails after the first node started, every
    process started so far is stopped before the error propagates.
    """
    directory = spec.directory
    storage = spec.storage or directory / "storage"
    old = load_state(directory)
    if old is not None:
        alive = {k: v for k, v in cluster_processes(old).items() if v}
        if alive:
            raise ClusterError(
                f"a cluster from {directory} is running ({', '.join(alive)}): "
                f"`python -m launch cluster down --dir {directory}` first"
            )
        cleanup_files(old)
        say(f"removed the stale state of a stopped cluster in {directory}")
    for port, flag in ((spec.gcs_port, "--port"), (spec.dashboard_port, "--dashboard-port")):
        if not port_is_free(port):
            raise ClusterError(f"port {LOOPBACK}:{port} is in use: choose another {flag}")

    directory.mkdir(parents=True, exist_ok=True)
    os.chmod(directory, 0o700)
    (directory / "logs").mkdir(exist_ok=True)
    storage.mkdir(parents=True, exist_ok=True)
    token_path: Path | None = None
    if spec.auth == "token":
        token_path = directory / TOKEN_FILE
        write_token(token_path)
    head_cpus = spec.num_cpus if spec.head_cpus is None else spec.head_cpus
    ports = distinct_free_ports(spec.workers + 2, exclude={spec.gcs_port, spec.dashboard_port})
    nodes = [_node("head", "head", head_cpus, directory, ports[0])]
    nodes += [
        _node(f"worker-{i}", "worker", spec.num_cpus, directory, ports[i])
        for i in range(1, spec.workers + 1)
    ]
    state = ClusterState(
        directory=str(directory),
        created=time.time(),
        gcs_port=spec.gcs_port,
        dashboard_port=spec.dashboard_port,
        client_port=ports[-1],
        auth_mode=spec.auth,
        token_path=str(token_path) if token_path else None,
        # Short path: Ray's unix sockets live below it (108-byte limit).
        temp_dir=tempfile.mkdtemp(prefix=TEMP_PREFIX),
        storage=str(storage),
        python=sys.executable,
        nodes=[],
        object_store_mb=spec.object_store_mb,
    )
    env = state.node_env()
    state.use_auth()
    store = spec.object_store_mb * 1_000_000
    t0 = time.monotonic()
    try:
        say(f"starting head on {state.gcs_address} ({head_cpus} CPU) ...")
        head = nodes[0]
        proc = _launch(head_command(state, head, store), head, env, directory)
        state.nodes.append(head)
        state.save()
        _wait_started(head, proc)
        say(f"  head up after {time.monotonic() - t0:.0f} s")
        # One at a time, each tried twice: Ray gives a new raylet 30 s to register, which
        # parallel starts on a busy laptop can exceed.
        for node in nodes[1:]:
            say(f"starting {node.name} ...")
            state.nodes.append(node)
            _start_worker(state, node, env, say)
            say(f"  {node.name} up after {time.monotonic() - t0:.0f} s")
        _wait_registered(state, len(nodes), say)
    except BaseException as exc:  # whatever failed, leave no process behind
        reason = str(exc) or type(exc).__name__
        say(f"cluster up failed ({reason}); stopping what was started")
        stop_nodes(state, state.nodes, grace=5.0)
        cleanup_files(state)
        raise
    say(f"cluster up: {len(nodes)} node(s) in {time.monotonic() - t0:.0f} s")
    return state


def _start_worker(
    state: ClusterState, node: NodeRecord, env: dict[str, str], say: Callable[[str], None]
) -> None:
    """``ray start`` of one worker node, tried twice: Ray gives a new raylet 30 s to register,
    which parallel starts on a busy laptop can exceed."""
    store = state.object_store_mb * 1_000_000
    for attempt in (1, 2):
        proc = _launch(worker_command(state, node, store), node, env, Path(state.directory))
        state.save()
        try:
            _wait_started(node, proc)
            return
        except ClusterError as exc:
            if attempt == 2:
                raise
            say(f"  {exc}; retrying")
            stop_nodes(state, [node], grace=2.0)


def _wait_registered(state: ClusterState, expected: int, say: Callable[[str], None]) -> None:
    say(f"waiting for {expected} node(s) to register ...")
    deadline = time.monotonic() + REGISTER_TIMEOUT_S
    while alive_ray_nodes(state) < expected:
        if time.monotonic() > deadline:
            raise ClusterError(f"only {alive_ray_nodes(state)} of {expected} nodes registered")
        time.sleep(1)


def worker_node(state: ClusterState, name: str, if_head: str) -> NodeRecord:
    """The worker node called ``name``; ValueError for an unknown name, ``if_head`` for the head."""
    try:
        node = state.node(name)
    except KeyError as exc:
        raise ValueError(str(exc.args[0])) from None
    if node.role == "head":
        raise ValueError(if_head)
    return node


def restart_worker(state: ClusterState, name: str, say: Callable[[str], None] = print) -> None:
    """Start a stopped worker node again (after ``down --node`` or a crash), with its name, CPUs
    and object store; its processes get this process's environment, as at ``up``. ValueError
    for the head, an unknown name or a node whose processes still run."""
    head = "restart starts a worker node again; the head is started by `up`"
    node = worker_node(state, name, head)
    if node_processes(node):
        raise ValueError(f"{name} is running: stop it first (`down --node {name}`)")
    t0 = time.monotonic()
    say(f"starting {name} again ...")
    state.use_auth()
    node.stopped = False
    _start_worker(state, node, state.node_env(), say)
    _wait_registered(state, sum(not n.stopped for n in state.nodes), say)
    say(f"  {name} up after {time.monotonic() - t0:.0f} s")


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
    node.sid_created = create_time(proc.pid)
    return proc


def _wait_started(node: NodeRecord, proc: Any) -> None:
    try:
        rc = proc.wait(timeout=START_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        proc.kill()
        rc = "timeout"
    if rc != 0:
        raise ClusterError(
            f"could not start {node.name} (`ray start` {rc}; log {node.log}: {_log_tail(node.log)})"
        )


def _log_tail(path: str) -> str:
    try:
        lines = [ln for ln in Path(path).read_text().splitlines() if ln.strip()]
    except OSError:
        return "no log"
    errors = [ln for ln in lines if "error" in ln.lower() or "exception" in ln.lower()]
    return (errors or lines or ["empty log"])[-1].strip()[:300]


# --------------------------------------------------------------------------------------------
# status, down


def ray_nodes(state: ClusterState) -> list[Any]:
    """Ray's view of the nodes (state API over the dashboard; auth set by ``state.use_auth``)."""
    from ray.util.state import list_nodes

    return list(list_nodes(address=state.dashboard_url, detail=True, timeout=10))


def alive_ray_nodes(state: ClusterState) -> int:
    try:
        return sum(1 for n in ray_nodes(state) if n.state == "ALIVE")
    except Exception:  # dashboard still starting: not an error while waiting
        return 0


def status_report(state: ClusterState) -> dict[str, Any]:
    """Nodes (processes, Ray's view), addresses, auth, storage, health, client environment."""
    procs = cluster_processes(state)
    ray_error = None
    by_name: dict[str, Any] = {}
    try:
        for n in ray_nodes(state):
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


def stop_worker(state: ClusterState, name: str, grace: float) -> int | None:
    """Stop one worker node and record it as stopped; None if it was stopped already.
    ValueError for the head or an unknown name."""
    node = worker_node(state, name, "--node stops a worker node; stop the head with plain `down`")
    if node.stopped:
        return None
    count = stop_nodes(state, [node], grace)
    node.stopped = True
    state.save()
    return count


def stop_cluster(state: ClusterState, grace: float) -> int:
    """Stop every node (workers first) and remove the state, token and Ray temp dir."""
    count = stop_nodes(state, list(reversed(state.nodes)), grace)
    cleanup_files(state)
    return count


def first_line(text: str) -> str:
    lines = [ln.strip() for ln in text.strip().splitlines() if ln.strip()]
    return lines[0] if lines else text


if __name__ == "__main__":
    if len(sys.argv) >= 2 and sys.argv[1] == "start-worker":
        sys.exit(start_loopback_worker(sys.argv[2:]))
    print(__doc__)
    sys.exit(2)
