"""``python -m launch export``: ship a trained policy as safetensors weights plus a JSON file.

Examples::

    python -m launch export results/train-a/checkpoint --out models/mine
    python -m launch eval models/mine --episodes 100
    python -m launch export --sweep results/paper-grid-paper --out models/paper

The last form ships one policy per reward setting of a sweep's single-cell PPO trials into
``OUT/<setting>/`` (``d0.9_p0``, ...): of the setting's training seeds, the one with the highest
mean episode return on 100 tuning episodes (seeds from 1,000,000, never the evaluation seeds) is
shipped; ``OUT/index.json`` lists every seed's tuning return and evaluation.

Writes ``OUT/policy.safetensors`` (the actor network's float32 weights) and ``OUT/policy.json``
(architecture, action normalisation, env config with the observation transform, controller and a
manifest: training command, seed, env steps, wall time, git commit); see
:mod:`tune_configs.export`. The directory loads with numpy alone (no Ray, torch or pickle) and
``launch eval`` gives exactly the numbers of the checkpoint. Credit-pool checkpoints (``per-cell``,
``central``) are shipped by :mod:`tune_configs.pool_export`. Takes a few seconds (torch import).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from launch.cli import UsageError
from launch.common import positive_int

HELP = "ship a trained checkpoint as safetensors weights + policy.json (no pickle needed)"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("checkpoint", metavar="CHECKPOINT", nargs="?",
                   help="checkpoint directory (e.g. OUT/checkpoint from launch train)")  # fmt: skip
    p.add_argument("--sweep", metavar="EXPDIR", default=None,
                   help="ship one policy per reward setting of this sweep instead")  # fmt: skip
    p.add_argument("--tuning-episodes", type=positive_int, default=100,
                   help="--sweep: selection episodes per training seed (default 100)")  # fmt: skip
    p.add_argument("--out", required=True, metavar="DIR", help="directory to write the policy to")
    p.add_argument("--manifest", default=None, metavar="JSON",
                   help='extra manifest keys as a JSON object, e.g. \'{"selected_by": "tuning"}\''
                   )  # fmt: skip


def run(args: argparse.Namespace) -> int:
    from tune_configs.controllers import SINGLE, controller_of_checkpoint
    from tune_configs.export import describe, export_checkpoint, is_shipped, load_shipped
    from tune_configs.policy import CheckpointError

    extra = {}
    if args.manifest:
        try:
            extra = json.loads(args.manifest)
        except json.JSONDecodeError as exc:
            raise UsageError(f"--manifest is not JSON: {exc}") from None
        if not isinstance(extra, dict):
            raise UsageError("--manifest must be a JSON object")
    out = Path(args.out).expanduser()
    if (args.checkpoint is None) == (args.sweep is None):
        raise UsageError("give either CHECKPOINT or --sweep EXPDIR")
    if args.sweep is not None:
        return _ship_sweep(args)
    if out.exists() and (not out.is_dir() or any(out.iterdir())) and not is_shipped(out):
        raise UsageError(f"--out {args.out} exists and is not empty")
    if not Path(args.checkpoint).expanduser().is_dir():
        raise UsageError(f"checkpoint {args.checkpoint!r} is not a directory")
    name = controller_of_checkpoint(args.checkpoint).name
    if name != SINGLE:
        raise UsageError(f"{args.checkpoint} holds a {name} policy: ship it with "
                         "python -m tune_configs.pool_export")  # fmt: skip
    try:
        path = export_checkpoint(args.checkpoint, out, manifest=extra)
    except (CheckpointError, OSError) as exc:
        raise UsageError(str(exc)) from None
    print(f"shipped {describe(load_shipped(path))}")
    print(f"-> {path}  (python -m launch eval {path})")
    return 0


def _ship_sweep(args: argparse.Namespace) -> int:
    from tune_configs.export import ship_sweep

    if not Path(args.sweep).expanduser().is_dir():
        raise UsageError(f"--sweep {args.sweep} is not a directory")
    rows = ship_sweep(args.sweep, args.out, tuning_episodes=args.tuning_episodes)
    shipped = sorted({r["setting"] for r in rows})
    print(f"{len(shipped)} policies shipped to {args.out} (index: {Path(args.out) / 'index.json'})")
    return 0
