"""Finding and stopping the processes of one Ray node by its session, never by name.

A node of a local cluster (:mod:`tune_configs.ops.cluster`), or any Ray started with ``ray start``
in a new session (``setsid``, as the fault drills do), keeps every daemon (GCS, raylet, dashboard,
agents, Ray workers, job drivers) in that session or below one of its processes. So a node's
processes are found by session id (:func:`session_processes`) and stopped by pid
(:func:`terminate`), which never touches another Ray on the same machine (``ray stop`` would).
Nothing here imports Ray; psutil is the installed one or the copy Ray vendors.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any


class ProcessError(Exception):
    """Processes could not be found or stopped (exit status 1 in the CLI)."""


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
            raise ProcessError("psutil is missing (pip install psutil)") from None
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


def create_time(pid: int) -> float:
    """Start time of process ``pid`` (epoch seconds), 0.0 if it is gone."""
    psutil = psutil_module()
    try:
        return float(psutil.Process(pid).create_time())
    except psutil.Error:
        return 0.0


def session_processes(
    sid: int,
    started: float,
    sid_created: float = 0.0,
    executables: tuple[str, ...] | None = None,
) -> list[Any]:
    """Live processes of the session ``sid`` started at ``started``, plus their descendants.

    Pids wrap quickly on a busy machine, so a session id is trusted only while it is not the pid
    of some other live process (the session leader, e.g. ``ray start``, exits after starting the
    node; ``sid_created`` is its create time); members of the session must have started after
    ``started`` and, if ``executables`` is given, run one of them (see
    :func:`ray_executables`). Descendants of members are always included; this process never.
    """
    psutil = psutil_module()
    if sid <= 0:
        return []
    try:
        leader = psutil.Process(sid)
        if sid_created and abs(leader.create_time() - sid_created) > 0.5:
            return []  # the session id now belongs to an unrelated process
    except psutil.Error:
        pass  # leader gone: normal once `ray start` has returned
    found: dict[int, Any] = {}
    for proc in psutil.process_iter(["create_time"]):
        try:
            if os.getsid(proc.pid) != sid:
                continue
            if proc.info["create_time"] + 1.0 < started:
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
    return [p for p in found.values() if alive(p)]


def alive(proc: Any) -> bool:
    psutil = psutil_module()
    try:
        return bool(proc.is_running()) and proc.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def terminate(procs: Iterable[Any], grace: float) -> list[Any]:
    """SIGTERM, wait up to ``grace`` s, then SIGKILL what is left; returns what survived."""
    psutil = psutil_module()
    procs = [p for p in procs if alive(p)]
    if grace > 0:
        for proc in procs:
            with contextlib.suppress(psutil.Error):
                proc.send_signal(signal.SIGTERM)
        _, procs = psutil.wait_procs(procs, timeout=grace)
    for proc in procs:
        with contextlib.suppress(psutil.Error):
            proc.send_signal(signal.SIGKILL)
    _, left = psutil.wait_procs(procs, timeout=10)
    return [p for p in left if alive(p)]


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
