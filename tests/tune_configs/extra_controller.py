"""A learned controller from outside the package, for the registry test.

It is the single-cell PPO controller with a smaller network ([16] units) and the mean sensor-update
age in its observation (``obs_age``): one :func:`dataclasses.replace` of the built-in entry.
Named by its reference, as users name their own controllers::

    python -m launch train --controller tests.tune_configs.extra_controller:make --out DIR
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from tune_configs.controllers import Controller, get_controller
from tune_configs.ppo import resolve_env_config

REFERENCE = "tests.tune_configs.extra_controller:make"


def _env_config(env_config: Mapping[str, Any]) -> dict[str, Any]:
    return resolve_env_config({"obs_age": True, **dict(env_config)})


def make() -> Controller:
    return replace(
        get_controller("single"),
        name=REFERENCE,
        resolve_env_config=_env_config,
        hparams={"fcnet_hiddens": [16]},
    )
