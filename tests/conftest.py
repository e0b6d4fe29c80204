"""Shared pytest fixtures.

``ray_session``: one embedded Ray per test session, started lazily by the first test that asks
for it (tests that do not need Ray never pay for it) and shut down at the end. It binds 127.0.0.1
only, has 2 CPUs, no dashboard, a 200 MB object store, and its workers import this checkout
(``PYTHONPATH``). The environment variables below are set at import, before anything imports Ray.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

os.environ.setdefault("RAY_AUTH_MODE", "disabled")
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")
os.environ.setdefault("RAY_DEDUP_LOGS", "1")

_ROOT = str(Path(__file__).resolve().parents[1])
if _ROOT not in os.environ.get("PYTHONPATH", "").split(os.pathsep):
    _path = os.environ.get("PYTHONPATH", "")
    os.environ["PYTHONPATH"] = _ROOT + (os.pathsep + _path if _path else "")

RAY_OBJECT_STORE_BYTES = 200 * 1024 * 1024


@pytest.fixture(scope="session")
def ray_session() -> Iterator[Any]:
    """An embedded 2-CPU Ray for the whole session (started on first use)."""
    import ray

    started = False
    if not ray.is_initialized():
        ray.init(
            num_cpus=2,
            include_dashboard=False,
            log_to_driver=False,
            object_store_memory=RAY_OBJECT_STORE_BYTES,
            configure_logging=True,
            logging_level="ERROR",
        )
        started = True
    yield ray
    if started and ray.is_initialized():
        ray.shutdown()
