"""The MetaLore simulation core: pure numpy + numba, no Gymnasium, no Ray.

One role per module: ``params`` (validated dataclasses), ``presets`` (named scenarios and flat
overrides), ``rng`` (per-purpose random streams), ``radio`` (path loss and rates), ``queues`` (FIFO
ring buffers), ``dynamics`` (the step kernel), ``metrics`` (KPIs and episode summary), ``sim`` (one
episode at a time), ``policies`` (fixed and queue-aware rules), ``batch`` (many episodes at once).
"""

from envs.core.params import EnvParams, RewardParams, ScenarioParams
from envs.core.presets import PRESETS, make_params
from envs.core.sim import Simulator

__all__ = ["PRESETS", "EnvParams", "RewardParams", "ScenarioParams", "Simulator", "make_params"]
