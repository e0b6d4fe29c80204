"""System packages for the tests that need a real service or program (Debian's packages).

A test that needs, say, Chromium, PostgreSQL or podman calls :func:`need_debian_packages` with
the commands it needs and the packages that provide them. Missing ones are installed with
``apt-get`` (root on Debian; ``apt-get update`` once if the first try fails). Where they cannot be
installed (not root, no apt-get, no package source), the test is skipped and says why, so a
developer without root still gets a green core suite; CI runs as root and installs them.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Mapping, Sequence

import pytest


def missing_commands(commands: Sequence[str]) -> list[str]:
    """The commands of ``commands`` that are not on ``PATH``."""
    return [c for c in commands if shutil.which(c) is None]


def need_debian_packages(packages: Sequence[str], commands: Sequence[str] | None = None) -> None:
    """Install ``packages`` with apt-get unless every one of ``commands`` is found; else skip.

    ``commands`` defaults to the package names (the usual case: package ``podman`` gives the
    command ``podman``).
    """
    missing = missing_commands(list(commands if commands is not None else packages))
    if not missing:
        return
    why = f"needs {', '.join(missing)} (apt-get install {' '.join(packages)})"
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        pytest.skip(f"{why}; cannot install them here (not root, or no apt-get)")
    env: Mapping[str, str] = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    install = ["apt-get", "install", "-y", "-q", "--no-install-recommends", *packages]
    r = subprocess.run(install, env=env, capture_output=True, text=True)
    if r.returncode != 0:
        subprocess.run(["apt-get", "update", "-q"], env=env, capture_output=True)
        r = subprocess.run(install, env=env, capture_output=True, text=True)
    if r.returncode != 0:
        pytest.skip(f"{why}; apt-get failed: {r.stderr.strip()[-500:]}")
    still = missing_commands(list(commands if commands is not None else packages))
    if still:
        pytest.skip(f"{why}; installed, but {', '.join(still)} still not on PATH")
