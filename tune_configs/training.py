"""Pieces shared by ``launch train`` and the PPO Tune trials: metric selection, progress lines,
the training loop and checkpoint saving.

* :func:`select_metrics` keeps the interesting part of an RLlib result (flat ``a/b/c`` names):
  the MetaLore episode metrics of :mod:`tune_configs.callbacks`, RLlib's episode return, the PPO
  learner statistics and timings, plus ``timesteps`` (env steps sampled so far);
* :func:`progress_line` turns them into one readable line per iteration;
* :func:`train` runs ``algo.train()`` until a number of env steps, calling back per iteration;
* :func:`save_checkpoint` saves the algorithm with an absolute path and writes the MetaLore
  sidecar that :mod:`tune_configs.policy` needs to evaluate the policy without RLlib;
* :func:`fit_batch_to_budget` shrinks the batch when the whole budget is smaller than one batch.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from tune_configs.callbacks import LOGGED_KEYS, PREFIX
from tune_configs.policy import write_sidecar

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
    learner = (result.get("learners", {}) or {}).get("default_policy", {}) or {}
    for key in _LEARNER_KEYS:
        v = _num(learner.get(key))
        if v is not None:
            out[f"learners/default_policy/{key}"] = v
    for key in ("time_this_iter_s", "time_total_s", "training_iteration"):
        v = _num(result.get(key))
        if v is not None:
            out[key] = v
    lifetime = _num(result.get("num_env_steps_sampled_lifetime"))
    if lifetime is None:
        lifetime = _num(runners.get("num_env_steps_sampled_lifetime"))
    out[TIMESTEPS] = lifetime or 0.0
    return out


def _fmt(metrics: Mapping[str, float], key: str, spec: str) -> str:
    v = metrics.get(f"env_runners/{PREFIX}/{key}")
    return "n/a" if v is None else format(v, spec)


def progress_line(metrics: Mapping[str, float], budget: int, started: float) -> str:
    """One line: iteration, steps, return, sync/E2E delay, served %, mean action, speed, ETA."""
    it = int(metrics.get("training_iteration", 0))
    steps = int(metrics.get(TIMESTEPS, 0))
    elapsed = time.perf_counter() - started
    rate = steps / elapsed if elapsed > 0 else 0.0
    eta = (budget - steps) / rate if rate > 0 and steps < budget else 0.0
    ret = metrics.get("env_runners/episode_return_mean")
    return (
        f"iter {it:4d}  steps {steps:>9,}/{budget:,}  "
        f"return {'n/a' if ret is None else format(ret, '8.1f')}  "
        f"sync {_fmt(metrics, 'sync_delay', '5.2f')}  e2e {_fmt(metrics, 'e2e_delay', '5.2f')}  "
        f"served {_fmt(metrics, 'served_pct', '5.1f')}%  "
        f"w=({_fmt(metrics, 'mean_w_b', '.2f')},{_fmt(metrics, 'mean_w_c', '.2f')})  "
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


def save_checkpoint(
    algo: Any, directory: str | Path, env_config: Mapping[str, Any], **extra: Any
) -> Path:
    """``algo.save`` to an absolute ``directory`` plus the MetaLore sidecar; returns the path."""
    path = Path(directory).expanduser().resolve()
    path.mkdir(parents=True, exist_ok=True)
    algo.save(str(path))
    write_sidecar(path, env_config, **extra)
    return path
