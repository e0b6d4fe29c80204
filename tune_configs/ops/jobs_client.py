"""Clients of a Ray cluster's Jobs API: which address, which auth, and the SDK client.

Used by ``python -m launch submit`` and ``python -m launch jobs``. :func:`resolve_client` must run
before ``import ray`` (Ray caches the token it reads); :func:`job_client` and :func:`call` turn
connection and auth failures into :class:`~tune_configs.ops.cluster.ClusterError`.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tune_configs.ops import runtime
from tune_configs.ops.cluster import ClusterError, default_cluster_dir, first_line, load_state


def check_dashboard_address(address: str) -> str:
    """``http(s)://HOST:PORT`` (no path); raises ValueError otherwise."""
    from urllib.parse import urlparse

    parsed = urlparse(address)
    if parsed.scheme not in ("http", "https") or not parsed.hostname:
        hint = f"; did you mean http://{address}?" if "://" not in address else ""
        raise ValueError(
            f"--address must be the dashboard URL http://HOST:PORT, got {address!r}{hint}"
        )
    try:
        parsed.port  # noqa: B018  (raises on a bad port)
    except ValueError:
        raise ValueError(f"bad port in --address {address!r}") from None
    if parsed.path not in ("", "/") or parsed.query:
        raise ValueError(f"--address takes no path or query, got {address!r}")
    return address.rstrip("/")


def resolve_client(
    address: str | None, token_file: str | None, cluster_dir: str | None
) -> tuple[str, str]:
    """Pick the dashboard address and set the auth variables for a Jobs-API client.

    Order: ``--address``, ``$RAY_API_SERVER_ADDRESS``, the local cluster of ``cluster_dir``
    (default :func:`default_cluster_dir`). Auth: ``--token-file`` sets ``RAY_AUTH_MODE=token`` and
    ``RAY_AUTH_TOKEN_PATH``; else, when the address is the local cluster's dashboard, that
    cluster's settings are used (they are known to be right); else variables already set are
    kept. Returns (address, a one-line description of the auth source).
    """
    state = None
    with contextlib.suppress(ClusterError):
        state = load_state(Path(cluster_dir) if cluster_dir else default_cluster_dir())
    if address is None:
        address = os.environ.get("RAY_API_SERVER_ADDRESS")
    if address is None and state is not None:
        address = state.dashboard_url
    if address is None:
        raise ValueError(
            "no cluster address: give --address http://HOST:8265, set RAY_API_SERVER_ADDRESS, "
            "or start a local cluster with `python -m launch cluster up`"
        )
    address = check_dashboard_address(address)
    if token_file is not None:
        path = Path(token_file).expanduser().resolve()
        if not path.is_file():
            raise ValueError(f"--token-file {token_file}: no such file")
        runtime.use_auth("token", str(path))
        return address, f"token from {path}"
    if state is not None and state.dashboard_url == address:
        state.use_auth()
        return address, f"auth settings of the local cluster in {state.directory}"
    if any(k in os.environ for k in runtime.AUTH_KEYS):
        return address, "auth settings from the environment (RAY_AUTH_*)"
    return address, "Ray's default auth settings (~/.ray/auth_token if present)"


def local_storage_for(address: str, cluster_dir: str | None) -> str | None:
    """The storage directory of the local cluster whose dashboard is ``address``, if any."""
    where = Path(cluster_dir) if cluster_dir else default_cluster_dir()
    try:
        local = load_state(where)
    except ClusterError:
        return None
    return local.storage if local is not None and local.dashboard_url == address else None


def job_client(address: str) -> Any:
    """A ``JobSubmissionClient``; connection and auth failures become :class:`ClusterError`."""
    from ray.job_submission import JobSubmissionClient

    return call(JobSubmissionClient, address, what=f"the Jobs API at {address}")


def call(fn: Callable[..., Any], *args: Any, what: str | None = None, **kwargs: Any) -> Any:
    """Call a Jobs-API function; auth, connection and unknown-job errors become ClusterError."""
    from ray.exceptions import AuthenticationError

    try:
        return fn(*args, **kwargs)
    except AuthenticationError as exc:
        where = f" by {what.removeprefix('the Jobs API at ')}" if what else ""
        raise ClusterError(f"refused{where}: {first_line(str(exc))}") from None
    except (OSError, RuntimeError) as exc:  # requests' errors are OSErrors
        reason = first_line(str(exc))
        raise ClusterError(f"cannot reach {what}: {reason}" if what else reason) from None
