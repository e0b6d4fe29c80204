"""Starting and connecting to Ray, and every Ray environment variable the project sets.

All Ray environment setup lives here (the one place to look when Ray's variables change):

* :func:`embedded_env` / :func:`node_env` / :func:`client_env` build the environment of,
  respectively, a driver with its own embedded Ray, a node of a local cluster, and a client of a
  local cluster (``launch cluster status --env``). :func:`auth_env` is the auth part of each.
* :func:`prepare_embedded` and :func:`prepare_client` apply them to this process (before
  ``import ray``; if Ray was imported earlier, :mod:`tune_configs.ops.ray_internals` fixes the one
  constant Ray had already read). :func:`use_auth` switches this process to a cluster's auth.
* :func:`init_ray` starts an embedded single-node Ray (``address=None``, the default of every
  command) or connects to a running cluster (``"127.0.0.1:6390"``, ``"auto"``). The embedded
  Ray is always a *new* local instance (``ray.init(address="local")``): a cluster found on the
  machine (``RAY_ADDRESS``, or the ``ray_current_cluster`` file a ``ray start --head`` leaves in
  Ray's temp folder) is never joined. Workers of an embedded Ray find this project's packages
  through ``PYTHONPATH``; on a cluster the project must be installed on every node.
* :func:`stop_ray` shuts down what :func:`init_ray` started (never ``ray stop``).

Variables a trial reads (the trial barrier of the fault drills, :mod:`tune_configs.ops.barrier`)
reach Ray workers through these environments: an embedded Ray's workers inherit the driver's,
a cluster's workers the environment its nodes were started with (:func:`node_env`).

Nothing here runs at import time except reading environment variables.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

PROJECT_ROOT = Path(__file__).resolve().parents[2]
LOOPBACK = "127.0.0.1"

AUTH_KEYS = ("RAY_AUTH_MODE", "RAY_AUTH_TOKEN", "RAY_AUTH_TOKEN_PATH")
# Where a Ray client or `ray.init()` would look for a cluster to join.
ADDRESS_KEYS = ("RAY_ADDRESS", "RAY_API_SERVER_ADDRESS")
# Every process of a loopback Ray: bind 127.0.0.1 (not the interface address), no usage stats.
LOOPBACK_ENV: dict[str, str] = {
    "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0",
    "RAY_USAGE_STATS_ENABLED": "0",
}
# Drivers running Tune: the legacy output honours verbose=0 (the new one prints boxes and a wrong
# TensorBoard path); repeated worker log lines are folded (defaults, a user's setting wins).
# The hash seed of every process that samples or trains (docs/conventions.md#randomness): RLlib
# orders a multi-agent batch by iterating a set of agent ids, whose order follows the hash seed.
HASH_SEED_ENV: dict[str, str] = {"PYTHONHASHSEED": "0"}
TUNE_DEFAULTS: dict[str, str] = {"RAY_AIR_NEW_OUTPUT": "0", "RAY_DEDUP_LOGS": "1"}
# A searcher's metrics (eval/*) arrive only with a trial's last report; the training iterations
# before it do not carry them, which Tune's strict metric check would reject (always set).
TUNE_REQUIRED: dict[str, str] = {"TUNE_DISABLE_STRICT_METRIC_CHECKING": "1"}


def _prepend_path(value: str | None, first: str) -> str:
    parts = [p for p in (value or "").split(os.pathsep) if p and p != first]
    return os.pathsep.join([first, *parts])


def auth_env(mode: str, token_path: str | None) -> dict[str, str]:
    """``RAY_AUTH_MODE`` (``"token"`` or ``"disabled"``) and, for a token, its file."""
    env = {"RAY_AUTH_MODE": mode}
    if mode == "token" and token_path:
        env["RAY_AUTH_TOKEN_PATH"] = token_path
    return env


def embedded_env(base: Mapping[str, str] | None = None) -> dict[str, str]:
    """Environment of a driver that starts its own Ray (and of that Ray's workers).

    Explicit user choices for the loopback, usage-stats and auth variables are kept; the
    addresses of other clusters are dropped (the embedded Ray never joins one, and its workers
    must not see them); the project goes on ``PYTHONPATH``.
    """
    env = dict(os.environ if base is None else base)
    for key in ADDRESS_KEYS:
        env.pop(key, None)
    for key, value in LOOPBACK_ENV.items():
        env.setdefault(key, value)
    env.setdefault("RAY_AUTH_MODE", "disabled")
    env["PYTHONPATH"] = _prepend_path(env.get("PYTHONPATH"), str(PROJECT_ROOT))
    return env


def node_env(
    auth_mode: str, token_path: str | None, python: str, base: Mapping[str, str] | None = None
) -> dict[str, str]:
    """Environment of every process of a local cluster's node (all nodes must agree on auth).

    The project root goes on ``PYTHONPATH`` and ``python``'s directory on ``PATH``, so job entry
    points (``python -m launch sweep ...``) and Ray workers import this checkout; a job submitted
    with ``--working-dir`` runs its shipped code instead (first on its PYTHONPATH; each node
    unpacks it below its own temp dir, :func:`tune_configs.ops.cluster.node_temp_dir`).
    Everything else of ``base``
    (default: this process's environment) is inherited, e.g. ``METALORE_TRIAL_BARRIER``, and
    ``PYTHONHASHSEED`` is fixed (:data:`HASH_SEED_ENV`) unless ``base`` sets it.
    """
    env = {**HASH_SEED_ENV, **(os.environ if base is None else base)}
    for key in (*AUTH_KEYS, *ADDRESS_KEYS):
        env.pop(key, None)
    env.update(LOOPBACK_ENV)
    env.update(auth_env(auth_mode, token_path))
    env["PYTHONPATH"] = _prepend_path(env.get("PYTHONPATH"), str(PROJECT_ROOT))
    env["PATH"] = _prepend_path(env.get("PATH"), str(Path(python).parent))
    return env


def client_env(
    gcs_address: str, dashboard_url: str, auth_mode: str, token_path: str | None
) -> dict[str, str]:
    """What a client of a local cluster (driver, Jobs SDK, ``ray`` CLI) needs in its env."""
    return {
        "RAY_ADDRESS": gcs_address,
        "RAY_API_SERVER_ADDRESS": dashboard_url,
        "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0",
        **auth_env(auth_mode, token_path),
    }


def _apply(env: Mapping[str, str], keys: Iterable[str]) -> None:
    """Make ``os.environ`` agree with ``env`` on ``keys`` (set or remove)."""
    for key in keys:
        if key in env:
            os.environ[key] = env[key]
        else:
            os.environ.pop(key, None)


def prepare_embedded() -> None:
    """Set this process up for an embedded Ray (see :func:`embedded_env`); call before ``ray``."""
    env = embedded_env()
    _apply(env, (*ADDRESS_KEYS, *LOOPBACK_ENV, "RAY_AUTH_MODE", "PYTHONPATH"))
    _sync_imported_ray()


def prepare_client(address: str) -> None:
    """Set this process up to connect to the cluster at ``address`` (kept auth settings)."""
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    if is_loopback_address(address):
        # Without this Ray rewrites 127.0.0.1 to the machine's interface address and the driver
        # hangs looking for a cluster that only listens on loopback.
        os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
    os.environ["PYTHONPATH"] = _prepend_path(os.environ.get("PYTHONPATH"), str(PROJECT_ROOT))
    _sync_imported_ray()


def use_auth(mode: str, token_path: str | None) -> None:
    """Replace this process's Ray auth variables (before Ray reads them, i.e. before a client
    or driver is created)."""
    _apply(auth_env(mode, token_path), AUTH_KEYS)


def use_tune_env() -> None:
    """Set the variables a Tune driver needs (:data:`TUNE_DEFAULTS`, :data:`TUNE_REQUIRED`)."""
    for key, value in TUNE_DEFAULTS.items():
        os.environ.setdefault(key, value)
    os.environ.update(TUNE_REQUIRED)


def _sync_imported_ray() -> None:
    if os.environ.get("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER") == "0":
        from tune_configs.ops.ray_internals import keep_single_node

        keep_single_node()


def is_loopback_address(address: str) -> bool:
    """True for ``127.x.y.z:PORT`` / ``localhost:PORT`` / ``[::1]:PORT`` (any scheme)."""
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
    """Start a new embedded Ray (``address=None``) or connect to the cluster at ``address``.

    Returns True if this call started or connected Ray (so the caller should shut it down), False
    if Ray was already initialised in this process (someone else owns it).
    """
    if address is None:
        prepare_embedded()
    else:
        prepare_client(address)
    import ray

    if ray.is_initialized():
        return False
    kwargs: dict[str, Any] = {
        "log_to_driver": log_to_driver,
        "configure_logging": True,
        "logging_level": "ERROR" if quiet else "INFO",
    }
    if address is None:
        kwargs.update(embedded_init_kwargs(num_cpus, object_store_memory))
    else:
        kwargs["address"] = address
    ray.init(**kwargs)
    return True


def embedded_init_kwargs(
    num_cpus: int | None, object_store_memory: int | None = None
) -> dict[str, Any]:
    """``ray.init`` arguments of an embedded Ray: always a new local instance, no dashboard."""
    kwargs: dict[str, Any] = {"address": "local", "include_dashboard": False, "num_cpus": num_cpus}
    if object_store_memory is not None:
        kwargs["object_store_memory"] = object_store_memory
    return kwargs


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
    os.environ.setdefault("RAY_DEDUP_LOGS", TUNE_DEFAULTS["RAY_DEDUP_LOGS"])
