"""The one trial runner of every sweep: PPO of any controller, static blocks, single splits, pool
rules.

One function trainable, :func:`run_trial`, dispatches on ``config["kind"]`` (a grid may also put a
whole trial spec under ``config["job"]``, which is merged first, so one sweep can mix kinds). Every
kind writes a result set (:mod:`analysis.resultset`: run.json with command, git commit and
resolved config; episodes.csv; summary.json) into its trial directory, so ``launch report`` finds
every trial of every sweep:

* ``"ppo"``: train the learned controller ``controller`` (:mod:`tune_configs.controllers`:
  ``single`` for MetaLore-v0, ``per-cell`` for the credit pool) on the env config ``{preset,
  obs_mode, delta, penalty, **env}`` for ``timesteps`` env steps through the one training loop
  (:mod:`tune_configs.training`), reporting its metrics every iteration (a Tune checkpoint every
  ``checkpoint_every`` iterations, so a crashed trial resumes there), then save the final
  checkpoint to ``<trial dir>/checkpoint``, evaluate it deterministically over ``eval_episodes``
  episodes (seeds ``eval_seed``...) and write a result set (kind ``ppo-trial``, or
  ``pool-ppo-trial`` for the pool). The last report carries the evaluation as ``eval/<metric>``
  (the controller's ``eval_keys``) and the final checkpoint. With ``tb_replay`` the trained
  policy is also replayed on the first evaluation episode into the run's TensorBoard events
  (:func:`tune_configs.replay.log_replay_to_tensorboard`: the timeline figure and the animated
  episode, at the run's last env step).
* ``"static"``: evaluate a block of static splits (``splits``: list of ``[w_b, w_c]``, plus the
  heuristic and queue-aware rules if ``baselines``) with the batched evaluator (kind ``static``);
  reports the block's best return and its size.
* ``"split"``: evaluate one static split ``(w_b, w_c)`` (the Optuna static search); reports
  ``eval/<metric>`` like a PPO trial and writes a one-policy result set.
* ``"pool-rules"``: the credit pool's rule-based controllers on the same evaluation episodes as a
  pool PPO trial: ``noncoop`` (pool off, best static splits per cell) and ``greedy`` (pool on, the
  greedy rule with its own best splits), splits searched on tuning seeds disjoint from the
  evaluation seeds (kind ``pool-rules``).

:func:`trainable` wraps :func:`run_trial` with per-trial resources (one CPU, plus one per remote
env runner of a PPO trial); :func:`trial_dirname` gives short directory names such as
``ppo_d0.9_p0_s0_1a2b3_00004`` or ``pool_team_s0_1a2b3_00001``. Fault drills can hold a trial at
fixed points through :func:`tune_configs.ops.barrier.reach` (a no-op unless a drill asks for it).
"""

from __future__ import annotations

import contextlib
import math
import shutil
import tempfile
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

EVAL_PREFIX = "eval/"
MAX_FAILURES = 2  # retries of a crashed trial (from its last checkpoint)
TRIAL_KINDS = ("ppo", "static", "split", "pool-rules")
PPO_DEFAULTS: dict[str, Any] = {
    "controller": "single",
    "policies": "shared",  # per-cell controller: one shared network or one per cell ("separate")
    "preset": "paper",
    "obs_mode": "log1p",
    "env": {},  # further env overrides by flat name (pool: scope, reward, endowment, ...)
    "seed": 0,
    "seeds": None,  # several training seeds, trained one after the other in this trial
    "timesteps": 200_000,
    "hparams": {},
    "resources": {},
    "eval_episodes": 100,
    "eval_seed": 0,
    "checkpoint_every": 10,  # iterations between Tune checkpoints (crash recovery)
    "tb_replay": False,  # log a replay of the trained policy to its TensorBoard run
    "torch_threads": 1,
}
STATIC_DEFAULTS: dict[str, Any] = {
    "preset": "paper",
    "delta": 0.9,
    "penalty": 0.0,
    "env": {},
    "episodes": 100,
    "eval_seed": 0,
    "splits": [],
    "baselines": False,
    "block": 0,
}
POOL_RULES_DEFAULTS: dict[str, Any] = {
    "preset": "three_cell_hetero",
    "env": {},
    "episodes": 100,
    "eval_seed": 0,
    "tune_episodes": 20,
    "grid_step": 0.1,
}
_DEFAULTS = {"ppo": PPO_DEFAULTS, "pool-rules": POOL_RULES_DEFAULTS}


