"""Scaling of the credit pool: simulator and PPO training throughput against the number of cells
and the number of env runners (``python -m launch bench --pool``; results in
``docs/studies/city-scale.md``).

Three measurements, each printed as it is taken:

* :func:`simulator_rate`: the pool env alone as training sees it (the per-cell view,
  :class:`envs.pool.multiagent.MultiCellPoolEnv`, with the ``city`` controller's observation and
  clearing, every cell acting as the greedy rule), in env steps and cell-steps per second;
* :func:`training_rate`: PPO iterations of the ``city`` controller (one policy shared by every
  cell, its recipe: trader observation with the city summary, residual actions on the greedy
  rule, the pool clearing every step; :mod:`tune_configs.controllers.per_cell`), in cell-steps
  per second, split into sampling and learning time (RLlib's own timers);
* the same for ``0, 1, 2 ...`` env runners (local processes of an embedded Ray, or the nodes of
  a running cluster with ``address``).

:func:`projection` turns the measured per-runner sampling rate and the learner's cost per step
into the expected throughput of a bigger machine or cluster (the model is in its docstring).
No test asserts any of these figures: the machines are shared and timings vary 2-5x.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

Say = Callable[[str], None]


def simulator_rate(scenario: str, episodes: int = 20, seed: int = 0) -> dict[str, Any]:
    """Env steps and cell-steps per second of the per-cell pool env on ``scenario`` as PPO
    trains on it (the ``city`` controller's recipe: trader observation, residual actions), every
    cell acting with a zero correction, i.e. as the greedy rule; ``episodes`` after a warm-up
    one."""
    import numpy as np

    from envs.pool.multiagent import MultiCellPoolEnv, bench
    from tune_configs.controllers.per_cell import resolve_city_env_config

    env = MultiCellPoolEnv(**resolve_city_env_config({"preset": scenario}))
    zero = {a: np.zeros(env.action_spaces[a].shape, np.float32) for a in env.possible_agents}
    r = bench(env, episodes, seed, actions=[zero])
    cells = env.n_cells
    return {
        "scenario": scenario,
        "cells": cells,
        "env_steps_per_s": r["steps_per_s"],
        "cell_steps_per_s": r["steps_per_s"] * cells,
        "cell_steps_per_cpu_s": r["steps_per_cpu_s"] * cells,
    }


def training_rate(
    scenario: str,
    env_runners: int = 0,
    iterations: int = 3,
    batch_env_steps: int | None = None,
    address: str | None = None,
    recipe: Mapping[str, Any] | None = None,
    say: Say | None = None,
) -> dict[str, Any]:
    """PPO training throughput of the shared per-cell policy on ``scenario``.

    Each iteration samples ``batch_env_steps`` env steps (default 1000: ten 100-step episodes)
    and learns on them, one epoch in minibatches of a quarter of that many agent steps (RLlib
    counts a minibatch in agent steps), at every number of cells: the same PPO settings, so the
    cost per cell-step is compared at equal work per agent. (With a batch of
    equal *cell*-steps instead, a 49-cell iteration holds two env steps for every 3-cell
    one's 32 and RLlib's per-episode work in the learner, not the learning, dominates: 195
    against 15 us per cell-step in the first measurement.) Returns
    cell-steps per second of whole iterations (best and median of ``iterations`` after one
    warm-up), the seconds per iteration of sampling (the same number of env steps sampled alone
    after each iteration) and of the rest, the learner's (medians), and the learner's seconds
    per cell-step. ``env_runners=0`` samples in this process without starting Ray, as ``launch
    train`` does; otherwise an embedded Ray (or the cluster at ``address``) runs the runners.
    """
    import torch

    from envs.pool.multiagent import MultiCellPoolEnv
    from tune_configs.controllers import get_controller
    from tune_configs.ops.bench import sample_env_steps
    from tune_configs.ops.ray_internals import without_ray
    from tune_configs.ops.runtime import init_ray, stop_ray
    from tune_configs.training import TrainingRun

    say = say or (lambda msg: None)
    torch.set_num_threads(1)
    env_config = {"preset": scenario, **dict(recipe or {})}  # over the city recipe
    cells = MultiCellPoolEnv(scenario).n_cells
    batch = batch_env_steps or 1000
    minibatch = max(1, batch // 4)
    hparams = {"train_batch_size": batch, "minibatch_size": minibatch, "num_epochs": 1}
    controller = get_controller("city")
    run = TrainingRun.resolve(
        controller, env_config, hparams, 10**9, {"num_env_runners": env_runners}, 0,
        {"policies": "shared"},
    )  # fmt: skip
    started = None
    rows: list[tuple[float, int, float, float]] = []
    try:
        # Ray first: building the config registers the env with Tune's registry, which a
        # connected driver writes to the cluster (where the remote runners look it up)
        if env_runners > 0:
            started = init_ray(address, num_cpus=None if address else os.cpu_count())
        ppo = controller.build_config(
            run.env_config, run.hparams, run.resources, seed=0, policies="shared"
        )
        ctx: Any = without_ray(ppo) if env_runners == 0 else contextlib.nullcontext()
        with ctx:
            algo = ppo.build_algo()
            try:
                # warm-up (compile, first forward passes); it also tells the env steps RLlib
                # samples per iteration (the batch rounded up to whole rollout fragments; later
                # results count the standalone sampling below too)
                steps = int(algo.train()["env_runners"]["num_env_steps_sampled"])
                for _ in range(max(iterations, 1)):
                    t0 = time.perf_counter()
                    algo.train()
                    wall = time.perf_counter() - t0
                    # the same number of env steps sampled alone: the rest of an iteration is
                    # the learner's (RLlib's own timers are smoothed over the warm-up)
                    t0 = time.perf_counter()
                    sampled = sample_env_steps(algo, steps)
                    sample_s = (time.perf_counter() - t0) * steps / max(sampled, 1)
                    rows.append((wall, steps, sample_s, max(wall - sample_s, 0.0)))
                    say(f"  {scenario} ({cells} cells), {env_runners} env runner(s): "
                        f"{steps} env steps in {wall:.2f} s, sampling them alone "
                        f"{sample_s:.2f} s")  # fmt: skip
            finally:
                algo.stop()
    finally:
        if started is not None:
            stop_ray(started)
    rates = sorted(s * cells / w for w, s, _, _ in rows)
    walls = sorted(w for w, _, _, _ in rows)
    steps = rows[-1][1]
    sample_s = sorted(r[2] for r in rows)[len(rows) // 2]
    learn_s = sorted(r[3] for r in rows)[len(rows) // 2]
    return {
        "scenario": scenario,
        "cells": cells,
        "env_runners": env_runners,
        "batch_env_steps": steps,
        "iteration_s_median": walls[len(walls) // 2],
        "cell_steps_per_s": rates[-1],
        "cell_steps_per_s_median": rates[len(rates) // 2],
        "env_steps_per_s_median": rates[len(rates) // 2] / cells,
        "sample_s": sample_s,
        "learn_s": learn_s,
        "learn_s_per_cell_step": learn_s / max(steps * cells, 1),
    }


def projection(
    per_runner_cell_steps_per_s: float,
    learn_s_per_cell_step: float,
    runners: int,
) -> float:
    """Cell-steps per second of synchronous PPO with ``runners`` env runners sampling in
    parallel, then one learner updating: an iteration of ``B`` cell-steps takes
    ``B / (runners * r) + B * c`` seconds (``r``: one runner's sampling rate, ``c``: the
    learner's seconds per cell-step), so the rate is ``1 / (1 / (runners * r) + c)``. It ignores
    weight broadcast and the transfer of samples (small at these network sizes: RLlib's
    ``synch_weights`` timer is in milliseconds) and assumes one core per runner plus one for the
    learner."""
    if runners < 1 or per_runner_cell_steps_per_s <= 0:
        raise ValueError("runners >= 1 and a positive sampling rate are needed")
    return 1.0 / (1.0 / (runners * per_runner_cell_steps_per_s) + learn_s_per_cell_step)


def run_bench(
    scenarios: Sequence[str],
    env_runners: Sequence[int],
    runner_scenario: str,
    iterations: int = 3,
    sim_episodes: int = 20,
    address: str | None = None,
    say: Say | None = None,
) -> dict[str, Any]:
    """Everything ``launch bench --pool`` prints (module docstring)."""
    say = say or (lambda msg: None)
    say("pool simulator (greedy actions) ...")
    sims = [simulator_rate(s, sim_episodes) for s in scenarios]
    say("PPO training, shared per-cell policy, in the driver ...")
    trains = [training_rate(s, 0, iterations, say=say) for s in scenarios]
    say(f"PPO training on {runner_scenario} with 0..{max(env_runners)} env runners ...")
    in_driver = {t["scenario"]: t for t in trains}
    rows: dict[int, dict[str, Any]] = {}
    if 0 in env_runners:
        rows[0] = in_driver.get(runner_scenario) or training_rate(
            runner_scenario, 0, iterations, say=say
        )
    remote = [n for n in env_runners if n > 0]
    if remote:
        from tune_configs.ops.runtime import init_ray, stop_ray

        # One Ray for every runner count: a second connection of this process would not see
        # the env Tune's registry holds for the first one (its remote runners fail to find it)
        started = init_ray(address, num_cpus=None if address else os.cpu_count())
        try:
            for n in remote:
                rows[n] = training_rate(runner_scenario, n, iterations, address=address, say=say)
        finally:
            stop_ray(started)
    return {"simulator": sims, "training": trains, "env_runners": [rows[n] for n in env_runners]}
