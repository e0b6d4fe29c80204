"""The one training loop of the platform, shared by ``launch train`` and every PPO Tune trial
(single-cell and credit-pool controllers alike).

* :func:`select_metrics` keeps the interesting part of an RLlib result (flat ``a/b/c`` names):
  the MetaLore episode metrics (``env_runners/metalore/...``), the CIVIC metrics of pool training
  (``env_runners/civic/...``, overall, per cell and per phase), RLlib's episode return, the PPO
  learner statistics of every module and timings, plus ``timesteps`` (env steps sampled so far);
* :func:`progress_line` turns them into one readable line per iteration;
* :func:`train` runs ``algo.train()`` until a number of env steps, calling back per iteration;
* :func:`fit_batch_to_budget` shrinks the batch when the whole budget is smaller than one batch;
* :class:`Phases` times the phases of a run (``train.json``'s ``phases_s``);
* :class:`TrainingRun` and :func:`run_training`: one training of a learned controller, resolved,
  built, optionally restored, trained, checkpointed (algorithm plus the controller's sidecar,
  :meth:`tune_configs.controllers.Controller.save`) and stopped: the sequence ``launch train``
  and the PPO trial share.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tune_configs.callbacks import CIVIC_PREFIX, LOGGED_KEYS, PREFIX

TIMESTEPS = "timesteps"  # env steps sampled so far (the budget counter)
_ENV_RUNNER_KEYS = (
    "episode_return_mean",
    "episode_len_mean",
    "num_episodes",
    "num_env_steps_sampled",
)
_LEARNER_KEYS = (
    "policy_loss", "vf_loss", "vf_explained_var", "entropy", "mean_kl_loss", "total_loss",
    "curr_entropy_coeff", "default_optimizer_learning_rate",
)  # fmt: skip


class Phases:
    """Wall seconds per phase of a run: each :meth:`lap` closes the phase that ran since the
    previous lap (or since ``start``, a ``time.perf_counter()`` value; default now)."""

    def __init__(self, start: float | None = None) -> None:
        self._last = time.perf_counter() if start is None else start
        self._laps: dict[str, float] = {}

    def lap(self, name: str) -> None:
        now = time.perf_counter()
        self._laps[name] = self._laps.get(name, 0.0) + now - self._last
        self._last = now

    def as_dict(self) -> dict[str, float]:
        return {k: round(v, 2) for k, v in self._laps.items()}


def _num(x: Any) -> float | None:
    try:
        value = float(x)
    except (TypeError, ValueError):
        return None
    return value if math.isfinite(value) else None


def select_metrics(result: Mapping[str, Any]) -> dict[str, float]:
    """Flat metrics of one ``algo.train()`` result (names like ``env_runners/metalore/x``)."""
    out: dict[str, float] = {}
    runners = result.get("env_runners", {}) or {}
    for key in _ENV_RUNNER_KEYS:
        v = _num(runners.get(key))
        if v is not None:
            out[f"env_runners/{key}"] = v
    ours = runners.get(PREFIX, {}) or {}
    for key in LOGGED_KEYS:
        v = _num(ours.get(key))
        if v is not None:
            out[f"env_runners/{PREFIX}/{key}"] = v
    _flatten(runners.get(CIVIC_PREFIX), f"env_runners/{CIVIC_PREFIX}", out)
    for module, stats in (result.get("learners", {}) or {}).items():
        if not isinstance(stats, Mapping) or module.startswith("__"):
            continue
        for key in _LEARNER_KEYS:
            v = _num(stats.get(key))
            if v is not None:
                out[f"learners/{module}/{key}"] = v
    for key in ("time_this_iter_s", "time_total_s", "training_iteration"):
        v = _num(result.get(key))
        if v is not None:
            out[key] = v
    lifetime = _num(result.get("num_env_steps_sampled_lifetime"))
    if lifetime is None:
        lifetime = _num(runners.get("num_env_steps_sampled_lifetime"))
    out[TIMESTEPS] = lifetime or 0.0
    return out


def _flatten(tree: Any, prefix: str, out: dict[str, float]) -> None:
    """Every finite number in a nested dict, as ``prefix/a/b`` (the pool's CIVIC metrics)."""
    if not isinstance(tree, Mapping):
        return
    for key, value in tree.items():
        if isinstance(value, Mapping):
            _flatten(value, f"{prefix}/{key}", out)
        else:
            v = _num(value)
            if v is not None:
                out[f"{prefix}/{key}"] = v


def _fmt(metrics: Mapping[str, float], key: str, spec: str, prefix: str = PREFIX) -> str:
    v = metrics.get(f"env_runners/{prefix}/{key}")
    return "n/a" if v is None else format(v, spec)


def progress_line(
    metrics: Mapping[str, float], budget: int, started: float, pool: bool | None = None
) -> str:
    """One line: iteration, steps, return, sync/E2E delay, served % and mean action (or, for a
    pool controller, the CIVIC metrics), speed, ETA. ``pool`` None: a pool run is recognised by
    its CIVIC metrics (absent until an episode has ended)."""
    it = int(metrics.get("training_iteration", 0))
    steps = int(metrics.get(TIMESTEPS, 0))
    elapsed = time.perf_counter() - started
    rate = steps / elapsed if elapsed > 0 else 0.0
    eta = (budget - steps) / rate if rate > 0 and steps < budget else 0.0
    ret = metrics.get("env_runners/episode_return_mean")
    if pool is None:
        pool = any(k.startswith(f"env_runners/{CIVIC_PREFIX}/") for k in metrics)
    if pool:
        kpis = (
            f"fulfilled {_fmt(metrics, 'fulfillment_pct', '5.1f', CIVIC_PREFIX)}%  "
            f"completed {_fmt(metrics, 'completion_pct', '5.1f', CIVIC_PREFIX)}%  "
            f"fairness {_fmt(metrics, 'fairness', '.3f', CIVIC_PREFIX)}  "
            f"traded {_fmt(metrics, 'credits_traded', '.0f', CIVIC_PREFIX)}"
        )
    else:
        kpis = (
            f"sync {_fmt(metrics, 'sync_delay', '5.2f')}  "
            f"e2e {_fmt(metrics, 'e2e_delay', '5.2f')}  "
            f"served {_fmt(metrics, 'served_pct', '5.1f')}%  "
            f"w=({_fmt(metrics, 'mean_w_b', '.2f')},{_fmt(metrics, 'mean_w_c', '.2f')})"
        )
    return (
        f"iter {it:4d}  steps {steps:>9,}/{budget:,}  "
        f"return {'n/a' if ret is None else format(ret, '8.1f')}  {kpis}  "
        f"{rate:6.0f} steps/s  ETA {eta / 60:5.1f} min"
    )


def fit_batch_to_budget(hparams: dict[str, Any], timesteps: int) -> dict[str, Any]:
    """Copy of ``hparams`` whose batch is at most ``timesteps`` (and minibatch <= batch)."""
    hp = dict(hparams)
    if timesteps < hp["train_batch_size"]:
        hp["train_batch_size"] = int(timesteps)
        hp["minibatch_size"] = min(int(hp["minibatch_size"]), int(timesteps))
    return hp


def train(
    algo: Any,
    timesteps: int,
    on_iteration: Callable[[dict[str, float], Mapping[str, Any]], None] | None = None,
    start_steps: int = 0,
) -> dict[str, float]:
    """Call ``algo.train()`` until ``timesteps`` env steps are sampled; returns the last metrics."""
    metrics: dict[str, float] = {TIMESTEPS: float(start_steps)}
    while metrics[TIMESTEPS] < timesteps:
        result = algo.train()
        metrics = select_metrics(result)
        if on_iteration is not None:
            on_iteration(metrics, result)
    return metrics


# --- one training run, shared by ``launch train`` and the PPO trial ---------------------------
@dataclass(frozen=True)
class TrainingRun:
    """One PPO training of a learned controller, every setting resolved (:meth:`resolve`)."""

    controller: Any  # tune_configs.controllers.Controller
    env_config: dict[str, Any]
    hparams: dict[str, Any]
    resources: Any  # tune_configs.ppo.Resources
    seed: int
    timesteps: int
    options: dict[str, Any]  # the controller's options (e.g. ``policies`` of ``per-cell``)

    @classmethod
    def resolve(
        cls,
        controller: Any,
        env_config: Mapping[str, Any],
        hparams: Mapping[str, Any],
        timesteps: int,
        resources: Mapping[str, Any],
        seed: int,
        options: Mapping[str, Any],
    ) -> TrainingRun:
        """The ``controller``'s (:class:`tune_configs.controllers.Controller`) env config and
        hyper-parameters (the batch fitted to the budget)."""
        from tune_configs.ppo import resources_from

        ctl = controller
        return cls(
            controller=ctl,
            env_config=ctl.resolve_env_config(env_config),
            hparams=fit_batch_to_budget(ctl.resolve_hparams(hparams), timesteps),
            resources=resources_from(resources),
            seed=int(seed),
            timesteps=int(timesteps),
            options={k: options[k] for k in ctl.options if k in options},
        )

    def save(self, algo: Any, directory: str | Path, **extra: Any) -> Path:
        """A checkpoint of ``algo`` with the controller's sidecar (seed and options included)."""
        return Path(
            self.controller.save(
                algo, directory, self.env_config, seed=self.seed, **self.options, **extra
            )
        )


@dataclass
class TrainingResult:
    checkpoint: Path  # the final checkpoint
    metrics: dict[str, float]  # the last iteration's metrics
    resumed_from_steps: int  # env steps of the checkpoint the run restored, 0 if none
    status: str  # finished | interrupted


def run_training(
    run: TrainingRun,
    checkpoint_dir: str | Path,
    on_iteration: Callable[[dict[str, float], Any], None] | None = None,
    restore: str | Path | None = None,
    driver_only: bool = False,
    phases: Phases | None = None,
    interruptible: bool = False,
    on_start: Callable[[], None] | None = None,
) -> TrainingResult:
    """Build the algorithm, optionally restore a checkpoint (its env steps count towards the
    budget), train to ``run.timesteps`` calling ``on_iteration(metrics, algo)`` after every
    iteration, save the final checkpoint to ``checkpoint_dir`` and stop the algorithm.

    ``driver_only``: sample and learn in this process without a Ray node
    (:func:`tune_configs.ops.ray_internals.without_ray`); ``interruptible``: Ctrl-C ends the
    training early and still saves the checkpoint reached (status ``interrupted``);
    ``on_start()`` runs once the algorithm is built and restored, before the first iteration.
    """
    import contextlib

    from tune_configs.policies.checkpoint import read_sidecar

    phases = phases or Phases()
    algo = None
    with contextlib.ExitStack() as stack:
        ppo = run.controller.build_config(
            run.env_config, run.hparams, run.resources, seed=run.seed, **run.options
        )
        if driver_only:
            from tune_configs.ops.ray_internals import without_ray

            stack.enter_context(without_ray(ppo))
        algo = ppo.build_algo()
        stack.callback(algo.stop)
        phases.lap("build")
        offset = 0
        if restore is not None:
            algo.restore_from_path(str(Path(restore).resolve()))
            offset = int((read_sidecar(restore) or {}).get("timesteps", 0))
        if on_start is not None:
            on_start()
        last: dict[str, float] = {TIMESTEPS: float(offset)}  # what an interruption keeps

        def each(metrics: dict[str, float], _result: Mapping[str, Any]) -> None:
            if metrics[TIMESTEPS] < offset:  # a restored algorithm may restart its counter
                metrics[TIMESTEPS] += offset
            last.clear()
            last.update(metrics)
            if on_iteration is not None:
                on_iteration(metrics, algo)

        status = "finished"
        try:
            final = train(algo, run.timesteps, each, start_steps=offset)
        except KeyboardInterrupt:
            if not interruptible:
                raise
            status = "interrupted"
            final = dict(last)
        phases.lap("train")
        ckpt = run.save(
            algo, checkpoint_dir, hparams=run.hparams, timesteps=int(final.get(TIMESTEPS, 0))
        )
        phases.lap("checkpoint")
    return TrainingResult(ckpt, final, offset, status)


class TrainingLog:
    """The record of one training run in a directory: TensorBoard events (``tb/``, the metrics
    as ``ray/tune/<name>`` over env steps, as Tune writes them) and ``progress.csv`` (one row per
    iteration, written when the log closes). :meth:`add` fits ``run_training``'s
    ``on_iteration``."""

    def __init__(self, directory: str | Path) -> None:
        self.directory = Path(directory)
        self.rows: list[dict[str, float]] = []
        self._writer: Any = None

    def __enter__(self) -> TrainingLog:
        from tensorboardX import SummaryWriter

        self.directory.mkdir(parents=True, exist_ok=True)
        self._writer = SummaryWriter(str(self.directory / "tb"))
        return self

    def add(self, metrics: dict[str, float], _algo: Any = None) -> None:
        self.rows.append(metrics)
        step = int(metrics[TIMESTEPS])
        for key, value in metrics.items():
            self._writer.add_scalar(f"ray/tune/{key}", value, global_step=step)
        self._writer.flush()

    def __exit__(self, *exc: Any) -> None:
        self._writer.close()
        write_progress(self.directory / "progress.csv", self.rows)


def write_progress(path: Path, rows: list[dict[str, float]]) -> None:
    """``progress.csv``: one row per iteration, the union of the metrics' names as columns."""
    import csv

    if not rows:
        return
    keys: list[str] = []
    for row in rows:
        keys.extend(k for k in row if k not in keys)
    with path.open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=keys)
        writer.writeheader()
        writer.writerows(rows)
