"""Local multi-node Ray clusters on loopback, and client settings for any Ray cluster.

Used by ``python -m launch cluster`` (start/inspect/stop a local cluster), ``python -m launch
submit`` and ``python -m launch jobs`` (talk to a cluster's Jobs API). Nothing here imports Ray at
module import time.

Why every node of a local cluster uses 127.0.0.1 (and not 127.0.0.2, 127.0.0.3, ...):
Ray 2.60 treats only ``127.0.0.1``/``localhost`` as local. For any other node address, loopback or
not, the GCS, the raylets and the dashboard agents listen on *all* interfaces (measured with
``ss -ltnp``: ``*:6390``, ``0.0.0.0:<agent port>``). With node address 127.0.0.1 they listen on
127.0.0.1 only. Several nodes on one address is how Ray's own test clusters run; each node gets
its own ports. ``ray start --address`` refuses to add a node while
``RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0`` (the setting that stops Ray from replacing 127.0.0.1 by the
machine's interface address), so worker nodes are started through :func:`start_loopback_worker`,
which lifts that one check and pins the node address to 127.0.0.1.

Process tracking: each node is started with ``ray start`` in a new session (``setsid``). Every
daemon of the node (GCS, raylet, dashboard, agents, Ray workers, job drivers) stays in that session
or is a descendant of one of its processes, so a node's processes are found by session id, and
``cluster down`` signals exactly those, never ``ray stop``.

Run ``python -m launch.raycluster start-worker <ray start arguments>`` only through
``python -m launch cluster up``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import secrets
import signal
import socket
import sys
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

PROJECT_ROOT = Path(__file__).resolve().parents[1]
LOOPBACK = "127.0.0.1"
STATE_FILE = "cluster.json"
TOKEN_FILE = "auth_token"
DEFAULT_GCS_PORT = 6390
DEFAULT_DASHBOARD_PORT = 8265
CLUSTER_DIR_ENV = "METALORE_CLUSTER_DIR"
AUTH_ENV_KEYS = ("RAY_AUTH_MODE", "RAY_AUTH_TOKEN", "RAY_AUTH_TOKEN_PATH")


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

    @property
    def gcs_address(self) -> str:
        return f"{LOOPBACK}:{self.gcs_port}"

    @property
    def dashboard_url(self) -> str:
        return f"http://{LOOPBACK}:{self.dashboard_port}"

    def client_env(self) -> dict[str, str]:
        """Environment a client (driver, Jobs SDK, ``ray`` CLI) needs for this cluster."""
        env = {
            "RAY_ADDRESS": self.gcs_address,
            "RAY_API_SERVER_ADDRESS": self.dashboard_url,
            "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0",
            "RAY_AUTH_MODE": self.auth_mode,
        }
        if self.auth_mode == "token" and self.token_path:
            env["RAY_AUTH_TOKEN_PATH"] = self.token_path
        return env

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
        missing = fields - set(data)
        if missing:
            raise ValueError(f"cluster state lacks {sorted(missing)}")
        values = {k: data[k] for k in fields}
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
# Token, ports, environment


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


def _prepend_path(value: str | None, first: str) -> str:
    parts = [p for p in (value or "").split(os.pathsep) if p and p != first]
    return os.pathsep.join([first, *parts])


def node_env(state: ClusterState, base: dict[str, str] | None = None) -> dict[str, str]:
    """Environment of every process of the cluster (all nodes must agree on the auth settings).

    The project root goes on ``PYTHONPATH`` and the running interpreter's directory on ``PATH``,
    so job entry points (``python -m launch sweep ...``) and Ray workers import this checkout
    without ``--working-dir`` (which breaks on a one-machine cluster, see the Ray notes).
    """
    env = dict(os.environ if base is None else base)
    for key in (*AUTH_ENV_KEYS, "RAY_ADDRESS", "RAY_API_SERVER_ADDRESS"):
        env.pop(key, None)
    env.update(
        RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER="0",
        RAY_USAGE_STATS_ENABLED="0",
        RAY_AUTH_MODE=state.auth_mode,
        PYTHONPATH=_prepend_path(env.get("PYTHONPATH"), str(PROJECT_ROOT)),
        PATH=_prepend_path(env.get("PATH"), str(Path(state.python).parent)),
    )
    if state.auth_mode == "token" and state.token_path:
        env["RAY_AUTH_TOKEN_PATH"] = state.token_path
    return env


def head_command(state: ClusterState, node: NodeRecord, object_store_bytes: int) -> list[str]:
    return [
        state.python,
        "-m",
        "ray.scripts.scripts",
        "start",
        "--head",
        f"--node-ip-address={LOOPBACK}",
        f"--port={state.gcs_port}",
        f"--dashboard-host={LOOPBACK}",
        f"--dashboard-port={state.dashboard_port}",
        f"--ray-client-server-port={state.client_port}",
        *_common_node_args(state, node, object_store_bytes),
    ]


def worker_command(state: ClusterState, node: NodeRecord, object_store_bytes: int) -> list[str]:
    return [
        state.python,
        "-m",
        "launch.raycluster",
        "start-worker",
        f"--address={state.gcs_address}",
        f"--node-ip-address={LOOPBACK}",
        *_common_node_args(state, node, object_store_bytes),
    ]


def _common_node_args(state: ClusterState, node: NodeRecord, object_store_bytes: int) -> list[str]:
    return [
        f"--num-cpus={node.num_cpus}",
        f"--object-store-memory={object_store_bytes}",
        f"--dashboard-agent-listen-port={node.agent_port}",
        # Workers of all nodes share one address: let the OS pick their ports.
        "--min-worker-port=0",
        "--max-worker-port=0",
        f"--temp-dir={state.temp_dir}",
        f"--node-name={node.name}",
        "--disable-usage-stats",
    ]


def start_loopback_worker(ray_start_args: list[str]) -> int:
    """``ray start <args>`` for a worker node whose address stays 127.0.0.1.

    Must run with ``RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0`` in the environment (the node's children
    inherit it and keep every address on 127.0.0.1). Only this process lifts the "no multi-node
    cluster" check that the setting implies, and answers 127.0.0.1 for the node address.
    """
    if os.environ.get("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER") != "0":
        print("start-worker needs RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0", file=sys.stderr)
        return 2
    from ray._private import ray_constants, services

    if not hasattr(ray_constants, "ENABLE_RAY_CLUSTER") or not hasattr(
        services, "get_node_ip_address"
    ):
        print("this Ray version is not supported by launch.raycluster", file=sys.stderr)
        return 2
    ray_constants.ENABLE_RAY_CLUSTER = True

    def loopback_node_ip(address: str | None = None) -> str:
        return LOOPBACK

    services.get_node_ip_address = loopback_node_ip
    from ray.scripts import scripts

    ray_main: Any = scripts.main  # click entry point, untyped
    sys.argv = ["ray", "start", *ray_start_args]
    return int(ray_main() or 0)


# --------------------------------------------------------------------------------------------
# Processes


def psutil_module() -> Any:
    """psutil: installed, or the copy Ray vendors in ``ray/thirdparty_files`` (no ``import ray``).

    Ray must not be imported before the auth variables are set, so this only extends sys.path.
    """
    try:
        import psutil
    except ImportError:
        import importlib.util

        spec = importlib.util.find_spec("ray")
        if spec is None or not spec.submodule_search_locations:
            raise ClusterError("psutil is missing (pip install psutil)") from None
        vendored = Path(next(iter(spec.submodule_search_locations))) / "thirdparty_files"
        sys.path.append(str(vendored))
        import psutil
    return psutil


def ray_executables(python: str) -> tuple[str, ...]:
    """Real paths of what a Ray node runs: the interpreter and the binaries in the ray package."""
    import importlib.util

    spec = importlib.util.find_spec("ray")
    roots = [os.path.realpath(python)]
    if spec is not None and spec.submodule_search_locations:
        roots.append(os.path.realpath(next(iter(spec.submodule_search_locations))) + os.sep)
    return tuple(roots)


def node_processes(node: NodeRecord, executables: tuple[str, ...] | None = None) -> list[Any]:
    """Live processes of ``node``: its session plus their descendants (e.g. job drivers).

    Pids wrap quickly on a busy machine, so a session id is trusted only while it is not the pid
    of some other live process (our session leader, `ray start`, exits after starting the node);
    members of the session must have started after the node and, if ``executables`` is given,
    run one of them (see :func:`ray_executables`). Descendants of members are always included.
    """
    psutil = psutil_module()
    if node.sid <= 0:
        return []
    try:
        leader = psutil.Process(node.sid)
        if node.sid_created and abs(leader.create_time() - node.sid_created) > 0.5:
            return []  # the session id now belongs to an unrelated process
    except psutil.Error:
        pass  # leader gone: normal once `ray start` has returned
    found: dict[int, Any] = {}
    for proc in psutil.process_iter(["create_time"]):
        try:
            if os.getsid(proc.pid) != node.sid:
                continue
            if proc.info["create_time"] + 1.0 < node.started:
                continue  # older than the node: not ours
            if executables is not None:
                exe = os.path.realpath(proc.exe())
                if not any(exe == e or exe.startswith(e) for e in executables):
                    continue
        except (ProcessLookupError, PermissionError, OSError, psutil.Error):
            continue
        found[proc.pid] = proc
    for proc in list(found.values()):
        with contextlib.suppress(psutil.Error):
            for child in proc.children(recursive=True):
                found.setdefault(child.pid, child)
    found.pop(os.getpid(), None)
    return [p for p in found.values() if _alive(p)]


def _alive(proc: Any) -> bool:
    psutil = psutil_module()
    try:
        return bool(proc.is_running()) and proc.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def cluster_processes(state: ClusterState) -> dict[str, list[Any]]:
    exes = ray_executables(state.python)
    return {node.name: node_processes(node, exes) for node in state.nodes if not node.stopped}


def terminate(procs: Iterable[Any], grace: float) -> list[Any]:
    """SIGTERM, wait up to ``grace`` s, then SIGKILL what is left; returns what survived."""
    psutil = psutil_module()
    procs = [p for p in procs if _alive(p)]
    if grace > 0:
        for proc in procs:
            with contextlib.suppress(psutil.Error):
                proc.send_signal(signal.SIGTERM)
        _, procs = psutil.wait_procs(procs, timeout=grace)
    for proc in procs:
        with contextlib.suppress(psutil.Error):
            proc.send_signal(signal.SIGKILL)
    _, alive = psutil.wait_procs(procs, timeout=10)
    return [p for p in alive if _alive(p)]


def listening_sockets(procs: Iterable[Any]) -> list[tuple[int, str, str, int]]:
    """(pid, name, ip, port) of every TCP/UDP socket the processes listen on (or bound, UDP)."""
    psutil = psutil_module()
    out = []
    for proc in procs:
        try:
            conns = proc.net_connections(kind="inet")
            name = proc.name()
        except psutil.Error:
            continue
        for c in conns:
            if c.status == psutil.CONN_LISTEN or (c.status == psutil.CONN_NONE and c.laddr):
                out.append((proc.pid, name, c.laddr.ip, c.laddr.port))
    return out


def is_loopback(ip: str) -> bool:
    """True for 127.0.0.0/8, ::1 and IPv4-mapped loopback (::ffff:127.x.y.z)."""
    import ipaddress

    addr = ipaddress.ip_address(ip.split("%")[0])
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        addr = addr.ipv4_mapped
    return addr.is_loopback


# --------------------------------------------------------------------------------------------
# Clients (submit, jobs, status)


def check_dashboard_address(address: str) -> str:
    """``http(s)://HOST:PORT`` (no path); raises ValueError otherwise."""
    from urllib.parse import urlparse

    parsed = urlparse(address)
    if parsed.scheme not in ("http", "https") or not parsed.hostname:
        hint = f"; did you mean http://{address}?" if "://" not in address else ""
        raise ValueError(
            f"--address must be the dashboard URL http://HOST:PORT, got {address!r}{hint}"
        )
    try:
        parsed.port  # noqa: B018  (raises on a bad port)
    except ValueError:
        raise ValueError(f"bad port in --address {address!r}") from None
    if parsed.path not in ("", "/") or parsed.query:
        raise ValueError(f"--address takes no path or query, got {address!r}")
    return address.rstrip("/")


