"""Replaying a trained pool policy as a controller of the pool simulator (numpy only).

A learned pool policy acts through the same :class:`envs.pool.control.PoolControl` as in training
(its observation kind, action map and options, minus the training-only randomisation of
:func:`eval_control_options`); its networks are plain ``obs -> mean action`` callables: the numpy
actors of a shipped policy (:mod:`tune_configs.policies.shipped`) or an RLModule's deterministic
output
(:func:`rlmodule_forward`, torch imported only then). Nothing here imports Ray, so a shipped pool
policy (``models/pool/<scenario>``) loads and runs with numpy alone.

* :class:`CentralPolicyController`: one network for every cell (controller ``central``);
* :class:`PoolPolicyController`: one network per module, ``shared`` by all cells or ``cell_<i>``
  (controller ``per-cell``).

Both satisfy :class:`envs.core.pool.rules.Controller` (``reset``, ``act``, ``label``) and carry
``info`` (env config, manifest, ...) and ``checkpoint`` (where they came from).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from envs.core.pool.sim import PoolSimulator
from envs.pool.control import CONTROL_FIELDS, GREEDY_SPLITS, ControlOptions, PoolControl
from envs.pool.obs import REWARD_FULFILLED, REWARD_METALORE
from tune_configs.env import RLLIB_KEYS
from tune_configs.policies.shipped import ShippedPolicyError, load_shipped

SHARED_MODULE = "shared"
POOL_CONTROLLERS = ("central", "per-cell", "city")  # as in tune_configs.controllers
CENTRAL_ACTOR = "central"


# The per-cell pool env's defaults (the per-cell controller trains on them).
DEFAULT_POOL_ENV_CONFIG: dict[str, Any] = {
    "preset": "three_cell_hetero",
    "obs_mode": "log1p",
    "reward": "metalore",
    "scope": "team",
}


def pool_env_kwargs(env_config: Mapping[str, Any]) -> dict[str, Any]:
    """Keyword arguments of :class:`MultiCellPoolEnv` from a flat env config."""
    cfg = {k: v for k, v in dict(env_config).items() if k not in RLLIB_KEYS}
    if "mix" in cfg and not cfg["mix"]:  # a mix of layouts set aside (evaluation on one)
        del cfg["mix"]
    return {**DEFAULT_POOL_ENV_CONFIG, **cfg}


def eval_control_options(env_config: Mapping[str, Any]) -> ControlOptions:
    """The control options of a trained policy, without the training-only randomisation."""
    values = {k: v for k, v in env_config.items() if k in CONTROL_FIELDS}
    values.update(endowment_range=(), permute_cells=False, shaping=0.0)
    return ControlOptions.from_values(values)


def _require_cells(policy: Any, n_cells: int) -> None:
    problem = policy.cells_problem(n_cells)
    if problem is not None:
        raise ValueError(f"policy {policy.checkpoint} cannot act on {n_cells} cells: {problem}")


def _base_splits_problem(options: Any, n_cells: int) -> str | None:
    splits = options.base_splits  # "greedy": those of whichever layout it plays
    if splits and splits != GREEDY_SPLITS and len(splits) != n_cells:
        return (
            f"its residual actions start from the {len(splits)} per-cell base splits of its "
            "training scenario"
        )
    return None


class CentralPolicyController:
    """A trained central policy as an :class:`envs.core.pool.rules.Controller`.

    ``forward(obs (1, D)) -> mean action (1, A)`` is the policy network's deterministic output
    (an RLModule's, or the numpy forward pass of an exported policy); observations and actions
    go through the same :class:`envs.pool.control.PoolControl` as in training.
    """

    def __init__(self, source: Path, forward: Any, info: dict[str, Any]) -> None:
        self.checkpoint = source
        self.forward = forward
        self.info = info
        self.env_config = dict(info.get("env_config", {}))
        self.options = eval_control_options(self.env_config)
        self.reward_code = (
            REWARD_FULFILLED if self.env_config.get("reward") == "fulfilled" else REWARD_METALORE
        )
        self.normalize = bool(info.get("normalize_actions", False))
        self.label = "ppo(central)"
        self._control: PoolControl | None = None

    def cells_problem(self, n_cells: int) -> str | None:
        """Why this policy cannot act on ``n_cells`` cells (``None``: it can)."""
        n = int(self.info.get("n_cells", n_cells))
        if n != n_cells:
            return f"a central policy acts for all its {n} training cells at once"
        return _base_splits_problem(self.options, n_cells)

    def reset(self, ps: PoolSimulator) -> None:
        _require_cells(self, ps.n_cells)
        if self._control is None or self._control.ps is not ps:
            self._control = PoolControl(ps, self.options, self.reward_code, per_cell=False)
        self._control.reset(int(ps.seed or 0))

    def act(self, ps: PoolSimulator) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        control = self._control
        assert control is not None and control.ps is ps, "call reset() first"
        obs = control.observe().reshape(1, -1)
        raw = np.asarray(self.forward(obs), dtype=np.float64).reshape(ps.n_cells, 3)
        if self.normalize:  # RLlib's normalize_actions: [-1, 1] -> the action box
            low = np.array([0.0, 0.0, -1.0])
            high = np.ones(3)
            raw = np.clip(low + (raw + 1.0) * 0.5 * (high - low), low, high)
        return control.act(raw)


def rlmodule_forward(module: Any) -> Any:
    """``obs -> deterministic action`` of a torch RLModule: the numpy actor a shipped policy
    would run (:func:`tune_configs.policies.shipped.actor_of_rl_module`; the same numbers as the
    shipped directory, about 10x faster than RLlib's inference call), or RLlib's deterministic
    inference for an architecture the numpy actor does not know."""
    from tune_configs.policies.shipped import actor_of_rl_module

    try:
        actor = actor_of_rl_module(module)
    except ValueError:
        return _torch_forward(module)
    # a centralised critic's module: its actor reads the first columns, the agent's own view
    own = int(getattr(module, "actor_obs_dim", 0) or 0) or None

    def mean(obs: NDArray[np.float32]) -> NDArray[np.float64]:
        x = np.asarray(obs, dtype=np.float32)[..., :own]
        return np.asarray(actor(x), dtype=np.float64)

    return mean


def _torch_forward(module: Any) -> Any:
    def forward(obs: NDArray[np.float32]) -> NDArray[np.float64]:
        import torch

        with torch.no_grad():
            batch = torch.as_tensor(np.asarray(obs, dtype=np.float32))
            fwd = module.forward_inference({"obs": batch})
            dist_cls = module.get_inference_action_dist_cls()
            dist = dist_cls.from_logits(fwd["action_dist_inputs"]).to_deterministic()
            out: NDArray[np.float64] = dist.sample().cpu().numpy().astype(np.float64)
        return out

    return forward


class PoolPolicyController:
    """A trained per-cell pool policy as an :class:`envs.core.pool.rules.Controller`.

    ``modules`` maps module ids (``shared`` or ``cell_i``) to forward functions ``obs (B, F) ->
    mean action (B, 3)`` (an RLModule's deterministic output, or the numpy actor of an exported
    policy, :mod:`tune_configs.export`). Observations and actions go through the same
    :class:`envs.pool.control.PoolControl` as in training; the mean of the action distribution is
    unsquashed from [-1, 1] to the action box (RLlib's ``normalize_actions``) unless the policy
    outputs residual corrections.
    """

    def __init__(self, checkpoint: Path, modules: dict[str, Any], info: dict[str, Any]) -> None:
        self.checkpoint = checkpoint
        self.modules = modules
        self.info = info
        self.policies = str(info.get("policies", "shared"))
        self.env_config = dict(info.get("env_config", {}))
        self.obs_mode = str(self.env_config.get("obs_mode", "raw"))
        self.obs_scale = float(self.env_config.get("obs_scale", 100.0))
        self.options = eval_control_options(self.env_config)
        self.reward_code = (
            REWARD_FULFILLED if self.env_config.get("reward") == "fulfilled" else REWARD_METALORE
        )
        bounded = self.options.action_map().bounded
        self.normalize = bool(info.get("normalize_actions", True)) and bounded
        # the city controller's one network for every layout, else shared / separate networks
        self.label = "ppo(city)" if info.get("controller") == "city" else f"ppo({self.policies})"
        self._control: PoolControl | None = None

    def cells_problem(self, n_cells: int) -> str | None:
        """Why this policy cannot act on ``n_cells`` cells (``None``: it can). A shared network
        without the one-hot cell identity and without per-cell base splits runs on any number
        of cells."""
        if self.policies == "separate" and n_cells != len(self.modules):
            return f"it has one network per cell, for {len(self.modules)} cells"
        trained = self.info.get("n_cells")
        if self.options.identity and isinstance(trained, int) and trained != n_cells:
            return (
                f"its observation holds a one-hot identity of its {trained} training cells "
                "(train with --set identity=false for a policy that runs on any number of cells)"
            )
        return _base_splits_problem(self.options, n_cells)

    def reset(self, ps: PoolSimulator) -> None:
        _require_cells(self, ps.n_cells)
        if self._control is None or self._control.ps is not ps:
            self._control = PoolControl(
                ps, self.options, self.reward_code, per_cell=True, obs_mode=self.obs_mode,
                obs_scale=self.obs_scale,
            )  # fmt: skip
        self._control.reset(int(ps.seed or 0))

    def act(self, ps: PoolSimulator) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        control = self._control
        assert control is not None and control.ps is ps, "call reset() first"
        return control.act(self.actions(control.observe()))

    def actions(self, obs: NDArray[np.float32]) -> NDArray[np.float64]:
        """Raw actions ``(C, 3)`` for agent observations ``(C, F)`` (row i = cell i)."""
        out = np.empty((obs.shape[0], 3))
        groups: list[tuple[Any, list[int]]]
        if self.policies == "shared":
            groups = [(self.modules[SHARED_MODULE], list(range(obs.shape[0])))]
        else:
            groups = [(self.modules[f"cell_{i}"], [i]) for i in range(obs.shape[0])]
        for forward, rows in groups:
            out[rows] = np.asarray(forward(np.asarray(obs[rows], dtype=np.float32)), np.float64)
        if self.normalize:
            low = np.array([0.0, 0.0, -1.0])
            high = np.array([1.0, 1.0, 1.0])
            out = low + (out + 1.0) * 0.5 * (high - low)
            out = np.clip(out, low, high)
        return out


def load_exported_controller(directory: str | Path) -> Any:
    """A shipped pool policy as a controller (central or per-cell), numpy only."""
    policy = load_shipped(directory)
    desc = policy.description
    if policy.controller not in POOL_CONTROLLERS:
        raise ValueError(
            f"{directory}: controller {policy.controller!r} is not a pool controller "
            f"({', '.join(POOL_CONTROLLERS)})"
        )
    info = {
        **{k: v for k, v in desc.items() if k != "actors"},
        "env_config": policy.env_config,
        "normalize_actions": bool(desc.get("action", {}).get("normalize", False)),
    }
    if policy.controller == "central":
        actor = policy.actors.get(CENTRAL_ACTOR)
        n_cells = desc.get("n_cells")
        if actor is None or not isinstance(n_cells, int) or actor.action_dim != 3 * n_cells:
            raise ShippedPolicyError(
                f"{policy.path}: a central policy needs actors.{CENTRAL_ACTOR} with 3 actions "
                f"per cell and n_cells (got n_cells {n_cells!r}, action_dim "
                f"{actor.action_dim if actor else None})"
            )
        return CentralPolicyController(policy.path, actor, info)
    return PoolPolicyController(policy.path, dict(policy.actors), info)
