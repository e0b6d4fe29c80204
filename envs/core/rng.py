"""Random streams: independent per purpose, all derived from the episode seed.

``docs/model/cell.md#episodes-seeds-and-random-streams``: every random draw comes from the seed
given to ``reset``, with an independent stream per purpose, so an episode replays exactly and
adding a stream does not shift the others.
Stream ``i`` of an episode with seed ``s`` is ``SeedSequence(s, spawn_key=(i,))``, i.e. exactly the
``i``-th child of ``SeedSequence(s).spawn(...)``, driving a PCG64 generator.

The simulation kernels consume uniforms only (one fixed count per step and purpose), drawn here in
blocks of steps. Poisson sizes come from the uniforms by inverse-CDF lookup in exact tables
(:func:`poisson_cdf`), which is exact sampling up to the double-precision tail (mass < 2^-53).
Because each purpose consumes a fixed number of uniforms per step, drawing the horizon at once
(the batched evaluator) or block by block (the single env) yields the same numbers.
"""

from __future__ import annotations

import functools
import math

import numpy as np
from numpy.typing import NDArray

# purpose -> stream index; append new purposes at the end (never reorder).
STREAMS: dict[str, int] = {
    "ue_placement": 0,  # initial UE positions and first waypoints: 4 uniforms per UE
    "sensor_placement": 1,  # rejection-sampling candidates: 2 uniforms per candidate
    "mobility": 2,  # new waypoints: 2 uniforms per UE per step (used only on arrival)
    "ue_traffic": 3,  # Bernoulli arrival, data, compute: 3 uniforms per UE per step
    "sensor_traffic": 4,  # data, compute: 2 uniforms per sensor per step
    "traffic_regime": 5,  # regimes: 1 uniform at reset (first regime), then 2 per step
    "traffic_random": 6,  # traffic randomisation: RANDOM_DRAWS uniforms at reset
}
# uniforms drawn at reset from "traffic_random" (see envs.core.traffic.initial_traffic)
RANDOM_DRAWS = 8

# rows of the Poisson table stack (see :func:`poisson_tables`)
TAB_UE_DATA, TAB_UE_COMPUTE, TAB_S_DATA, TAB_S_COMPUTE = 0, 1, 2, 3


def check_seed(seed: object) -> int:
    if isinstance(seed, (bool, float)) or not isinstance(seed, (int, np.integer)) or int(seed) < 0:
        raise ValueError(f"invalid seed {seed!r}: must be an integer >= 0")
    return int(seed)


def stream(seed: int, purpose: str) -> np.random.Generator:
    """The generator of one purpose for an episode seed."""
    ss = np.random.SeedSequence(check_seed(seed), spawn_key=(STREAMS[purpose],))
    return np.random.Generator(np.random.PCG64(ss))


@functools.lru_cache(maxsize=64)
def poisson_cdf(mean: float) -> NDArray[np.float64]:
    """CDF of Poisson(mean) at k = 0..K, with the last entry set to exactly 1.

    K is the first k whose upper tail is below 2^-54 (numpy's uniforms are multiples of 2^-53, so
    values past K are never drawn). ``searchsorted(cdf, u, side="right")`` then maps a uniform
    ``u`` in [0, 1) to a Poisson draw.
    """
    if not (math.isfinite(mean) and mean >= 0):
        raise ValueError(f"Poisson mean must be finite and >= 0, got {mean}")
    if mean == 0:
        return np.ones(1)
    log_mean = math.log(mean)
    k_hi = int(mean + 40.0 * math.sqrt(mean) + 40)
    # -mean + k log(mean) - lgamma(k + 1), elementwise in the same order as the scalar formula
    ks = np.arange(k_hi + 1, dtype=np.float64)
    logpmf = (-mean + ks * log_mean) - _lgamma_upto(k_hi + 2)[1:]
    pmf = np.exp(logpmf - logpmf.max())
    pmf /= math.fsum(pmf)
    cdf = np.cumsum(pmf)
    tail = 1.0 - cdf
    k_max = int(np.argmax(tail < 2.0**-54)) if np.any(tail < 2.0**-54) else k_hi
    out = cdf[: k_max + 1].copy()
    out[-1] = 1.0
    return out


_LGAMMA: list[NDArray[np.float64]] = [np.zeros(0)]


def _lgamma_upto(n: int) -> NDArray[np.float64]:
    """``math.lgamma(k)`` for k = 0 .. n-1 (entry 0 is inf), computed once and extended."""
    table = _LGAMMA[0]
    if len(table) < n:
        size = max(n, 2 * len(table), 1024)
        table = np.array([math.lgamma(k) if k > 0 else math.inf for k in range(size)])
        _LGAMMA[0] = table
    return table[:n]