def trial_config(config: Mapping[str, Any]) -> dict[str, Any]:
    """The effective config: ``config["job"]`` (if any) merged over the top level, defaults."""
    cfg = {k: v for k, v in config.items() if k != "job"}
    cfg.update(config.get("job") or {})
    kind = cfg.get("kind")
    if kind not in TRIAL_KINDS:
        raise ValueError(f"trial kind must be one of {TRIAL_KINDS}, got {kind!r}")
    return {**_DEFAULTS.get(kind, STATIC_DEFAULTS), **cfg}


def trial_seeds(cfg: Mapping[str, Any]) -> list[int]:
    """The training seeds of a PPO trial: ``seeds`` if given, else ``[seed]``."""
    return [int(s) for s in cfg.get("seeds") or [cfg["seed"]]]


def env_config_of(cfg: Mapping[str, Any]) -> dict[str, Any]:
    """Flat env config of a trial config (preset, reward, obs mode, extra overrides)."""
    env: dict[str, Any] = {"preset": cfg["preset"], **dict(cfg.get("env") or {})}
    for key in ("delta", "penalty"):  # absent: the preset's reward
        if cfg.get(key) is not None:
            env[key] = float(cfg[key])
    if "obs_mode" in cfg:
        env["obs_mode"] = cfg["obs_mode"]
    return env


def _fmt(x: Any) -> str:
    return f"{float(x):.3g}"


def trial_label(config: Mapping[str, Any]) -> str:
    """Short human name of a trial from its config (without the id)."""
    cfg = trial_config(config)
    if cfg["kind"] == "ppo" and cfg["controller"] == "central":
        return f"pool_central_s{cfg['seed']}"
    if cfg["kind"] == "ppo" and cfg["controller"] == "per-cell":
        return f"pool_{cfg['env'].get('scope', 'team')}_s{cfg['seed']}"
    if cfg["kind"] == "ppo" and cfg["controller"] == "city":
        return f"pool_city_s{cfg['seed']}"
    if cfg["kind"] == "ppo":
        seeds = trial_seeds(cfg)
        s = str(seeds[0]) if len(seeds) == 1 else f"{seeds[0]}-{seeds[-1]}"
        return f"ppo_d{_fmt(cfg['delta'])}_p{_fmt(cfg['penalty'])}_s{s}"
    if cfg["kind"] == "split":
        return f"split_{_fmt(cfg['w_b'])}_{_fmt(cfg['w_c'])}"
    if cfg["kind"] == "pool-rules":
        return f"pool_rules_{cfg['preset']}"
    return f"static_b{cfg['block']}_d{_fmt(cfg['delta'])}_p{_fmt(cfg['penalty'])}"


def trial_dirname(trial: Any) -> str:
    """``trial_dirname_creator``: label plus Tune's short trial id (unique, readable)."""
    try:
        label = trial_label(trial.config)
    except (KeyError, ValueError, TypeError):
        label = "trial"
    return f"{label}_{trial.trial_id}"


def trial_name(trial: Any) -> str:
    """``trial_name_creator`` (status table)."""
    return trial_dirname(trial)


def check_trial(config: Mapping[str, Any]) -> None:
    """Resolve a trial config as the trial would (controller, env config and scenario,
    hyper-parameters, resources), without running anything: ``ValueError`` saying what is
    wrong. Sweeps call it for every trial before Ray starts (:func:`tune_configs.sweeps.common.
    preflight`)."""
    try:
        cfg = trial_config(config)
        if cfg["kind"] == "ppo":
            from tune_configs.controllers import get_controller
            from tune_configs.training import TrainingRun

            controller = get_controller(str(cfg["controller"]))
            run = TrainingRun.resolve(
                controller, env_config_of(cfg), cfg["hparams"], int(cfg["timesteps"]),
                cfg["resources"], trial_seeds(cfg)[0], cfg,
            )  # fmt: skip
            controller.env_params(run.env_config)
        elif cfg["kind"] == "pool-rules":
            from envs.pool.multiagent import MultiCellPoolEnv
            from tune_configs.policies.pool import pool_env_kwargs

            MultiCellPoolEnv(**pool_env_kwargs(env_config_of(cfg)))
        else:
            from tune_configs.env import params_from_env_config

            params_from_env_config(env_config_of(cfg))
    except (TypeError, KeyError, AttributeError) as exc:
        raise ValueError(f"invalid trial config ({type(exc).__name__}: {exc})") from None


