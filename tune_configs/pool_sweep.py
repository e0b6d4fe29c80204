"""The ``pool`` sweep: multi-agent PPO on a credit-pool scenario, one agent per cell.

Names a dispatcher (``python -m launch sweep pool ...``) or a test can import without running
anything:

* :data:`SCENARIO` (default preset), :data:`METRIC` / :data:`MODE` (what Optuna optimises and
  what ranks trials: the windowed mean CIVIC fulfillment of the training episodes),
  :data:`METRICS` (everything worth reporting per trial), :data:`GRID` (the default grid: reward
  scope team / local x learning rate), :data:`OPTUNA_SPACE` (continuous / categorical space);
* :func:`stop_condition` (env steps sampled), :func:`build_tuner` (the ``tune.Tuner``).

Each trial trains :func:`tune_configs.pool.build_pool_ppo_config` (in-process sampling, one CPU
per trial) and saves a checkpoint at the end, which ``python -m launch pool-compare --checkpoint
<trial>/checkpoint_000000`` evaluates. TensorBoard files hold the CIVIC metrics
(``ray/tune/env_runners/civic/...``).

Example (about 4 minutes per trial for 100k steps on a quiet 2-core machine, two trials at once)::

    from tune_configs.pool_sweep import build_tuner
    tuner = build_tuner(scenario="three_cell_hetero", timesteps=100_000,
                        storage_path="/abs/results/sweeps")
    results = tuner.fit()
    print(results.get_best_result(metric=METRIC, mode=MODE).metrics[METRIC])
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from tune_configs.pool import POLICY_MODES, build_pool_ppo_config, civic_metric_name
from tune_configs.ppo import Resources

NAME = "pool"
SCENARIO = "three_cell_hetero"
METRIC = civic_metric_name("fulfillment_pct")
MODE = "max"
METRICS: tuple[str, ...] = (
    civic_metric_name("fulfillment_pct"),
    civic_metric_name("completion_pct"),
    civic_metric_name("served_clients"),
    civic_metric_name("fairness"),
    civic_metric_name("operational_cost"),
    civic_metric_name("backhaul_units"),
    "env_runners/episode_return_mean",
)
DEFAULT_TIMESTEPS = 100_000
# grid: every combination runs once per sample
GRID: dict[str, list[Any]] = {
    "scope": ["team", "local"],  # env_config: team reward (cooperative) or own cell's reward
    "lr": [3e-4, 1e-3],
}
# Optuna: (kind, low, high) for numbers, ("choice", [options]) for categories
OPTUNA_SPACE: dict[str, tuple[Any, ...]] = {
    "lr": ("loguniform", 5e-5, 3e-3),
    "entropy_coeff": ("uniform", 0.0, 0.01),
    "scope": ("choice", ["team", "local"]),
    "reward": ("choice", ["metalore", "fulfilled"]),
}
ENV_KEYS = frozenset({"scope", "reward"})  # searched names that live in env_config
SEARCHES = ("grid", "optuna")


def stop_condition(timesteps: int) -> Any:
    """Stop a trial once it sampled ``timesteps`` env steps."""
    if timesteps < 1:
        raise ValueError(f"timesteps must be >= 1, got {timesteps}")

    def stop(trial_id: str, result: Mapping[str, Any]) -> bool:
        runners = result.get("env_runners", {})
        steps = result.get("num_env_steps_sampled_lifetime")
        if steps is None and isinstance(runners, Mapping):
            steps = runners.get("num_env_steps_sampled_lifetime")
        return steps is not None and float(steps) >= timesteps

    return stop


def _tune_value(spec: tuple[Any, ...]) -> Any:
    from ray import tune

    kind = spec[0]
    if kind == "loguniform":
        return tune.loguniform(spec[1], spec[2])
    if kind == "uniform":
        return tune.uniform(spec[1], spec[2])
    if kind == "choice":
        return tune.choice(list(spec[1]))
    raise ValueError(f"unknown search-space kind {kind!r}")


def param_space(config: Any, search: str, space: Mapping[str, Any] | None = None) -> Any:
    """Put the searched values into a PPO config (env keys into ``env_config``)."""
    from ray import tune

    if search not in SEARCHES:
        raise ValueError(f"invalid search {search!r}: choose one of {SEARCHES}")
    space = dict(space if space is not None else (GRID if search == "grid" else OPTUNA_SPACE))
    env_config = dict(config.env_config)
    for key, spec in space.items():
        value = tune.grid_search(list(spec)) if search == "grid" else _tune_value(tuple(spec))
        if key in ENV_KEYS:
            env_config[key] = value
        elif hasattr(config, key):
            setattr(config, key, value)
        else:
            raise ValueError(f"unknown searched parameter {key!r}")
    config.env_config = env_config
    return config


def build_tuner(
    scenario: str = SCENARIO,
    timesteps: int = DEFAULT_TIMESTEPS,
    num_samples: int = 1,
    search: str = "grid",
    storage_path: str | Path | None = None,
    name: str = NAME,
    policies: str = "shared",
    max_concurrent: int = 2,
    seed: int = 0,
    resources: Resources | None = None,
    env_overrides: Mapping[str, Any] | None = None,
    hparams: Mapping[str, Any] | None = None,
    space: Mapping[str, Any] | None = None,
) -> Any:
    """A ``tune.Tuner`` for the pool sweep; call ``.fit()`` with Ray initialised.

    ``search="grid"`` runs :data:`GRID` (``num_samples`` times); ``"optuna"`` samples
    ``num_samples`` trials from :data:`OPTUNA_SPACE` with Optuna (maximising :data:`METRIC`).
    ``env_overrides`` fix env / pool parameters (``{"endowment": 1000}``), ``hparams`` PPO ones.
    """
    from ray import tune
    from ray.tune import CheckpointConfig, RunConfig, TuneConfig

    if policies not in POLICY_MODES:
        raise ValueError(f"invalid policies {policies!r}: choose one of {POLICY_MODES}")
    if num_samples < 1 or max_concurrent < 1:
        raise ValueError("num_samples and max_concurrent must be >= 1")
    env_config = {"preset": scenario, **dict(env_overrides or {})}
    config = build_pool_ppo_config(env_config, hparams, resources, seed=seed, policies=policies)
    config = param_space(config, search, space)
    search_alg = None
    if search == "optuna":
        from ray.tune.search.optuna import OptunaSearch

        search_alg = OptunaSearch(metric=METRIC, mode=MODE, seed=seed)
    storage = str(Path(storage_path).expanduser().resolve()) if storage_path else None
    return tune.Tuner(
        "PPO",
        param_space=config,
        tune_config=TuneConfig(
            num_samples=num_samples,
            max_concurrent_trials=max_concurrent,
            search_alg=search_alg,
            metric=None if search_alg is not None else METRIC,
            mode=None if search_alg is not None else MODE,
            trial_dirname_creator=lambda trial: f"{name}_{trial.trial_id}",
        ),
        run_config=RunConfig(
            name=name,
            storage_path=storage,
            stop=stop_condition(timesteps),
            verbose=0,
            checkpoint_config=CheckpointConfig(checkpoint_at_end=True, num_to_keep=1),
        ),
    )
