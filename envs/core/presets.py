"""Named scenarios and flat overrides.

``make_params("paper", delta=0.5, n_ues=20)`` returns an :class:`EnvParams` for the preset with
the overrides applied to whichever group (scenario, reward, env) owns each name. Per-cell fields
accept a scalar, broadcast to every cell.

Presets:

* ``paper`` (default): the scenario of the MetaLore paper (``docs/model/cell.md#parameters``).
* ``v1``: the job means the authors switched to after the paper (UE 70/7, sensor 50/6, p_d = -1).
  It does NOT reproduce the paper; it is a named variant only.
* ``paper_20ue``, ``paper_50ue``: the paper's cell with more UEs (heavier load).
* ``paper_dynamic``: the paper's cell whose traffic switches within an episode between four
  regimes (paper, quiet, rush, slow sensors) at random times; see
  ``docs/model/traffic.md#the-paper_dynamic-preset``.
* ``paper_random``: the paper's cell with 20 UE slots and 20 sensor sites whose traffic (active
  UEs and sensors, job probability, job size means, sensor interval) each episode draws from the
  ``rand_*`` ranges; for training policies that must generalise
  (``docs/model/traffic.md#randomisation-across-episodes``).
* ``three_cell``: the authors' later multi-cell layout (``docs/model/pool.md#scenarios``): BSs at
  (90, 50), (150, 120), (30, 120), 15 UEs, 20 sensors (7, 7, 6).
"""

from __future__ import annotations

import difflib
from dataclasses import replace
from typing import Any

from envs.core.params import (
    ENV_FIELDS,
    PER_CELL_FIELDS,
    RAND_RANGES,
    REGIME_FIELDS,
    REWARD_FIELDS,
    SCENARIO_FIELDS,
    EnvParams,
    RewardParams,
    ScenarioParams,
)
from envs.core.pool.city import CITY_FIELDS, CITY_PRESETS, city_layout
from envs.core.pool.scenarios import multicell_presets

_PAPER = EnvParams()
# traffic-variation tuples whose entries are whole numbers (the others are floats)
WHOLE_TUPLE_FIELDS = frozenset(n for n, (*_, whole, _b) in RAND_RANGES.items() if whole) | {
    "regime_n_ues",
    "regime_sensor_interval",
}

PRESETS: dict[str, EnvParams] = {
    "paper": _PAPER,
    "v1": EnvParams(
        scenario=replace(
            _PAPER.scenario,
            ue_data_mean=70.0,
            ue_compute_mean=7.0,
            sensor_data_mean=50.0,
            sensor_compute_mean=6.0,
        ),
        reward=replace(_PAPER.reward, penalty=-1.0),
    ),
    "paper_20ue": EnvParams(scenario=replace(_PAPER.scenario, n_ues=20)),
    "paper_50ue": EnvParams(scenario=replace(_PAPER.scenario, n_ues=50)),
    # regimes: paper (0.7, 10 UEs), quiet (0.5, 4 UEs), rush (1.0, 10 UEs), slow sensors
    # (0.7, 10 UEs, a sensor update every 2 steps); mean holding time 25 steps
    "paper_dynamic": EnvParams(
        scenario=replace(
            _PAPER.scenario,
            regime_ue_job_prob=(0.7, 0.5, 1.0, 0.7),
            regime_n_ues=(10, 4, 10, 10),
            regime_sensor_interval=(1, 1, 1, 2),
            regime_hold_steps=25.0,
        )
    ),
    "paper_random": EnvParams(
        scenario=replace(
            _PAPER.scenario,
            n_ues=20,
            n_sensors=(20,),
            traffic_randomize=True,
            rand_n_ues=(4, 20),
            rand_n_sensors=(8, 20),
        )
    ),
    "three_cell": EnvParams(
        scenario=replace(
            _PAPER.scenario,
            bs_positions=((90.0, 50.0), (150.0, 120.0), (30.0, 120.0)),
            bandwidth_hz=(100e6,) * 3,
            mec_capacity=(100.0,) * 3,
            n_sensors=(7, 7, 6),
            n_ues=15,
        )
    ),
}
# the multi-cell credit-pool scenarios (three_cell_hetero, surge, seven_cell, seven_cell_hetero)
PRESETS.update(multicell_presets(PRESETS["three_cell"]))
# the cities (city_19, city_49), built by their layout generator (docs/model/city.md)
PRESETS.update({name: layout.params(_PAPER) for name, layout in CITY_PRESETS.items()})


