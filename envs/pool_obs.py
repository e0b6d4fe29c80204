"""Observations of the pool environments, shared by the central, the multi-agent env and replays.

Per cell ``i`` the feature row is ``[q_ue, q_s, balance, price, matched, net]``: the BS's UE and
sensor compute queue lengths after the step [jobs], the cell's credit balance, the price and the
total units matched at the last clearing, and the cell's own net trade of that clearing (units
lent minus units received; positive for a lender). The central env uses the first three columns.

``obs_mode`` (of :class:`envs.core.params.EnvParams`) transforms them for learning:

* ``raw``: as they are;
* ``log1p``: ``log1p`` of queues, balance and matched; ``sign(net) log1p(|net|)``; price divided
  by the base price;
* ``scaled``: queues / ``obs_scale``; balance / max(endowment, 1); price / base price; matched /
  mean base capacity; net / own base capacity.
"""

from __future__ import annotations

import numpy as np
from numba import njit
from numpy.typing import NDArray

from envs.core.metrics import K_FULFIL, K_PEN, K_SYNC_R
from envs.core.pool.clearing import A_BORROWED, A_LENT, G_MATCHED, G_PRICE
from envs.core.pool.sim import PoolSimulator

N_AGENT_FEATURES = 6
FEATURES: tuple[str, ...] = ("queue_ue", "queue_sensor", "balance", "price", "matched", "net_lent")
MODE_CODES = {"raw": 0, "log1p": 1, "scaled": 2}
REWARD_METALORE, REWARD_FULFILLED = 0, 1


@njit(cache=True)
def _observe(kpi, balance, glob, last, cap, mode, scale, endow, price0, out, reward_kind, rew):  # type: ignore[no-untyped-def]
    """Write the features into ``out`` and each cell's reward into ``rew``; return their sum."""
    n = kpi.shape[0]
    total = 0.0
    for i in range(n):
        if reward_kind == 0:
            r = kpi[i, K_SYNC_R] + kpi[i, K_PEN]
        else:
            r = kpi[i, K_FULFIL]
        rew[i] = r
        total += r
    mean_cap = 0.0
    for i in range(n):
        mean_cap += cap[i]
    mean_cap /= n
    for i in range(n):
        q_u = kpi[i, 0]
        q_s = kpi[i, 1]
        bal = balance[i]
        p = glob[G_PRICE]
        m = glob[G_MATCHED]
        net = last[i, A_LENT] - last[i, A_BORROWED]
        if mode == 1:
            q_u = np.log1p(q_u)
            q_s = np.log1p(q_s)
            bal = np.log1p(max(bal, 0.0))
            p = p / price0
            m = np.log1p(m)
            net = np.log1p(abs(net)) * (1.0 if net >= 0.0 else -1.0)
        elif mode == 2:
            q_u = q_u / scale
            q_s = q_s / scale
            bal = bal / max(endow, 1.0)
            p = p / price0
            m = m / mean_cap
            net = net / cap[i]
        out[i, 0] = q_u
        out[i, 1] = q_s
        out[i, 2] = bal
        out[i, 3] = p
        out[i, 4] = m
        out[i, 5] = net
    return total


class Observer:
    """Builds the ``(C, 6)`` float32 feature matrix of a :class:`PoolSimulator` after a step."""

    def __init__(
        self, ps: PoolSimulator, obs_mode: str | None = None, obs_scale: float | None = None
    ) -> None:
        """``obs_mode`` / ``obs_scale`` default to the simulator's parameters (a policy trained
        with another transform passes its own)."""
        self.ps = ps
        mode = ps.params.obs_mode if obs_mode is None else obs_mode
        if mode not in MODE_CODES:
            raise ValueError(f"invalid obs_mode {mode!r}: choose one of {tuple(MODE_CODES)}")
        self.mode = MODE_CODES[mode]
        self.scale = float(ps.params.obs_scale if obs_scale is None else obs_scale)
        self.endow = float(ps.pool_params.endowment)
        self.price0 = float(ps.pool_params.price)
        self.rewards = np.zeros(ps.n_cells)
        self.total_reward = 0.0

    def __call__(self, reward_kind: int = REWARD_METALORE) -> NDArray[np.float32]:
        """Features ``(C, 6)``; also sets :attr:`rewards` ``(C,)`` and :attr:`total_reward` of the
        last step (``REWARD_METALORE``: the MetaLore reward, ``REWARD_FULFILLED``: the number of
        fulfilled UE jobs)."""
        ps = self.ps
        out = np.empty((ps.n_cells, N_AGENT_FEATURES), np.float32)
        self.total_reward = _observe(
            ps.sim.kpi, ps.pool.balance, ps.pool.glob, ps.pool.last, ps.pool.cap, self.mode,
            self.scale, self.endow, self.price0, out, reward_kind, self.rewards,
        )  # fmt: skip
        return out