def trial_resources(config: Mapping[str, Any]) -> Any:
    """Placement group of a trial: one CPU, plus the remote env runners of a PPO trial."""
    from ray.tune import PlacementGroupFactory

    cfg = trial_config(config)
    if cfg["kind"] != "ppo":
        return PlacementGroupFactory([{"CPU": 1.0}])
    from tune_configs.ppo import resources_from

    res = resources_from(cfg["resources"])
    bundles = [{"CPU": 1.0 + res.num_learners}]
    bundles += [{"CPU": res.num_cpus_per_env_runner}] * res.num_env_runners
    return PlacementGroupFactory(bundles)


def trainable() -> Any:
    """:func:`run_trial` with per-trial resources, ready for ``tune.Tuner``."""
    from ray import tune

    return tune.with_resources(run_trial, trial_resources)


def run_trial(config: dict[str, Any]) -> None:
    """Tune function trainable (see the module docstring)."""
    cfg = trial_config(config)
    if cfg["kind"] != "ppo":  # PPO trials reach "start" themselves, after restoring a checkpoint
        from ray import tune

        from tune_configs.ops import barrier

        barrier.reach("start", tune.get_context().get_trial_name())
    {"ppo": _ppo_trial, "static": _static_trial, "split": _split_trial,
     "pool-rules": _pool_rules_trial}[cfg["kind"]](cfg)  # fmt: skip


# --- helpers ----------------------------------------------------------------------------------
def trial_output_dir() -> Path:
    """Where a trial writes its own files: the trial directory in the storage (if local)."""
    from ray import tune

    from tune_configs.ops.ray_internals import trial_storage_dir

    # Remote storage: Tune syncs the trial's local directory.
    path = trial_storage_dir() or Path(tune.get_context().get_trial_dir())
    path.mkdir(parents=True, exist_ok=True)
    return path


def eval_metrics(
    summary: Mapping[str, Any], keys: Sequence[str], horizon: float | None = None
) -> dict[str, float]:
    """``eval/<metric>`` and ``eval/<metric>_std`` of a summary object (finite values only).

    A policy that completed no UE job has no delays; with ``horizon`` given its delays are
    reported as the horizon (the worst possible) so a search still gets three objective values,
    and ``eval/no_completions`` is 1.
    """
    out: dict[str, float] = {}
    for key in keys:
        for name in (key, f"{key}_std"):
            v = summary.get(name)
            if v is not None and math.isfinite(float(v)):
                out[EVAL_PREFIX + name] = float(v)
    if horizon is not None:
        missing = [
            k for k in ("sync_delay", "e2e_delay") if k in keys and EVAL_PREFIX + k not in out
        ]
        for key in missing:
            out[EVAL_PREFIX + key] = float(horizon)
        out[EVAL_PREFIX + "no_completions"] = 1.0 if missing else 0.0
    return out


def _trial_meta(cfg: Mapping[str, Any]) -> dict[str, Any]:
    from ray import tune

    ctx = tune.get_context()
    meta: dict[str, Any] = {}
    if cfg.get("driver_command"):
        meta["command"] = cfg["driver_command"]  # the sweep's command line, not the worker's
    return {
        **meta,
        "trial_id": ctx.get_trial_id(),
        "trial_name": ctx.get_trial_name(),
        "experiment": ctx.get_experiment_name(),
        "budget": cfg.get("budget"),
    }


