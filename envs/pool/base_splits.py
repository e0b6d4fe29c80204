"""The base splits of a residual pool controller: the greedy rule's best static splits.

A residual pool controller corrects the greedy rule (:mod:`envs.pool.control`); its env config may
ask for the rule's own best splits with ``base_splits="greedy"``. :func:`resolve_base_splits`
replaces that word by the splits the greedy rule's split search finds for the scenario, on tuning
seeds (:data:`envs.core.pool.rules.TUNE_SEED_OFFSET`, never evaluation seeds), once per scenario
and process (cached), or drops it when the action is not residual.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from envs.pool.control import CONTROL_FIELDS

GREEDY_SPLITS = "greedy"  # base_splits resolved by the greedy rule's split search
SPLIT_EPISODES, SPLIT_GRID = 10, 0.1  # the search: tuning episodes per candidate, grid step
# Env-config keys that do not describe the scenario: the per-cell env's own options and the
# vectoriser's sub-env count.
NOT_SCENARIO = frozenset({"reward", "scope", "critic", "num_envs"})
_CACHE: dict[str, list[list[float]]] = {}


def greedy_base_splits(env_config: Mapping[str, Any]) -> list[list[float]]:
    """The greedy rule's best static splits for the scenario of ``env_config`` (tuning seeds)."""
    from envs.core.pool.rules import TUNE_SEED_OFFSET, GreedyRule, best_static_splits
    from envs.pool.env import MetaLorePoolEnv

    cfg = {k: v for k, v in env_config.items() if k not in CONTROL_FIELDS | NOT_SCENARIO}
    key = json.dumps(cfg, sort_keys=True, default=str)
    if key not in _CACHE:
        env = MetaLorePoolEnv(**cfg)
        splits, _ = best_static_splits(
            env.params, SPLIT_EPISODES, TUNE_SEED_OFFSET, SPLIT_GRID,
            pool=env.pool_params.replace(cooperative=True), rule=GreedyRule(),
        )  # fmt: skip
        _CACHE[key] = [[float(b), float(c)] for b, c in splits]
    return [list(p) for p in _CACHE[key]]


def resolve_base_splits(env_config: dict[str, Any]) -> dict[str, Any]:
    """``env_config`` with ``base_splits="greedy"`` resolved (residual action) or dropped."""
    if env_config.get("base_splits") == GREEDY_SPLITS:
        if env_config.get("action_mode") == "residual":
            env_config["base_splits"] = greedy_base_splits(env_config)
        else:
            env_config.pop("base_splits")
    return env_config
