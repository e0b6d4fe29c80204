"""Shared pytest fixtures.

``ray_session``: one embedded Ray per test session, started lazily by the first test that asks
for it (tests that do not need Ray never pay for it) and shut down at the end. Like every command
without ``--address`` it is a new local instance (``ray.init(address="local")``): a Ray cluster
already running on the machine (``RAY_ADDRESS``, or a ``ray start --head`` of the user) is never
joined. It binds 127.0.0.1 only, has 2 CPUs, no dashboard, a 200 MB object store, and its workers
import this checkout (``PYTHONPATH``). The environment (:func:`tune_configs.ops.runtime.
prepare_embedded`, :func:`~tune_configs.ops.runtime.use_tune_env`) is set at import, before anything
imports Ray.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import pytest

from tune_configs.ops import runtime

runtime.prepare_embedded()
runtime.use_tune_env()

RAY_OBJECT_STORE_BYTES = 200 * 1024 * 1024


@pytest.fixture(scope="session")
def ray_session() -> Iterator[Any]:
    """An embedded 2-CPU Ray for the whole session (started on first use)."""
    import ray

    started = False
    if not ray.is_initialized():
        ray.init(
            **runtime.embedded_init_kwargs(2, RAY_OBJECT_STORE_BYTES),
            log_to_driver=False,
            configure_logging=True,
            logging_level=logging.ERROR,
        )
        started = True
    yield ray
    if started and ray.is_initialized():
        ray.shutdown()
