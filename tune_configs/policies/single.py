"""A trained PPO policy outside RLlib: load a checkpoint or a shipped policy, act, evaluate.

No Ray cluster is started. A checkpoint's RLModule is restored with ``RLModule.from_checkpoint``
from ``<checkpoint>/learner_group/learner/rl_module/default_policy``; the env config it was
trained on comes from the checkpoint's sidecar (:mod:`tune_configs.policies.checkpoint`; a
checkpoint without one, not saved by the platform, is refused: it would have to be unpickled).
A shipped policy
directory (:mod:`tune_configs.policies.shipped`: ``policy.safetensors`` + ``policy.json``) loads
without torch, Ray or pickle.

Acting: the actor network (encoder MLP and ``pi`` head) is taken out of the RLModule and run in
numpy (:class:`tune_configs.policies.shipped.MLPActor`), for checkpoints and shipped policies
alike, so both evaluate to exactly the same numbers (a module of another architecture falls back to
torch). Observations are transformed by the env itself (``obs_mode``, ``obs_uplink``), so no
connector state is needed; actions are the mean of the action distribution, unsquashed from
[-1, 1] to the action box (RLlib's ``normalize_actions``: [0, 1], or [-1, 1] for the residual
corrections of ``action_mode="residual"``, which the env applies to its rule) and clipped.

Example::

    from tune_configs.policies.single import load_policy, evaluate_policy
    pol = load_policy("results/train/checkpoint")        # or a shipped dir, models/paper/...
    rows = evaluate_policy(pol, episodes=100, seed=0)   # one dict per episode

Evaluation steps all episodes in lockstep in the native vector env
(:class:`envs.vector.MetaLoreVectorEnv`, episode seeds seed..seed+episodes-1, the same episodes
as the single env and the static baselines) and batches the forward pass over them: 100
episodes take well under a second.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from envs.core.metrics import SUMMARY_KEYS
from envs.core.params import EnvParams
from envs.metalore_env import action_space, obs_shape
from tune_configs import env as rllib_env
from tune_configs.env import params_from_env_config, vector_env
from tune_configs.policies.checkpoint import (
    DEFAULT_MODULE,
    MODULE_DIR,
    CheckpointError,
    require_sidecar,
)
from tune_configs.policies.interface import (
    SINGLE_INTERFACE,
    Evaluation,
    evaluation_env_config,
    split_env_config,
)
from tune_configs.policies.shipped import (
    SINGLE_ACTOR,
    MLPActor,
    ShippedPolicyError,
    actor_of_rl_module,
    is_shipped,
    load_shipped,
    to_env_actions,
)

MODULE_SUBDIR = MODULE_DIR / DEFAULT_MODULE
POLICY_KIND = "ppo"


def single_sidecar_fields(env_config: Mapping[str, Any]) -> dict[str, Any]:
    """The single controller's sidecar fields (:mod:`tune_configs.policies.checkpoint`)."""
    return {"params": params_from_env_config(env_config).to_dict(), "normalize_actions": True}


def read_checkpoint_info(checkpoint: str | Path) -> dict[str, Any]:
    """The sidecar of a checkpoint (controller, env_config, params, normalize_actions, ...)."""
    ckpt = Path(checkpoint).expanduser().resolve()
    if not ckpt.exists():
        raise CheckpointError(f"checkpoint {str(checkpoint)!r} does not exist")
    if not ckpt.is_dir():
        raise CheckpointError(f"checkpoint {str(checkpoint)!r} is not a directory")
    if not (ckpt / MODULE_SUBDIR).is_dir():
        raise CheckpointError(
            f"{ckpt} is not an RLlib PPO checkpoint: {MODULE_SUBDIR} is missing "
            "(pass the directory written by `launch train`, e.g. OUT/checkpoint)"
        )
    return require_sidecar(ckpt)


