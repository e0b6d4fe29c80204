"""Traffic that varies: regimes switching within an episode, and traffic drawn per episode.

Both are described, with their parameters and ranges, in ``docs/model/traffic.md``.

The step kernel reads the traffic in force from a small per-episode state vector ``trf``
(columns ``TR_*``), which the caller creates at reset with :func:`initial_traffic`:

* ``TR_REGIME``: the regime in force during the current step (-1: no regimes);
* ``TR_P_JOB``: the UE job probability;
* ``TR_N_UE``: active UEs: UEs ``0 .. k-1`` generate jobs; the others generate none, keep
  moving and keep sending what their uplink queue still holds;
* ``TR_N_S``: active sensors per cell: the cell's first ``k`` sensors update and cover UEs;
* ``TR_S_INT``: the sensor update interval [steps].

Without traffic variation these are the scenario's own values, so the kernel does exactly what
it did before they existed.

**Regimes** (``regime_*`` fields, the ``paper_dynamic`` preset): a Markov chain over ``R``
regimes, each fixing the UE job probability, the active UEs and the sensor interval. The first
regime is uniform over the ``R`` regimes (one uniform of the ``traffic_regime`` stream at reset);
at the start of every later step the chain leaves its regime with probability
``q = 1 / regime_hold_steps`` for one of the other regimes, chosen uniformly (two uniforms per
step). A regime therefore lasts a geometric number of steps with mean ``regime_hold_steps``, the
chain is stationary from the start (uniform over regimes), and the regime path does not depend
on the actions.

**Randomisation** (``traffic_randomize`` and the ``rand_*`` ranges, the ``paper_random``
preset): at reset the episode draws, from ``RANDOM_DRAWS`` uniforms of the ``traffic_random``
stream in this order, the active UEs, the UE job probability, the four job size means and the
active sensors and sensor interval (see :data:`RANDOM_ORDER`); counts uniformly over the whole
numbers of their range, the others uniformly over the interval.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import numpy as np
from numpy.typing import NDArray

from envs.core.params import EnvParams, ScenarioParams
from envs.core.rng import RANDOM_DRAWS, EpisodeStreams

TR_REGIME, TR_P_JOB, TR_N_UE, TR_N_S, TR_S_INT = 0, 1, 2, 3, 4
N_TRF = 5

# the order of the uniforms drawn by traffic randomisation: range field -> traffic key
RANDOM_ORDER: tuple[tuple[str, str], ...] = (
    ("rand_n_ues", "n_ues"),
    ("rand_ue_job_prob", "ue_job_prob"),
    ("rand_ue_data_mean", "ue_data_mean"),
    ("rand_ue_compute_mean", "ue_compute_mean"),
    ("rand_sensor_data_mean", "sensor_data_mean"),
    ("rand_sensor_compute_mean", "sensor_compute_mean"),
    ("rand_n_sensors", "n_sensors"),
    ("rand_sensor_interval", "sensor_interval"),
)
assert len(RANDOM_ORDER) == RANDOM_DRAWS
_COUNTS = frozenset(("n_ues", "n_sensors", "sensor_interval"))


def base_traffic(s: ScenarioParams) -> dict[str, Any]:
    """The scenario's own traffic (what every episode has without variation)."""
    return {
        "n_ues": s.n_ues,
        "ue_job_prob": s.ue_job_prob,
        "ue_data_mean": s.ue_data_mean,
        "ue_compute_mean": s.ue_compute_mean,
        "sensor_data_mean": s.sensor_data_mean,
        "sensor_compute_mean": s.sensor_compute_mean,
        "n_sensors": max(s.n_sensors),
        "sensor_interval": s.sensor_interval,
    }


def draw_traffic(s: ScenarioParams, u: NDArray[np.float64]) -> dict[str, Any]:
    """The traffic of a randomised episode from its ``RANDOM_DRAWS`` uniforms ``u``."""
    out = base_traffic(s)
    for x, (field, key) in zip(u, RANDOM_ORDER, strict=True):
        lo, hi = getattr(s, field)
        if key in _COUNTS:
            out[key] = int(lo) + min(int(x * (hi - lo + 1)), int(hi - lo))
        else:
            out[key] = float(lo + x * (hi - lo))
    return out


def size_means(traffic: dict[str, Any]) -> tuple[float, float, float, float]:
    """(UE data, UE compute, sensor data, sensor compute) means, the order of the size tables."""
    return (
        float(traffic["ue_data_mean"]),
        float(traffic["ue_compute_mean"]),
        float(traffic["sensor_data_mean"]),
        float(traffic["sensor_compute_mean"]),
    )


def regime_array(s: ScenarioParams) -> NDArray[np.float64]:
    """``(R, 3)``: UE job probability, active UEs, sensor interval of each regime."""
    return np.asarray(s.regime_table(), dtype=np.float64).reshape(-1, 3)


def enter_regime(trf: NDArray[np.float64], table: NDArray[np.float64], r: int) -> None:
    """Put regime ``r`` of ``table`` (``(R, 3)``) in force (Python twin of the kernel's code)."""
    trf[TR_REGIME] = r
    trf[TR_P_JOB] = table[r, 0]
    trf[TR_N_UE] = table[r, 1]
    trf[TR_S_INT] = table[r, 2]


def initial_traffic(
    params: EnvParams, streams: EpisodeStreams
) -> tuple[NDArray[np.float64], dict[str, Any]]:
    """The traffic state ``trf`` at reset and the episode's traffic (a plain dict).

    Draws from the ``traffic_random`` stream (randomisation) or one uniform of the
    ``traffic_regime`` stream (the first regime); without variation it draws nothing.
    """
    s = params.scenario
    if s.traffic_randomize:
        traffic = draw_traffic(s, streams.gen("traffic_random").random(RANDOM_DRAWS))
    else:
        traffic = base_traffic(s)
    trf = np.empty(N_TRF)
    trf[TR_REGIME] = -1.0
    trf[TR_P_JOB] = traffic["ue_job_prob"]
    trf[TR_N_UE] = traffic["n_ues"]
    trf[TR_N_S] = traffic["n_sensors"]
    trf[TR_S_INT] = traffic["sensor_interval"]
    if s.has_regimes:
        first = min(int(streams.gen("traffic_regime").random() * s.n_regimes), s.n_regimes - 1)
        enter_regime(trf, regime_array(s), first)
    return trf, traffic


def traffic_in_force(trf: NDArray[np.float64]) -> dict[str, Any]:
    """The traffic of the current step as plain values (for ``info``)."""
    return {
        "regime": int(trf[TR_REGIME]),
        "ue_job_prob": float(trf[TR_P_JOB]),
        "n_ues_active": int(trf[TR_N_UE]),
        "n_sensors_active": int(trf[TR_N_S]),
        "sensor_interval": int(trf[TR_S_INT]),
    }


def held_regime(params: EnvParams, regime: int) -> EnvParams:
    """``params`` with regime ``regime`` in force for ever (to evaluate one regime alone).

    Every ``regime_*`` tuple becomes two copies of that regime's value, so the chain switches
    between two identical regimes: the same mechanism (active UEs as UE slots), fixed traffic.
    """
    s = params.scenario
    if not 0 <= regime < s.n_regimes:
        raise ValueError(f"invalid regime {regime!r}: the scenario has {s.n_regimes} regimes")
    p, n, k = s.regime_table()[regime]
    scen = replace(s, regime_ue_job_prob=(p, p), regime_n_ues=(n, n), regime_sensor_interval=(k, k))
    return replace(params, scenario=scen)