# --- PPO (any controller) ---------------------------------------------------------------------
def _ppo_trial(cfg: dict[str, Any]) -> None:
    if len(trial_seeds(cfg)) > 1:
        _ppo_seeds_trial(cfg)
        return
    import torch
    from ray import tune

    from tune_configs.controllers import get_controller
    from tune_configs.ops import barrier
    from tune_configs.training import TIMESTEPS, TrainingRun, run_training

    if cfg.get("torch_threads"):
        torch.set_num_threads(int(cfg["torch_threads"]))
    run = TrainingRun.resolve(
        get_controller(str(cfg["controller"])), env_config_of(cfg), cfg["hparams"],
        int(cfg["timesteps"]), cfg["resources"], int(cfg["seed"]), cfg,
    )  # fmt: skip
    out_dir = trial_output_dir()
    name = _trial_meta(cfg)["trial_name"]
    every = max(int(cfg["checkpoint_every"]), 0)
    t0 = time.perf_counter()

    def on_iteration(metrics: dict[str, float], algo: Any) -> None:
        if metrics[TIMESTEPS] >= run.timesteps:
            return  # the last iteration is reported with the evaluation
        it = int(metrics.get("training_iteration", 0))
        if every and it % every == 0:
            with tempfile.TemporaryDirectory() as tmp:
                run.save(algo, tmp, timesteps=int(metrics[TIMESTEPS]))
                tune.report(metrics, checkpoint=tune.Checkpoint.from_directory(tmp))
            barrier.reach(f"iteration-{it}", name)
        else:
            tune.report(metrics)

    restored = tune.get_checkpoint()
    with contextlib.ExitStack() as stack:
        restore = stack.enter_context(restored.as_directory()) if restored is not None else None
        result = run_training(
            run, out_dir / "checkpoint", on_iteration, restore=restore,
            on_start=lambda: barrier.reach("start", name),
        )  # fmt: skip
    train_s = time.perf_counter() - t0
    evaluation = _evaluate_run(cfg, run, result, out_dir, train_s, tb_dir=out_dir)
    barrier.reach("end", name)
    tune.report(
        {**result.metrics, **evaluation, "train_s": train_s},
        checkpoint=tune.Checkpoint.from_directory(str(result.checkpoint)),
    )


def _evaluate_run(
    cfg: Mapping[str, Any], run: Any, result: Any, out_dir: Path, train_s: float, tb_dir: Path
) -> dict[str, float]:
    """Evaluate a finished training run into a result set (kind ``ppo-trial``) in ``out_dir``
    with the run's record; returns its ``eval/<metric>`` values. With ``tb_replay`` the policy's
    replay goes to the TensorBoard run ``tb_dir``."""
    from tune_configs.controllers import evaluate_checkpoint
    from tune_configs.training import TIMESTEPS

    extra = {
        **_trial_meta(cfg),
        "train_seed": run.seed,
        "timesteps": int(result.metrics[TIMESTEPS]),
        "timesteps_budget": run.timesteps,
        "resumed_from_steps": result.resumed_from_steps,
        "hparams": run.hparams,
        "resources": run.resources.to_dict(),
        "train_s": round(train_s, 1),
        "final_train_metrics": result.metrics,
    }
    summary = evaluate_checkpoint(
        result.checkpoint, int(cfg["eval_episodes"]), int(cfg["eval_seed"]), out_dir,
        extra=extra, what="ppo-trial",
    )  # fmt: skip
    if cfg.get("tb_replay"):
        _log_replay(result.checkpoint, tb_dir, int(cfg["eval_seed"]), extra["timesteps"])
    horizon = run.controller.env_params(run.env_config).scenario.episode_steps
    return eval_metrics(summary, run.controller.eval_keys, horizon)


def _log_replay(checkpoint: Path, tb_dir: Path, seed: int, step: int) -> None:
    """The replay of a trained policy in its TensorBoard run; a failure is reported on the
    trial's stderr and leaves the trial (its training and evaluation are done) unharmed."""
    import sys
    import traceback

    from tune_configs.replay import log_replay_to_tensorboard

    try:
        label = f"{checkpoint.parent.name} at {step:,} env steps"
        log_replay_to_tensorboard(checkpoint, tb_dir, seed, step, label=label)
    except Exception:
        print(f"tb_replay: no replay logged to {tb_dir}:\n{traceback.format_exc()}",
              file=sys.stderr)  # fmt: skip


