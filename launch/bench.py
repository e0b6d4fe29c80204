"""``python -m launch bench``: simulator throughput and memory on this machine.

Measures, after a warm-up that compiles the numba kernels:

* single env: steps/s through ``gymnasium.make("MetaLore-v0")`` with random actions (drawn
  beforehand, so the figure is the env's, not the action sampler's), resets included;
* vector env: sub-env steps/s of the native vector env (:mod:`envs.vector`, 64 sub-envs, one
  numba call per step, autoresets included), against Gymnasium's ``SyncVectorEnv`` of 64 single
  envs (what RLlib builds without it);
* batched: env-steps/s of the batched evaluator, (a) the static grid on shared episode seeds
  and (b) one policy over distinct seeds;
* the paper's whole static baseline (11 x 11 splits x 100 episodes x 100 steps) in seconds;
* memory: resident set size sampled while one env runs ``--memory-steps`` steps (flat means the
  simulator does not leak), and the process's peak RSS;
* with ``--rllib``: RLlib sampling throughput (needs Ray; see tune_configs).

``--pool`` measures the credit pool instead (:mod:`tune_configs.studies.scaling`): the pool env
and PPO training of the shared per-cell policy in cell-steps per second for each scenario
(throughput per cell-step against the 3-cell figure), then training with 0, 1, 2 env runners on
the largest scenario, and a projection to bigger machines from the measured rates (a few minutes
on 2 cores; ``docs/studies/city-scale.md``).

``--storage`` measures what a sweep's storage costs (:mod:`tune_configs.ops.storage`): one of
Tune's syncs of the driver's staging directory (``--trials`` trials of five files, every other
one running: its logs grew since the last sync) into the plain local file system and into the
file system the sweeps use, which never cuts a file (it compares, appends in place or replaces
whole).

Targets (2-core machine): single >= 50,000 steps/s; vector env >= 5x SyncVectorEnv; batched >=
1,000,000 env-steps/s; paper grid <= 5 s; memory flat over 10 million steps (``--memory-steps
10000000``, about 4 minutes). ``--rllib`` adds about a minute.
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import time
from typing import Any

from launch.common import episode_count, positive_int, print_json

HELP = "measure simulator speed (single env, batched, static grid) and memory"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.add_argument("--single-steps", type=positive_int, default=300_000,
                   help="steps for the single-env figure")  # fmt: skip
    p.add_argument("--repeats", type=positive_int, default=3,
                   help="repeat each timing and report the best and the median")  # fmt: skip
    p.add_argument(
        "--memory-steps",
        type=positive_int,
        default=2_000_000,
        help="steps of the memory run (10000000 for the 10-million-step check)",
    )
    p.add_argument("--grid-episodes", type=episode_count, default=100,
                   help="episodes of the static-grid figures (default 100: the paper's grid)"
                   )  # fmt: skip
    p.add_argument("--rllib", action="store_true", help="also measure RLlib sampling (slow)")
    g = p.add_argument_group("a sweep's storage (--storage)")
    g.add_argument("--storage", action="store_true",
                   help="time one of Tune's syncs into the sweeps' storage instead "
                        "(no file cut) and into the plain local file system")  # fmt: skip
    g.add_argument(
        "--trials",
        type=positive_int,
        default=500,
        help="trials in the synced staging directory (default 500)",
    )
    g = p.add_argument_group("the credit pool (--pool)")
    g.add_argument("--pool", action="store_true",
                   help="measure the pool env and per-cell PPO training against the number of "
                        "cells and of env runners instead")  # fmt: skip
    g.add_argument("--scenarios", type=_scenario_list, default=None,
                   help="comma-separated pool scenarios (default: " + ", ".join(POOL_DEFAULT)
                        + ")")  # fmt: skip
    g.add_argument(
        "--env-runners",
        type=_runner_list,
        default=(0, 1, 2),
        help="env runner counts to train with on the largest scenario (default 0,1,2)",
    )
    g.add_argument(
        "--iterations",
        type=positive_int,
        default=3,
        help="timed PPO iterations per figure after one warm-up (default 3)",
    )
    g.add_argument(
        "--address",
        default=None,
        help="run the env runners on this Ray cluster (default: embedded local Ray)",
    )


POOL_DEFAULT = ("three_cell_hetero", "seven_cell_hetero", "city_19", "city_49")


def _scenario_list(text: str) -> tuple[str, ...]:
    from envs.core.pool.scenarios import SCENARIOS

    names = tuple(n.strip() for n in text.split(",") if n.strip())
    unknown = [n for n in names if n not in SCENARIOS]
    if not names or unknown:
        raise argparse.ArgumentTypeError(
            f"unknown pool scenario(s) {unknown or text!r}; known: {', '.join(sorted(SCENARIOS))}"
        )
    return names


def _runner_list(text: str) -> tuple[int, ...]:
    try:
        counts = tuple(sorted({int(n) for n in text.split(",")}))
    except ValueError:
        counts = ()
    if not counts or counts[0] < 0 or counts[-1] > 64:
        raise argparse.ArgumentTypeError(f"{text!r}: comma-separated integers in [0, 64] expected")
    return counts


def _rss_mb() -> float:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def single_env(steps: int) -> float:
    import gymnasium as gym
    import numpy as np

    import envs  # noqa: F401  (registers the id)

    env = gym.make("MetaLore-v0")
    actions = np.random.default_rng(0).random((steps, 2)).astype(np.float32)
    env.reset(seed=0)
    t0 = time.perf_counter()
    for a in actions:
        if env.step(a)[3]:
            env.reset()
    return steps / (time.perf_counter() - t0)


def vector_env(steps: int, native: bool, num_envs: int = 64) -> float:
    """Sub-env steps/s of the native vector env, or of ``SyncVectorEnv`` of single envs."""
    import gymnasium as gym
    import numpy as np

    import envs  # noqa: F401

    mode = "vector_entry_point" if native else "sync"
    vec = gym.make_vec("MetaLore-v0", num_envs=num_envs, vectorization_mode=mode)
    rounds = max(steps // num_envs, 1)
    actions = np.random.default_rng(0).random((rounds, num_envs, 2)).astype(np.float32)
    vec.reset(seed=0)
    t0 = time.perf_counter()
    for a in actions:
        vec.step(a)
    rate = rounds * num_envs / (time.perf_counter() - t0)
    vec.close()
    return rate


def batched(shared_seeds: bool, episodes: int = 100) -> tuple[float, float]:
    """(env-steps/s, seconds): the paper grid on ``episodes`` shared seeds, or one policy on
    121 x ``episodes`` seeds."""
    from envs.core import make_params
    from envs.core.batch import evaluate
    from envs.core.policies import static, static_grid

    params = make_params("paper")
    if shared_seeds:
        policies = static_grid(0.1)
    else:
        policies, episodes = [static(0.3, 0.4)], 121 * episodes
    t0 = time.perf_counter()
    evaluate(params, policies, episodes, seed=0)
    dt = time.perf_counter() - t0
    return len(policies) * episodes * params.scenario.episode_steps / dt, dt


def memory_run(steps: int) -> dict[str, Any]:
    import gymnasium as gym
    import numpy as np

    import envs  # noqa: F401

    env = gym.make("MetaLore-v0")
    rng = np.random.default_rng(1)
    block = rng.random((10_000, 2)).astype(np.float32)
    env.reset(seed=0)
    samples = []
    checkpoints = max(1, steps // 10)
    for i in range(steps):
        if env.step(block[i % len(block)])[3]:
            env.reset()
        if (i + 1) % checkpoints == 0:
            samples.append(round(_rss_mb(), 1))
    return {"steps": steps, "rss_mb_samples": samples,
            "rss_growth_mb": round(samples[-1] - samples[0], 1)}  # fmt: skip


def _best_median(values: list[float]) -> dict[str, float]:
    v = sorted(values)
    return {"best": v[-1], "median": v[len(v) // 2]}


def run(args: argparse.Namespace) -> int:
    if args.pool:
        return run_pool(args)
    if args.storage:
        return run_storage(args)
    single_env(2_000)  # compile and warm up
    vector_env(2_000, native=True)
    batched(True, min(args.grid_episodes, 10))
    singles = [single_env(args.single_steps) for _ in range(args.repeats)]
    natives = [vector_env(args.single_steps, native=True) for _ in range(args.repeats)]
    syncs = [vector_env(args.single_steps // 4, native=False) for _ in range(args.repeats)]
    grid = [batched(True, args.grid_episodes) for _ in range(args.repeats)]
    distinct = [batched(False, args.grid_episodes) for _ in range(args.repeats)]
    out: dict[str, Any] = {
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "platform": platform.platform(),
        },
        "single_env_steps_per_s": _best_median(singles),
        "vector_env_64_steps_per_s": _best_median(natives),
        "sync_vector_env_64_steps_per_s": _best_median(syncs),
        "batched_env_steps_per_s_shared_seeds": _best_median([g[0] for g in grid]),
        "batched_env_steps_per_s_distinct_seeds": _best_median([d[0] for d in distinct]),
        "grid_episodes": args.grid_episodes,
        "paper_static_grid_s": {
            "best": min(g[1] for g in grid),
            "median": sorted(g[1] for g in grid)[len(grid) // 2],
        },
    }
    out["memory"] = memory_run(args.memory_steps)
    if args.rllib:
        from tune_configs.ops.bench import rllib_sampling_throughput

        out["rllib_sampling"] = rllib_sampling_throughput()
    out["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    if args.json:
        print_json(out)
        return 0
    s, g, d = (out["single_env_steps_per_s"], out["batched_env_steps_per_s_shared_seeds"],
               out["batched_env_steps_per_s_distinct_seeds"])  # fmt: skip
    grid_s = out["paper_static_grid_s"]
    mem = out["memory"]
    print(f"machine: {out['machine']['cpus']} CPUs, Python {out['machine']['python']}")
    print(f"{'figure':<44} {'best':>14} {'median':>14}   target")
    rows = [
        ("single env via gymnasium.make [steps/s]", s, ">= 50,000"),
        (
            "native vector env, 64 sub-envs [steps/s]",
            out["vector_env_64_steps_per_s"],
            ">= 5x sync",
        ),
        ("SyncVectorEnv of 64 single envs [steps/s]", out["sync_vector_env_64_steps_per_s"], ""),
        ("batched, shared seeds [env-steps/s]", g, ">= 1,000,000"),
        ("batched, distinct seeds [env-steps/s]", d, ""),
    ]
    for name, fig, target in rows:
        print(f"{name:<44} {fig['best']:>14,.0f} {fig['median']:>14,.0f}   {target}")
    grid_name = f"paper static grid 11x11x{out['grid_episodes']}x100 [s]"
    print(f"{grid_name:<44} {grid_s['best']:>14.2f} "
          f"{grid_s['median']:>14.2f}   <= 5")  # fmt: skip
    print(f"memory over {mem['steps']:,} steps: RSS samples {mem['rss_mb_samples']} MB, "
          f"growth {mem['rss_growth_mb']} MB")  # fmt: skip
    if "rllib_sampling" in out:
        print("RLlib (PPO defaults, 1 torch thread): env steps/s sampled (best, median), trained")
        for row in out["rllib_sampling"]["layouts"]:
            name = f"{row['env_runners']}x{row['envs_per_runner']} {row['vector_env']}"
            if row["skipped"]:
                print(f"  {name:<16} skipped: {row['skipped']}")
                continue
            print(f"  {name:<16} sample {row['sample_steps_per_s']:>9,.0f} "
                  f"{row['sample_steps_per_s_median']:>9,.0f}   train "
                  f"{row['train_steps_per_s'] or 0:>9,.0f}")  # fmt: skip
    print(f"peak RSS: {out['peak_rss_mb']} MB")
    return 0


def run_storage(args: argparse.Namespace) -> int:
    import tempfile
    from pathlib import Path

    from tune_configs.ops.bench import TRIAL_FILES, sync_seconds

    with tempfile.TemporaryDirectory(prefix="metalore-bench-") as tmp:
        times = sync_seconds(args.trials, args.repeats, Path(tmp))
    files = args.trials * len(TRIAL_FILES)
    mb = args.trials * sum(size for _, size in TRIAL_FILES) / 1e6
    out: dict[str, Any] = {
        "machine": {"cpus": os.cpu_count(), "load": os.getloadavg()},
        "trials": args.trials, "files": files, "megabytes": round(mb, 1),
        "sync_s": {name: {"best": min(v), "median": sorted(v)[len(v) // 2]}
                   for name, v in times.items()},
    }  # fmt: skip
    if args.json:
        print_json(out)
        return 0
    print(f"one sync of {args.trials} trials ({files:,} files, {mb:.1f} MB; every other trial "
          f"running: its logs grew) over the previous copy [s]; load "
          f"{out['machine']['load'][0]:.2f}")  # fmt: skip
    print(f"{'storage':<44} {'best':>10} {'median':>10}")
    names = {"local": "plain local file system", "whole": "sweeps' storage (no file cut)"}
    for key, name in names.items():
        fig = out["sync_s"][key]
        print(f"{name:<44} {fig['best']:>10.3f} {fig['median']:>10.3f}")
    return 0


# Machines the projection is printed for: (name, env runners), one core each plus the learner's.
PROJECTED = (("one 16-core node", 15), ("4 nodes of 16 cores", 63))


def run_pool(args: argparse.Namespace) -> int:
    import sys

    from envs.core.pool.scenarios import SCENARIOS
    from tune_configs.studies.scaling import projection, run_bench

    scenarios = args.scenarios or tuple(n for n in POOL_DEFAULT if n in SCENARIOS)
    largest = scenarios[-1]

    def say(msg: str) -> None:
        print(msg, file=sys.stderr, flush=True)

    out = run_bench(scenarios, args.env_runners, largest, iterations=args.iterations,
                    address=args.address, say=say)  # fmt: skip
    base = out["training"][0]
    by_runners = {r["env_runners"]: r for r in out["env_runners"]}
    proj: list[dict[str, Any]] = []
    if 1 in by_runners and 0 in by_runners:
        one, zero = by_runners[1], by_runners[0]
        r = one["batch_env_steps"] * one["cells"] / max(one["sample_s"], 1e-9)
        c = zero["learn_s_per_cell_step"]
        proj = [{"machine": name, "env_runners": n, "per_runner_cell_steps_per_s": r,
                 "learn_s_per_cell_step": c, "cell_steps_per_s": projection(r, c, n)}
                for name, n in PROJECTED]  # fmt: skip
    out["projection"] = proj
    out["machine"] = {"cpus": os.cpu_count(), "load": os.getloadavg()}
    if args.json:
        print_json(out)
        return 0
    print(f"machine: {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f} at the end")
    print("pool env as PPO sees it (greedy actions)   cells   env steps/s  cell-steps/s")
    for row in out["simulator"]:
        print(f"  {row['scenario']:<40} {row['cells']:>5} {row['env_steps_per_s']:>13,.0f} "
              f"{row['cell_steps_per_s']:>13,.0f}")  # fmt: skip
    print(
        "PPO, shared per-cell policy, in the driver  cells  cell-steps/s (median)  vs "
        f"{base['scenario']}  sample s  learn s per iteration"
    )
    for row in out["training"]:
        ratio = row["cell_steps_per_s_median"] / max(base["cell_steps_per_s_median"], 1e-9)
        print(f"  {row['scenario']:<40} {row['cells']:>5} {row['cell_steps_per_s_median']:>13,.0f}"
              f"  {ratio:>17.2f}  {row['sample_s']:>8.2f}  {row['learn_s']:>7.2f}")  # fmt: skip
    print(f"PPO on {largest}, env runners: env steps/s, cell-steps/s (median), s per iteration")
    for row in out["env_runners"]:
        n, rate = row["env_runners"], row["cell_steps_per_s_median"]
        print(f"  {n:>2} runner(s) {row['env_steps_per_s_median']:>12,.1f} {rate:>13,.0f} "
              f"{row['iteration_s_median']:>8.2f}")  # fmt: skip
    for p in proj:
        print(f"projection, {p['machine']} ({p['env_runners']} runners): "
              f"{p['cell_steps_per_s']:,.0f} cell-steps/s (one runner samples "
              f"{p['per_runner_cell_steps_per_s']:,.0f}/s, the learner takes "
              f"{p['learn_s_per_cell_step'] * 1e6:.1f} us per cell-step)")  # fmt: skip
    return 0
