"""``python -m launch cluster up|status|down|restart``: a local multi-node Ray cluster on loopback.

For laptops and tests: a head node and N worker nodes on this machine, every one on 127.0.0.1
(see :mod:`tune_configs.ops.cluster`, which does the work, for why not 127.0.0.2, 127.0.0.3, ...),
one CPU each by default, token authentication on, dashboard on http://127.0.0.1:8265. Examples::

    python -m launch cluster up --workers 1            # head + 1 worker, ~15-30 s
    python -m launch cluster status                    # address, dashboard, nodes, client env
    eval "$(python -m launch cluster status --env)"    # export the client settings
    python -m launch submit static-grid --budget small # run a sweep on it as a Ray job
    python -m launch cluster down --node worker-1 --force   # crash one worker (fault drills)
    python -m launch cluster restart --node worker-1        # ... and bring it back
    python -m launch cluster down                      # stop every process of this cluster

State lives in ``--dir`` (default ``$METALORE_CLUSTER_DIR`` or ``~/.metalore/cluster``):
``cluster.json`` (ports, session ids of the nodes' processes), ``auth_token`` (0600),
``logs/`` (``ray start`` output) and ``storage/`` (default result storage of submitted sweeps).
``down`` signals only the processes of that cluster (found by session id), never ``ray stop``.
Expect ``up`` to print one line per node, then the status; ``down`` prints how many processes it
stopped. Exit status 1 when the cluster cannot start, 2 on bad arguments.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from pathlib import Path
from typing import Any

from launch.cli import UsageError
from tune_configs.ops.cluster import (
    DEFAULT_DASHBOARD_PORT,
    DEFAULT_GCS_PORT,
    ClusterError,
    ClusterSpec,
    ClusterState,
    default_cluster_dir,
    load_state,
    restart_worker,
    start_cluster,
    status_report,
    stop_cluster,
    stop_worker,
)
from tune_configs.ops.processes import ProcessError

HELP = "local multi-node Ray cluster on 127.0.0.1: up, status, down, restart (token auth on)"

MAX_WORKERS = 16


def _int_in(lo: int, hi: int, what: str) -> Any:
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"{what}: expected a whole number, got {text!r}"
            ) from None
        if not lo <= value <= hi:
            raise argparse.ArgumentTypeError(f"{what}: must be in [{lo}, {hi}], got {value}")
        return value

    return parse


def _grace(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected seconds, got {text!r}") from None
    if not 0 <= value <= 600:
        raise argparse.ArgumentTypeError(f"must be in [0, 600] s, got {value}")
    return value


def add_arguments(p: argparse.ArgumentParser) -> None:
    sub = p.add_subparsers(dest="action", metavar="{up,status,down,restart}")
    sub.required = True

    def with_dir(q: argparse.ArgumentParser) -> None:
        q.add_argument(
            "--dir",
            metavar="DIR",
            default=None,
            help="cluster directory (state, token, logs); default $METALORE_CLUSTER_DIR or "
            "~/.metalore/cluster",
        )

    up = sub.add_parser("up", help="start a head and N worker nodes on 127.0.0.1")
    up.add_argument(
        "--workers",
        type=_int_in(0, MAX_WORKERS, "--workers"),
        required=True,
        help=f"worker nodes besides the head (0..{MAX_WORKERS})",
    )
    for flag, lo, hi, default, text in (
        ("--num-cpus", 1, 64, 1, "CPUs each node advertises (default 1)"),
        ("--head-cpus", 0, 64, None, "CPUs of the head if different (0: head only runs drivers)"),
        ("--object-store-mb", 80, 65536, 500, "object store per node in MB (default 500)"),
        ("--port", 1024, 65535, DEFAULT_GCS_PORT, f"GCS port (default {DEFAULT_GCS_PORT})"),
        ("--dashboard-port", 1024, 65535, DEFAULT_DASHBOARD_PORT,
         f"dashboard / Jobs API port (default {DEFAULT_DASHBOARD_PORT})"),
    ):  # fmt: skip
        up.add_argument(flag, type=_int_in(lo, hi, flag), default=default, help=text)
    up.add_argument(
        "--auth",
        choices=("token", "disabled"),
        default="token",
        help="token authentication (default) or none (not recommended)",
    )
    up.add_argument(
        "--storage",
        metavar="PATH",
        default=None,
        help="result storage shared by the nodes (default DIR/storage)",
    )
    with_dir(up)

    st = sub.add_parser("status", help="address, dashboard URL, nodes and client env vars")
    fmt = st.add_mutually_exclusive_group()
    fmt.add_argument(
        "--env",
        action="store_true",
        help='print only `export` lines, for eval "$(... status --env)"',
    )
    fmt.add_argument("--json", action="store_true", help="print JSON")
    with_dir(st)

    down = sub.add_parser("down", help="stop the processes of this cluster (never `ray stop`)")
    down.add_argument(
        "--node", metavar="NAME", default=None, help="stop only this worker node (e.g. worker-1)"
    )
    down.add_argument(
        "--force",
        action="store_true",
        help="SIGKILL at once (simulates a crash) instead of SIGTERM first",
    )
    down.add_argument(
        "--grace",
        type=_grace,
        default=10.0,
        help="seconds between SIGTERM and SIGKILL (default 10)",
    )
    with_dir(down)

    again = sub.add_parser(
        "restart", help="start a stopped (or crashed) worker node again, e.g. after a drill"
    )
    again.add_argument("--node", metavar="NAME", required=True, help="the worker (e.g. worker-1)")
    with_dir(again)


def run(args: argparse.Namespace) -> int:
    directory = Path(args.dir).expanduser().resolve() if args.dir else default_cluster_dir()
    try:
        if args.action == "up":
            return _up(args, directory)
        if args.action == "status":
            return _status(args, directory)
        if args.action == "restart":
            return _restart(args, directory)
        return _down(args, directory)
    except (ClusterError, ProcessError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1


def _say(line: str) -> None:
    print(line, flush=True)


def _up(args: argparse.Namespace, directory: Path) -> int:
    if args.storage is not None and "://" in args.storage:
        raise UsageError("--storage of a local cluster must be a local directory")
    spec = ClusterSpec(
        directory=directory,
        workers=args.workers,
        num_cpus=args.num_cpus,
        head_cpus=args.head_cpus,
        object_store_mb=args.object_store_mb,
        gcs_port=args.port,
        dashboard_port=args.dashboard_port,
        auth=args.auth,
        storage=Path(args.storage).expanduser().resolve() if args.storage else None,
    )
    if spec.auth == "disabled":
        print(
            "warning: token authentication disabled: any local user can run code on this cluster",
            file=sys.stderr,
        )
    state = start_cluster(spec, say=_say)
    print()
    _print_status(state)
    return 0


def _status(args: argparse.Namespace, directory: Path) -> int:
    state = load_state(directory)
    if state is None:
        print(
            f"no cluster recorded in {directory} (start one with `python -m launch cluster up`)",
            file=sys.stderr,
        )
        return 1
    if args.env:
        for key, value in state.client_env().items():
            print(f"export {key}={shlex.quote(value)}")
        return 0
    state.use_auth()
    report = status_report(state)
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        _print_status(state, report)
    return 0 if report["healthy"] else 1


def _print_status(state: ClusterState, report: dict[str, Any] | None = None) -> None:
    report = report or status_report(state)
    print(f"cluster dir:  {state.directory}")
    print(f"address:      {state.gcs_address}   (drivers: --address {state.gcs_address})")
    print(f"dashboard:    {state.dashboard_url}   (Jobs API: --address {state.dashboard_url})")
    auth = f"token, {state.token_path} (0600)" if state.auth_mode == "token" else "DISABLED"
    print(f"auth:         {auth}")
    print(f"storage:      {state.storage}")
    if report["error"]:
        print(f"ray:          unreachable ({report['error']})")
    print("nodes:")
    for n in report["nodes"]:
        where = "stopped" if n["stopped"] else (n["ray_state"] or "not registered")
        node_id = (n["node_id"] or "-")[:12]
        print(
            f"  {n['name']:<10} {n['ip']}  CPU {n['num_cpus']}  {where:<14} "
            f"node {node_id}  {n['processes']} process(es)"
        )
    print('client environment (eval "$(python -m launch cluster status --env)"):')
    for key, value in state.client_env().items():
        print(f"  export {key}={shlex.quote(value)}")


def _down(args: argparse.Namespace, directory: Path) -> int:
    state = load_state(directory)
    if state is None:
        print(f"no cluster recorded in {directory}: nothing to stop")
        return 0
    grace = 0.0 if args.force else args.grace
    if args.node is not None:
        count = stop_worker(state, args.node, grace)
        if count is None:
            print(f"{args.node} is already stopped")
        else:
            print(f"stopped {args.node}: {count} process(es) {'killed' if args.force else 'ended'}")
        return 0
    count = stop_cluster(state, grace)
    print(f"cluster in {directory} stopped: {count} process(es)")
    return 0


def _restart(args: argparse.Namespace, directory: Path) -> int:
    state = load_state(directory)
    if state is None:
        raise ClusterError(f"no cluster recorded in {directory}: start one with `cluster up`")
    try:
        restart_worker(state, args.node, say=_say)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    return 0