def resolve_client(
    address: str | None, token_file: str | None, cluster_dir: str | None
) -> tuple[str, str]:
    """Pick the dashboard address and set the auth variables for a Jobs-API client.

    Order: ``--address``, ``$RAY_API_SERVER_ADDRESS``, the local cluster of ``cluster_dir``
    (default :func:`default_cluster_dir`). Auth: ``--token-file`` sets ``RAY_AUTH_MODE=token`` and
    ``RAY_AUTH_TOKEN_PATH``; else, when the address is the local cluster's dashboard, that
    cluster's settings are used (they are known to be right); else variables already set are
    kept. Must run before ``import ray`` (Ray caches the token). Returns (address, a one-line
    description of the auth source).
    """
    state = None
    with contextlib.suppress(ClusterError):
        state = load_state(Path(cluster_dir) if cluster_dir else default_cluster_dir())
    if address is None:
        address = os.environ.get("RAY_API_SERVER_ADDRESS")
    if address is None and state is not None:
        address = state.dashboard_url
    if address is None:
        raise ValueError(
            "no cluster address: give --address http://HOST:8265, set RAY_API_SERVER_ADDRESS, "
            "or start a local cluster with `python -m launch cluster up`"
        )
    address = check_dashboard_address(address)
    if token_file is not None:
        path = Path(token_file).expanduser().resolve()
        if not path.is_file():
            raise ValueError(f"--token-file {token_file}: no such file")
        os.environ.pop("RAY_AUTH_TOKEN", None)
        os.environ["RAY_AUTH_MODE"] = "token"
        os.environ["RAY_AUTH_TOKEN_PATH"] = str(path)
        return address, f"token from {path}"
    if state is not None and state.dashboard_url == address:
        for key in AUTH_ENV_KEYS:
            os.environ.pop(key, None)
        for key, value in state.client_env().items():
            if key.startswith("RAY_AUTH"):
                os.environ[key] = value
        return address, f"auth settings of the local cluster in {state.directory}"
    if any(k in os.environ for k in AUTH_ENV_KEYS):
        return address, "auth settings from the environment (RAY_AUTH_*)"
    return address, "Ray's default auth settings (~/.ray/auth_token if present)"


