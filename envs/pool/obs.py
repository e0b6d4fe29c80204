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

The ``trader`` observation kind (:class:`TraderObserver`, :data:`TRADER_FEATURES`) gives what a
cell needs to decide when to lend and when to borrow, every value scale-free: its own backlog,
uplink backlog, arrivals and sensor age relative to its capacity, its capacity now, next step and
relative to the others, its credit runway (balance over what the rest of the episode would cost
at full capacity), the time, the last clearing's totals, price and own net trade, the greedy
rule's share, the neighbours' mean and largest load and mean runway, and optionally a one-hot
cell identity (for a network shared by the cells). :func:`make_observer` picks the kind.

For a centralised critic the per-cell environment appends the global state to every agent's own
features (:func:`with_global_state`): every cell's features in cell order, without the identity
columns (:func:`state_columns` of them per cell); or, of one size for any number of cells, their
mean and largest value over the cells (:func:`with_city_summary`).
"""

from __future__ import annotations

import numpy as np
from numba import njit
from numpy.typing import NDArray

from envs.core.jitcache import guard
from envs.core.metrics import K_CAPACITY, K_FULFIL, K_NUE, K_PEN, K_SYNC_R, K_UE_GEN, K_UP_UE
from envs.core.pool.clearing import (
    A_BORROWED,
    A_LENT,
    G_ASKED,
    G_MATCHED,
    G_OFFERED,
    G_PRICE,
)
from envs.core.pool.rules import GreedyRule, greedy_share_into
from envs.core.pool.sim import PoolSimulator

N_AGENT_FEATURES = 6
FEATURES: tuple[str, ...] = ("queue_ue", "queue_sensor", "balance", "price", "matched", "net_lent")
MODE_CODES = {"raw": 0, "log1p": 1, "scaled": 2}
REWARD_METALORE, REWARD_FULFILLED = 0, 1


@njit(cache=True)
def _rewards(kpi, reward_kind, rew):  # type: ignore[no-untyped-def]
    """Each cell's reward into ``rew`` (MetaLore reward or fulfilled UE jobs); their sum."""
    total = 0.0
    for i in range(kpi.shape[0]):
        r = kpi[i, K_SYNC_R] + kpi[i, K_PEN] if reward_kind == REWARD_METALORE else kpi[i, K_FULFIL]
        rew[i] = r
        total += r
    return total


@njit(cache=True)
def _observe(kpi, balance, glob, last, cap, mode, scale, endow, price0, out, reward_kind, rew):  # type: ignore[no-untyped-def]
    """Write the features into ``out`` and each cell's reward into ``rew``; return their sum."""
    n = kpi.shape[0]
    total = _rewards(kpi, reward_kind, rew)
    mean_cap = cap.sum() / n
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


# --- the trader observation -----------------------------------------------------------------------
TRADER_FEATURES: tuple[str, ...] = (
    "ue_load",  # log1p(BS UE compute queue x mean UE job compute / own base capacity)
    "sensor_load",  # log1p(BS sensor queue x mean sensor update compute / own base capacity)
    "uplink_load",  # log1p(UE jobs still in the uplinks of the attached UEs, same unit)
    "arrivals",  # UE jobs generated in the last step, same unit
    "ues",  # UEs attached / (UEs per cell on average)
    "sensor_age",  # mean age of the cell's latest processed sensor update / sigma (capped at 3)
    "capacity_now",  # capacity in effect in the last step / own base capacity
    "capacity_next",  # capacity already scheduled for the next step / own base capacity
    "capacity_rel",  # own base capacity / mean base capacity of all cells
    "runway",  # log1p(balance / (price x own capacity x steps left), capped at 10)
    "balance",  # log1p(balance / own base capacity)
    "time",  # steps done / episode steps
    "offered",  # total units offered at the last clearing / total base capacity
    "asked",  # total units asked (after the credit cut) / total base capacity
    "matched",  # total units matched / total base capacity
    "price",  # last price / base price
    "net",  # own units lent minus received at the last clearing / own base capacity
    "greedy_share",  # the greedy rule's share for this cell now (the residual mode's base)
    "nb_load",  # log1p of the other cells' mean load (UE + sensor backlog / capacity)
    "nb_load_max",  # log1p of the other cells' largest load
    "nb_runway",  # log1p of the other cells' mean runway
    "ue_need_next",  # BS UE backlog [units] / capacity scheduled for the next step (cap 4)
    "sensor_need_next",  # BS sensor backlog [units] / capacity for the next step (cap 4)
)
N_TRADER_BASE = len(TRADER_FEATURES)
# With ``neighbourhood="adjacent"`` the three nb_* columns summarise the adjacent cells only and
# these two columns, the whole city, follow (before any identity columns).
CITY_FEATURES: tuple[str, ...] = (
    "city_load",  # log1p of the other cells' mean load, all of them
    "city_runway",  # log1p of the other cells' mean runway, all of them
)
NEIGHBOURHOODS: tuple[str, ...] = ("all", "adjacent")
ADJACENT_REACH = 1.25  # a cell's neighbours: BSs within 1.25 x the distance to its nearest BS