@dataclass
class TrainedPolicy:
    """A restored policy plus what is needed to act in the env it was trained on."""

    checkpoint: Path
    module: Any  # ray.rllib.core.rl_module.RLModule (torch), None for a shipped policy
    env_config: dict[str, Any]
    params: EnvParams
    normalize_actions: bool = True
    actor: MLPActor | None = None  # the numpy actor (None: act through the torch module)
    evaluation: Evaluation | None = None  # how env_config was chosen from the training one

    @property
    def action_shape(self) -> tuple[int, ...]:
        return tuple(action_space(self.params).shape)

    @property
    def action_low(self) -> float:
        """Lower bound of the env's action box: 0 (shares), -1 (residual corrections)."""
        return float(action_space(self.params).low.flat[0])

    @property
    def preset(self) -> str:
        return rllib_env.split_env_config(self.env_config)[0]

    @property
    def label(self) -> str:
        r = self.params.reward
        return f"ppo(delta={r.delta:g},penalty={r.penalty:g})"

    def act(self, obs: NDArray[np.floating[Any]]) -> NDArray[np.float64]:
        """Deterministic actions ``(N, *action_shape)`` for a batch of observations."""
        if self.actor is not None:
            action = {"normalize": self.normalize_actions, "low": self.action_low, "high": 1.0,
                      "shape": list(self.action_shape)}  # fmt: skip
            return to_env_actions(self.actor(obs), action)
        import torch

        batch = torch.as_tensor(np.asarray(obs, dtype=np.float32))
        with torch.no_grad():
            out = self.module.forward_inference({"obs": batch})
            dist_cls = self.module.get_inference_action_dist_cls()
            dist = dist_cls.from_logits(out["action_dist_inputs"]).to_deterministic()
            actions: NDArray[np.float64] = dist.sample().cpu().numpy().astype(np.float64)
        low = self.action_low
        if self.normalize_actions:  # [-1, 1] -> the action box [low, 1]
            actions = low + (actions + 1.0) * 0.5 * (1.0 - low)
        return np.clip(actions, low, 1.0)


def load_policy(checkpoint: str | Path, **env_overrides: Any) -> TrainedPolicy:
    """Restore the policy of an RLlib PPO checkpoint (see :func:`read_checkpoint_info`).

    ``env_overrides`` change the evaluation env (e.g. ``delta`` for the metrics bookkeeping or a
    different scenario); the observation transform stays the training one. ``checkpoint`` may
    also be a shipped policy directory (:func:`tune_configs.policies.shipped.is_shipped`).
    """
    if is_shipped(checkpoint):
        return _load_shipped(checkpoint, env_overrides)
    info = read_checkpoint_info(checkpoint)
    ckpt = Path(checkpoint).expanduser().resolve()
    from ray.rllib.core.rl_module.rl_module import RLModule

    # RLlib warns about its own deprecated internals while restoring: keep eval output clean.
    loggers = [logging.getLogger(n) for n in ("ray.rllib", "ray._common.deprecation")]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.ERROR)
    try:
        module = RLModule.from_checkpoint(str(ckpt / MODULE_SUBDIR))
    except Exception as exc:
        raise CheckpointError(
            f"{ckpt}: cannot restore the policy network ({type(exc).__name__}: {exc})"
        ) from exc
    finally:
        for lg, lvl in zip(loggers, levels, strict=True):
            lg.setLevel(lvl)
    module.eval()  # type: ignore[attr-defined]  # a torch RLModule is an nn.Module
    try:
        actor: MLPActor | None = actor_of_rl_module(module)
    except ValueError:  # another architecture: act through torch
        actor = None
    evaluation = evaluation_of(info["env_config"], env_overrides)
    return TrainedPolicy(
        checkpoint=ckpt,
        module=module,
        env_config=evaluation.env_config,
        params=params_from_env_config(evaluation.env_config),
        normalize_actions=bool(info.get("normalize_actions", True)),
        actor=actor,
        evaluation=evaluation,
    )


