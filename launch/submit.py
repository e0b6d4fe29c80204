"""``python -m launch submit SWEEP``: run a sweep on a Ray cluster as a Ray job (Jobs SDK).

The job's entry point is ``python -m launch sweep SWEEP --address auto [--budget B] [--storage
PATH] [--name EXP] [--resume]``. The cluster runs the project installed on it (the container
image; a local cluster from ``python -m launch cluster up`` puts this checkout on PYTHONPATH), or,
with ``--working-dir DIR``, the code of a local checkout shipped with the job (Ray's
``working_dir`` runtime env: DIR is zipped without what its ``.gitignore`` excludes, e.g.
``.venv/`` and ``results/``, unpacked on every node and put first on the job's PYTHONPATH; the
cluster's Python environment must still provide the dependencies). Examples::

    python -m launch cluster up --workers 1
    python -m launch submit static-grid --budget small            # streams the logs, ~1-3 min
    python -m launch submit paper-grid --no-wait                  # prints the job id only
    python -m launch submit static-grid --address http://127.0.0.1:8265 \\
        --token-file ~/.ray/prod_token --storage s3://bucket/metalore --name grid-v1
    python -m launch submit static-grid --working-dir .           # run this checkout's code

``--storage`` is where Tune writes the experiment, read by the driver and every node: an absolute
path the nodes share (NFS, or any path on a one-machine cluster) or a URI (s3://, gs://). For the
local cluster it defaults to its ``storage/`` directory. Without ``--no-wait`` the driver's output
is streamed here and the exit status is 0 only if the job SUCCEEDED; Ctrl-C stops following, not
the job (``python -m launch jobs stop ID`` does).
"""

from __future__ import annotations

import argparse
import re
import secrets
import shlex
import sys
import time
from pathlib import Path
from typing import Any

from launch.cli import UsageError
from launch.common import key_value
from launch.jobs import add_client_arguments, follow_logs
from tune_configs.ops.cluster import ClusterError
from tune_configs.ops.jobs_client import call, job_client, local_storage_for, resolve_client
from tune_configs.sweeps import SWEEPS

HELP = "submit a sweep to a Ray cluster as a job (Jobs SDK); stream its logs or --no-wait"

BUDGETS = ("small", "paper")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("sweep", metavar="SWEEP", help=f"sweep name: {', '.join(SWEEPS)}")
    p.add_argument(
        "--budget",
        choices=BUDGETS,
        default=None,
        help="passed to `launch sweep --budget` (its default if omitted)",
    )
    p.add_argument(
        "--storage",
        metavar="PATH",
        default=None,
        help="shared result storage: absolute path on the nodes or URI "
        "(default: the local cluster's storage/, else the sweep's default)",
    )
    p.add_argument(
        "--name",
        metavar="EXP",
        default=None,
        help="experiment name (default: the sweep's, <sweep>-<budget>)",
    )
    p.add_argument("--resume", action="store_true", help="resume experiment --name in --storage")
    p.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="passed to `launch sweep --set` (budget entries, e.g. --set blocks=8; repeatable)",
    )
    p.add_argument(
        "--max-concurrent",
        type=int,
        default=None,
        metavar="N",
        help="passed to `launch sweep --max-concurrent`",
    )
    p.add_argument(
        "--no-wait",
        action="store_true",
        help="print the job id and return instead of streaming the logs",
    )
    p.add_argument(
        "--job-id",
        metavar="ID",
        default=None,
        help="submission id (default SWEEP-YYYYMMDD-HHMMSS-XXXX)",
    )
    p.add_argument(
        "--entrypoint-cpus",
        type=float,
        default=0.0,
        help="CPUs reserved for the driver (default 0: all CPUs go to trials)",
    )
    p.add_argument(
        "--working-dir",
        metavar="DIR",
        default=None,
        help="ship this checkout's code with the job (Ray working_dir; .gitignore'd files "
        "stay behind) instead of running the code installed on the cluster",
    )
    add_client_arguments(p)


def working_dir(path: str | None) -> str | None:
    """The absolute checkout directory ``--working-dir`` names (UsageError unless it holds the
    ``launch`` package, i.e. is a checkout of this project)."""
    if path is None:
        return None
    d = Path(path).expanduser().resolve()
    if not (d / "launch" / "__init__.py").is_file() or not (d / "pyproject.toml").is_file():
        raise UsageError(f"--working-dir {path}: not a checkout of this project (no launch/)")
    return str(d)


