"""Trial barriers: a trial waits at a named event until a fault drill lets it go.

The trial runner calls :func:`reach` at fixed points of every trial: ``"start"`` (after restoring
any checkpoint), ``"iteration-<k>"`` (after PPO iteration k's result, and its checkpoint if any,
was reported to Tune) and ``"end"`` (just before the trial's final result). Unless the
environment variable ``METALORE_TRIAL_BARRIER`` names a directory, :func:`reach` returns at once.
With it, the trial records its arrival in that directory and blocks until a rule there lets it
pass, so a drill can kill a driver, a node or a trial's process at a known point of a sweep on a
machine of any speed. Files only: works across processes and across the nodes of a cluster that
share the directory.

Layout of the directory::

    arrived/<trial>@<event>#<n>.json   arrival n (0, 1, ... for retries) of a trial at an event:
                                       {"trial", "event", "n", "pid", "host", "time"}
    pass/<rule>                        an fnmatch pattern over "<trial>@<event>#<n>"; an arrival
                                       whose key matches any rule passes

:class:`Barrier` is the drill's side (arm, watch arrivals, release, open). A trial waiting longer
than ``METALORE_TRIAL_BARRIER_TIMEOUT`` seconds (default 900) raises :class:`BarrierTimeout`
naming the trial, the event and the directory.
"""

from __future__ import annotations

import dataclasses
import fnmatch
import hashlib
import json
import os
import socket
import time
from collections.abc import Callable
from pathlib import Path

ENV = "METALORE_TRIAL_BARRIER"
TIMEOUT_ENV = "METALORE_TRIAL_BARRIER_TIMEOUT"
DEFAULT_TIMEOUT_S = 900.0
POLL_S = 0.1


class BarrierTimeout(RuntimeError):
    """A trial waited at a barrier longer than the timeout (nobody released it)."""


def _safe(name: str) -> str:
    return "".join(c if c.isalnum() or c in "._-=," else "_" for c in name) or "_"


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def _rules(directory: Path) -> list[str]:
    rules = []
    for path in (directory / "pass").glob("*"):
        if path.name.startswith("."):
            continue
        try:
            rules.append(path.read_text().strip())
        except OSError:  # removed meanwhile (re-armed)
            continue
    return rules


def key(trial: str, event: str, n: int) -> str:
    """``<trial>@<event>#<n>``: what rules match."""
    return f"{_safe(trial)}@{_safe(event)}#{n}"


def reach(event: str, trial: str) -> None:
    """Record that ``trial`` reached ``event`` and wait until the drill lets it pass.

    A no-op unless ``METALORE_TRIAL_BARRIER`` is set. Raises :class:`BarrierTimeout` after
    ``METALORE_TRIAL_BARRIER_TIMEOUT`` seconds (default 900) without a matching rule.
    """
    root = os.environ.get(ENV)
    if not root:
        return
    directory = Path(root)
    arrived = directory / "arrived"
    arrived.mkdir(parents=True, exist_ok=True)
    (directory / "pass").mkdir(exist_ok=True)
    n = 0
    while True:  # the first free arrival number (a retried trial arrives again)
        path = arrived / f"{key(trial, event, n)}.json"
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
            break
        except FileExistsError:
            n += 1
    record = {
        "trial": trial, "event": event, "n": n, "pid": os.getpid(), "host": socket.gethostname(),
        "time": time.time(),
    }  # fmt: skip
    with os.fdopen(fd, "w") as fh:
        fh.write(json.dumps(record))
    me = key(trial, event, n)
    timeout = float(os.environ.get(TIMEOUT_ENV) or DEFAULT_TIMEOUT_S)
    deadline = time.monotonic() + timeout
    while not any(fnmatch.fnmatchcase(me, rule) for rule in _rules(directory)):
        if time.monotonic() > deadline:
            raise BarrierTimeout(
                f"trial {trial} waited {timeout:.0f} s at barrier {event!r} (arrival {n}) in "
                f"{directory} and was never released; unset {ENV} outside fault drills"
            )
        time.sleep(POLL_S)


@dataclasses.dataclass(frozen=True)
class Arrival:
    """One recorded arrival of a trial at an event."""

    trial: str
    event: str
    n: int
    pid: int
    host: str
    time: float

    @property
    def key(self) -> str:
        return key(self.trial, self.event, self.n)


class Barrier:
    """The drill's side of a barrier directory.

    ``Barrier(d).env()`` goes into the environment of the sweep (or of the cluster's nodes);
    a new barrier is closed (every trial waits at its first event) until rules are added.
    """

    def __init__(self, directory: str | Path) -> None:
        self.directory = Path(directory).resolve()
        (self.directory / "arrived").mkdir(parents=True, exist_ok=True)
        (self.directory / "pass").mkdir(exist_ok=True)

    def env(self) -> dict[str, str]:
        return {ENV: str(self.directory)}

    def arrivals(self, pattern: str = "*") -> list[Arrival]:
        """Recorded arrivals whose key matches ``pattern``, oldest first."""
        out = []
        for path in (self.directory / "arrived").glob("*.json"):
            try:
                data = json.loads(path.read_text())
            except (OSError, ValueError):  # being written
                continue
            arrival = Arrival(**data)
            if fnmatch.fnmatchcase(arrival.key, pattern):
                out.append(arrival)
        return sorted(out, key=lambda a: (a.time, a.key))

    def wait(
        self,
        pattern: str = "*",
        count: int = 1,
        timeout: float = 600.0,
        check: Callable[[], None] | None = None,
    ) -> list[Arrival]:
        """Wait until at least ``count`` arrivals match ``pattern``; returns them.

        ``check`` runs on every poll (e.g. to fail at once when the sweep's process has died);
        TimeoutError after ``timeout`` s lists what did arrive.
        """
        deadline = time.monotonic() + timeout
        while True:
            found = self.arrivals(pattern)
            if len(found) >= count:
                return found
            if check is not None:
                check()
            if time.monotonic() > deadline:
                seen = ", ".join(a.key for a in self.arrivals()) or "nothing"
                raise TimeoutError(
                    f"after {timeout:.0f} s, {len(found)} of {count} arrivals matching "
                    f"{pattern!r} in {self.directory} (arrived: {seen})"
                )
            time.sleep(POLL_S)

    def allow(self, pattern: str) -> None:
        """Let every arrival whose key matches ``pattern`` pass (now and later)."""
        name = hashlib.sha1(pattern.encode()).hexdigest()[:16]
        _write_atomic(self.directory / "pass" / name, pattern)

    def release(self, arrival: Arrival) -> None:
        """Let exactly this arrival pass."""
        self.allow(arrival.key)

    def open(self) -> None:
        """Let everything pass (until :meth:`close`)."""
        self.allow("*")

    def close(self) -> None:
        """Remove every rule: trials wait at their next event."""
        for path in (self.directory / "pass").glob("*"):
            path.unlink(missing_ok=True)

    def reset(self) -> None:
        """Forget arrivals and rules."""
        self.close()
        for path in (self.directory / "arrived").glob("*"):
            path.unlink(missing_ok=True)
