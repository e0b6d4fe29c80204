"""Dispatcher for ``python -m launch``.

Every subcommand lives in its own module under ``launch/`` and exposes three names:

* ``HELP``: one line shown in ``python -m launch --help``;
* ``add_arguments(parser)``: adds its arguments to an ``argparse`` parser;
* ``run(args) -> int``: does the work and returns the exit code.

Modules import heavy dependencies (ray, torch, matplotlib) inside ``run`` so that
``python -m launch static`` never pays for Ray. Bad input raises :class:`UsageError`
(or ``ValueError`` from parameter validation): the dispatcher prints the message with the
subcommand's usage and exits with status 2, without a traceback.
"""

from __future__ import annotations

import argparse
import importlib
import sys
import time
from collections.abc import Sequence

# When the dispatcher was imported (about when ``python -m launch`` started): commands that time
# their phases count the imports from here.
STARTED = time.perf_counter()

# subcommand -> module; the order is the order of ``--help``.
COMMANDS: dict[str, str] = {
    "static": "launch.static",
    "bench": "launch.bench",
    "train": "launch.train",
    "eval": "launch.evaluate",
    "export": "launch.export",
    "sweep": "launch.sweep",
    "report": "launch.report",
    "cluster": "launch.cluster",
    "submit": "launch.submit",
    "jobs": "launch.jobs",
    "pool-compare": "launch.pool_compare",
    "pool-load": "launch.pool_load",
    "replay": "launch.replay",
    "adapt": "launch.adapt",
    "front-study": "launch.front_study",
    "dashboard": "launch.dashboard",
}


class UsageError(Exception):
    """Bad command-line input: reported as a usage message and exit status 2."""


def build_parser(
    command: str | None = None,
) -> tuple[argparse.ArgumentParser, dict[str, argparse.ArgumentParser]]:
    """The parser; only ``command``'s module is imported (all of them when it is None)."""
    parser = argparse.ArgumentParser(
        prog="python -m launch",
        description="MetaLore platform: simulate, evaluate baselines, train, sweep, report.",
    )
    sub = parser.add_subparsers(dest="command", metavar="<command>")
    sub.required = True
    subparsers: dict[str, argparse.ArgumentParser] = {}
    for name, module_name in COMMANDS.items():
        if command is not None and name != command:
            sub.add_parser(name, add_help=False)
            continue
        if command is None:
            sub.add_parser(name, help=importlib.import_module(module_name).HELP)
            continue
        module = importlib.import_module(module_name)
        p = sub.add_parser(name, help=module.HELP, description=module.HELP)
        module.add_arguments(p)
        p.set_defaults(_module=module)
        subparsers[name] = p
    return parser, subparsers


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    command = next((a for a in argv if not a.startswith("-")), None)
    if command not in COMMANDS:
        command = None
    parser, subparsers = build_parser(command)
    args = parser.parse_args(argv)
    try:
        return int(args._module.run(args) or 0)
    except (UsageError, ValueError) as exc:
        sub = subparsers.get(args.command, parser)
        sub.print_usage(sys.stderr)
        print(f"{sub.prog}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
