"""A trained PPO policy outside RLlib: load a checkpoint, act deterministically, evaluate.

No Ray cluster is started. The RLModule is restored with ``RLModule.from_checkpoint`` from
``<checkpoint>/learner_group/learner/rl_module/default_policy``; the env config it was trained on
comes from the sidecar file :data:`SIDECAR` that :func:`write_sidecar` puts next to every
checkpoint this project saves (older or foreign checkpoints fall back to the algorithm config
pickled in the checkpoint). Observations are transformed by the env itself (``obs_mode``), so no
connector state is needed; actions are the mean of the action distribution, unsquashed from
[-1, 1] to the action box (RLlib's ``normalize_actions``) and clipped by the env.

Example::

    from tune_configs.policy import load_policy, evaluate_policy
    pol = load_policy("results/train/checkpoint")
    rows = evaluate_policy(pol, episodes=100, seed=0)   # one dict per episode

Evaluation steps all episodes in lockstep (episode seeds seed..seed+episodes-1) and batches the
network's forward pass over them: 100 episodes take about a second.
"""

from __future__ import annotations

import json
import logging
import math
import pickle
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from envs.core.metrics import SUMMARY_KEYS
from envs.core.params import EnvParams
from tune_configs.env import env_creator, params_from_env_config, split_env_config

SIDECAR = "metalore_policy.json"
MODULE_SUBDIR = Path("learner_group", "learner", "rl_module", "default_policy")
POLICY_KIND = "ppo"


class CheckpointError(ValueError):
    """A checkpoint path that is missing, incomplete or unreadable (a usage error for the CLI)."""


def write_sidecar(checkpoint_dir: str | Path, env_config: Mapping[str, Any], **extra: Any) -> Path:
    """Write :data:`SIDECAR` (env config, resolved params, extras) into a checkpoint directory."""
    path = Path(checkpoint_dir) / SIDECAR
    params = params_from_env_config(env_config)
    body = {
        "env_config": dict(env_config),
        "params": params.to_dict(),
        "normalize_actions": True,
        **extra,
    }
    path.write_text(json.dumps(body, indent=2, default=str) + "\n")
    return path


def _algorithm_config_from_pickle(ckpt: Path) -> dict[str, Any]:
    try:
        with (ckpt / "class_and_ctor_args.pkl").open("rb") as fh:
            state = pickle.load(fh)
        config = state["ctor_args_and_kwargs"][0][0]
        return {
            "env_config": dict(config["env_config"]),
            "normalize_actions": bool(config.get("normalize_actions", True)),
        }
    except Exception as exc:  # any unpickling problem means "not a usable checkpoint"
        raise CheckpointError(
            f"{ckpt}: cannot read the algorithm config ({type(exc).__name__}: {exc})"
        ) from exc


def read_checkpoint_info(checkpoint: str | Path) -> dict[str, Any]:
    """The sidecar of a checkpoint (env_config, params, normalize_actions, ...)."""
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
    sidecar = ckpt / SIDECAR
    if sidecar.is_file():
        try:
            info: dict[str, Any] = json.loads(sidecar.read_text())
        except (OSError, json.JSONDecodeError) as exc:
            raise CheckpointError(f"{sidecar}: unreadable ({exc})") from exc
        if not isinstance(info, dict) or "env_config" not in info:
            raise CheckpointError(f"{sidecar}: no env_config")
        return info
    return _algorithm_config_from_pickle(ckpt)


@dataclass
class TrainedPolicy:
    """A restored RLModule plus what is needed to act in the env it was trained on."""

    checkpoint: Path
    module: Any  # ray.rllib.core.rl_module.RLModule (torch)
    env_config: dict[str, Any]
    params: EnvParams
    normalize_actions: bool = True

    @property
    def preset(self) -> str:
        return split_env_config(self.env_config)[0]

    @property
    def label(self) -> str:
        r = self.params.reward
        return f"ppo(delta={r.delta:g},penalty={r.penalty:g})"

    def act(self, obs: NDArray[np.floating[Any]]) -> NDArray[np.float64]:
        """Deterministic actions ``(N, *action_shape)`` for a batch of observations."""
        import torch

        batch = torch.as_tensor(np.asarray(obs, dtype=np.float32))
        with torch.no_grad():
            out = self.module.forward_inference({"obs": batch})
            dist_cls = self.module.get_inference_action_dist_cls()
            dist = dist_cls.from_logits(out["action_dist_inputs"]).to_deterministic()
            actions: NDArray[np.float64] = dist.sample().cpu().numpy().astype(np.float64)
        if self.normalize_actions:  # [-1, 1] -> the action box [0, 1]
            actions = (actions + 1.0) * 0.5
        return np.clip(actions, 0.0, 1.0)


def load_policy(checkpoint: str | Path, **env_overrides: Any) -> TrainedPolicy:
    """Restore the policy of an RLlib PPO checkpoint (see :func:`read_checkpoint_info`).

    ``env_overrides`` change the evaluation env (e.g. ``delta`` for the metrics bookkeeping or a
    different scenario); the observation transform stays the training one.
    """
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
    env_config = {**info["env_config"], **env_overrides}
    if "obs_mode" in env_overrides and env_overrides["obs_mode"] != info["env_config"].get(
        "obs_mode", "raw"
    ):
        raise ValueError("obs_mode cannot differ from the one the policy was trained with")
    return TrainedPolicy(
        checkpoint=ckpt,
        module=module,
        env_config=env_config,
        params=params_from_env_config(env_config),
        normalize_actions=bool(info.get("normalize_actions", True)),
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
    envs = [env_creator(policy.env_config) for _ in range(episodes)]
    obs = np.stack([env.reset(seed=seed + i)[0] for i, env in enumerate(envs)])
    finals: list[dict[str, Any] | None] = [None] * episodes
    while any(f is None for f in finals):
        actions = policy.act(obs)
        for i, env in enumerate(envs):
            if finals[i] is not None:
                continue
            o, _, terminated, truncated, info = env.step(actions[i])
            obs[i] = o
            if terminated or truncated:
                finals[i] = info["episode_metrics"]
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