def evaluation_of(trained: Mapping[str, Any], overrides: Mapping[str, Any]) -> Evaluation:
    """The evaluation env config of a policy trained on ``trained`` (its interface kept, see
    :mod:`tune_configs.policies.interface`)."""
    interface, scenario = split_env_config(trained, SINGLE_INTERFACE)
    if any(key in overrides for key in SINGLE_INTERFACE):  # also keys left at their defaults
        before = params_from_env_config(trained)
        after = params_from_env_config({**dict(trained), **dict(overrides)})
        for key in SINGLE_INTERFACE:
            if getattr(before, key) != getattr(after, key):
                raise ValueError(f"{key} cannot differ from the one the policy was trained with")
    return evaluation_env_config(interface, scenario, overrides)


def _load_shipped(path: str | Path, env_overrides: Mapping[str, Any]) -> TrainedPolicy:
    try:
        shipped = load_shipped(path)
    except ShippedPolicyError as exc:
        raise CheckpointError(str(exc)) from exc
    if SINGLE_ACTOR not in shipped.actors:
        raise CheckpointError(
            f"{shipped.path}: controller {shipped.controller!r} without actors.{SINGLE_ACTOR}: "
            "not a single-cell policy"
        )
    evaluation = evaluation_of(shipped.env_config, env_overrides)
    params = params_from_env_config(evaluation.env_config)
    actor = shipped.actors[SINGLE_ACTOR]
    n_obs, n_act = int(np.prod(obs_shape(params))), int(np.prod(action_space(params).shape))
    if (actor.in_features, actor.action_dim) != (n_obs, n_act):
        raise CheckpointError(
            f"{shipped.path}: actors.{SINGLE_ACTOR} maps {actor.in_features} observation "
            f"features to {actor.action_dim} actions; its scenario has {n_obs} and {n_act}"
        )
    return TrainedPolicy(
        checkpoint=shipped.path,
        module=None,
        env_config=evaluation.env_config,
        params=params_from_env_config(evaluation.env_config),
        normalize_actions=bool(shipped.description["action"].get("normalize", True)),
        actor=shipped.actors[SINGLE_ACTOR],
        evaluation=evaluation,
    )


def evaluate_policy(
    policy: TrainedPolicy, episodes: int = 100, seed: int = 0, label: str | None = None
) -> list[dict[str, Any]]:
    """Deterministic evaluation: one row per episode (episodes.csv format, see analysis.resultset).

    Every episode seed ``seed + i`` gives the same episode as for the static baselines, so the
    comparison uses common random numbers.
    """
    if isinstance(episodes, bool) or not isinstance(episodes, int) or episodes < 1:
        raise ValueError(f"invalid episodes={episodes!r}: must be an integer >= 1")
    env = vector_env(policy.env_config, episodes)  # actions in the box [0, 1]
    obs, _ = env.reset(seed=seed)  # sub-env i: episode seed seed + i
    finals: list[dict[str, Any] | None] = [None] * episodes
    while any(f is None for f in finals):
        obs, _, terminated, truncated, info = env.step(policy.act(obs))
        done = terminated | truncated
        for j in np.flatnonzero(done).tolist():
            if finals[j] is None:
                finals[j] = info["episode_metrics"][j]
        if done.any() and not done.all():  # sub-envs would start new episodes: not in lockstep
            raise RuntimeError("evaluation episodes ended at different steps")
    r = policy.params.reward
    name = label or policy.label
    rows = []
    for i, metrics in enumerate(finals):
        assert metrics is not None
        row: dict[str, Any] = {
            "policy": name,
            "kind": POLICY_KIND,
            "w_b": None,
            "w_c": None,
            "delta": r.delta,
            "penalty": r.penalty,
            "preset": policy.preset,
            "seed": seed + i,
        }
        for key in SUMMARY_KEYS:
            value = metrics.get(key)
            row[key] = None if value is None or not math.isfinite(value) else float(value)
        rows.append(row)
    return rows
