"""FIFO job queues as growable ring buffers, for the numba kernels.

A queue family (for example "the uplink queue of every UE") is two arrays:

* ``buf``: float64 ``(Q, cap, F)``: ``F`` fields per job (generation step, remaining work, ...),
  integers stored exactly as floats; ``cap`` is a power of two;
* ``meta``: int64 ``(Q, 2)``: head index and length of each of the ``Q`` queues.

The kernels check after every step whether the next step could overflow a family and say so;
the caller then calls :func:`grow`. Memory therefore stays within twice the peak contents.
"""

from __future__ import annotations

import numpy as np
from numba import njit
from numpy.typing import NDArray

from envs.core.jitcache import guard

HEAD, LEN = 0, 1


def next_pow2(n: int) -> int:
    return 1 << max(int(n) - 1, 1).bit_length()


def alloc(n_queues: int, cap: int, n_fields: int) -> tuple[NDArray[np.float64], NDArray[np.int64]]:
    return np.zeros((n_queues, next_pow2(cap), n_fields)), np.zeros((n_queues, 2), np.int64)


@njit(cache=True, inline="always")
def tail_slot(buf: np.ndarray, meta: np.ndarray, q: int) -> int:
    """Append an empty slot to queue ``q`` and return its index (the caller fills the fields)."""
    idx = (meta[q, HEAD] + meta[q, LEN]) & (buf.shape[1] - 1)
    meta[q, LEN] += 1
    return idx  # type: ignore[no-any-return]


@njit(cache=True, inline="always")
def pop(buf: np.ndarray, meta: np.ndarray, q: int) -> None:
    meta[q, HEAD] = (meta[q, HEAD] + 1) & (buf.shape[1] - 1)
    meta[q, LEN] -= 1


@njit(cache=True)
def grow(buf: np.ndarray, meta: np.ndarray, min_cap: int) -> np.ndarray:
    """A copy of ``buf`` with capacity >= ``min_cap``, queues unwrapped (heads reset to 0)."""
    cap = buf.shape[1]
    new_cap = cap
    while new_cap < min_cap:
        new_cap *= 2
    out = np.zeros((buf.shape[0], new_cap, buf.shape[2]))
    for q in range(buf.shape[0]):
        h = meta[q, HEAD]
        for i in range(meta[q, LEN]):
            out[q, i, :] = buf[q, (h + i) & (cap - 1), :]
        meta[q, HEAD] = 0
    return out


guard(globals())  # numba's cache follows every simulator source (envs/core/jitcache.py)
