"""Many cells sharing MEC compute through the credit pool: one episode at a time.

:class:`PoolSimulator` couples the core :class:`envs.core.sim.Simulator` (every cell's radio,
queues, sync gate, handover) with a :class:`envs.core.pool.PoolState`. Each step it

1. clears the pool with the cells' share actions and writes the capacity each MEC has in this step
   into ``Simulator.cells[:, 3]`` (base capacity, minus units lent and plus units received by
   clearings ``backhaul_delay`` steps ago);
2. steps the simulator with the cells' splits ``(w_b, w_c)``;
3. counts each UE's attachment to its cell (for the per-cell served clients) and, in scenarios
   with a surge, keeps the sums at the surge step to split the metrics into before / after.

:meth:`PoolSimulator.metrics` returns the CIVIC-style metrics of :mod:`envs.core.pool.civic`. With
``trace=True`` the per-step pool flows, balances, capacities and queues are recorded
(:meth:`PoolSimulator.trace_arrays`) for figures.

Example::

    from envs.core import make_params
    from envs.core.pool.clearing import PoolParams
    ps = PoolSimulator(make_params("three_cell_hetero"), PoolParams())
    ps.reset(seed=0)
    while not ps.done:
        ps.step(np.full((3, 2), 0.5), np.array([-0.3, 0.3, 0.3]))
    print(ps.metrics()["fulfillment_pct"])
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numba import njit
from numpy.typing import NDArray

from envs.core.jitcache import guard
from envs.core.metrics import K_CAPACITY, K_PEN, K_Q_S, K_Q_UE, K_SYNC_R, K_UE_DONE, K_UE_GEN
from envs.core.params import EnvParams
from envs.core.pool.civic import episode_metrics, phase_metrics
from envs.core.pool.clearing import G_MATCHED, G_PRICE, PoolParams, PoolState
from envs.core.sim import Simulator


@njit(cache=True)
def _tally(attach, ue_cell):  # type: ignore[no-untyped-def]
    for u in range(ue_cell.shape[0]):
        attach[u, ue_cell[u]] += 1.0


TRACE_KEYS: tuple[str, ...] = (
    "balance", "units_lent", "units_borrowed", "credits_earned", "credits_spent", "capacity",
    "queue_ue", "queue_sensor", "ue_generated", "ue_completed", "share", "price", "matched",
)  # fmt: skip


class PoolSimulator:
    """``n_cells`` MetaLore cells with a shared credit pool (or without: ``cooperative=False``)."""

    def __init__(self, params: EnvParams, pool: PoolParams, trace: bool = False) -> None:
        self.params = params
        self.pool_params = pool
        self.sim = Simulator(params)
        s = params.scenario
        self.n_cells = s.n_cells
        self.n_ues = s.n_ues
        self.horizon = s.episode_steps
        self.pool = PoolState(pool, np.asarray(s.mec_capacity, dtype=np.float64), self.horizon)
        self.attach = np.zeros((self.n_ues, self.n_cells))
        self.split_step = s.surge_step if 0 < s.surge_step < self.horizon else -1
        self.trace_enabled = trace
        self._trace: dict[str, list[Any]] = {k: [] for k in TRACE_KEYS}
        self._snap: tuple[NDArray[np.float64], ...] | None = None
        self.seed: int | None = None

    # ------------------------------------------------------------------------------------------
    def reset(self, seed: int) -> None:
        self.sim.reset(seed)
        self.seed = self.sim.seed
        self.pool.reset()
        self.attach[:] = 0.0
        self._snap = None
        for v in self._trace.values():
            v.clear()

    @property
    def t(self) -> int:
        return self.sim.t

    @property
    def done(self) -> bool:
        return self.sim.t >= self.horizon

    @property
    def balance(self) -> NDArray[np.float64]:
        return self.pool.balance

    @property
    def last_price(self) -> float:
        return float(self.pool.glob[G_PRICE])

    @property
    def last_matched(self) -> float:
        return float(self.pool.glob[G_MATCHED])

    def step(self, split: NDArray[np.float64], share: NDArray[np.float64]) -> None:
        """One step: ``split`` ``(C, 2)`` float64 C-contiguous (w_b, w_c), ``share`` ``(C,)``.

        Shares are clipped to [-1, 1] (ignored in non-cooperative mode); NaN or infinite values
        raise ``ValueError`` and leave the state unchanged.
        """
        sim = self.sim
        if self._snap is None and sim.t == self.split_step:
            self._snap = (sim.acc.copy(), sim.ue_acc.copy(), self.pool.acc.copy())
        self.pool.step(sim.t, share, sim.cells, split)
        sim.step(split)
        _tally(self.attach, sim.ue_cell)
        if self.trace_enabled:
            self._record(share)

    def step_action(self, action: NDArray[np.float64]) -> None:
        """One step with ``action`` ``(C, 3)``: (w_b, w_c, share) per cell."""
        a = np.asarray(action, dtype=np.float64)
        if a.shape != (self.n_cells, 3):
            raise ValueError(f"action must have shape {(self.n_cells, 3)}, got {a.shape}")
        self.step(np.ascontiguousarray(a[:, :2]), np.ascontiguousarray(a[:, 2]))

    # ------------------------------------------------------------------------------------------
    def cell_rewards(self) -> NDArray[np.float64]:
        """This step's MetaLore reward of each cell ``(C,)``."""
        kpi = self.sim.kpi
        out: NDArray[np.float64] = kpi[:, K_SYNC_R] + kpi[:, K_PEN]
        return out

    def queues(self) -> NDArray[np.float64]:
        """Raw BS compute queue lengths ``(C, 2)`` after the step."""
        return self.sim.kpi[:, :2]

    def metrics(self) -> dict[str, Any]:
        """CIVIC-style metrics of the episode so far (see :mod:`envs.core.pool.civic`)."""
        sim = self.sim
        out = episode_metrics(
            sim.acc, sim.kpi, sim.ue_acc, self.attach, self.pool.acc, self.pool.balance,
            self.pool_params, sim.t,
        )  # fmt: skip
        if self._snap is not None:
            acc0, ue0, pool0 = self._snap
            out["phases"] = {
                "before": phase_metrics(acc0, ue0, pool0, self.pool_params),
                "after": phase_metrics(
                    sim.acc - acc0, sim.ue_acc - ue0, self.pool.acc - pool0, self.pool_params
                ),
            }
        out["seed"] = self.seed
        out["cooperative"] = self.pool_params.cooperative
        return out

    # ------------------------------------------------------------------------------------------
    def _record(self, share: NDArray[np.float64]) -> None:
        from envs.core.pool.clearing import A_BORROWED, A_EARNED, A_LENT, A_SPENT

        tr = self._trace
        last = self.pool.last
        kpi = self.sim.kpi
        tr["balance"].append(self.pool.balance.copy())
        tr["units_lent"].append(last[:, A_LENT].copy())
        tr["units_borrowed"].append(last[:, A_BORROWED].copy())
        tr["credits_earned"].append(last[:, A_EARNED].copy())
        tr["credits_spent"].append(last[:, A_SPENT].copy())
        tr["capacity"].append(kpi[:, K_CAPACITY].copy())
        tr["queue_ue"].append(kpi[:, K_Q_UE].copy())
        tr["queue_sensor"].append(kpi[:, K_Q_S].copy())
        tr["ue_generated"].append(kpi[:, K_UE_GEN].copy())
        tr["ue_completed"].append(kpi[:, K_UE_DONE].copy())
        tr["share"].append(np.clip(np.asarray(share, dtype=np.float64), -1.0, 1.0))
        tr["price"].append(float(self.pool.glob[G_PRICE]))
        tr["matched"].append(float(self.pool.glob[G_MATCHED]))

    def trace_arrays(self) -> dict[str, NDArray[np.float64]]:
        """The recorded per-step series: ``(T, C)`` per cell (``(T,)`` for price, matched)."""
        if not self.trace_enabled:
            raise RuntimeError("create the PoolSimulator with trace=True to record a trace")
        return {k: np.asarray(v, dtype=np.float64) for k, v in self._trace.items()}


guard(globals())  # numba's cache follows every simulator source (envs/core/jitcache.py)
