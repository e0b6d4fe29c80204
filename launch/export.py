"""``python -m launch export``: ship a trained policy as safetensors weights plus a JSON file.

Examples::

    python -m launch export results/train-a/checkpoint --out models/mine
    python -m launch eval models/mine --episodes 100
    python -m launch export --sweep results/paper-grid-paper --out models/paper
    python -m launch export --pool-runs results/pool_runs/hetero_central_s* \
        --scenario three_cell_hetero --out models/pool/three_cell_hetero

The ``--sweep`` form ships one policy per reward setting of a sweep's single-cell PPO trials into
``OUT/<setting>/`` (``d0.9_p0``, ...): of the setting's training seeds, the one with the highest
mean episode return on 100 tuning episodes (seeds from 1,000,000, never the evaluation seeds) is
shipped; ``OUT/index.json`` lists every seed's tuning return and evaluation.

Writes ``OUT/policy.safetensors`` (the actor network's float32 weights) and ``OUT/policy.json``
(architecture, action normalisation, env config with the observation transform, controller and a
manifest: training command, seed, env steps, wall time, git commit); see
:mod:`tune_configs.export`. The directory loads with numpy alone (no Ray, torch or pickle) and
``launch eval`` gives exactly the numbers of the checkpoint. Credit-pool checkpoints (``per-cell``,
``central``) ship the same way (:mod:`tune_configs.export`); their manifest comes from the
``launch train`` run the checkpoint belongs to (``RUN/checkpoint`` or ``RUN/checkpoint_NNNNN``).

The ``--pool-runs`` form chooses among every checkpoint (final and intermediate) of the given
pool training runs on tuning episodes (seeds from 3,000,000; :mod:`tune_configs.selection`)
and ships the best, with the selection in its manifest (``--every K``: only the checkpoints of
every K-th iteration, and the final ones). Takes a few seconds (torch import); a pool selection
about 3 s per checkpoint on 3 cells, 20 s on ``city_19``, 60 s on ``city_49`` (100 episodes,
pool on and off).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from launch.cli import UsageError
from launch.common import episode_count, finite_float, positive_int

HELP = "ship a trained checkpoint as safetensors weights + policy.json (no pickle needed)"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("checkpoint", metavar="CHECKPOINT", nargs="?",
                   help="checkpoint directory (e.g. OUT/checkpoint from launch train)")  # fmt: skip
    p.add_argument("--sweep", metavar="EXPDIR", default=None,
                   help="ship one policy per reward setting of this sweep instead")  # fmt: skip
    p.add_argument("--pool-runs", metavar="RUN", nargs="+", default=None,
                   help="choose among the checkpoints of these pool training runs")  # fmt: skip
    p.add_argument("--scenario", default=None,
                   help="--pool-runs: the multi-cell preset to choose on (required)")  # fmt: skip
    p.add_argument("--endowment", type=finite_float, default=1000.0,
                   help="--pool-runs: credits per cell (default 1000)")  # fmt: skip
    p.add_argument("--tuning-episodes", type=episode_count, default=100,
                   help="--sweep, --pool-runs: tuning episodes per candidate (default 100)"
                   )  # fmt: skip
    p.add_argument("--every", type=positive_int, default=1, metavar="K",
                   help="--pool-runs: the candidates are the intermediate checkpoints of "
                        "iterations that are multiples of K, and the final ones (default 1: "
                        "all)")  # fmt: skip
    p.add_argument("--out", required=True, metavar="DIR", help="directory to write the policy to")
    p.add_argument("--manifest", default=None, metavar="JSON",
                   help='extra manifest keys as a JSON object, e.g. \'{"selected_by": "tuning"}\''
                   )  # fmt: skip


def run(args: argparse.Namespace) -> int:
    from tune_configs.controllers import controller_of_checkpoint
    from tune_configs.export import describe
    from tune_configs.policies.checkpoint import CheckpointError
    from tune_configs.policies.shipped import is_shipped, load_shipped

    extra = {}
    if args.manifest:
        try:
            extra = json.loads(args.manifest)
        except json.JSONDecodeError as exc:
            raise UsageError(f"--manifest is not JSON: {exc}") from None
        if not isinstance(extra, dict):
            raise UsageError("--manifest must be a JSON object")
    out = Path(args.out).expanduser()
    sources = [args.checkpoint is not None, args.sweep is not None, args.pool_runs is not None]
    if sum(sources) != 1:
        raise UsageError("give exactly one of CHECKPOINT, --sweep EXPDIR, --pool-runs RUN ...")
    if args.scenario is not None and args.pool_runs is None:
        raise UsageError("--scenario goes with --pool-runs")
    if args.every != 1 and args.pool_runs is None:
        raise UsageError("--every goes with --pool-runs")
    occupied = out.exists() and (not out.is_dir() or any(out.iterdir())) and not is_shipped(out)
    if occupied and args.sweep is None:
        raise UsageError(f"--out {args.out} exists and is not empty")
    if args.sweep is not None:
        return _ship_sweep(args)
    if args.pool_runs is not None:
        return _ship_pool_selection(args, out)
    ckpt = Path(args.checkpoint).expanduser()
    if not ckpt.is_dir():
        raise UsageError(f"checkpoint {args.checkpoint!r} is not a directory")
    try:
        path = controller_of_checkpoint(ckpt).export(ckpt, out, extra)
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


def _ship_pool_selection(args: argparse.Namespace, out: Path) -> int:
    from envs.core.presets import PRESETS
    from tune_configs.selection import ship_selected

    if args.scenario is None:
        raise UsageError("--pool-runs needs --scenario (the multi-cell preset to choose on)")
    multicell = [n for n, params in PRESETS.items() if len(params.scenario.bs_positions) > 1]
    if args.scenario not in multicell:
        raise UsageError(f"--scenario {args.scenario!r}: not a multi-cell preset "
                         f"({', '.join(multicell)})")  # fmt: skip
    missing = [r for r in args.pool_runs if not (Path(r).expanduser() / "train.json").is_file()]
    if missing:
        raise UsageError(f"not launch train output directories (no train.json): {missing}")
    path, best = ship_selected(
        args.pool_runs, args.scenario, out, args.endowment, args.tuning_episodes, args.every
    )
    print(f"shipped {best['checkpoint']} (tuning score {best['score']:.2f}) -> {path}")
    print(f"python -m launch pool-compare --scenario {args.scenario} --checkpoint {path}")
    return 0
