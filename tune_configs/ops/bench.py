"""Benchmarks of RLlib on MetaLore, and of a sweep's storage (for ``python -m launch bench``).

:func:`sync_seconds` times one of Tune's syncs into the sweeps' storage
(:mod:`tune_configs.ops.storage`) and into the plain local file system (``--storage``).

:func:`rllib_sampling_throughput` builds one PPO algorithm per env-runner layout
``(num_env_runners, num_envs_per_env_runner, vector)`` (``vector``: the native vector env of
:mod:`envs.vector`, or ``sync``: RLlib's ``SyncVectorEnv`` of single envs), warms it up, then
times

* sampling alone (``synchronous_parallel_sample`` over all runners, the exploration policy), and
* whole training iterations (sampling + the PPO update with the default hyper-parameters),

and returns env steps per second for each, plus the best layout. It starts an embedded Ray
(loopback only) unless Ray is already initialised (then it uses that one and leaves it running).
The algorithm learns with one torch thread, as ``launch train`` and the sweeps' trials do.

Run it directly::

    python -m tune_configs.ops.bench            # the default layouts, about a minute on 2 cores

Expect on a quiet 2-core machine, with the native vector env and 64 envs in the driver, well over
10,000 env steps per second trained (sampling plus learning); timings vary 2-5x when other work
shares the machine.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

Layout = tuple[int, int, bool]  # (num_env_runners, num_envs_per_env_runner, native vector env)
DEFAULT_LAYOUTS: tuple[Layout, ...] = (
    (0, 32, False), (0, 64, False), (0, 32, True), (0, 64, True), (0, 128, True), (1, 64, True),
)  # fmt: skip


def sample_env_steps(algo: Any, steps: int) -> int:
    """Sample at least ``steps`` env steps with ``algo``'s env runners (no learning); the
    number sampled."""
    from ray.rllib.execution.rollout_ops import synchronous_parallel_sample

    episodes = synchronous_parallel_sample(
        worker_set=algo.env_runner_group, max_env_steps=steps, _uses_new_env_runners=True
    )
    return sum(len(e) for e in episodes)  # type: ignore[union-attr, misc]


def rllib_sampling_throughput(
    layouts: Sequence[Layout] = DEFAULT_LAYOUTS,
    sample_steps: int = 8000,
    rounds: int = 3,
    train_iterations: int = 3,
    env_config: dict[str, Any] | None = None,
    address: str | None = None,
    log: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Env steps per second sampled (and trained) per env-runner layout.

    Args:
        layouts: ``(num_env_runners, num_envs_per_env_runner, vector_env)``; a layout needing
            more CPUs than Ray has is reported as skipped.
        sample_steps: env steps per timed sampling round.
        rounds: timed sampling rounds per layout; the best and the median are reported.
        train_iterations: timed training iterations per layout (0 to skip).
        env_config: MetaLore env config (default: the paper preset, log1p observations).
        address: a running Ray cluster; None starts an embedded local Ray.
        log: progress printer (default: stderr).

    Returns:
        ``{"layouts": [{"env_runners", "envs_per_runner", "vector_env", "cpus",
        "sample_steps_per_s" (best
        round), "sample_steps_per_s_median", "train_steps_per_s", "skipped"}...], "best": the
        layout with the highest best-round sampling rate, "cpus_available", "sample_steps",
        "note"}``.
    """
    import torch

    from tune_configs.ops.runtime import init_ray, stop_ray
    from tune_configs.ppo import Resources, build_ppo_config

    say = log or (lambda msg: print(msg, file=sys.stderr, flush=True))
    torch.set_num_threads(1)
    started = init_ray(address, num_cpus=None if address else os.cpu_count())
    import ray

    rows: list[dict[str, Any]] = []
    try:
        cpus = float(ray.cluster_resources().get("CPU", 0.0))  # type: ignore[no-untyped-call]
        for runners, per_runner, vector in layouts:
            res = Resources(
                num_env_runners=runners, num_envs_per_env_runner=per_runner, vector_env=vector
            )
            name = f"{runners}x{per_runner} {'native' if vector else 'sync'}"
            row: dict[str, Any] = {
                "env_runners": runners,
                "envs_per_runner": per_runner,
                "vector_env": "native" if vector else "sync",
                "cpus": res.cpus,
                "sample_steps_per_s": None,
                "sample_steps_per_s_median": None,
                "train_steps_per_s": None,
                "skipped": None,
            }
            if res.cpus > cpus:
                row["skipped"] = f"needs {res.cpus:g} CPUs, Ray has {cpus:g}"
                rows.append(row)
                say(f"bench rllib {name}: skipped ({row['skipped']})")
                continue
            algo = build_ppo_config(env_config, resources=res, seed=0).build_algo()
            try:
                sample_env_steps(algo, max(sample_steps // 4, 200))  # warm-up (module, envs, numba)
                rates = []
                for _ in range(max(rounds, 1)):
                    t0 = time.perf_counter()
                    n = sample_env_steps(algo, sample_steps)
                    rates.append(n / (time.perf_counter() - t0))
                rates.sort()
                row["sample_steps_per_s"] = round(rates[-1], 1)
                row["sample_steps_per_s_median"] = round(rates[len(rates) // 2], 1)
                if train_iterations > 0:
                    algo.train()  # warm-up of the learner
                    t0 = time.perf_counter()
                    steps = 0
                    for _ in range(train_iterations):
                        r = algo.train()
                        steps += int(r["env_runners"]["num_env_steps_sampled"])
                    row["train_steps_per_s"] = round(steps / (time.perf_counter() - t0), 1)
            finally:
                algo.stop()
            rows.append(row)
            say(
                f"bench rllib {name}: sample {row['sample_steps_per_s']} steps/s "
                f"(median {row['sample_steps_per_s_median']}), train {row['train_steps_per_s']} "
                "steps/s"
            )
    finally:
        stop_ray(started)
    measured = [r for r in rows if r["sample_steps_per_s"] is not None]
    best_row = max(measured, key=lambda r: r["sample_steps_per_s"]) if measured else None
    return {
        "layouts": rows,
        "best": best_row,
        "cpus_available": cpus,
        "sample_steps": sample_steps,
        "note": "wall-clock timings on a possibly shared machine; expect 2-5x variation",
    }


# Files of one trial as Tune's driver keeps them (name, bytes): what each sync copies again. The
# first three are logs, which grow while the trial runs.
TRIAL_FILES = (("result.json", 40_000), ("progress.csv", 20_000),
               ("events.out.tfevents.0.node", 30_000), ("params.json", 3_000),
               ("params.pkl", 2_000))  # fmt: skip
GROWING = 3


def sync_seconds(trials: int, repeats: int, work_dir: Path) -> dict[str, list[float]]:
    """Wall seconds of one sync as Tune does it (``pyarrow.fs.copy_files`` of a staging directory
    of ``trials`` trials, :data:`TRIAL_FILES` each, over the previous copy), into the plain local
    file system and into :func:`tune_configs.ops.storage.whole_file_system`, ``repeats`` times
    each, in turn. Before each sync every other trial is running: its logs grew by one report.
    For ``python -m launch bench --storage``. Uses ``work_dir`` (made, and emptied afterwards)."""
    import pyarrow.fs as pafs

    from tune_configs.ops.storage import whole_file_system

    staging = work_dir / "staging"
    running = []
    for t in range(trials):
        trial = staging / f"trial_{t:05d}"
        trial.mkdir(parents=True)
        for i, (name, size) in enumerate(TRIAL_FILES):
            (trial / name).write_bytes(os.urandom(size))
            if t % 2 == 0 and i < GROWING:
                running.append(trial / name)
    systems = {"local": pafs.LocalFileSystem(), "whole": whole_file_system()}
    out: dict[str, list[float]] = {name: [] for name in systems}
    try:
        for name, fs in systems.items():  # the first copy: directories made, files there
            pafs.copy_files(str(staging), str(work_dir / name), destination_filesystem=fs)
        for _ in range(repeats):
            for log in running:
                with log.open("ab") as fh:
                    fh.write(os.urandom(400))
            for name, fs in systems.items():
                t0 = time.perf_counter()
                pafs.copy_files(str(staging), str(work_dir / name), destination_filesystem=fs)
                out[name].append(time.perf_counter() - t0)
    finally:
        for d in (staging, *(work_dir / name for name in systems)):
            shutil.rmtree(d, ignore_errors=True)
    return out


if __name__ == "__main__":
    print(json.dumps(rllib_sampling_throughput(), indent=2))