def adjacency(
    positions: tuple[tuple[float, float], ...] | NDArray[np.floating],
) -> NDArray[np.bool_]:
    """``(C, C)``: ``True`` where cell ``j``'s BS lies within :data:`ADJACENT_REACH` times the
    distance from cell ``i``'s BS to its nearest other BS (the first ring of a hexagonal layout:
    up to six neighbours); never ``i`` itself."""
    xy = np.asarray(positions, dtype=np.float64).reshape(-1, 2)
    d = np.sqrt(((xy[:, None, :] - xy[None, :, :]) ** 2).sum(-1))
    np.fill_diagonal(d, np.inf)
    near = d.min(axis=1, keepdims=True)
    return np.asarray(d <= ADJACENT_REACH * near)


AGE_CAP = 3.0  # sensor ages are reported up to AGE_CAP x sigma
RUNWAY_CAP = 10.0
NEED_CAP = 4.0


@njit(cache=True)
def _trader(  # type: ignore[no-untyped-def]
    kpi, balance, glob, last, cap, pipe, sens, s_start, t, horizon, m_ue, m_s, ues_per_cell,
    sigma, price0, greedy, identity, adj, city, out, reward_kind, rew,
):  # fmt: skip
    """Write the trader features (see :data:`TRADER_FEATURES`) into ``out``; return the reward."""
    n = kpi.shape[0]
    total = _rewards(kpi, reward_kind, rew)
    sum_cap = cap.sum()
    mean_cap = sum_cap / n
    left = max(horizon - t, 1)
    nxt = t % pipe.shape[0]
    last_t = t - 1.0
    loads = np.empty(n)
    runways = np.empty(n)
    for i in range(n):
        loads[i] = (kpi[i, 0] * m_ue + kpi[i, 1] * m_s) / cap[i]
        runways[i] = min(max(balance[i], 0.0) / (price0 * cap[i] * left), RUNWAY_CAP)
    for i in range(n):
        c = cap[i]
        age = 0.0
        n_s = s_start[i + 1] - s_start[i]
        for s in range(s_start[i], s_start[i + 1]):
            if sens[s, 3] < 0.0:
                a = AGE_CAP * sigma
            else:
                a = min(max(last_t - sens[s, 3], 0.0), AGE_CAP * sigma)
            age += a
        out[i, 0] = np.log1p(kpi[i, 0] * m_ue / c)
        out[i, 1] = np.log1p(kpi[i, 1] * m_s / c)
        out[i, 2] = np.log1p(kpi[i, K_UP_UE] * m_ue / c)
        out[i, 3] = kpi[i, K_UE_GEN] * m_ue / c
        out[i, 4] = kpi[i, K_NUE] / ues_per_cell
        out[i, 5] = age / max(n_s, 1) / sigma
        out[i, 6] = kpi[i, K_CAPACITY] / c if t > 0 else 1.0
        out[i, 7] = (c + pipe[nxt, i]) / c
        out[i, 8] = c / mean_cap
        out[i, 9] = np.log1p(runways[i])
        out[i, 10] = np.log1p(max(balance[i], 0.0) / c)
        out[i, 11] = t / horizon
        out[i, 12] = glob[G_OFFERED] / sum_cap
        out[i, 13] = glob[G_ASKED] / sum_cap
        out[i, 14] = glob[G_MATCHED] / sum_cap
        out[i, 15] = glob[G_PRICE] / price0
        out[i, 16] = (last[i, A_LENT] - last[i, A_BORROWED]) / c
        out[i, 17] = greedy[i]
        nb_sum = 0.0
        nb_max = 0.0
        nb_run = 0.0
        nb_n = 0
        all_sum = 0.0
        all_run = 0.0
        for j in range(n):
            if j != i:
                all_sum += loads[j]
                all_run += runways[j]
                if adj[i, j]:
                    nb_n += 1
                    nb_sum += loads[j]
                    nb_max = max(nb_max, loads[j])
                    nb_run += runways[j]
        out[i, 18] = np.log1p(nb_sum / max(nb_n, 1))
        out[i, 19] = np.log1p(nb_max)
        out[i, 20] = np.log1p(nb_run / max(nb_n, 1))
        c_next = max(c + pipe[nxt, i], 1e-9)
        out[i, 21] = min(kpi[i, 0] * m_ue / c_next, NEED_CAP)
        out[i, 22] = min(kpi[i, 1] * m_s / c_next, NEED_CAP)
        col = N_TRADER_BASE
        if city:
            out[i, col] = np.log1p(all_sum / max(n - 1, 1))
            out[i, col + 1] = np.log1p(all_run / max(n - 1, 1))
            col += 2
        if identity:
            for j in range(n):
                out[i, col + j] = 1.0 if j == i else 0.0
    return total