SEEDS_DONE = "seeds_done.json"  # the Tune checkpoint of a multi-seed trial


def _ppo_seeds_trial(cfg: dict[str, Any]) -> None:
    """Several training seeds in one trial, one after the other: the process, its imports and
    RLlib's one-time set-up are paid once, yet every seed is trained from scratch by its own
    algorithm, checkpointed, evaluated alone and written as its own result set (with its own
    progress.csv and TensorBoard events) under ``<trial dir>/seed_<k>/``. After each seed the
    trial reports its evaluation and a checkpoint listing the seeds done, so a restarted trial
    skips them (a seed cut off mid-way is trained again from scratch: same seed, same run).
    The reported ``timesteps`` count the env steps of every seed done."""
    import json

    import torch
    from ray import tune

    from tune_configs.controllers import get_controller
    from tune_configs.ops import barrier
    from tune_configs.training import TIMESTEPS, TrainingLog, TrainingRun, run_training

    if cfg.get("torch_threads"):
        torch.set_num_threads(int(cfg["torch_threads"]))
    controller = get_controller(str(cfg["controller"]))
    out_dir = trial_output_dir()
    meta = _trial_meta(cfg)
    done: list[int] = []
    restored = tune.get_checkpoint()
    if restored is not None:
        with restored.as_directory() as path:
            done = [int(s) for s in json.loads((Path(path) / SEEDS_DONE).read_text())]
    barrier.reach("start", meta["trial_name"])
    for seed in trial_seeds(cfg):
        if seed in done:
            continue
        run = TrainingRun.resolve(
            controller, env_config_of(cfg), cfg["hparams"], int(cfg["timesteps"]),
            cfg["resources"], seed, cfg,
        )  # fmt: skip
        seed_dir = out_dir / f"seed_{seed}"
        shutil.rmtree(seed_dir, ignore_errors=True)  # what a cut-off attempt left behind
        t0 = time.perf_counter()
        with TrainingLog(seed_dir) as log:
            result = run_training(run, seed_dir / "checkpoint", log.add)
        train_s = time.perf_counter() - t0
        evaluation = _evaluate_run(cfg, run, result, seed_dir, train_s, tb_dir=seed_dir / "tb")
        done.append(seed)
        metrics = {
            **evaluation, "train_s": train_s, "seeds_done": float(len(done)),
            TIMESTEPS: float(result.metrics[TIMESTEPS]) * len(done), "last_seed": float(seed),
        }  # fmt: skip
        with tempfile.TemporaryDirectory() as tmp:
            (Path(tmp) / SEEDS_DONE).write_text(json.dumps(done))
            tune.report(metrics, checkpoint=tune.Checkpoint.from_directory(tmp))
        barrier.reach(f"seed-{seed}", meta["trial_name"])
    barrier.reach("end", meta["trial_name"])


# --- static -----------------------------------------------------------------------------------
def _limit_numba_threads_to_reservation() -> None:
    """Run the batched evaluator on as many threads as the trial reserved CPUs.

    numba's parallel loops otherwise use every core of the node, whatever Tune reserved, so two
    static trials on one node would oversubscribe it and the cluster's CPU accounting would lie.
    """
    import numba
    import ray

    try:
        context = ray.get_runtime_context()
        cpus = float(context.get_assigned_resources().get("CPU", 0.0))  # type: ignore[no-untyped-call]
    except Exception:  # not inside a Ray worker: keep numba's default
        return
    if cpus >= 1:
        most = int(numba.config.NUMBA_NUM_THREADS)  # type: ignore[attr-defined]
        numba.set_num_threads(max(1, min(int(cpus), most)))


def _static_result(cfg: dict[str, Any], policies: list[Any], kind: str) -> list[dict[str, Any]]:
    from analysis.resultset import run_metadata, write_result_set
    from envs.core.batch import evaluate
    from tune_configs.env import params_from_env_config

    env_config = env_config_of(cfg)
    params = params_from_env_config(env_config)
    episodes, seed = int(cfg["episodes"]), int(cfg["eval_seed"])
    _limit_numba_threads_to_reservation()
    t0 = time.perf_counter()
    result = evaluate(params, policies, episodes, seed)
    elapsed = time.perf_counter() - t0
    meta = run_metadata(
        kind, params, preset=env_config["preset"], seed=seed, episodes=episodes,
        elapsed_s=round(elapsed, 3), env_config=env_config, **_trial_meta(cfg),
        **{k: cfg[k] for k in ("block", "grid_step") if k in cfg},
    )  # fmt: skip
    rows = result.episode_rows(preset=env_config["preset"])
    return write_result_set(trial_output_dir(), meta, rows)