def register_preset(name: str, params: EnvParams) -> None:
    """Add a named preset (used by the multi-cell scenarios); names are unique."""
    if name in PRESETS:
        raise ValueError(f"preset {name!r} already exists")
    PRESETS[name] = params


def _normalise(name: str, value: Any, n_cells: int) -> Any:
    if name in REGIME_FIELDS or name in RAND_RANGES:
        if not isinstance(value, (list, tuple)):
            value = (value, value) if name in RAND_RANGES else value  # a scalar range: fixed
        if isinstance(value, (list, tuple)):
            value = _elements(value, whole=name in WHOLE_TUPLE_FIELDS)
        return value
    if name in PER_CELL_FIELDS:
        value = tuple(value) if isinstance(value, (list, tuple)) else (value,) * n_cells
        return _elements(value, whole=name == "n_sensors")
    if name == "bs_positions":
        pairs = isinstance(value, (list, tuple)) and all(
            isinstance(p, (list, tuple)) and len(p) == 2 and all(_number(c) for c in p)
            for p in value
        )
        if not pairs:
            raise ValueError(
                f"invalid parameter bs_positions={value!r}: must be a list of [x, y] sites [m]"
            )
        return tuple(tuple(float(c) for c in p) for p in value)
    if name in ("hotspot_cells", "hotspot_heading_deg"):  # one entry per moving hotspot
        value = tuple(value) if isinstance(value, (list, tuple)) else (value,)
        return _elements(value, whole=name == "hotspot_cells")
    if name == "residual_rule" and isinstance(value, (list, tuple)):
        return tuple(float(v) if _number(v) else v for v in value)
    return value


def _number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _elements(values: Any, whole: bool) -> tuple[Any, ...]:
    """The entries of a tuple field: whole floats (2.0) as ints for an integer field, ints as
    floats for a float field; anything else is left for validation to name."""
    if whole:
        return tuple(int(v) if _number(v) and float(v).is_integer() else v for v in values)
    return tuple(float(v) if _number(v) and isinstance(v, int) else v for v in values)


def make_params(preset: str | EnvParams = "paper", **overrides: Any) -> EnvParams:
    """The preset's :class:`EnvParams` with flat overrides; unknown names raise ``ValueError``."""
    base: EnvParams
    city = {k: v for k, v in overrides.items() if k in CITY_FIELDS}
    if city:
        if not isinstance(preset, str) or preset not in CITY_PRESETS:
            named = preset if isinstance(preset, str) else "this"
            raise ValueError(
                f"{', '.join(sorted(city))}: city_* parameters build a city preset "
                f"({', '.join(CITY_PRESETS)}), not {named!r}"
            )
        overrides = {k: v for k, v in overrides.items() if k not in CITY_FIELDS}
        preset = city_layout(CITY_PRESETS[preset], **city).params(_PAPER)
    if isinstance(preset, EnvParams):
        base = preset
    else:
        if preset not in PRESETS:
            raise ValueError(f"unknown preset {preset!r}: choose one of {sorted(PRESETS)}")
        base = PRESETS[preset]
    scen: dict[str, Any] = {}
    rew: dict[str, Any] = {}
    env: dict[str, Any] = {}
    for name, value in overrides.items():
        if name in SCENARIO_FIELDS:
            scen[name] = value
        elif name in REWARD_FIELDS:
            rew[name] = value
        elif name in ENV_FIELDS:
            env[name] = value
        else:
            known = sorted(SCENARIO_FIELDS | REWARD_FIELDS | ENV_FIELDS | CITY_FIELDS)
            hint = difflib.get_close_matches(name, known, n=1)
            extra = f" (did you mean {hint[0]!r}?)" if hint else ""
            raise ValueError(f"unknown parameter {name!r}{extra}; known: {', '.join(known)}")
    positions = scen.get("bs_positions", base.scenario.bs_positions)
    n_cells = len(positions) if isinstance(positions, (list, tuple)) else 1
    scen = {k: _normalise(k, v, n_cells) for k, v in scen.items()}
    try:
        scenario: ScenarioParams = replace(base.scenario, **scen) if scen else base.scenario
    except ValueError as exc:
        if n_cells == base.scenario.n_cells:
            raise
        raise ValueError(
            f"{exc} (bs_positions gives {n_cells} cells: give bandwidth_hz, mec_capacity and "
            "n_sensors one entry per cell, or one value for all)"
        ) from None
    reward: RewardParams = replace(base.reward, **rew) if rew else base.reward
    env = {k: _normalise(k, v, n_cells) for k, v in env.items()}
    return replace(base, scenario=scenario, reward=reward, **env)