class TraderObserver:
    """Builds the ``(C, F)`` trader features of a :class:`PoolSimulator` after a step.

    ``F = len(TRADER_FEATURES)``; with ``neighbourhood="adjacent"`` the ``nb_*`` columns summarise
    the adjacent cells (:func:`adjacency`) and the two :data:`CITY_FEATURES` columns follow
    (with ``"all"``, the default, the ``nb_*`` columns summarise every other cell); with
    ``identity=True`` a one-hot cell identity of ``C`` columns comes last (for a policy shared by
    all cells of one layout). Same call contract as :class:`Observer`.
    """

    def __init__(
        self,
        ps: PoolSimulator,
        identity: bool = False,
        rule: GreedyRule | None = None,
        neighbourhood: str = "all",
    ) -> None:
        if neighbourhood not in NEIGHBOURHOODS:
            raise ValueError(
                f"invalid neighbourhood {neighbourhood!r}: choose one of {NEIGHBOURHOODS}"
            )
        self.ps = ps
        self.identity = bool(identity)
        self.city = neighbourhood == "adjacent"
        s = ps.params.scenario
        n = ps.n_cells
        self.adj = adjacency(s.bs_positions) if self.city else ~np.eye(n, dtype=np.bool_)
        self.n_features = (
            N_TRADER_BASE + (len(CITY_FEATURES) if self.city else 0) + (n if identity else 0)
        )
        self.m_ue = float(s.ue_compute_mean)
        self.m_s = float(s.sensor_compute_mean)
        self.ues_per_cell = max(s.n_ues / ps.n_cells, 1e-9)
        self.sigma = float(max(ps.params.reward.sync_threshold, 1))
        self.price0 = float(ps.pool_params.price)
        self.rule = rule or GreedyRule()
        self.greedy = np.zeros(ps.n_cells)
        self.rewards = np.zeros(ps.n_cells)
        self.total_reward = 0.0

    def __call__(self, reward_kind: int = REWARD_METALORE) -> NDArray[np.float32]:
        ps = self.ps
        sim = ps.sim
        greedy_share_into(sim.kpi, ps.pool.cap, (self.m_ue, self.m_s), self.rule, self.greedy)
        out = np.empty((ps.n_cells, self.n_features), np.float32)
        self.total_reward = _trader(
            sim.kpi, ps.pool.balance, ps.pool.glob, ps.pool.last, ps.pool.cap, ps.pool.pipe,
            sim.sens, sim.s_start, sim.t, ps.horizon, self.m_ue, self.m_s, self.ues_per_cell,
            self.sigma, self.price0, self.greedy, self.identity, self.adj, self.city, out,
            reward_kind, self.rewards,
        )  # fmt: skip
        return out


OBS_KINDS: tuple[str, ...] = ("basic", "trader")


def make_observer(
    ps: PoolSimulator,
    obs: str = "basic",
    identity: bool = False,
    rule: GreedyRule | None = None,
    obs_mode: str | None = None,
    obs_scale: float | None = None,
    neighbourhood: str = "all",
) -> Observer | TraderObserver:
    """The observer of an observation kind: ``basic`` (:class:`Observer`, transformed by
    ``obs_mode``) or ``trader`` (:class:`TraderObserver`, already scale-free)."""
    if obs == "basic":
        return Observer(ps, obs_mode, obs_scale)
    if obs == "trader":
        return TraderObserver(ps, identity=identity, rule=rule, neighbourhood=neighbourhood)
    raise ValueError(f"invalid obs {obs!r}: choose one of {OBS_KINDS}")


def state_columns(observer: Observer | TraderObserver) -> int:
    """Feature columns per cell that make up the global state (the identity columns excluded)."""
    if isinstance(observer, TraderObserver):
        return N_TRADER_BASE + (len(CITY_FEATURES) if observer.city else 0)
    return N_AGENT_FEATURES


def with_city_summary(feats: NDArray[np.float32], n_cols: int) -> NDArray[np.float32]:
    """``(C, F)`` own features -> ``(C, F + 2 n_cols)``: row ``i`` is cell ``i``'s own features
    followed by the mean and the largest value over every cell of each of the first ``n_cols``
    columns: a global state of one size for any number of cells (``critic="summary"``)."""
    n = feats.shape[0]
    state = np.ascontiguousarray(feats[:, :n_cols], dtype=np.float32)
    summary = np.concatenate([state.mean(axis=0), state.max(axis=0)]).reshape(1, 2 * n_cols)
    return np.concatenate(
        [feats.astype(np.float32, copy=False), np.repeat(summary.astype(np.float32), n, 0)], axis=1
    )


def with_global_state(feats: NDArray[np.float32], n_cols: int) -> NDArray[np.float32]:
    """``(C, F)`` own features -> ``(C, F + C n_cols)``: row ``i`` is cell ``i``'s own features
    followed by the global state, the first ``n_cols`` columns of every cell in cell order."""
    n = feats.shape[0]
    state = np.ascontiguousarray(feats[:, :n_cols], dtype=np.float32).reshape(1, n * n_cols)
    return np.concatenate([feats.astype(np.float32, copy=False), np.repeat(state, n, 0)], axis=1)


guard(globals())  # numba's cache follows every simulator source (envs/core/jitcache.py)
