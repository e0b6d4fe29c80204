"""Starting and connecting to Ray the way this project needs it.

* :func:`loopback_env` sets the environment variables that keep an embedded Ray on 127.0.0.1, off
  the usage-stats reporter and (for a local session) without token authentication. It must run
  before ``import ray``; :func:`init_ray` calls it and patches the already-read constant if Ray was
  imported earlier.
* :func:`init_ray` starts an embedded single-node Ray (default) or connects to a running cluster
  (``address="127.0.0.1:6390"`` or ``"auto"``). Workers of an embedded Ray find this project's
  packages through ``PYTHONPATH``; on a cluster the project must be installed on every node
  (``pip install -e .``).
* :func:`stop_ray` shuts down what :func:`init_ray` started (the driver's own Ray only; never
  ``ray stop``).

Nothing here runs at import time except reading environment variables.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

PROJECT_ROOT = Path(__file__).resolve().parents[1]

# Variables every process of an embedded Ray must see (read by Ray at import or start time).
EMBEDDED_ENV: dict[str, str] = {
    "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0",  # bind 127.0.0.1, not the interface address
    "RAY_USAGE_STATS_ENABLED": "0",
}


def loopback_env(auth_disabled: bool = True) -> None:
    """Set (without overriding explicit user choices) the variables for an embedded local Ray."""
    for key, value in EMBEDDED_ENV.items():
        os.environ.setdefault(key, value)
    if auth_disabled:
        os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    # Let Ray workers import envs/, tune_configs/, launch/ even if the project is not installed.
    root = str(PROJECT_ROOT)
    path = os.environ.get("PYTHONPATH", "")
    if root not in path.split(os.pathsep):
        os.environ["PYTHONPATH"] = root + (os.pathsep + path if path else "")
    if "ray" in sys.modules:  # imported before us: the constant was already read
        from ray._private import ray_constants

        if os.environ.get("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER") == "0":
            ray_constants.ENABLE_RAY_CLUSTER = False


def _is_loopback(address: str) -> bool:
    """True for ``127.x.y.z:PORT`` / ``localhost:PORT`` (with or without a scheme)."""
    host = address.split("://", 1)[-1].rsplit(":", 1)[0].strip("[]")
    return host == "localhost" or host.startswith("127.") or host == "::1"


def init_ray(
    address: str | None = None,
    *,
    num_cpus: int | None = None,
    object_store_memory: int | None = None,
    log_to_driver: bool = False,
    quiet: bool = True,
) -> bool:
    """Start an embedded Ray (``address=None``) or connect to ``address``.

    Returns True if this call started or connected Ray (so the caller should shut it down), False
    if Ray was already initialised in this process (someone else owns it).
    """
    if address is None:
        loopback_env()
    else:
        os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
        if _is_loopback(address):
            # Without this Ray rewrites 127.0.0.1 to the machine's interface address and the
            # driver hangs looking for a cluster that only listens on loopback.
            os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
        path = os.environ.get("PYTHONPATH", "")
        if str(PROJECT_ROOT) not in path.split(os.pathsep):
            os.environ["PYTHONPATH"] = str(PROJECT_ROOT) + (os.pathsep + path if path else "")
    import ray

    if ray.is_initialized():
        return False
    kwargs: dict[str, Any] = {
        "log_to_driver": log_to_driver,
        "configure_logging": True,
        "logging_level": "ERROR" if quiet else "INFO",
    }
    if address is None:
        kwargs.update(include_dashboard=False, num_cpus=num_cpus)
        if object_store_memory is not None:
            kwargs["object_store_memory"] = object_store_memory
    else:
        kwargs["address"] = address
    ray.init(**kwargs)
    return True


def stop_ray(started: bool) -> None:
    """Shut down this driver's Ray connection if :func:`init_ray` started it."""
    if not started:
        return
    import ray

    if ray.is_initialized():
        ray.shutdown()


def quiet_ray_logs() -> None:
    """Silence the noisiest Ray/RLlib loggers in the driver (warnings and errors still show)."""
    import logging

    for name in ("ray", "ray.rllib", "ray.tune", "ray.train", "ray.data"):
        logging.getLogger(name).setLevel(logging.ERROR)
    os.environ.setdefault("RAY_DEDUP_LOGS", "1")