def validate(args: argparse.Namespace) -> None:
    """Raise UsageError for arguments that cannot make a valid job (before any network call)."""
    sweeps = tuple(SWEEPS)
    if args.sweep not in sweeps:
        raise UsageError(f"unknown sweep {args.sweep!r}; choose one of {', '.join(sweeps)}")
    storage = args.storage
    if (
        storage is not None
        and "://" not in storage
        and not Path(storage).expanduser().is_absolute()
    ):
        raise UsageError(
            f"--storage {storage!r} must be absolute (it is read on the cluster's nodes) "
            "or a URI such as s3://bucket/prefix"
        )
    for flag, value in (("--name", args.name), ("--job-id", args.job_id)):
        if value is not None and not _NAME.match(value):
            raise UsageError(f"{flag} {value!r}: use letters, digits, '.', '_', '-' (max 100)")
    for item in args.overrides:
        if "=" not in item or not item.split("=", 1)[0].strip():
            raise UsageError(f"--set expects KEY=VALUE, got {item!r}")
    from launch.sweep import check_sweep_settings

    check_sweep_settings(args.sweep, dict(key_value(item) for item in args.overrides))
    if args.max_concurrent is not None and args.max_concurrent < 1:
        raise UsageError("--max-concurrent must be >= 1")
    if not 0 <= args.entrypoint_cpus <= 64:
        raise UsageError("--entrypoint-cpus must be in [0, 64]")
    working_dir(args.working_dir)


def entrypoint(args: argparse.Namespace, storage: str | None) -> str:
    """The shell command the job runs on the cluster."""
    cmd = ["python", "-m", "launch", "sweep", args.sweep, "--address", "auto"]
    if args.budget:
        cmd += ["--budget", args.budget]
    if storage:
        cmd += ["--storage", storage]
    if args.name:
        cmd += ["--name", args.name]
    if args.resume:
        cmd.append("--resume")
    if args.max_concurrent is not None:
        cmd += ["--max-concurrent", str(args.max_concurrent)]
    for item in args.overrides:
        cmd += ["--set", item]
    return shlex.join(cmd)


def default_job_id(sweep: str) -> str:
    return f"{sweep}-{time.strftime('%Y%m%d-%H%M%S')}-{secrets.token_hex(2)}"


def run(args: argparse.Namespace) -> int:
    validate(args)
    address, auth = resolve_client(args.address, args.token_file, args.cluster_dir)
    from launch.sweep import check_sweep_settings

    # every trial config resolved here (this imports Ray: after resolve_client set the auth)
    overrides = dict(key_value(item) for item in args.overrides)
    check_sweep_settings(args.sweep, overrides, args.budget or "small")
    storage = args.storage
    if storage is None:
        storage = local_storage_for(address, args.cluster_dir)
    elif "://" not in storage:
        storage = str(Path(storage).expanduser())
    job_id = args.job_id or default_job_id(args.sweep)
    command = entrypoint(args, storage)
    metadata = {
        "launch": "submit",
        "sweep": args.sweep,
        "budget": args.budget or "",
        "name": args.name or "",
        "storage": storage or "",
        "working_dir": working_dir(args.working_dir) or "",
    }
    try:
        client = job_client(address)
        submitted = _submit(client, command, job_id, metadata, args.entrypoint_cpus,
                            working_dir(args.working_dir))  # fmt: skip
    except ClusterError as exc:
        print(f"error: {exc} ({auth})", file=sys.stderr)
        return 1
    if args.no_wait:
        print(submitted)
        print(
            f"submitted {submitted} to {address}; follow it with "
            f"`python -m launch jobs logs {submitted} --follow`",
            file=sys.stderr,
        )
        return 0
    print(f"submitted {submitted} to {address} ({auth})\n  $ {command}", file=sys.stderr)
    try:
        return follow_logs(client, submitted)
    except ClusterError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1


def _submit(
    client: Any,
    command: str,
    job_id: str,
    metadata: dict[str, str],
    cpus: float,
    code: str | None = None,
) -> str:
    from tune_configs.ops.runtime import HASH_SEED_ENV

    # the job's workers on every node sample in the same order run after run (HASH_SEED_ENV)
    runtime_env: dict[str, Any] = {"env_vars": {**HASH_SEED_ENV}}
    if code:
        runtime_env["working_dir"] = code

    def go() -> str:
        return str(
            client.submit_job(
                entrypoint=command,
                submission_id=job_id,
                metadata=metadata,
                entrypoint_num_cpus=cpus,
                runtime_env=runtime_env,
            )
        )

    return str(call(go))