def _static_trial(cfg: dict[str, Any]) -> None:
    from ray import tune

    from envs.core.policies import heuristic, queue_aware, static
    from tune_configs.env import params_from_env_config

    splits = [tuple(map(float, s)) for s in cfg["splits"]]
    policies = [static(b, c) for b, c in splits]
    if cfg["baselines"]:
        policies += [heuristic(params_from_env_config(env_config_of(cfg))), queue_aware()]
    if not policies:
        raise ValueError("a static trial needs at least one split or baselines=True")
    summaries = _static_result(cfg, policies, "static")
    returns = [s["episode_return"] for s in summaries if s.get("episode_return") is not None]
    tune.report({"policies": float(len(summaries)), "best_return": max(returns, default=math.nan)})


def _split_trial(cfg: dict[str, Any]) -> None:
    from ray import tune

    from envs.core.metrics import HEADLINE_KEYS
    from envs.core.policies import static
    from tune_configs.env import params_from_env_config

    summaries = _static_result(cfg, [static(float(cfg["w_b"]), float(cfg["w_c"]))], "static")
    horizon = params_from_env_config(env_config_of(cfg)).scenario.episode_steps
    tune.report(eval_metrics(summaries[0], HEADLINE_KEYS, horizon))


# --- the credit pool's rules ---------------------------------------------------------------------
def _pool_rules_trial(cfg: dict[str, Any]) -> None:
    from ray import tune

    from analysis.resultset import run_metadata, write_result_set
    from envs.core.pool.civic import EVAL_KEYS, flat_row
    from envs.core.pool.rules import (
        TUNE_SEED_OFFSET,
        GreedyRule,
        evaluate_controller,
        rule_baselines,
    )
    from envs.pool.multiagent import MultiCellPoolEnv
    from tune_configs.policies.pool import pool_env_kwargs

    env_config = pool_env_kwargs(env_config_of(cfg))
    ps = MultiCellPoolEnv(**env_config).ps
    params, pool = ps.params, ps.pool.params
    episodes, seed = int(cfg["episodes"]), int(cfg["eval_seed"])
    tune_episodes, step = int(cfg["tune_episodes"]), float(cfg["grid_step"])
    if seed < TUNE_SEED_OFFSET + tune_episodes and seed + episodes > TUNE_SEED_OFFSET:
        raise ValueError("the evaluation seeds overlap the split-search seeds; choose eval_seed")
    _limit_numba_threads_to_reservation()
    t0 = time.perf_counter()
    variants, splits = rule_baselines(params, pool, tune_episodes, TUNE_SEED_OFFSET, step)
    rows: list[dict[str, Any]] = []
    report: dict[str, float] = {}
    for label, controller, pp in variants:
        metrics = evaluate_controller(params, pp, controller, episodes, seed)
        rows += [
            {"policy": label, "kind": label, "w_b": None, "w_c": None,
             "delta": params.reward.delta, "penalty": params.reward.penalty,
             "preset": env_config["preset"], "seed": m["seed"], **flat_row(m)}
            for m in metrics
        ]  # fmt: skip
    meta = run_metadata(
        "pool-rules", params, preset=env_config["preset"], seed=seed, episodes=episodes,
        env_config=env_config, pool=pool.to_dict(), rule=dict(GreedyRule().__dict__),
        splits=splits, tune_episodes=tune_episodes,
        tune_seed=TUNE_SEED_OFFSET, elapsed_s=round(time.perf_counter() - t0, 2),
        **_trial_meta(cfg),
    )  # fmt: skip
    for summary in write_result_set(trial_output_dir(), meta, rows):
        for name, value in eval_metrics(summary, EVAL_KEYS).items():
            report[f"{summary['policy']}/{name}"] = value
    tune.report(report)