def job_client(address: str) -> Any:
    """A ``JobSubmissionClient``; connection and auth failures become :class:`ClusterError`."""
    from ray.exceptions import AuthenticationError
    from ray.job_submission import JobSubmissionClient

    try:
        return JobSubmissionClient(address)
    except AuthenticationError as exc:
        raise ClusterError(f"refused by {address}: {first_line(str(exc))}") from None
    except (OSError, RuntimeError) as exc:  # requests' errors are OSErrors
        reason = first_line(str(exc))
        raise ClusterError(f"cannot reach the Jobs API at {address}: {reason}") from None


def first_line(text: str) -> str:
    lines = [ln.strip() for ln in text.strip().splitlines() if ln.strip()]
    return lines[0] if lines else text


@contextlib.contextmanager
def env_vars(values: dict[str, str]) -> Iterator[None]:
    """Temporarily set environment variables (restored afterwards)."""
    old = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, value in old.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def wait_for(predicate: Any, timeout: float, interval: float = 0.5) -> bool:
    deadline = time.monotonic() + timeout
    while True:
        if predicate():
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(interval)


if __name__ == "__main__":
    if len(sys.argv) >= 2 and sys.argv[1] == "start-worker":
        sys.exit(start_loopback_worker(sys.argv[2:]))
    print(__doc__)
    sys.exit(2)
