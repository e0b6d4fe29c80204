"""The centralised critic of the per-cell pool agents: what the actor and the critic read, one
PPO iteration through the pipeline, and the exported actor against the RLlib module."""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from envs.core import make_params
from envs.core.pool.clearing import PoolParams
from envs.core.pool.rules import evaluate_controller
from envs.pool.multiagent import MultiCellPoolEnv

pytestmark = pytest.mark.ray

ray = pytest.importorskip("ray")
torch = pytest.importorskip("torch")

from ray.rllib.core.columns import Columns  # noqa: E402
from ray.rllib.core.rl_module.default_model_config import DefaultModelConfig  # noqa: E402
from ray.rllib.core.rl_module.rl_module import RLModule  # noqa: E402

from tune_configs.controllers import (  # noqa: E402
    PER_CELL,
    get_controller,
    load_any_pool_controller,
)
from tune_configs.controllers.critic import (  # noqa: E402
    ACTOR_OBS_DIM,
    CentralCriticPPOModule,
    central_critic_module_spec,
)
from tune_configs.controllers.per_cell import (  # noqa: E402
    build_pool_ppo_config,
    load_pool_controller,
)
from tune_configs.export import export_pool_policy  # noqa: E402
from tune_configs.policies.checkpoint import MODULE_DIR, SIDECAR  # noqa: E402
from tune_configs.policies.pool import rlmodule_forward  # noqa: E402
from tune_configs.policies.shipped import actor_of_rl_module  # noqa: E402
from tune_configs.ppo import Resources, model_config, resolve_hparams  # noqa: E402
from tune_configs.training import train  # noqa: E402

TINY = {"train_batch_size": 400, "minibatch_size": 200, "num_epochs": 2, "fcnet_hiddens": [32]}
ENV: dict[str, Any] = {"preset": "three_cell_hetero", "endowment": 1000.0, "obs": "trader",
       "action_mode": "residual", "base_splits": [[0.6, 0.5], [0.4, 0.4], [0.5, 0.5]],
       "reward": "fulfilled", "reward_scale": 0.01, "critic": "central"}  # fmt: skip


def _module(seed: int = 0) -> tuple[CentralCriticPPOModule, MultiCellPoolEnv]:
    env = MultiCellPoolEnv(**ENV)
    torch.manual_seed(seed)
    cfg = {**dataclasses.asdict(DefaultModelConfig()), **model_config(resolve_hparams(TINY))}
    spec = central_critic_module_spec(env.own_features, cfg)
    spec.observation_space = env.observation_spaces["cell_0"]
    spec.action_space = env.action_spaces["cell_0"]
    module = spec.build()
    assert isinstance(module, CentralCriticPPOModule)
    return module, env


def _batch(env: MultiCellPoolEnv, seed: int) -> Any:
    obs, _ = env.reset(seed=seed)
    for _ in range(8):  # a few steps so that queues, balances and trades are not zero
        obs, *_ = env.step({a: np.array([0.1, 0.1, 0.3], np.float32) for a in env.agents})
    return torch.as_tensor(np.stack([obs[a] for a in env.possible_agents]))


def test_actor_reads_own_view_critic_reads_global_state() -> None:
    module, env = _module()
    own = env.own_features
    obs = _batch(env, 1)
    assert module.encoder.actor_encoder.net.mlp[0].in_features == own
    assert module.encoder.critic_encoder.net.mlp[0].in_features == obs.shape[1] > own
    other = obs.clone()
    other[:, own:] = other[:, own:] * 3.0 + 1.0  # other cells' features (and the own copy)
    with torch.no_grad():
        for fwd in (module.forward_inference, module.forward_exploration, module.forward_train):
            a = fwd({Columns.OBS: obs})[Columns.ACTION_DIST_INPUTS]
            b = fwd({Columns.OBS: other})[Columns.ACTION_DIST_INPUTS]
            torch.testing.assert_close(a, b, rtol=0, atol=0)
        v_a = module.compute_values({Columns.OBS: obs})
        v_b = module.compute_values({Columns.OBS: other})
        assert v_a.shape == (3,)
        assert (v_a - v_b).abs().min() > 1e-6  # the critic reads the global state
        changed = obs.clone()
        changed[:, :own] += 0.5
        c = module.forward_inference({Columns.OBS: changed})[Columns.ACTION_DIST_INPUTS]
        assert (c - module.forward_inference({Columns.OBS: obs})[Columns.ACTION_DIST_INPUTS]).abs(
        ).max() > 1e-6  # fmt: skip
        # the actor also runs on the own view alone (replays feed it that)
        own_only = module.forward_inference({Columns.OBS: obs[:, :own]})
        torch.testing.assert_close(own_only[Columns.ACTION_DIST_INPUTS], a, rtol=0, atol=0)


