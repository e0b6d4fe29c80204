"""``python -m launch train``: train PPO (RLlib, new API stack) on MetaLore, one cell or a pool.

Examples (the paper's point A reward for 200,000 env steps; the credit pool: the per-cell
controller, one agent per cell)::

    python -m launch train --delta 0.9 --penalty 0 --timesteps 200000 --seed 0 --out results/train-a
    python -m launch train --preset three_cell_hetero --controller per-cell --timesteps 40000 \
        --set reward=fulfilled --set endowment=1000 --out results/pool-a

The controller (:mod:`tune_configs.controllers`) defaults to the best measured one for the
preset: ``single`` (MetaLore-v0) on the single-cell presets, ``central`` (one agent for every
cell) on ``three_cell_hetero`` and ``surge``, ``city`` (one network shared by every cell, any
number of cells, the recipe of ``docs/studies/city-controller.md``) on the other pool presets.
``per-cell`` is multi-agent PPO on the credit pool with the plain defaults (``--policies
shared|separate``; pool settings such as ``scope``, ``reward``, ``endowment`` by ``--set``). All
go through the one training loop of :mod:`tune_configs.training`.

Prints one progress line per iteration (steps, return, sync/E2E delay, served %, mean action,
speed, ETA) and writes into ``--out``:

* ``checkpoint/``: the final RLlib checkpoint (plus the controller's sidecar JSON), the input of
  ``python -m launch eval OUT/checkpoint`` (and, for a pool policy, ``launch pool-compare
  --checkpoint``);
* ``train.json``: command, git commit, time, preset, resolved env params, env config,
  hyper-parameters, resources, seed, budget, final metrics;
* ``progress.csv``: the selected metrics of every iteration;
* ``tb/``: TensorBoard events (``tensorboard --logdir OUT/tb``), tags ``ray/tune/...`` as in sweeps.

With ``--eval-episodes N`` it also evaluates the final policy deterministically and writes a result
set to ``OUT/eval`` (as ``launch eval --out`` does). Ctrl-C saves the checkpoint reached so far.
Ray: with no remote env runners (``--env-runners 0``, the default) and no ``--address``, no Ray
node is started at all: RLlib samples and learns in this process
(:func:`tune_configs.ops.ray_internals.without_ray`), which saves about 4 s of start-up and
shutdown.
With remote env runners, an embedded single-node Ray on 127.0.0.1 hosts them; ``--address``
trains on a running cluster. ``train.json`` records which (``ray``) and the wall seconds of each
phase (``phases_s``: imports, ray_start, build, train, checkpoint, stop).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

from launch.cli import STARTED, UsageError
from launch.common import add_scenario_arguments, key_value, nonneg_int, positive_int

HELP = "train PPO on MetaLore with RLlib (progress per iteration, checkpoint, TensorBoard)"
DEFAULT_TIMESTEPS = 40_000
DEFAULT_ENVS = 64
OBS_MODES = ("raw", "log1p", "scaled")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--timesteps", type=positive_int, default=DEFAULT_TIMESTEPS,
                   help=f"env steps to train for (default {DEFAULT_TIMESTEPS})")  # fmt: skip
    p.add_argument("--seed", type=nonneg_int, default=0, help="RLlib seed (default 0)")
    p.add_argument("--out", required=True, metavar="DIR", help="output directory")
    p.add_argument("--obs-mode", choices=OBS_MODES, default=None,
                   help="observation transform for learning (default log1p)")  # fmt: skip
    p.add_argument("--hp", action="append", type=key_value, default=[], metavar="NAME=VALUE",
                   help="PPO hyper-parameter, e.g. --hp lr=1e-4 --hp fcnet_hiddens=[64,64] "
                        "(names: tune_configs.ppo.DEFAULT_HPARAMS)")  # fmt: skip
    p.add_argument("--env-runners", type=nonneg_int, default=0,
                   help="remote sampling actors (0: sample in the driver; default 0)")  # fmt: skip
    p.add_argument("--envs-per-runner", type=positive_int, default=DEFAULT_ENVS,
                   help=f"vectorised envs per runner (default {DEFAULT_ENVS})")  # fmt: skip
    p.add_argument("--torch-threads", type=positive_int, default=1,
                   help="torch intra-op threads (default 1: faster for these small networks)"
                   )  # fmt: skip
    p.add_argument(
        "--address",
        default=None,
        help="running Ray cluster (e.g. 127.0.0.1:6390); default: embedded local Ray",
    )
    p.add_argument(
        "--eval-episodes",
        type=nonneg_int,
        default=0,
        help="after training, evaluate N episodes into OUT/eval (default 0: skip)",
    )
    p.add_argument(
        "--eval-seed",
        type=nonneg_int,
        default=0,
        help="first episode seed of the final evaluation (default 0)",
    )
    p.add_argument(
        "--checkpoint-every",
        type=nonneg_int,
        default=0,
        metavar="K",
        help="also checkpoint every K iterations (default 0: only at the end)",
    )
    p.add_argument("--quiet", action="store_true", help="no per-iteration progress lines")
    p.add_argument("--controller", default=None, metavar="NAME",
                   help="single: one policy on MetaLore-v0 (the default on the single-cell "
                        "presets); city: one policy shared by every cell of the credit pool, "
                        "for any number of cells (the default on the pool presets but "
                        "three_cell_hetero and surge); central: one agent for all cells of the "
                        "pool (the default on those two); per-cell: one agent per cell with the "
                        "plain defaults; or module:attr of a controller outside the package"
                   )  # fmt: skip
    p.add_argument("--policies", choices=("shared", "separate"), default="shared",
                   help="per-cell controller: one shared network or one per cell")  # fmt: skip
    add_scenario_arguments(p)


def env_config_from_args(args: argparse.Namespace, controller: Any) -> dict[str, Any]:
    """Flat RLlib env config (preset + overrides) from the scenario arguments."""
    cfg: dict[str, Any] = {"preset": args.preset, **dict(args.overrides)}
    if args.delta is not None:
        cfg["delta"] = args.delta
    if args.penalty is not None:
        cfg["penalty"] = args.penalty
    cfg["obs_mode"] = args.obs_mode or "log1p"
    return dict(controller.resolve_env_config(cfg))


def run(args: argparse.Namespace) -> int:
    from tune_configs.controllers import get_controller
    from tune_configs.training import TrainingRun

    out = Path(args.out).expanduser().resolve()
    if out.exists() and not out.is_dir():
        raise UsageError(f"--out {args.out} exists and is not a directory")
    if (out / "checkpoint").exists():
        raise UsageError(f"{out / 'checkpoint'} exists already: choose a new --out directory")
    from tune_configs.controllers import default_controller

    name = args.controller or default_controller(args.preset)
    if args.controller is None and name != "single":
        print(f"controller {name}: the best measured pool controller on {args.preset} "
              "(--controller single for one policy without the pool)", flush=True)  # fmt: skip
    try:
        controller = get_controller(name)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    run_ = TrainingRun.resolve(
        controller, env_config_from_args(args, controller), dict(args.hp), args.timesteps,
        {"num_env_runners": args.env_runners, "num_envs_per_env_runner": args.envs_per_runner},
        args.seed, {"policies": args.policies},
    )  # fmt: skip
    return _train(args, out, run_)


def _train(args: argparse.Namespace, out: Path, run_: Any) -> int:
    from analysis.resultset import run_metadata, write_json
    from tune_configs.controllers import evaluate_checkpoint
    from tune_configs.ops.runtime import init_ray, quiet_ray_logs, stop_ray
    from tune_configs.training import Phases, TrainingLog, progress_line, run_training

    controller, env_config, resources = run_.controller, run_.env_config, run_.resources
    params = controller.env_params(env_config)
    out.mkdir(parents=True, exist_ok=True)
    meta = run_metadata(
        "train", params, preset=env_config["preset"], seed=args.seed, timesteps=args.timesteps,
        env_config=env_config, hparams=run_.hparams, resources=resources.to_dict(),
        controller=controller.name, **run_.options, checkpoint=str(out / "checkpoint"),
        status="running",
    )  # fmt: skip
    write_json(out / "train.json", meta)
    print(f"training PPO ({controller.name}) on {env_config} for {args.timesteps:,} env steps "
          f"-> {out}", flush=True)  # fmt: skip
    import torch

    torch.set_num_threads(args.torch_threads)
    t0 = time.perf_counter()
    phases = Phases(STARTED)
    phases.lap("imports")
    # The driver samples and learns itself; Ray only hosts remote env runners. With none (the
    # default) and no cluster, no Ray node is started at all (ray_internals.without_ray).
    ray_free = args.address is None and resources.num_env_runners == 0
    started = False
    if not ray_free:
        cpus = max(round(resources.cpus - 1), 0)
        started = init_ray(args.address, num_cpus=cpus, object_store_memory=300_000_000)
        phases.lap("ray_start")
    quiet_ray_logs()
    log = TrainingLog(out)
    rows = log.rows
    result = None
    t_train = time.perf_counter()

    seen: dict[str, float] = {}  # the episode metrics last reported (an iteration may end none)
    pool = controller.run_kind_prefix == "pool-"  # the CIVIC line, from the first iteration

    def on_iteration(metrics: dict[str, float], algo: Any) -> None:
        log.add(metrics)
        seen.update({k: v for k, v in metrics.items() if k.startswith("env_runners/")})
        if not args.quiet:
            line = progress_line({**seen, **metrics}, args.timesteps, t_train, pool=pool)
            print(line, flush=True)
        k, it = args.checkpoint_every, int(metrics["training_iteration"])
        if k and it % k == 0:
            run_.save(algo, out / f"checkpoint_{it:05d}")

    try:
        with log:
            result = run_training(
                run_, out / "checkpoint", on_iteration, driver_only=ray_free, phases=phases,
                interruptible=True,
            )  # fmt: skip
    finally:
        stop_ray(started)
        phases.lap("stop")
        meta.update(status=result.status if result else "failed",
                    elapsed_s=round(time.perf_counter() - t0, 1),
                    iterations=len(rows), final_metrics=rows[-1] if rows else None,
                    ray="none (driver only)" if ray_free else args.address or "embedded",
                    phases_s=phases.as_dict())  # fmt: skip
        write_json(out / "train.json", meta)
    ckpt = result.checkpoint
    if result.status == "interrupted":
        print("interrupted: saved the checkpoint reached so far", flush=True)
    print(f"checkpoint: {ckpt}")
    print(f"tensorboard --logdir {out / 'tb'}")
    if result.status == "interrupted":
        return 130
    if args.eval_episodes > 0:
        from launch.evaluate import print_summary

        summary = evaluate_checkpoint(
            ckpt, args.eval_episodes, args.eval_seed, out / "eval", extra={"train_dir": str(out)}
        )
        print_summary(summary)
        print(f"evaluation result set: {out / 'eval'}")
    return 0
