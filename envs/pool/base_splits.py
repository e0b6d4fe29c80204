"""The base splits of a residual pool controller: the greedy rule's best static splits.

A residual pool controller corrects the greedy rule (:mod:`envs.pool.control`); its env config may
ask for the rule's own best splits with ``base_splits="greedy"``. :func:`resolve_base_splits`
replaces that word by the splits the greedy rule's split search finds for the scenario, on tuning
seeds (:data:`envs.core.pool.rules.TUNE_SEED_OFFSET`, never evaluation seeds), once per scenario
and process (cached). With another action the word stays and means nothing (the options drop it).

A policy trained on a mix of layouts keeps the word: every layout it plays, in training and in
evaluation, starts from that layout's own greedy splits (the same search on the simulator's
parameters, resolved where the options meet a simulator:
:meth:`envs.pool.control.ControlOptions.for_layout`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from envs.core.pool.rules import greedy_splits_for
from envs.pool.control import CONTROL_FIELDS, GREEDY_SPLITS

__all__ = ["GREEDY_SPLITS", "greedy_base_splits", "resolve_base_splits"]
# Env-config keys that do not describe the scenario: the per-cell env's own options, its mix of
# layouts and the vectoriser's sub-env count.
NOT_SCENARIO = frozenset({"reward", "scope", "critic", "num_envs", "mix"})


def greedy_base_splits(env_config: Mapping[str, Any]) -> list[list[float]]:
    """The greedy rule's best static splits for the scenario of ``env_config`` (tuning seeds)."""
    from envs.pool.env import MetaLorePoolEnv

    cfg = {k: v for k, v in env_config.items() if k not in CONTROL_FIELDS | NOT_SCENARIO}
    env = MetaLorePoolEnv(**cfg)
    return greedy_splits_for(env.params, env.pool_params)


def resolve_base_splits(env_config: dict[str, Any]) -> dict[str, Any]:
    """``env_config`` with ``base_splits="greedy"`` made concrete for a residual policy of one
    layout, so its checkpoint records the splits it was trained on; anything else (a mix of
    layouts, another action) is left as it is for :meth:`ControlOptions.for_layout`, which
    resolves or drops it on whichever layout the options meet."""
    if (
        env_config.get("base_splits") == GREEDY_SPLITS
        and env_config.get("action_mode") == "residual"
        and not env_config.get("mix")
    ):
        env_config["base_splits"] = greedy_base_splits(env_config)
    return env_config