def test_module_rejects_bad_actor_dims() -> None:
    env = MultiCellPoolEnv(**ENV)
    cfg = {**dataclasses.asdict(DefaultModelConfig()), **model_config(resolve_hparams(TINY))}
    for bad in (0, env.observation_spaces["cell_0"].shape[0] + 1):
        spec = central_critic_module_spec(bad, cfg)
        spec.observation_space = env.observation_spaces["cell_0"]
        spec.action_space = env.action_spaces["cell_0"]
        with pytest.raises(ValueError, match=ACTOR_OBS_DIM):
            spec.build()
    spec = central_critic_module_spec(env.own_features, {**cfg, "vf_share_layers": True})
    spec.observation_space = env.observation_spaces["cell_0"]
    spec.action_space = env.action_spaces["cell_0"]
    with pytest.raises(ValueError, match="separate actor and critic"):
        spec.build()


def test_default_config_keeps_the_default_module() -> None:
    from ray.rllib.algorithms.ppo.torch.default_ppo_torch_rl_module import DefaultPPOTorchRLModule

    local = build_pool_ppo_config({k: v for k, v in ENV.items() if k != "critic"}, TINY)
    assert local.rl_module_spec.module_class is DefaultPPOTorchRLModule
    assert ACTOR_OBS_DIM not in local.model_config
    central = build_pool_ppo_config(ENV, TINY)
    assert central.rl_module_spec.module_class is CentralCriticPPOModule
    own = MultiCellPoolEnv(**ENV).own_features
    assert central.rl_module_spec.model_config[ACTOR_OBS_DIM] == own


def test_central_critic_iteration_export_and_replay(ray_session: Any, tmp_path: Path) -> None:
    """One PPO iteration with the central critic; the checkpoint, its export and the RLlib
    module's deterministic actions agree."""
    config = build_pool_ppo_config(ENV, TINY, Resources(0, 2), seed=0)
    algo = config.build_algo()
    results: list[Any] = []
    try:
        train(algo, 1, lambda _m, result: results.append(result))
        ckpt = get_controller(PER_CELL).save(algo, tmp_path / "ckpt", config.env_config)
    finally:
        algo.stop()
    stats = results[-1]["learners"]["shared"]
    assert math.isfinite(float(stats["vf_explained_var"]))
    assert math.isfinite(float(stats["vf_loss"]))
    assert ckpt is not None
    sidecar = json.loads((Path(ckpt) / SIDECAR).read_text())
    assert sidecar["env_config"]["critic"] == "central" and sidecar["modules"] == ["shared"]
    module: Any = RLModule.from_checkpoint(str(Path(ckpt) / MODULE_DIR / "shared"))
    assert isinstance(module, CentralCriticPPOModule)
    module.eval()
    env = MultiCellPoolEnv(**config.env_config)
    own = env.own_features
    obs = _batch(env, 2).numpy()
    # the exported actor (own view) against the module's deterministic actions (full observation)
    actor = actor_of_rl_module(module)
    assert actor.in_features == own
    rl = rlmodule_forward(module)(obs)
    np.testing.assert_allclose(actor(obs[:, :own]), rl, rtol=1e-5, atol=1e-6)
    shipped_dir = export_pool_policy(ckpt, tmp_path / "shipped")
    shipped = load_any_pool_controller(shipped_dir)
    np.testing.assert_allclose(shipped.modules["shared"](obs[:, :own]), rl, rtol=1e-5, atol=1e-6)
    # checkpoint and shipped policy replay the same episodes
    ctrl = load_pool_controller(ckpt)
    params = make_params("three_cell_hetero", episode_steps=25)
    pool = PoolParams(endowment=1000.0)
    a = evaluate_controller(params, pool, ctrl, 2, seed=3)
    b = evaluate_controller(params, pool, shipped, 2, seed=3)
    for x, y in zip(a, b, strict=True):
        assert x["fulfillment_pct"] == pytest.approx(y["fulfillment_pct"])
        assert x["units_borrowed"] == pytest.approx(y["units_borrowed"], rel=1e-4)
