"""The shared compute credit pool between cells (our reconstruction of CIVIC's General Credit Pool).

Source: ``docs/model/pool.md#the-pool``; CIVIC (AboElenen et al., arXiv
2604.02284) proposes the General Credit Pool, whose exact rules are not public, so every rule
below that is our choice (``docs/model/pool.md#our-choices-and-differences-from-the-plan``)
is a field of :class:`PoolParams`.

Each cell ``i`` holds a credit balance (``endowment`` at reset). Every step it chooses a share
action ``s_i`` in [-1, 1] (clipped) next to its split ``(w_b, w_c)``:

* ``s_i > 0`` offers ``s_i C_i`` units of its MEC capacity (``C_i`` the cell's base capacity);
* ``s_i < 0`` asks for ``|s_i| C_i`` units; the ask is first cut to ``balance_i / p`` (a borrower
  never spends more credits than it holds).

Clearing, at every step ``t`` (:func:`clear`):

* price ``p = price`` credits per unit, or with a scarcity slope ``k > 0``
  ``p = price min(1 + k max(A / O - 1, 0), max_price_factor)`` where ``A`` is the total asked
  before the credit cut and ``O`` the total offered (``p = price max_price_factor`` when nothing is
  offered but something is asked);
* ``matched = min(O, A')`` with ``A'`` the total ask after the cut, shared pro rata on both sides:
  lender ``i`` lends ``offer_i matched / O``, borrower ``j`` receives ``ask_j matched / A'``;
* borrower ``j`` pays ``p`` per unit received (never more than its balance); the credits paid go
  to the lenders pro rata to the units lent, so the sum of all balances never changes;
* the units take ``backhaul_delay`` steps (default 1): the lender's capacity at step
  ``t + backhaul_delay`` is lower by what it lent and the borrower's higher by what it received,
  for that one step. The borrower spends them on its own queues with its own ``w_c`` split.
  With ``backhaul_delay = 0`` the units already count in step ``t``. The pool is closed in the
  last ``backhaul_delay`` steps of the horizon (units would arrive after the episode ends).

Non-cooperative mode (``cooperative=False``): the pool is off, share actions are ignored, every
capacity stays at its base value; everything else (seeds, dynamics) is identical.

Everything here is numpy and numba: no Gymnasium, no Ray. :class:`PoolState` keeps one episode's
pool state; :func:`pool_step` (numba) clears and sets the capacity of the step in one call.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields
from typing import Any

import numpy as np
from numba import njit
from numpy.typing import NDArray

from envs.core.jitcache import guard

# --- per-cell pool accumulator / last-clearing columns ----------------------------------------
A_OFFERED = 0  # units offered to the pool
A_ASKED = 1  # units asked, after the cut to balance / price
A_LENT = 2  # units lent (matched share of the offer)
A_BORROWED = 3  # units received (matched share of the ask)
A_EARNED = 4  # credits earned by lending
A_SPENT = 5  # credits spent by borrowing
A_CAP_DELTA = 6  # capacity change in effect this step (+ borrowed, - lent) [units]
N_POOL_ACC = 7

POOL_ACC_NAMES: tuple[str, ...] = (
    "units_offered", "units_asked", "units_lent", "units_borrowed", "credits_earned",
    "credits_spent", "capacity_delta",
)  # fmt: skip
assert len(POOL_ACC_NAMES) == N_POOL_ACC

# --- global last-clearing vector ----------------------------------------------------------------
G_PRICE = 0  # price of the last clearing [credits/unit]
G_MATCHED = 1  # units matched at the last clearing
G_OFFERED = 2  # total units offered
G_ASKED = 3  # total units asked after the credit cut
G_ASKED_RAW = 4  # total units asked before the credit cut
N_GLOBAL = 5

# --- scalar parameter vector of the kernel ------------------------------------------------------
PP_ON = 0
PP_PRICE = 1
PP_SLOPE = 2
PP_MAX_FACTOR = 3
PP_DELAY = 4
PP_HORIZON = 5
N_PP = 6

SHARE_NOT_FINITE = -1
SPLIT_NOT_FINITE = -2


def _check(cond: bool, name: str, allowed: str, value: Any) -> None:
    if not cond:
        raise ValueError(f"invalid pool parameter {name}={value!r}: must be {allowed}")


def _finite(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


@dataclass(frozen=True)
class PoolParams:
    """Rules of the credit pool and the parameters of the CIVIC-style metrics.

    Every field below marked "ours" is our own choice where the plan the pool was built from
    leaves the rule open (``docs/model/pool.md#our-choices-and-differences-from-the-plan``).
    """

    # --- the pool ------------------------------------------------------------------------------
    cooperative: bool = True  # False: pool off, share actions ignored (non-cooperative mode)
    endowment: float = 1000.0  # credits per cell at reset (ours; the plan's 100 is too few)
    price: float = 1.0  # credits per unit of MEC capacity for one step (the plan's default 1)
    scarcity_slope: float = 0.0  # ours: price x (1 + slope max(asked/offered - 1, 0)); 0 = fixed
    max_price_factor: float = 10.0  # ours: cap of the scarcity factor
    backhaul_delay: int = 1  # steps between clearing and the units counting (the plan: one step)
    # --- metrics (docs/model/pool.md#metrics) -----------------------------------------------------
    served_threshold: float = 0.5  # a UE is served if its own fulfillment rate >= this
    compute_cost: float = 1.0  # ours: operational cost per MEC compute unit used
    backhaul_cost: float = 1.0  # ours: operational cost per unit moved over the backhaul

    def __post_init__(self) -> None:
        _check(isinstance(self.cooperative, bool), "cooperative", "True or False", self.cooperative)
        _check(_finite(self.endowment) and self.endowment >= 0, "endowment",
               "a finite number >= 0 [credits]", self.endowment)  # fmt: skip
        _check(_finite(self.price) and self.price > 0, "price",
               "a finite number > 0 [credits/unit]", self.price)  # fmt: skip
        _check(_finite(self.scarcity_slope) and self.scarcity_slope >= 0, "scarcity_slope",
               "a finite number >= 0", self.scarcity_slope)  # fmt: skip
        _check(_finite(self.max_price_factor) and self.max_price_factor >= 1, "max_price_factor",
               "a finite number >= 1", self.max_price_factor)  # fmt: skip
        d = self.backhaul_delay
        _check(isinstance(d, int) and not isinstance(d, bool) and d >= 0, "backhaul_delay",
               "an integer >= 0 [steps]", d)  # fmt: skip
        _check(_finite(self.served_threshold) and 0.0 <= self.served_threshold <= 1.0,
               "served_threshold", "in [0, 1]", self.served_threshold)  # fmt: skip
        for name in ("compute_cost", "backhaul_cost"):
            v = getattr(self, name)
            _check(_finite(v) and v >= 0, name, "a finite number >= 0", v)

    def to_dict(self) -> dict[str, Any]:
        """Plain-type dict, the inverse of :meth:`from_dict`."""
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> PoolParams:
        unknown = set(d) - POOL_FIELDS
        if unknown:
            known = ", ".join(sorted(POOL_FIELDS))
            raise ValueError(f"unknown pool parameter(s) {sorted(unknown)}; known: {known}")
        return cls(**d)

    def replace(self, **changes: Any) -> PoolParams:
        """A copy with some fields changed (validated; unknown names raise ``ValueError``)."""
        return PoolParams.from_dict({**self.to_dict(), **changes})

    def kernel_vector(self, horizon: int) -> NDArray[np.float64]:
        v = np.zeros(N_PP)
        v[PP_ON] = 1.0 if self.cooperative else 0.0
        v[PP_PRICE] = self.price
        v[PP_SLOPE] = self.scarcity_slope
        v[PP_MAX_FACTOR] = self.max_price_factor
        v[PP_DELAY] = self.backhaul_delay
        v[PP_HORIZON] = horizon
        return v


POOL_FIELDS = frozenset(f.name for f in fields(PoolParams))


def split_pool_overrides(overrides: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Split flat overrides into (pool fields, everything else)."""
    pool = {k: v for k, v in overrides.items() if k in POOL_FIELDS}
    rest = {k: v for k, v in overrides.items() if k not in POOL_FIELDS}
    return pool, rest


def resolve_pool(pool: PoolParams | dict[str, Any] | None = None, **overrides: Any) -> PoolParams:
    """A :class:`PoolParams` from an instance, its ``to_dict()`` or None, plus field overrides."""
    if pool is None:
        base = PoolParams()
    elif isinstance(pool, PoolParams):
        base = pool
    elif isinstance(pool, dict):
        base = PoolParams.from_dict(pool)
    else:
        raise ValueError(f"pool must be a PoolParams, a dict or None, got {type(pool).__name__}")
    return base.replace(**overrides) if overrides else base


# --------------------------------------------------------------------------------------------------
@njit(cache=True)
def clear(share, cap, balance, price, slope, max_factor, last, glob):  # type: ignore[no-untyped-def]
    """Clear one round of the pool in place; see the module docstring for the rules.

    ``share`` ``(C,)`` share actions (clipped to [-1, 1] here), ``cap`` ``(C,)`` base capacities,
    ``balance`` ``(C,)`` credits (updated). Writes per cell into ``last`` ``(C, N_POOL_ACC)``
    (offered, asked after the cut, lent, received, earned, spent; column ``A_CAP_DELTA`` is left
    alone) and the round's price, matched, offered, asked and raw asked into ``glob``.
    """
    n = share.shape[0]
    offered = 0.0
    asked_raw = 0.0
    for i in range(n):
        s = min(max(share[i], -1.0), 1.0)
        for k in range(A_CAP_DELTA):
            last[i, k] = 0.0
        if s > 0.0:
            last[i, A_OFFERED] = s * cap[i]
            offered += s * cap[i]
        elif s < 0.0:
            last[i, A_ASKED] = -s * cap[i]
            asked_raw += -s * cap[i]
    factor = 1.0
    if slope > 0.0 and asked_raw > 0.0:
        if offered > 0.0:
            factor = min(1.0 + slope * max(asked_raw / offered - 1.0, 0.0), max_factor)
        else:
            factor = max_factor
    p = price * factor
    asked = 0.0
    for i in range(n):
        if last[i, A_ASKED] > 0.0:
            a = min(last[i, A_ASKED], max(balance[i], 0.0) / p)
            last[i, A_ASKED] = a
            asked += a
    matched = min(offered, asked)
    glob[G_PRICE] = p
    glob[G_OFFERED] = offered
    glob[G_ASKED] = asked
    glob[G_ASKED_RAW] = asked_raw
    if matched <= 0.0:
        glob[G_MATCHED] = 0.0
        return
    glob[G_MATCHED] = matched
    f_off = matched / offered
    f_ask = matched / asked
    paid = 0.0
    for i in range(n):
        if last[i, A_ASKED] > 0.0:
            got = last[i, A_ASKED] * f_ask
            cost = min(got * p, balance[i])
            last[i, A_BORROWED] = got
            last[i, A_SPENT] = cost
            balance[i] -= cost
            paid += cost
    for i in range(n):
        if last[i, A_OFFERED] > 0.0:
            lent = last[i, A_OFFERED] * f_off
            gain = paid * (lent / matched)
            last[i, A_LENT] = lent
            last[i, A_EARNED] = gain
            balance[i] += gain


@njit(cache=True)
def pool_step(t, share, split, cap, balance, pipe, prm, cells, last, glob, acc):  # type: ignore[no-untyped-def]
    """Clear the pool at step ``t`` and set every cell's capacity for step ``t``.

    ``pipe`` ``(delay + 1, C)`` holds the capacity changes already scheduled (a ring indexed by
    step modulo ``delay + 1``); ``cells[:, 3]`` receives ``cap + pipe[t % (delay + 1)]``.
    ``acc`` ``(C, N_POOL_ACC)`` accumulates the round's per-cell flows. ``split`` ``(C, 2)`` is
    only checked (the step's splits, so that a bad action changes nothing). Returns 0, or
    ``SHARE_NOT_FINITE`` / ``SPLIT_NOT_FINITE`` (nothing changed) for a NaN or infinite value.
    """
    n = share.shape[0]
    for i in range(n):
        if not np.isfinite(share[i]):
            return SHARE_NOT_FINITE
        if not (np.isfinite(split[i, 0]) and np.isfinite(split[i, 1])):
            return SPLIT_NOT_FINITE
    delay = int(prm[PP_DELAY])
    ring = delay + 1
    if prm[PP_ON] > 0.0 and t + delay < prm[PP_HORIZON]:
        clear(share, cap, balance, prm[PP_PRICE], prm[PP_SLOPE], prm[PP_MAX_FACTOR], last, glob)
        slot = (t + delay) % ring
        for i in range(n):
            pipe[slot, i] += last[i, A_BORROWED] - last[i, A_LENT]
    else:
        for i in range(n):
            for k in range(A_CAP_DELTA):
                last[i, k] = 0.0
        glob[G_MATCHED] = 0.0
        glob[G_OFFERED] = 0.0
        glob[G_ASKED] = 0.0
        glob[G_ASKED_RAW] = 0.0
        glob[G_PRICE] = prm[PP_PRICE]
    now = t % ring
    for i in range(n):
        delta = pipe[now, i]
        pipe[now, i] = 0.0
        cells[i, 3] = max(cap[i] + delta, 0.0)
        last[i, A_CAP_DELTA] = delta
        for k in range(N_POOL_ACC):
            acc[i, k] += last[i, k]
    return 0


class PoolState:
    """One episode's pool: balances, scheduled capacity changes, last clearing, accumulators."""

    def __init__(self, params: PoolParams, capacity: NDArray[np.float64], horizon: int) -> None:
        self.params = params
        self.cap = np.ascontiguousarray(capacity, dtype=np.float64)
        self.n_cells = len(self.cap)
        self.prm = params.kernel_vector(horizon)
        self.balance = np.full(self.n_cells, float(params.endowment))
        self.pipe = np.zeros((params.backhaul_delay + 1, self.n_cells))
        self.last = np.zeros((self.n_cells, N_POOL_ACC))
        self.glob = np.zeros(N_GLOBAL)
        self.acc = np.zeros((self.n_cells, N_POOL_ACC))
        self._no_split = np.zeros((self.n_cells, 2))
        self.reset()

    def reset(self) -> None:
        self.balance[:] = self.params.endowment
        self.pipe[:] = 0.0
        self.last[:] = 0.0
        self.acc[:] = 0.0
        self.glob[:] = 0.0
        self.glob[G_PRICE] = self.params.price

    @property
    def total_credits(self) -> float:
        return float(self.balance.sum())

    def step(
        self,
        t: int,
        share: NDArray[np.float64],
        cells: NDArray[np.float64],
        split: NDArray[np.float64] | None = None,
    ) -> None:
        """Clear at step ``t`` with ``share`` ``(C,)`` and write step ``t``'s capacities.

        ``split`` ``(C, 2)``, if given, is checked to be finite before anything changes.
        """
        status = pool_step(
            t, share, self._no_split if split is None else split, self.cap, self.balance,
            self.pipe, self.prm, cells, self.last, self.glob, self.acc,
        )  # fmt: skip
        if status == SHARE_NOT_FINITE:
            raise ValueError(f"share actions must be finite, got {np.asarray(share).tolist()}")
        if status == SPLIT_NOT_FINITE:
            raise ValueError(f"action must be finite, got {np.asarray(split).tolist()}")


guard(globals())  # numba's cache follows every simulator source (envs/core/jitcache.py)
