"""One sweep per experiment directory at a time: a lock file the driver holds while it runs.

Two drivers writing the same experiment (same ``--storage`` and ``--name``, e.g. a sweep and a
``--resume`` of it started by mistake) would interleave Tune's experiment state and the trials'
result sets. :func:`acquire` takes an exclusive ``flock`` on ``<experiment>/.sweep.lock`` and
keeps it until the driver process ends (the kernel drops it when the process dies, so a killed
driver never leaves a stale lock); a second driver gets :class:`SweepLocked` at once, before it
starts Ray or writes anything, with the holder's pid, host, start time and command.

The lock file is the only file a fresh experiment directory contains before Tune writes; code that
asks "does this experiment exist already?" uses :func:`has_content`, which ignores it. Storage
given as a URI (``s3://...``) is not locked (no shared lock on object stores).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import socket
import sys
import time
from pathlib import Path
from typing import IO

LOCK_NAME = ".sweep.lock"
UNKNOWN = "holder unknown"


class SweepLocked(ValueError):
    """Another live driver holds the experiment (exit status 2 in the CLI, with this message)."""


class SweepLock:
    """A held lock; :meth:`release` (or the end of the process) gives it up."""

    def __init__(self, path: Path, handle: IO[str] | None) -> None:
        self.path = path
        self._handle = handle

    @property
    def held(self) -> bool:
        return self._handle is not None

    def release(self) -> None:
        if self._handle is not None:
            with contextlib.suppress(OSError):
                fcntl.flock(self._handle.fileno(), fcntl.LOCK_UN)
            self._handle.close()
            self._handle = None
        if self in _HELD:
            _HELD.remove(self)

    def __enter__(self) -> SweepLock:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


_HELD: list[SweepLock] = []  # keeps the handles (and so the locks) alive in this process


def acquire(experiment: str | Path) -> SweepLock:
    """Lock the experiment directory for this process (created if missing).

    Raises :class:`SweepLocked` naming the holder if another process has it.
    """
    text = str(experiment)
    if "://" in text:
        return SweepLock(Path(text), None)
    exp = Path(text).expanduser().resolve()
    exp.mkdir(parents=True, exist_ok=True)
    path = exp / LOCK_NAME
    handle = open(path, "a+")  # noqa: SIM115  (held open for the life of the lock)
    try:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = _holder(handle)
        handle.close()
        raise SweepLocked(
            f"experiment {exp} is in use by another sweep ({holder}); wait for it to finish "
            "(or stop it), or choose another --name or --storage"
        ) from None
    handle.seek(0)
    handle.truncate()
    handle.write(
        json.dumps(
            {
                "pid": os.getpid(),
                "host": socket.gethostname(),
                "since": time.strftime("%Y-%m-%d %H:%M:%S"),
                "command": " ".join(sys.argv),
            }
        )
        + "\n"
    )
    handle.flush()
    lock = SweepLock(path, handle)
    _HELD.append(lock)
    return lock


def _holder(handle: IO[str], wait_s: float = 2.0) -> str:
    """The holder as it describes itself in the lock file. It writes that right after taking the
    lock, so a driver refused in between (two started at once) reads again for up to ``wait_s``."""
    deadline = time.monotonic() + wait_s
    while True:
        handle.seek(0)
        holder = _describe(handle.read())
        if holder != UNKNOWN or time.monotonic() >= deadline:
            return holder
        time.sleep(0.02)


def _describe(text: str) -> str:
    try:
        info = json.loads(text)
        return (
            f"pid {info['pid']} on {info['host']} since {info['since']}: "
            f"{str(info.get('command', ''))[:200]}"
        )
    except (ValueError, KeyError, TypeError):
        return UNKNOWN


def has_content(experiment: str | Path) -> bool:
    """True if the experiment directory holds anything besides the lock file."""
    exp = Path(experiment)
    return exp.is_dir() and any(p.name != LOCK_NAME for p in exp.iterdir())
