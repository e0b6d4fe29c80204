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
