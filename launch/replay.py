"""``python -m launch replay``: controllers acting on one episode, as a figure, a video and a CSV.

Examples::

    python -m launch replay models/paper/adaptive split:0.3,0.3 --preset paper_dynamic \\
        --seed 3 --out results/replay-adaptive
    python -m launch replay models/pool/three_cell_hetero rule:greedy --seed 7000 \\
        --out results/replay-pool
    python -m launch replay rule:queue_aware split:0.4,0.4 --preset paper --set n_ues=20

A controller is a policy directory (shipped, ``models/...``, or a checkpoint), ``split:W_B,W_C``,
``rule:queue_aware``, ``rule:heuristic``, ``rule:greedy`` (credit pool) or
``rule:greedy:B,C;B,C;...`` (:mod:`tune_configs.replay`); all act on the same episode seed.
``--out DIR`` (default ``results/replay``) receives ``timeline.png`` (the timeline figure),
``replay.mp4`` (the rendered frames side by side; ``replay.gif`` where MP4 cannot be written, or
with ``--video gif``), ``replay.csv`` (one row per controller, step and cell, what the figure is
drawn from) and ``replay.json`` (command, scenario, each controller's episode metrics);
:mod:`analysis.replay`. Two controllers on a 100-step episode take a few seconds. A controller
that is not one of these forms is a usage error (exit status 2).
"""

from __future__ import annotations

import argparse
import sys

from envs.core.presets import PRESETS
from launch.cli import UsageError
from launch.common import add_set_argument, nonneg_int

HELP = "replay controllers on one episode: timeline figure, video and per-step CSV"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("controllers", nargs="+", metavar="CONTROLLER",
                   help="a policy directory, split:W_B,W_C, rule:queue_aware, rule:heuristic, "
                   "rule:greedy[:B,C;B,C;...]")  # fmt: skip
    p.add_argument("--preset", default=None, choices=sorted(PRESETS),
                   help="scenario (default: the first policy's evaluation scenario, else paper, "
                   "or three_cell_hetero on the credit pool)")  # fmt: skip
    add_set_argument(p, "override a scenario parameter (repeatable)")
    p.add_argument("--seed", type=nonneg_int, default=0, help="the episode seed (default 0)")
    p.add_argument("--out", metavar="DIR", default="results/replay",
                   help="output directory (default results/replay)")  # fmt: skip
    p.add_argument("--video", choices=("mp4", "gif", "none"), default="mp4",
                   help="video format (mp4 falls back to gif where it cannot be "
                   "written)")  # fmt: skip


def run(args: argparse.Namespace) -> int:
    from analysis.replay import write_replay
    from tune_configs.policies.checkpoint import CheckpointError
    from tune_configs.replay import SpecError, parse_spec, run_replay

    try:
        specs = [parse_spec(text) for text in args.controllers]
        replay = run_replay(
            specs, args.seed, args.preset, dict(args.overrides), args.video != "none",
            say=lambda msg: print(msg, file=sys.stderr, flush=True),
        )  # fmt: skip
    except (SpecError, CheckpointError, OSError) as exc:
        raise UsageError(str(exc)) from None
    video = None if args.video == "none" else args.video
    paths = write_replay(args.out, replay.traces, replay.meta(), video, replay.title,
                         replay.regimes)  # fmt: skip
    print(f"scenario   {replay.scenario}, episode seed {replay.seed}")
    for note in replay.notes:
        print(f"note       {note}")
    for tr in replay.traces:
        s = tr.summary
        if replay.pool:
            line = (f"fulfilled {s['fulfillment_pct']:.1f} %, completion {s['completion_pct']:.1f} "
                    f"%, borrowed {s.get('units_borrowed', 0.0):.0f} units")  # fmt: skip
        else:
            sync, e2e = s.get("sync_delay"), s.get("e2e_delay")
            line = (f"return {s['episode_return']:.1f}, served {s['served_pct']:.1f} %, sync "
                    f"delay {'n/a' if sync is None else f'{sync:.2f}'}, E2E delay "
                    f"{'n/a' if e2e is None else f'{e2e:.2f}'}")  # fmt: skip
        print(f"{tr.controller:<32} {line}")
    for kind, path in paths.items():
        print(f"{kind:<10} {path}")
    return 0
