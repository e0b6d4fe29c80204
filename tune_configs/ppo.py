"""PPO config builder for MetaLore on RLlib's new API stack.

:func:`base_ppo_config` is the ``PPOConfig`` every learned controller extends (env, resources,
hyper-parameters, callback, seed); ``build_ppo_config(env_config, hparams, resources, seed)``
returns the single-cell controller's, ready to build:

* env: :data:`tune_configs.env.RLLIB_ENV` (registered here), ``env_config`` flat overrides;
* resources (:class:`Resources`): by default sampling happens in the algorithm's own process
  (``num_env_runners=0``) over 32 vectorised envs and the learner is local, so one trial needs
  exactly one CPU and a 2-core machine runs two trials side by side. Measured on 2 quiet cores
  (``tune_configs.ops.bench``): 0 runners x 32 envs trains about 3,200 env steps/s, more than 1
  remote runner x 32 envs (2,400) or 0 x 8 (2,100); vectorising is what pays. On a cluster raise
  ``num_env_runners`` (each remote runner takes ``num_cpus_per_env_runner``);
* hyper-parameters (:data:`DEFAULT_HPARAMS`, overridable key by key, e.g. from a Tune space);
* the :class:`tune_configs.callbacks.MetaLoreMetrics` callback.

Example::

    from tune_configs.ppo import build_ppo_config
    algo = build_ppo_config({"delta": 0.9, "penalty": 0.0}, seed=0).build_algo()
    print(algo.train()["env_runners"]["metalore"]["served_pct"])
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields
from typing import Any

from tune_configs.env import params_from_env_config, register

# Hyper-parameters (names as in PPOConfig.training / rl_module). Observations are log1p queue
# lengths (obs_mode), returns are O(1000) per 100-step episode, hence the loose vf clip.
DEFAULT_HPARAMS: dict[str, Any] = {
    "lr": 3e-4,
    "gamma": 0.99,
    "lambda_": 0.95,
    "clip_param": 0.2,
    "vf_clip_param": 1000.0,
    "vf_loss_coeff": 0.5,
    "entropy_coeff": 0.0,
    "kl_coeff": 0.0,
    "train_batch_size": 4000,  # env steps per iteration (= train_batch_size_per_learner)
    "minibatch_size": 1000,
    "num_epochs": 5,
    "fcnet_hiddens": [64, 64],
    "fcnet_activation": "tanh",
    "free_log_std": False,  # True: state-independent log std (the head outputs only the mean)
    "log_std_clip_param": 20.0,  # log std clamped to [-c, c] (RLlib's default 20)
}
DEFAULT_ENV_CONFIG: dict[str, Any] = {"preset": "paper", "obs_mode": "log1p"}
ACTIVATIONS = ("tanh", "relu", "linear", "swish", "silu", "elu")
MAX_LAYERS, MAX_WIDTH = 8, 4096  # of fcnet_hiddens
MAX_BATCH = 10_000_000


def _number(v: Any, integer: bool) -> bool:
    ok = isinstance(v, int) if integer else isinstance(v, (int, float))
    return ok and not isinstance(v, bool) and math.isfinite(v)


# name -> (check, allowed values in words)
_HPARAM_CHECKS: dict[str, tuple[Any, str]] = {
    "lr": (lambda v: _number(v, False) and 0 < v <= 1, "a number in (0, 1]"),
    "gamma": (lambda v: _number(v, False) and 0 <= v <= 1, "a number in [0, 1]"),
    "lambda_": (lambda v: _number(v, False) and 0 <= v <= 1, "a number in [0, 1]"),
    "clip_param": (lambda v: _number(v, False) and v > 0, "a number > 0"),
    "vf_clip_param": (lambda v: _number(v, False) and v > 0, "a number > 0"),
    "vf_loss_coeff": (lambda v: _number(v, False) and v >= 0, "a number >= 0"),
    "entropy_coeff": (lambda v: _number(v, False) and v >= 0, "a number >= 0"),
    "kl_coeff": (lambda v: _number(v, False) and v >= 0, "a number >= 0"),
    "train_batch_size": (lambda v: _number(v, True) and 1 <= v <= MAX_BATCH,
                         f"an integer in [1, {MAX_BATCH}]"),
    "minibatch_size": (lambda v: _number(v, True) and 1 <= v <= MAX_BATCH,
                       f"an integer in [1, {MAX_BATCH}]"),
    "num_epochs": (lambda v: _number(v, True) and 1 <= v <= 1000, "an integer in [1, 1000]"),
    "fcnet_hiddens": (
        lambda v: isinstance(v, (list, tuple)) and 1 <= len(v) <= MAX_LAYERS
        and all(_number(w, True) and 1 <= w <= MAX_WIDTH for w in v),
        f"a list of 1 to {MAX_LAYERS} layer widths in [1, {MAX_WIDTH}]",
    ),
    "fcnet_activation": (lambda v: v in ACTIVATIONS, f"one of {ACTIVATIONS}"),
    "free_log_std": (lambda v: isinstance(v, bool), "true or false"),
    "log_std_clip_param": (lambda v: _number(v, False) and v > 0, "a number > 0"),
}  # fmt: skip


@dataclass(frozen=True)
class Resources:
    """Where a PPO algorithm samples and learns."""

    num_env_runners: int = 0  # remote sampling actors (0: sample in the algorithm's process)
    num_envs_per_env_runner: int = 64  # vectorised envs per runner (or in-process)
    num_cpus_per_env_runner: int = 1
    num_learners: int = 0  # 0: learn in the algorithm's process
    vector_env: bool = True  # native vector env (one numba call per step) instead of SyncVectorEnv

    def __post_init__(self) -> None:
        for f in fields(self):
            v = getattr(self, f.name)
            ok = isinstance(v, bool) if f.type in ("bool", bool) else _number(v, True)
            if not ok or (not isinstance(v, bool) and not 0 <= v <= 1024):
                what = "true or false" if f.type in ("bool", bool) else "an integer in [0, 1024]"
                raise ValueError(f"invalid resources {f.name}={v!r}: must be {what}")
        if self.num_env_runners < 0:
            raise ValueError(f"num_env_runners must be >= 0, got {self.num_env_runners}")
        if self.num_envs_per_env_runner < 1:
            raise ValueError(
                f"num_envs_per_env_runner must be >= 1, got {self.num_envs_per_env_runner}"
            )
        if self.num_learners < 0:
            raise ValueError(f"num_learners must be >= 0, got {self.num_learners}")

    @property
    def cpus(self) -> float:
        """CPUs one algorithm (one Tune trial) reserves."""
        return 1.0 + self.num_env_runners * self.num_cpus_per_env_runner + self.num_learners

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def resources_from(values: Mapping[str, Any]) -> Resources:
    """:class:`Resources` from a plain dict (``ValueError`` naming an unknown or bad field)."""
    if not isinstance(values, Mapping):
        raise ValueError(f"resources must be a JSON object, got {values!r}")
    known = {f.name for f in fields(Resources)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise ValueError(f"unknown resources {unknown}; known: {', '.join(sorted(known))}")
    return Resources(**values)


def resolve_hparams(overrides: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """:data:`DEFAULT_HPARAMS` with ``overrides``; unknown names raise ``ValueError``."""
    hp = dict(DEFAULT_HPARAMS)
    if overrides is not None and not isinstance(overrides, Mapping):
        raise ValueError(f"hparams must be a JSON object, got {overrides!r}")
    for key, value in dict(overrides or {}).items():
        if key not in hp:
            raise ValueError(f"unknown PPO hyper-parameter {key!r}; known: {', '.join(sorted(hp))}")
        check, allowed = _HPARAM_CHECKS[key]
        try:
            ok = bool(check(value))
        except TypeError:  # e.g. an unhashable value for a choice
            ok = False
        if not ok:
            raise ValueError(f"invalid PPO hyper-parameter {key}={value!r}: must be {allowed}")
        hp[key] = value
    if hp["minibatch_size"] > hp["train_batch_size"]:
        raise ValueError(
            f"minibatch_size ({hp['minibatch_size']}) must be <= train_batch_size "
            f"({hp['train_batch_size']})"
        )
    return hp


def training_kwargs(hp: Mapping[str, Any]) -> dict[str, Any]:
    """``PPOConfig.training`` arguments for resolved hyper-parameters (single- and multi-agent)."""
    return {
        "lr": hp["lr"],
        "gamma": hp["gamma"],
        "lambda_": hp["lambda_"],
        "clip_param": hp["clip_param"],
        "vf_clip_param": hp["vf_clip_param"],
        "vf_loss_coeff": hp["vf_loss_coeff"],
        "entropy_coeff": hp["entropy_coeff"],
        "kl_coeff": hp["kl_coeff"],
        "use_kl_loss": hp["kl_coeff"] > 0,
        "train_batch_size_per_learner": hp["train_batch_size"],
        "minibatch_size": hp["minibatch_size"],
        "num_epochs": hp["num_epochs"],
    }


def model_config(hp: Mapping[str, Any]) -> dict[str, Any]:
    """The RLModule's ``model_config`` (separate policy and value networks)."""
    return {
        "fcnet_hiddens": list(hp["fcnet_hiddens"]),
        "fcnet_activation": hp["fcnet_activation"],
        "vf_share_layers": False,
        "free_log_std": bool(hp["free_log_std"]),
        "log_std_clip_param": float(hp["log_std_clip_param"]),
    }


