"""Running ``python -m launch ...`` in a subprocess from tests, importing this checkout."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def launch_env() -> dict[str, str]:
    """The test process's environment with this checkout first on ``PYTHONPATH``."""
    path = os.environ.get("PYTHONPATH", "")
    return {**os.environ, "PYTHONPATH": str(ROOT) + (os.pathsep + path if path else "")}


def run_launch(*args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    """``python -m launch ARGS`` from the repository root; output captured as text."""
    return subprocess.run(
        [sys.executable, "-m", "launch", *args], cwd=ROOT, env=launch_env(),
        capture_output=True, text=True, timeout=timeout,
    )  # fmt: skip


def run_launch_here(*args: str) -> subprocess.CompletedProcess[str]:
    """``launch ARGS`` in this process (for usage errors, which never start anything): the same
    exit status and output as :func:`run_launch`, without a new interpreter per case."""
    import contextlib
    import io

    from launch.cli import main

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main(list(args))
        except SystemExit as exc:  # argparse's own errors
            code = exc.code if isinstance(exc.code, int) else 2
    return subprocess.CompletedProcess(["launch", *args], code, out.getvalue(), err.getvalue())
