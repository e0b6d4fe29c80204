"""``python -m launch jobs list|logs|stop``: Ray jobs of a cluster, through its Jobs API.

Examples::

    python -m launch jobs list                                 # the local cluster's jobs
    python -m launch jobs list --address http://127.0.0.1:8265 --token-file ~/ray-token
    python -m launch jobs logs static-grid-20261121-0630-ab12 --follow
    python -m launch jobs stop static-grid-20261121-0630-ab12

The address defaults to ``$RAY_API_SERVER_ADDRESS``, else the dashboard of the local cluster
started by ``python -m launch cluster up`` (whose token is then used). ``list`` prints one row per
job, newest first: submission id, status, start time, duration, sweep, entry point. ``logs``
prints the driver's output (``--follow`` streams until the job ends; exit status 0 if it
succeeded). ``stop`` asks the job to stop and waits until it has. Exit status 1 when the cluster
refuses the client (wrong or missing token) or cannot be reached.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
import time
from datetime import UTC, datetime
from typing import Any

from launch.common import nonneg_int, positive_float
from tune_configs.ops.cluster import ClusterError, first_line
from tune_configs.ops.jobs_client import call, job_client, resolve_client

HELP = "list Ray jobs of a cluster, print or follow their logs, stop them"

TERMINAL = ("SUCCEEDED", "FAILED", "STOPPED")


def add_client_arguments(p: argparse.ArgumentParser) -> None:
    """--address / --token-file / --cluster-dir, shared with ``launch submit``."""
    g = p.add_argument_group("cluster")
    g.add_argument(
        "--address",
        metavar="URL",
        default=None,
        help="dashboard / Jobs API, http://HOST:8265 (default $RAY_API_SERVER_ADDRESS or the "
        "local cluster)",
    )
    g.add_argument(
        "--token-file",
        metavar="PATH",
        default=None,
        help="the cluster's auth token (sets RAY_AUTH_MODE=token, RAY_AUTH_TOKEN_PATH)",
    )
    g.add_argument(
        "--cluster-dir",
        metavar="DIR",
        default=None,
        help="local cluster directory to take defaults from (as in `cluster --dir`)",
    )


def add_arguments(p: argparse.ArgumentParser) -> None:
    sub = p.add_subparsers(dest="action", metavar="{list,logs,stop}")
    sub.required = True
    ls = sub.add_parser("list", help="jobs of the cluster, newest first")
    ls.add_argument(
        "--limit", type=nonneg_int, default=20, help="rows to show (default 20, 0: all)"
    )
    add_client_arguments(ls)
    logs = sub.add_parser("logs", help="a job's driver output")
    logs.add_argument("job_id", metavar="ID", help="submission id (or job id)")
    logs.add_argument("--follow", "-f", action="store_true", help="stream until the job ends")
    add_client_arguments(logs)
    stop = sub.add_parser("stop", help="stop a job and wait until it has stopped")
    stop.add_argument("job_id", metavar="ID", help="submission id (or job id)")
    stop.add_argument(
        "--timeout", type=positive_float, default=60.0, help="seconds to wait (default 60)"
    )
    add_client_arguments(stop)


def run(args: argparse.Namespace) -> int:
    if getattr(args, "limit", 0) < 0:
        raise ValueError("--limit must be >= 0")
    address, auth = resolve_client(args.address, args.token_file, args.cluster_dir)
    try:
        client = job_client(address)
        if args.action == "list":
            return _list(client, args.limit)
        if args.action == "logs":
            return follow_logs(client, args.job_id) if args.follow else _logs(client, args.job_id)
        return _stop(client, args.job_id, args.timeout)
    except ClusterError as exc:
        print(f"error: {exc} ({auth})", file=sys.stderr)
        return 1


def _when(ms: int | None) -> str:
    if not ms:
        return "-"
    return datetime.fromtimestamp(ms / 1000, tz=UTC).astimezone().strftime("%Y-%m-%d %H:%M:%S")


def _duration(start: int | None, end: int | None) -> str:
    if not start:
        return "-"
    seconds = ((end or time.time() * 1000) - start) / 1000
    return f"{seconds / 60:.1f} min" if seconds >= 120 else f"{seconds:.0f} s"


def _status(job: Any) -> str:
    return str(getattr(job.status, "value", job.status))


def _list(client: Any, limit: int) -> int:
    jobs = call(client.list_jobs)
    jobs.sort(key=lambda j: j.start_time or 0, reverse=True)
    if limit:
        jobs = jobs[:limit]
    if not jobs:
        print("no jobs")
        return 0
    print(f"{'ID':<40} {'STATUS':<10} {'STARTED':<19} {'TOOK':>8}  {'SWEEP':<14} ENTRYPOINT")
    for job in jobs:
        job_id = job.submission_id or job.job_id or "-"
        sweep = (job.metadata or {}).get("sweep", "-")
        entry = job.entrypoint if len(job.entrypoint) <= 70 else job.entrypoint[:67] + "..."
        print(
            f"{job_id:<40} {_status(job):<10} {_when(job.start_time):<19} "
            f"{_duration(job.start_time, job.end_time):>8}  {sweep:<14} {entry}"
        )
    return 0


def _logs(client: Any, job_id: str) -> int:
    sys.stdout.write(call(client.get_job_logs, job_id))
    status = _status(call(client.get_job_info, job_id))
    print(f"[job {job_id}: {status}]", file=sys.stderr)
    return 0


def follow_logs(client: Any, job_id: str) -> int:
    """Stream a job's logs until it ends; 0 if it SUCCEEDED, 1 otherwise, 130 on Ctrl-C."""

    async def tail() -> None:
        async for chunk in client.tail_job_logs(job_id):
            sys.stdout.write(chunk)
            sys.stdout.flush()

    # The SDK logs every closed log stream at INFO level: noise here.
    logging.getLogger("ray.dashboard.modules.job.sdk").setLevel(logging.WARNING)
    try:
        asyncio.run(tail())
    except KeyboardInterrupt:
        print(
            f"\nstopped following; job {job_id} keeps running "
            f"(`python -m launch jobs stop {job_id}` stops it)",
            file=sys.stderr,
        )
        return 130
    except Exception as exc:  # the log stream broke (dashboard restart, network)
        print(f"log stream ended: {first_line(str(exc))}", file=sys.stderr)
    deadline = time.monotonic() + 30
    info = call(client.get_job_info, job_id)
    while _status(info) not in TERMINAL and time.monotonic() < deadline:
        time.sleep(1)
        info = call(client.get_job_info, job_id)
    status = _status(info)
    took = _duration(info.start_time, info.end_time)
    message = first_line(info.message or "")
    print(
        f"[job {job_id}: {status} after {took}{'; ' + message if message else ''}]", file=sys.stderr
    )
    return 0 if status == "SUCCEEDED" else 1


def _stop(client: Any, job_id: str, timeout: float) -> int:
    was_running = call(client.stop_job, job_id)
    if not was_running:
        print(f"job {job_id} was not running ({_status(call(client.get_job_info, job_id))})")
        return 0
    deadline = time.monotonic() + timeout
    status = _status(call(client.get_job_info, job_id))
    while status not in TERMINAL and time.monotonic() < deadline:
        time.sleep(1)
        status = _status(call(client.get_job_info, job_id))
    print(f"job {job_id}: {status}")
    return 0 if status in TERMINAL else 1
