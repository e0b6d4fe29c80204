"""A throw-away PostgreSQL server for tests (Debian's packages, loopback only).

:func:`postgres_server` installs the ``postgresql`` package if needed (or skips the test, see
:mod:`tests.helpers.system`), creates a data directory under a temporary folder with ``initdb``
(as the ``postgres`` system user when the test runs as root: PostgreSQL refuses to run as root),
starts the server on 127.0.0.1 only, on a free port, with its socket in that folder, and yields a
SQLAlchemy URL (``postgresql+psycopg://optuna@127.0.0.1:PORT/optuna``; trust authentication on
loopback, nothing else can connect). At the end the server is stopped by the pid it wrote
(SIGINT: PostgreSQL's fast shutdown) and the folder removed.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers.system import need_debian_packages

USER = "optuna"  # the database superuser and database name


def postgres_bin() -> Path:
    """The directory of Debian's PostgreSQL binaries (``/usr/lib/postgresql/<v>/bin``, not on
    PATH), installed if missing."""

    def found() -> list[Path]:
        return sorted(Path("/usr/lib/postgresql").glob("*/bin/postgres"))

    if not found():
        need_debian_packages(["postgresql"], ["pg_ctlcluster"])
    if not found():
        pytest.skip("postgresql installed, but no /usr/lib/postgresql/*/bin/postgres")
    return found()[-1].parent


def _as_user() -> tuple[list[str], int | None]:
    """The command prefix and uid to run PostgreSQL as: ``postgres`` when we are root."""
    if os.geteuid() != 0:
        return [], None
    try:
        uid = pwd.getpwnam("postgres").pw_uid
    except KeyError:
        pytest.skip("running as root and there is no `postgres` user to run PostgreSQL as")
    runuser = shutil.which("runuser")
    if runuser is None:
        pytest.skip("running as root and no runuser to run PostgreSQL as `postgres`")
    return [runuser, "-u", "postgres", "--"], uid


@contextlib.contextmanager
def postgres_server() -> Iterator[str]:
    """A running throw-away PostgreSQL on 127.0.0.1: yields its SQLAlchemy URL."""
    from tune_configs.ops.cluster import free_port

    bindir = postgres_bin()
    prefix, uid = _as_user()
    root = Path(tempfile.mkdtemp(prefix="mlr-pg-", dir="/tmp"))  # short: the socket lives here
    data, log = root / "data", root / "server.log"
    if uid is not None:
        os.chown(root, uid, -1)
    port = free_port()
    r = subprocess.run(
        [
            *prefix,
            str(bindir / "initdb"),
            "-D",
            str(data),
            "-U",
            USER,
            "--auth=trust",
            "-E",
            "UTF8",
            "--locale=C",
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert r.returncode == 0, r.stdout + r.stderr
    with open(log, "wb") as out:
        server = subprocess.Popen(
            [
                *prefix,
                str(bindir / "postgres"),
                "-D",
                str(data),
                "-h",
                "127.0.0.1",
                "-p",
                str(port),
                "-k",
                str(root),
            ],
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    pid_file = data / "postmaster.pid"
    try:
        deadline = time.monotonic() + 120
        while True:
            ready = subprocess.run(
                [str(bindir / "pg_isready"), "-h", "127.0.0.1", "-p", str(port), "-U", USER],
                capture_output=True,
                text=True,
            )
            if ready.returncode == 0:
                break
            assert server.poll() is None, log.read_text(errors="replace")
            assert time.monotonic() < deadline, "PostgreSQL did not start:\n" + log.read_text()
            time.sleep(0.2)
        r = subprocess.run(
            [str(bindir / "createdb"), "-h", "127.0.0.1", "-p", str(port), "-U", USER, USER],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert r.returncode == 0, r.stderr
        yield f"postgresql+psycopg://{USER}@127.0.0.1:{port}/{USER}"
    finally:
        pid = None
        with contextlib.suppress(OSError, ValueError, IndexError):
            pid = int(pid_file.read_text().splitlines()[0])
        for target in {p for p in (pid, server.pid) if p}:
            with contextlib.suppress(ProcessLookupError):
                os.kill(target, signal.SIGINT)  # fast shutdown
        try:
            server.wait(timeout=60)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait(timeout=30)
        shutil.rmtree(root, ignore_errors=True)
