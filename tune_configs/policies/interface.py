"""What a trained policy needs to act, apart from the scenario it was trained on.

A policy's network is tied to its *interface*: how observations are built (``obs_mode``,
``obs_uplink``, ...) and what its outputs mean (``action_mode``, the residual rule and scale, the
pool's observation kind and base splits). The *scenario* it was trained on (preset, traffic,
training-only randomisation such as ``traffic_randomize``) is provenance: evaluation may run the
policy anywhere its interface fits. The reward setting (``delta``, ``penalty``, ``reward_scale``,
...) scores an evaluation; it stays the training one unless asked otherwise.

:func:`split_env_config` separates a training env config into ``(interface, scenario)``;
:func:`evaluation_env_config` builds the env config of an evaluation:

* with a preset: exactly that preset, plus the overrides, the training reward setting and the
  interface;
* without one: the training scenario minus its training-only randomisation (the keys of
  :data:`TRAINING_ONLY`), plus the overrides, the reward setting and the interface.

Overriding an interface key with another value is refused (``ValueError``): the network's inputs
and outputs would no longer mean what they meant in training.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, fields
from typing import Any

from envs.core.params import RewardParams
from envs.pool.control import CONTROL_FIELDS

# Single-cell controller: the observation transform and the action mapping.
SINGLE_INTERFACE = frozenset(
    {"obs_mode", "obs_scale", "obs_uplink", "obs_age", "action_mode", "residual_scale",
     "residual_rule"}
)  # fmt: skip
# Pool controllers: the control options (observation kind, action map, base splits, ...) and the
# cells' observation transform; the pool's training-only randomisation is not part of it.
POOL_TRAINING_ONLY = frozenset({"endowment_range", "permute_cells", "shaping", "shaping_gamma"})
POOL_INTERFACE = (CONTROL_FIELDS - POOL_TRAINING_ONLY) | {"obs_mode", "obs_scale"}
# Scoring: kept from training unless overridden.
REWARD_KEYS = frozenset({f.name for f in fields(RewardParams)} | {"reward_scale", "reward"})
# Randomisation that only training uses, and its evaluation value.
TRAINING_ONLY: Mapping[str, Any] = {"traffic_randomize": False, "mix": None}


def interface_keys(controller: str) -> frozenset[str]:
    """The interface keys of a controller (``single`` or a pool controller)."""
    return SINGLE_INTERFACE if controller == "single" else POOL_INTERFACE


def split_env_config(
    env_config: Mapping[str, Any], keys: Iterable[str]
) -> tuple[dict[str, Any], dict[str, Any]]:
    """``(interface, scenario)`` of a training env config: the ``keys`` it sets, the rest."""
    wanted = frozenset(keys)
    interface = {k: v for k, v in env_config.items() if k in wanted}
    scenario = {k: v for k, v in env_config.items() if k not in wanted}
    return interface, scenario


@dataclass(frozen=True)
class Evaluation:
    """The env config of an evaluation and how it was chosen (for the user's output)."""

    env_config: dict[str, Any]
    preset: str
    source: str  # "preset" (named by the user) or "training" (the training scenario)
    dropped: tuple[str, ...]  # training-only keys reset to their evaluation value
    overrides: dict[str, Any]

    def describe(self) -> str:
        """One line: which scenario this is."""
        sets = "".join(f" {k}={v}" for k, v in self.overrides.items() if k not in REWARD_KEYS)
        if self.source == "preset":
            return f"preset {self.preset}{sets}"
        reset = f", without {', '.join(self.dropped)}" if self.dropped else ""
        return f"the training scenario (preset {self.preset}{reset}){sets}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "preset": self.preset,
            "source": self.source,
            "reset_training_only": list(self.dropped),
            "overrides": dict(self.overrides),
            "description": self.describe(),
        }


def evaluation_env_config(
    interface: Mapping[str, Any],
    scenario: Mapping[str, Any],
    overrides: Mapping[str, Any],
) -> Evaluation:
    """The env config a policy is evaluated on (see the module docstring).

    ``overrides`` may hold ``preset`` and any flat parameter; an interface key among them must
    keep the interface's value.
    """
    overrides = dict(overrides)
    preset = overrides.pop("preset", None)
    for key in sorted(set(interface) & set(overrides)):
        if overrides[key] != interface[key]:
            raise ValueError(
                f"{key} cannot differ from the one the policy was trained with ({interface[key]})"
            )
    reward = {k: v for k, v in scenario.items() if k in REWARD_KEYS}
    if preset is not None:
        base: dict[str, Any] = {"preset": preset, **reward}
        dropped: tuple[str, ...] = ()
        source = "preset"
    else:
        base = dict(scenario)
        dropped = tuple(
            k
            for k in TRAINING_ONLY
            if k not in overrides and base.get(k, TRAINING_ONLY[k]) != TRAINING_ONLY[k]
        )
        base.update({k: TRAINING_ONLY[k] for k in dropped})
        source = "training"
    config = {**base, **overrides, **dict(interface)}
    return Evaluation(config, str(config.get("preset", "paper")), source, dropped, overrides)