def fixed_cdf(size: float) -> NDArray[np.float64]:
    """A degenerate "CDF" whose inverse maps every uniform to ``size`` (a whole number >= 0)."""
    out = np.zeros(int(size) + 1)
    out[-1] = 1.0
    return out


def size_tables(
    means: tuple[float, float, float, float], kind: str = "poisson", width: int = 0
) -> NDArray[np.float64]:
    """CDFs (rows 0-3: UE data, UE compute, sensor data, sensor compute; padded with 1.0) and
    their guide tables (rows 4-7, see :func:`guide_table`).

    ``kind="fixed"`` makes every size equal its mean (for hand-computed scenarios). ``width``
    pads the rows to at least this many entries (to stack the tables of several episodes);
    padding does not change any draw.
    """
    cdfs = size_cdfs(means, kind)
    width = max(width, *(len(c) for c in cdfs))
    out = np.ones((8, width))
    for i, c in enumerate(cdfs):
        out[i, : len(c)] = c
        out[4 + i] = guide_table(out[i])
    return out


def size_cdfs(
    means: tuple[float, float, float, float], kind: str = "poisson"
) -> list[NDArray[np.float64]]:
    """The four size CDFs of :func:`size_tables`, unpadded."""
    make = fixed_cdf if kind == "fixed" else poisson_cdf
    return [make(float(m)) for m in means]


def guide_table(cdf: NDArray[np.float64]) -> NDArray[np.float64]:
    """Chen-Asau guide: entry ``j`` is the first ``k`` with ``cdf[k] > j / len(cdf)``.

    The inverse-CDF lookup of ``u`` starts at entry ``int(u * len(cdf))`` and scans forward
    while ``cdf[k] <= u``: the same ``k`` as a binary search (``searchsorted(side="right")``),
    in about one comparison. Stored as floats (exact integers) next to the CDFs.
    """
    n = len(cdf)
    return np.searchsorted(cdf, np.arange(n) / n, side="right").astype(np.float64)


class EpisodeStreams:
    """The per-purpose generators of one episode, drawing uniforms in blocks of steps.

    Generators are created on first use, so purposes an episode does not need cost nothing.
    """

    __slots__ = ("_gens", "n_sensors", "n_ues", "regimes", "seed")

    def __init__(self, seed: int, n_ues: int, n_sensors: int, regimes: bool = False) -> None:
        self.seed = check_seed(seed)
        self.n_ues = n_ues
        self.n_sensors = n_sensors
        self.regimes = regimes
        self._gens: dict[str, np.random.Generator] = {}

    def gen(self, purpose: str) -> np.random.Generator:
        g = self._gens.get(purpose)
        if g is None:
            g = self._gens[purpose] = stream(self.seed, purpose)
        return g

    def ue_placement(self) -> NDArray[np.float64]:
        return self.gen("ue_placement").random((self.n_ues, 4))

    def sensor_candidates(self, n: int) -> NDArray[np.float64]:
        """The next ``n`` placement candidates (continues the stream on each call)."""
        return self.gen("sensor_placement").random((n, 2))

    def traffic_block(self, steps: int) -> NDArray[np.float64]:
        """Uniforms for the next ``steps`` steps, one row per step (see :func:`block_width`).

        Row layout: UE traffic ``3 U`` (per UE: arrival, data, compute), sensor traffic ``2 S``
        (per sensor: data, compute), mobility ``2 U`` (per UE: waypoint x, y), and with traffic
        regimes 2 more (switch, next regime); each segment comes from its own stream.
        """
        u, s = self.n_ues, self.n_sensors
        out = np.empty((steps, block_width(u, s, self.regimes)))
        out[:, : 3 * u] = self.gen("ue_traffic").random((steps, 3 * u))
        out[:, 3 * u : 3 * u + 2 * s] = self.gen("sensor_traffic").random((steps, 2 * s))
        out[:, 3 * u + 2 * s : 5 * u + 2 * s] = self.gen("mobility").random((steps, 2 * u))
        if self.regimes:
            out[:, 5 * u + 2 * s :] = self.gen("traffic_regime").random((steps, REGIME_COLS))
        return out


REGIME_COLS = 2  # uniforms per step of the regime process: switch?, next regime


def block_width(n_ues: int, n_sensors: int, regimes: bool = False) -> int:
    """Uniforms per step: 3 per UE (traffic), 2 per sensor (traffic), 2 per UE (mobility), and
    ``REGIME_COLS`` with traffic regimes."""
    return 5 * n_ues + 2 * n_sensors + (REGIME_COLS if regimes else 0)
