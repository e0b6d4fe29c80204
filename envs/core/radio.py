"""Radio model of ``docs/model/cell.md#radio``: Okumura-Hata path loss, SNR, resource-fair rates.

Source: Okumura-Hata (Hata, "Empirical formula for propagation loss in land mobile radio
services", IEEE Trans. Veh. Technol. 29(3), 1980), in the form used by mobile-env and the
MetaLore simulator, f in MHz, heights in m, d in km:

    a(h_m) = (1.1 log10 f - 0.7) h_m - (1.56 log10 f - 0.8)
    L(d)   = 69.55 + 26.16 log10 f - 13.82 log10 h_b - a(h_m) + (44.9 - 6.55 log10 h_b) log10 d
    SNR    = 10^((P_tx_dBm - L) / 10) / noise  (linear; docs/model/cell.md#radio explains the units)

With L = A + E log10(d_km): SNR = K d_km^(-E/10), K = 10^((P_tx - A)/10) / noise. A device gets
``b log2(1 + SNR) / 1e6`` Mbit per step on bandwidth ``b`` Hz, or nothing below the SNR threshold.
Distances are clamped to ``min_distance_m`` (the authors truncated coordinates, so d could be 0).
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit
from numpy.typing import ArrayLike, NDArray

from envs.core.jitcache import guard
from envs.core.params import ScenarioParams


def hata_coefficients(p: ScenarioParams) -> tuple[float, float]:
    """(A, E) with L(d) = A + E log10(d_km) [dB]."""
    lf = math.log10(p.carrier_mhz)
    a_hm = (1.1 * lf - 0.7) * p.device_height_m - (1.56 * lf - 0.8)
    lhb = math.log10(p.bs_height_m)
    return 69.55 + 26.16 * lf - 13.82 * lhb - a_hm, 44.9 - 6.55 * lhb


def snr_constants(p: ScenarioParams) -> tuple[float, float]:
    """(K, e) with SNR(d) = K d_km^-e."""
    a, e = hata_coefficients(p)
    return 10.0 ** ((p.tx_power_dbm - a) / 10.0) / p.noise, e / 10.0


def path_loss_db(distance_m: ArrayLike, p: ScenarioParams) -> NDArray[np.float64]:
    """Okumura-Hata path loss at the given distances (clamped to ``min_distance_m``)."""
    a, e = hata_coefficients(p)
    d_km = np.maximum(np.asarray(distance_m, dtype=np.float64), p.min_distance_m) / 1000.0
    return np.asarray(a + e * np.log10(d_km))


def spectral_efficiency(distance_m: ArrayLike, p: ScenarioParams) -> NDArray[np.float64]:
    """log2(1 + SNR) [bit/s/Hz], zero below the SNR threshold."""
    k, e = snr_constants(p)
    d_km = np.maximum(np.asarray(distance_m, dtype=np.float64), p.min_distance_m) / 1000.0
    snr = k * d_km ** (-e)
    return np.asarray(np.where(snr < p.snr_threshold, 0.0, np.log2(1.0 + snr)))


@njit(cache=True, inline="always")
def se_at(dx: float, dy: float, k: float, e: float, min_d_km: float, thr: float) -> float:
    """Kernel version of :func:`spectral_efficiency` for one offset (dx, dy) in metres."""
    d_km = max(math.sqrt(dx * dx + dy * dy) / 1000.0, min_d_km)
    snr = k * d_km ** (-e)
    if snr < thr:
        return 0.0
    return math.log2(1.0 + snr)


guard(globals())  # numba's cache follows every simulator source (envs/core/jitcache.py)
