"""A centralised critic for the per-cell pool agents: PPO's RLModule with split inputs.

With ``critic="central"`` (``python -m launch train --controller per-cell --set critic=central``)
every agent's observation is its own features followed by the global state (every cell's
features in cell order, :func:`envs.pool.obs.with_global_state`). :class:`CentralCriticPPOModule`
is RLlib's default PPO torch module (new API stack; separate actor and critic encoders, ``pi``
and ``vf`` heads, :class:`ValueFunctionAPI`) whose

* actor (encoder + ``pi`` head) reads only the first :data:`ACTOR_OBS_DIM` columns, the agent's
  own view, so the trained actor runs on the own features alone (replay, export: the actor is
  exported like any default PPO actor, :func:`tune_configs.policies.shipped.actor_of_rl_module`);
* critic (encoder + ``vf`` head) reads the whole observation: own view and global state.

Weights stay shared by the cells (one module ``shared`` for every agent; the own view carries the
cell identity). :func:`central_critic_module_spec` is the spec
:func:`tune_configs.controllers.per_cell.
build_pool_ppo_config` installs for ``critic="central"``.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
from ray.rllib.algorithms.ppo.ppo_catalog import PPOCatalog
from ray.rllib.algorithms.ppo.torch.default_ppo_torch_rl_module import DefaultPPOTorchRLModule
from ray.rllib.core.columns import Columns
from ray.rllib.core.models.base import ENCODER_OUT
from ray.rllib.core.rl_module.rl_module import RLModuleSpec

ACTOR_OBS_DIM = "actor_obs_dim"  # model_config key: columns of the own view (the actor's input)


class CentralCriticPPOModule(DefaultPPOTorchRLModule):
    """PPO module whose actor sees the own view and whose critic sees own view + global state."""

    def setup(self) -> None:
        super().setup()  # type: ignore[no-untyped-call]
        space: Any = self.observation_space
        config: Any = self.model_config
        n_obs = int(np.prod(space.shape))
        own = int(config.get(ACTOR_OBS_DIM) or 0)
        if not 0 < own <= n_obs:
            raise ValueError(f"{ACTOR_OBS_DIM}={own!r} must lie in 1..{n_obs} (the observation)")
        if config.get("vf_share_layers"):
            raise ValueError("a centralised critic needs separate actor and critic encoders")
        self.actor_obs_dim = own
        own_space = gym.spaces.Box(-np.inf, np.inf, (own,), np.float32)
        base: Any = self.catalog  # the catalog of the full observation: its merged model config
        act_space: Any = self.action_space
        catalog = PPOCatalog(own_space, act_space, base._model_config_dict)
        # the actor encoder of a catalog built for the own view: its first layer has `own` inputs
        self.encoder.actor_encoder = catalog.build_actor_critic_encoder(
            framework="torch"
        ).actor_encoder

    def _actor_inputs(self, batch: dict[str, Any]) -> Any:
        obs = batch[Columns.OBS]
        return self.pi(self.encoder.actor_encoder({Columns.OBS: obs[..., : self.actor_obs_dim]})[
            ENCODER_OUT
        ])  # fmt: skip

    def _critic_embeddings(self, batch: dict[str, Any]) -> Any:
        return self.encoder.critic_encoder({Columns.OBS: batch[Columns.OBS]})[ENCODER_OUT]

    def _forward(self, batch: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        return {Columns.ACTION_DIST_INPUTS: self._actor_inputs(batch)}

    def _forward_train(self, batch: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        return {
            Columns.ACTION_DIST_INPUTS: self._actor_inputs(batch),
            Columns.EMBEDDINGS: self._critic_embeddings(batch),
        }

    def compute_values(self, batch: dict[str, Any], embeddings: Any | None = None) -> Any:
        if embeddings is None:
            embeddings = self._critic_embeddings(batch)
        return self.vf(embeddings).squeeze(-1)


def central_critic_module_spec(actor_obs_dim: int, model_config: dict[str, Any]) -> RLModuleSpec:
    """The module spec of :class:`CentralCriticPPOModule` (used for every module id)."""
    return RLModuleSpec(
        module_class=CentralCriticPPOModule,
        model_config={**model_config, ACTOR_OBS_DIM: int(actor_obs_dim)},
    )
