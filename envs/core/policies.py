"""Fixed and observation-based allocation rules, usable in Python and inside numba kernels.

* ``static(w_b, w_c)``: the same split every step (the paper's static baseline).
* ``heuristic(params)``: the paper's heuristic split N_UE / (N_UE + N_sensors) for both shares
  (0.4 in the paper preset).
* ``queue_aware(...)``: our backlog-balancing rule. It keeps the bandwidth share fixed and moves the
  compute share between ``lo`` and ``hi`` with the UE part of the BS backlog,
  ``x = k q_ue / (k q_ue + q_s)`` (``x = 1/2`` when both queues are empty):
  ``w_c = lo + (hi - lo) x``. It uses only the observation (the two queue lengths of its cell).
  When sensor updates pile up, compute shifts to sensors (fresher sync, lower AoSI); when UE jobs
  pile up, it shifts back (lower AoRI). Defaults: ``w_b = 0.4``, ``lo = 0.3``, ``hi = 0.5``,
  ``k = 1``.

Every policy acts per cell on the raw queue lengths of that cell.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numba import njit
from numpy.typing import NDArray

from envs.core.jitcache import guard
from envs.core.params import EnvParams

KIND_CODES: dict[str, int] = {"static": 0, "heuristic": 0, "queue_aware": 1}
N_POLICY_PRM = 4


@njit(cache=True, inline="always")
def queue_aware_share(lo, hi, k, q_ue, q_sensor):  # type: ignore[no-untyped-def]
    """The queue-aware rule's compute share: from ``lo`` (no UE backlog) to ``hi`` (only UE
    backlog) with the UE queue weighted by ``k``; halfway when both queues are empty."""
    w = k * q_ue
    denom = w + q_sensor
    x = 0.5 if denom <= 0.0 else w / denom
    return lo + (hi - lo) * x


@njit(cache=True)
def act_kernel(code, prm, queues, action):  # type: ignore[no-untyped-def]
    """Write the action ``(C, 2)`` of policy ``code`` with parameters ``prm`` for ``queues``.

    ``queues`` is any ``(C, >=2)`` array whose first two columns are the raw queue lengths.
    """
    for c in range(action.shape[0]):
        action[c, 0] = prm[0]
        if code == 0:
            action[c, 1] = prm[1]
        else:
            action[c, 1] = queue_aware_share(prm[1], prm[2], prm[3], queues[c, 0], queues[c, 1])


@dataclass(frozen=True)
class Policy:
    """A rule the evaluators can run: ``kind`` selects the kernel, ``prm`` its parameters."""

    kind: str
    prm: tuple[float, float, float, float]
    label: str

    @property
    def code(self) -> int:
        return KIND_CODES[self.kind]

    @property
    def w_b(self) -> float:
        return self.prm[0]

    @property
    def w_c(self) -> float | None:
        """The fixed compute share, None for rules whose share moves."""
        return self.prm[1] if self.code == 0 else None

    def act(self, raw_queues: NDArray[np.float64]) -> NDArray[np.float64]:
        """Action ``(C, 2)`` for raw queue lengths ``(C, 2)``."""
        q = np.asarray(raw_queues, dtype=np.float64).reshape(-1, 2)
        out = np.empty((q.shape[0], 2))
        act_kernel(self.code, np.asarray(self.prm, dtype=np.float64), q, out)
        return out


def _share(name: str, value: float) -> float:
    value = float(value)
    if not (math.isfinite(value) and 0.0 <= value <= 1.0):
        raise ValueError(f"invalid {name}={value!r}: must be a share in [0, 1]")
    return value


def static(w_b: float, w_c: float) -> Policy:
    w_b, w_c = _share("w_b", w_b), _share("w_c", w_c)
    return Policy("static", (w_b, w_c, 0.0, 0.0), f"static({w_b:g},{w_c:g})")


def heuristic(params: EnvParams) -> Policy:
    h = params.scenario.heuristic_split
    return Policy("heuristic", (h, h, 0.0, 0.0), f"heuristic({h:.2g})")


def queue_aware(w_b: float = 0.4, lo: float = 0.3, hi: float = 0.5, k: float = 1.0) -> Policy:
    w_b, lo, hi = _share("w_b", w_b), _share("lo", lo), _share("hi", hi)
    if lo > hi:
        raise ValueError(f"invalid lo={lo}, hi={hi}: need lo <= hi")
    if not (math.isfinite(k) and k > 0):
        raise ValueError(f"invalid k={k!r}: must be a finite number > 0")
    return Policy("queue_aware", (w_b, lo, hi, float(k)), f"queue_aware({w_b:g},{lo:g}-{hi:g})")


def grid_values(step: float) -> NDArray[np.float64]:
    """0, step, ..., 1 (both ends included); ``1/step`` must be a whole number."""
    step = float(step)
    if not (math.isfinite(step) and 0.0 < step <= 1.0):
        raise ValueError(f"invalid grid step {step!r}: must be in (0, 1]")
    n = round(1.0 / step)
    if abs(n * step - 1.0) > 1e-9:
        raise ValueError(f"invalid grid step {step!r}: 1/step must be a whole number (0.1, 0.05)")
    return np.round(np.linspace(0.0, 1.0, n + 1), 12)


def static_grid(step: float) -> list[Policy]:
    """Every static split (w_b, w_c) on the grid, w_b major."""
    values = grid_values(step)
    return [static(b, c) for b in values for c in values]


guard(globals())  # numba's cache follows every simulator source (envs/core/jitcache.py)
