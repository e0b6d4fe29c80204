"""``python -m launch eval``: deterministic evaluation of a trained policy, without a Ray cluster.

Examples::

    python -m launch eval results/train-a/checkpoint --episodes 100 --seed 0 --json
    python -m launch eval results/train-a/checkpoint --out results/eval-a

Restores the policy network from the RLlib checkpoint (``tune_configs.policy``), runs it on episode
seeds ``seed .. seed+episodes-1`` (the same episodes the static baselines use) taking the mean of
its action distribution, and prints the same keys as ``launch static --json``: w_b, w_c (here the
mean applied action), episodes, sync_delay(_std), e2e_delay(_std), served_pct(_std),
episode_return(_std), plus policy, kind and the other metrics. ``--out DIR`` writes a result set
(run.json kind "eval", episodes.csv, summary.json). 100 episodes take a few seconds. A missing or
corrupt checkpoint is a usage error (exit 2).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

from launch.common import finite_float, fmt_pm, nonneg_int, positive_int, print_json

HELP = "evaluate a trained PPO checkpoint deterministically (no Ray cluster needed)"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("checkpoint", metavar="CHECKPOINT",
                   help="checkpoint directory (e.g. OUT/checkpoint from launch train)")  # fmt: skip
    p.add_argument("--episodes", type=positive_int, default=100, help="episodes (default 100)")
    p.add_argument("--seed", type=nonneg_int, default=0, help="episode seeds seed..seed+N-1")
    p.add_argument(
        "--delta",
        type=finite_float,
        default=None,
        help="score the reward with this delta (default: the training one)",
    )
    p.add_argument(
        "--penalty",
        type=finite_float,
        default=None,
        help="score the reward with this penalty (default: the training one)",
    )
    p.add_argument("--out", metavar="DIR", help="also write a result set (kind eval) to DIR")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")


def cli_summary(summary: dict[str, Any]) -> dict[str, Any]:
    """A summary in ``launch static --json`` key order, w_b/w_c = the mean applied action."""
    from launch.static import CLI_KEYS

    s = dict(summary)
    s["w_b"], s["w_c"] = s.get("mean_w_b"), s.get("mean_w_c")
    return {**{k: s.get(k) for k in CLI_KEYS}, **s}


def evaluate_checkpoint(
    checkpoint: str | Path,
    episodes: int,
    seed: int,
    out_dir: str | Path | None = None,
    extra: dict[str, Any] | None = None,
    kind: str = "eval",
    **env_overrides: Any,
) -> dict[str, Any]:
    """Evaluate a checkpoint; optionally write a result set. Returns the CLI summary dict."""
    from analysis.resultset import aggregate_rows, run_metadata, write_result_set
    from tune_configs.policy import evaluate_policy, load_policy

    policy = load_policy(checkpoint, **env_overrides)
    t0 = time.perf_counter()
    rows = evaluate_policy(policy, episodes, seed)
    elapsed = time.perf_counter() - t0
    if out_dir is not None:
        meta = run_metadata(
            kind, policy.params, preset=policy.preset, seed=seed, episodes=episodes,
            checkpoint=str(policy.checkpoint), env_config=policy.env_config,
            elapsed_s=round(elapsed, 3), **(extra or {}),
        )  # fmt: skip
        summaries = write_result_set(out_dir, meta, rows)
    else:
        summaries = aggregate_rows(rows)
    return cli_summary(summaries[0])


def print_summary(s: dict[str, Any]) -> None:
    print(f"policy       {s['policy']}  ({s['episodes']} episodes from seed {s['seed']})")
    print(f"sync delay   {fmt_pm(s['sync_delay'], s['sync_delay_std'])}")
    print(f"E2E delay    {fmt_pm(s['e2e_delay'], s['e2e_delay_std'])}")
    print(f"served %     {fmt_pm(s['served_pct'], s['served_pct_std'])}")
    print(f"return       {fmt_pm(s['episode_return'], s['episode_return_std'], 1)}")
    print(f"mean action  w_b {fmt_pm(s['mean_w_b'], s['mean_w_b_std'], 3)}, "
          f"w_c {fmt_pm(s['mean_w_c'], s['mean_w_c_std'], 3)}")  # fmt: skip


def run(args: argparse.Namespace) -> int:
    overrides: dict[str, Any] = {}
    if args.delta is not None:
        overrides["delta"] = args.delta
    if args.penalty is not None:
        overrides["penalty"] = args.penalty
    summary = evaluate_checkpoint(args.checkpoint, args.episodes, args.seed, args.out, **overrides)
    if args.json:
        print_json(summary)
    else:
        print_summary(summary)
        if args.out:
            print(f"results written to {args.out}")
    return 0
