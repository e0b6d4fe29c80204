"""``python -m launch eval``: deterministic evaluation of a trained policy, without a Ray cluster.

Examples::

    python -m launch eval results/train-a/checkpoint --episodes 100 --seed 0 --json
    python -m launch eval results/train-a/checkpoint --out results/eval-a
    python -m launch eval results/train-a/checkpoint --preset paper_20ue --set ue_job_prob=0.5

Restores the policy network from the checkpoint (:mod:`tune_configs.controllers`: a single-cell
policy, or a per-cell pool policy, recognised by its sidecar), runs it on episode seeds
``seed .. seed+episodes-1`` (the same episodes the static baselines use) taking the mean of its
action distribution, on the scenario it was trained on or on any other (``--preset``, ``--set
NAME=VALUE``, ``--delta``, ``--penalty``; the observation transform stays the training one). A
single-cell policy prints the same keys as ``launch static --json``: w_b, w_c (here the mean
applied action), episodes, sync_delay(_std), e2e_delay(_std), served_pct(_std),
episode_return(_std), plus policy, kind and the other metrics; a pool policy prints the CIVIC
metrics (fulfillment_pct, units_borrowed, ...). ``--out DIR`` writes a result set (run.json kind
"eval" or "pool-eval", episodes.csv, summary.json). 100 episodes take a few seconds. A missing or
corrupt checkpoint is a usage error (exit 2).
"""

from __future__ import annotations

import argparse
from typing import Any

from envs.core.presets import PRESETS
from launch.cli import UsageError
from launch.common import (
    add_episode_arguments,
    add_reward_arguments,
    add_set_argument,
    check_out_dir,
    fmt_pm,
    overrides_from_args,
    print_json,
)

HELP = "evaluate a trained PPO checkpoint deterministically (no Ray cluster needed)"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("checkpoint", metavar="CHECKPOINT",
                   help="checkpoint directory (e.g. OUT/checkpoint from launch train)")  # fmt: skip
    add_episode_arguments(p, "episodes")
    add_reward_arguments(
        p,
        "score the reward with this delta (default: the training one)",
        "score the reward with this penalty (default: the training one)",
    )
    p.add_argument("--preset", default=None, choices=sorted(PRESETS),
                   help="evaluate on exactly this scenario (default: the training scenario "
                   "without its training-only randomisation, e.g. traffic_randomize)")  # fmt: skip
    add_set_argument(p, "override any scenario parameter (repeatable)")
    p.add_argument("--out", metavar="DIR", help="also write a result set (kind eval) to DIR")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")


def print_summary(s: dict[str, Any]) -> None:
    from tune_configs.policies.pool import POOL_CONTROLLERS

    print(f"policy       {s['policy']}  ({s['episodes']} episodes from seed {s['seed']})")
    if s.get("evaluated_on"):
        print(f"scenario     {s['evaluated_on']['description']}")
    if s.get("controller") in POOL_CONTROLLERS:
        for key in ("fulfillment_pct", "completion_pct", "served_clients", "fairness",
                    "operational_cost", "units_borrowed"):  # fmt: skip
            print(f"{key:<18} {fmt_pm(s.get(key), s.get(f'{key}_std'))}")
        return
    print(f"sync delay   {fmt_pm(s['sync_delay'], s['sync_delay_std'])}")
    print(f"E2E delay    {fmt_pm(s['e2e_delay'], s['e2e_delay_std'])}")
    print(f"served %     {fmt_pm(s['served_pct'], s['served_pct_std'])}")
    print(f"return       {fmt_pm(s['episode_return'], s['episode_return_std'], 1)}")
    print(f"mean action  w_b {fmt_pm(s['mean_w_b'], s['mean_w_b_std'], 3)}, "
          f"w_c {fmt_pm(s['mean_w_c'], s['mean_w_c_std'], 3)}")  # fmt: skip


def run(args: argparse.Namespace) -> int:
    check_out_dir(args.out)
    from tune_configs.controllers import evaluate_checkpoint
    from tune_configs.policies.checkpoint import CheckpointError

    overrides = overrides_from_args(args)
    if args.preset is not None:
        overrides["preset"] = args.preset
    try:
        summary = evaluate_checkpoint(
            args.checkpoint, args.episodes, args.seed, args.out, **overrides
        )
    except (CheckpointError, OSError) as exc:
        raise UsageError(str(exc)) from None
    if args.json:
        print_json(summary)
    else:
        print_summary(summary)
        if args.out:
            print(f"results written to {args.out}")
    return 0