def resolve_env_config(env_config: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """:data:`DEFAULT_ENV_CONFIG` updated with ``env_config``, validated by building params."""
    cfg = {**DEFAULT_ENV_CONFIG, **dict(env_config or {})}
    params = params_from_env_config(cfg)  # raises ValueError naming a bad field
    if params.action_mode == "residual":  # the rule the network corrects, spelled out
        cfg["residual_scale"] = params.residual_scale
        cfg["residual_rule"] = list(params.residual_rule)
    return cfg


def base_ppo_config(
    env: str,
    env_config: Mapping[str, Any],
    hparams: Mapping[str, Any],
    resources: Resources,
    seed: int | None,
    callbacks: Any,
    smoothing: int = 100,
    environment: Mapping[str, Any] | None = None,
    env_runners: Mapping[str, Any] | None = None,
    rl_module: Mapping[str, Any] | None = None,
    multi_agent: Mapping[str, Any] | None = None,
) -> Any:
    """The ``PPOConfig`` every controller extends: registered env ``env`` with ``env_config``,
    the resources, resolved hyper-parameters, the metrics callback, the seed and the smoothing
    window; ``environment`` / ``env_runners`` add controller-specific arguments, ``rl_module``
    replaces the default ``model_config`` (e.g. a spec with a centralised critic), ``multi_agent``
    makes it multi-agent (policies and their mapping)."""
    from ray.rllib.algorithms.ppo import PPOConfig

    config = (
        PPOConfig()  # type: ignore[no-untyped-call]
        .environment(
            env, env_config=dict(env_config), disable_env_checking=True, **dict(environment or {})
        )
        .env_runners(
            num_env_runners=resources.num_env_runners,
            num_envs_per_env_runner=resources.num_envs_per_env_runner,
            num_cpus_per_env_runner=resources.num_cpus_per_env_runner,
            rollout_fragment_length="auto",  # the batch split evenly over all envs
            batch_mode="truncate_episodes",
            **dict(env_runners or {}),
        )
        .learners(num_learners=resources.num_learners)
    )
    if multi_agent is not None:
        config = config.multi_agent(**multi_agent)
    return (
        config.training(**training_kwargs(hparams))
        .rl_module(**dict(rl_module or {"model_config": model_config(hparams)}))
        .callbacks(callbacks)
        .debugging(seed=seed, log_sys_usage=False)
        .reporting(metrics_num_episodes_for_smoothing=smoothing)
    )


def build_ppo_config(
    env_config: Mapping[str, Any] | None = None,
    hparams: Mapping[str, Any] | None = None,
    resources: Resources | None = None,
    seed: int | None = 0,
) -> Any:
    """A ``PPOConfig`` for MetaLore (see the module docstring); nothing is started."""
    from tune_configs.callbacks import MetaLoreMetrics

    res = resources or Resources()
    return base_ppo_config(
        register(vector=res.vector_env),
        resolve_env_config(env_config),
        resolve_hparams(hparams),
        res,
        seed,
        MetaLoreMetrics,
        # the native vector env unsquashes [-1, 1] actions itself (same numbers, batched)
        environment={"normalize_actions": not res.vector_env, "clip_actions": False},
        env_runners={"gym_env_vectorize_mode": "vector_entry_point" if res.vector_env else "sync"},
    )
