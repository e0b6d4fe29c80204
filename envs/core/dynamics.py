"""One step of the MetaLore system, exactly as ``docs/model/cell.md#one-step``, as a numba kernel.

Every array carries the cell axis (``C`` cells); with ``C = 1`` this is the paper's single cell.
The single env (:mod:`envs.core.sim`) and the batched evaluator (:mod:`envs.core.batch`) call the
same :func:`step_kernel`, so their results agree step by step.

State arrays (all owned by the caller, mutated in place):

* ``cells`` ``(C, 4)``: BS x, BS y, bandwidth [Hz], MEC capacity available this step [units];
* ``geo`` ``(U, 10)``: UE x, y, waypoint x, y [m], the rectangle x0, y0, width, height its
  positions and waypoints are drawn in, and the rectangle's drift vx, vy [m/step] (a moving
  hotspot's; zero otherwise); ``ue_cell`` ``(U,)``: serving cell;
* ``sens`` ``(S, 4)``: sensor x, y, spectral efficiency to its BS, generation step of its latest
  update completed at its MEC (-1: none); sensors are grouped by cell, cell ``c`` owning
  ``s_start[c]:s_start[c+1]`` (``s_cell`` gives the cell of each sensor);
* queues (see :mod:`envs.core.queues`): ``dq`` ``(U + S, cap, 3)`` the device uplink queues, UE
  ``u`` at row ``u`` and sensor ``s`` at row ``U + s``, fields [t_gen, data left, compute];
  ``bq`` ``(2 C, cap, 4)`` the BS compute queues, the UE queue of cell ``c`` at row ``c`` with
  fields [t_gen, compute left, UE id, synced update t_gen or -1 before start] and the sensor queue
  at row ``C + c`` with fields [t_gen, compute left, sensor id, unused];
* ``trf`` ``(N_TRF,)`` the traffic in force (regime, UE job probability, active UEs and sensors,
  sensor interval; see :mod:`envs.core.traffic`); the kernel switches regimes in it;
* ``kpi`` ``(C, N_KPI)`` this step's KPIs, ``acc`` ``(C, N_KPI)`` their running sum,
  ``ue_acc`` ``(U, N_UE_ACC)`` per-UE counters (see :mod:`envs.core.metrics`), ``obs``
  ``(C, 2)`` float32 the observation after the step (transformed per ``P_OBS_MODE``): the BS UE
  and sensor queue lengths; ``(C, 4)`` adds the UE and sensor uplink backlogs (``obs_uplink``),
  a last column the mean age of the sensor updates at the MEC (``obs_age``: width 3 or 5).

With ``action_mode="residual"`` the action is a correction in [-1, 1] (clipped) on the queue-aware
rule with the parameters ``residual_rule`` of the BS queues at the start of the step (the last
observation's): ``w = clip(rule + residual_scale * a, 0, 1)``; a zero action is the rule.

Random inputs are uniforms (see :mod:`envs.core.rng`), row ``row`` of ``rnd`` for this step:
``3 U`` UE traffic, ``2 S`` sensor traffic, ``2 U`` mobility, and with traffic regimes 2 for the
regime switch. Poisson sizes come by inverse CDF from ``cdf`` ``(8, K)`` (CDFs and guide tables).

Traffic variation (regimes, randomisation) only changes ``trf`` and ``cdf``; with the defaults
(every UE and sensor active, no regimes) the kernel computes exactly what it did without it.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from envs.core.jitcache import guard
from envs.core.metrics import (
    K_AORI,
    K_AOSI,
    K_CAPACITY,
    K_CU_USED,
    K_FULFIL,
    K_GATE,
    K_NUE,
    K_ONTIME,
    K_PEN,
    K_Q_S,
    K_Q_UE,
    K_S_DONE,
    K_S_GEN,
    K_SYNC_R,
    K_UE_DONE,
    K_UE_GEN,
    K_UP_S,
    K_UP_UE,
    K_WB,
    K_WC,
    U_DONE,
    U_FULFIL,
    U_GEN,
)
from envs.core.params import EnvParams
from envs.core.policies import queue_aware_share
from envs.core.queues import HEAD, LEN, pop, tail_slot
from envs.core.radio import se_at, snr_constants
from envs.core.rng import TAB_S_COMPUTE, TAB_S_DATA, TAB_UE_COMPUTE, TAB_UE_DATA
from envs.core.traffic import TR_N_S, TR_N_UE, TR_P_JOB, TR_REGIME, TR_S_INT, regime_array

# --- scalar parameter vector ``prm`` ---------------------------------------------------------
P_UE_PROB = 0
P_SPEED = 1
P_AREA = 2
P_RS = 3
P_DELTA = 4
P_TAU = 5
P_PENALTY = 6
P_SNR_K = 7
P_SNR_E = 8
P_SNR_THR = 9
P_MIN_DKM = 10
P_SENS_INT = 11
P_SIGMA = 12
P_SURGE_STEP = 13
P_SURGE_CELL = 14
P_SURGE_PROB = 15
P_OBS_MODE = 16  # 0 raw, 1 log1p, 2 scaled
P_OBS_SCALE = 17
P_N_REG = 18  # number of traffic regimes R (0: none)
P_SWITCH = 19  # probability per step of leaving the regime, 1 / regime_hold_steps
P_ACT_MODE = 20  # 0 direct, 1 residual on the queue-aware rule
P_RES_SCALE = 21  # residual: scale of the correction
P_RULE = 22  # residual: the rule's (w_b, lo, hi, k) at P_RULE .. P_RULE + 3
P_SURGE_R2 = 26  # regional surge: squared distance from the surge cell's BS [m^2] (0: that cell)
N_PRM = 27
N_DELTA_POW = 512  # prm[N_PRM + k] = delta**k for k < N_DELTA_POW (a lookup for the reward)
P_REG_TAB = N_PRM + N_DELTA_POW  # prm[P_REG_TAB + 3 r + j]: regime r's (p_job, n_ues, interval)

OBS_MODE_CODES = {"raw": 0, "log1p": 1, "scaled": 2}
ACTION_MODE_CODES = {"direct": 0, "residual": 1}

EPS = 1e-9  # work below this counts as done (guards float round-off of rate arithmetic)

# status bits returned by the kernel: which queue family must grow before the next step
GROW_DQ, GROW_BQ = 1, 2
ACTION_NOT_FINITE = -1


def param_vector(p: EnvParams) -> np.ndarray:
    s, r = p.scenario, p.reward
    k, e = snr_constants(s)
    regimes = regime_array(s)
    prm = np.zeros(P_REG_TAB + regimes.size)
    prm[P_REG_TAB:] = regimes.ravel()
    prm[P_N_REG] = len(regimes)
    prm[P_SWITCH] = 1.0 / s.regime_hold_steps
    prm[N_PRM:P_REG_TAB] = r.delta ** np.arange(N_DELTA_POW, dtype=np.float64)
    prm[P_UE_PROB] = s.ue_job_prob
    prm[P_SPEED] = s.ue_speed
    prm[P_AREA] = s.area_m
    prm[P_RS] = r.sync_reward
    prm[P_DELTA] = r.delta
    prm[P_TAU] = r.delay_threshold
    prm[P_PENALTY] = r.penalty
    prm[P_SNR_K] = k
    prm[P_SNR_E] = e
    prm[P_SNR_THR] = s.snr_threshold
    prm[P_MIN_DKM] = s.min_distance_m / 1000.0
    prm[P_SENS_INT] = s.sensor_interval
    prm[P_SIGMA] = r.sync_threshold
    prm[P_SURGE_STEP] = s.surge_step
    prm[P_SURGE_CELL] = s.surge_cell
    prm[P_SURGE_PROB] = s.surge_job_prob
    prm[P_SURGE_R2] = s.surge_radius_m**2
    prm[P_OBS_MODE] = OBS_MODE_CODES[p.obs_mode]
    prm[P_OBS_SCALE] = p.obs_scale
    prm[P_ACT_MODE] = ACTION_MODE_CODES[p.action_mode]
    prm[P_RES_SCALE] = p.residual_scale
    prm[P_RULE : P_RULE + 4] = p.residual_rule
    return prm


def new_geo(p: EnvParams) -> np.ndarray:
    """``(U, 10)`` with each UE's region (x0, y0, width, height) in columns 4-7 and its drift
    (vx, vy) in columns 8-9, positions zero."""
    geo = np.zeros((p.scenario.n_ues, 10))
    geo[:, 4:8] = np.asarray(p.scenario.ue_regions(), dtype=np.float64).reshape(-1, 4)
    geo[:, 8:10] = np.asarray(p.scenario.ue_drift(), dtype=np.float64).reshape(-1, 2)
    return geo


def cell_array(p: EnvParams) -> np.ndarray:
    s = p.scenario
    cells = np.zeros((s.n_cells, 4))
    cells[:, 0:2] = np.asarray(s.bs_positions, dtype=np.float64)
    cells[:, 2] = s.bandwidth_hz
    cells[:, 3] = s.mec_capacity
    return cells


@njit(cache=True, inline="always")
def _draw(cdf: np.ndarray, row: int, u: float) -> float:
    """max(size, 1) by inverse CDF: the guide table (row + 4) points next to the answer."""
    k = int(cdf[row + 4, int(u * cdf.shape[1])])
    while cdf[row, k] <= u:
        k += 1
    return 1.0 if k < 1 else float(k)


@njit(cache=True, inline="always")
def _nearest_sensor(sens: np.ndarray, lo: int, hi: int, x: float, y: float) -> int:
    best = lo
    best_d2 = np.inf
    for s in range(lo, hi):
        dx = sens[s, 0] - x
        dy = sens[s, 1] - y
        d2 = dx * dx + dy * dy
        if d2 < best_d2:  # strict: ties keep the lowest id
            best_d2 = d2
            best = s
    return best


@njit(cache=True)
def needed_capacity(dq_m, bq_m, n_u):  # type: ignore[no-untyped-def]
    """Capacities the next step can need: (device uplink queues, BS compute queues).

    A device adds at most one job per step; a BS queue can receive every job now in the uplink
    queues of its kind plus one new job per device.
    """
    n_s = dq_m.shape[0] - n_u
    n_c = bq_m.shape[0] // 2
    tot_u = 0
    tot_s = 0
    max_d = 0
    for d in range(dq_m.shape[0]):
        max_d = max(max_d, dq_m[d, LEN])
        if d < n_u:
            tot_u += dq_m[d, LEN]
        else:
            tot_s += dq_m[d, LEN]
    need_b = 0
    for c in range(n_c):
        need_b = max(need_b, bq_m[c, LEN] + tot_u + n_u, bq_m[n_c + c, LEN] + tot_s + n_s)
    return max_d + 1, need_b


@njit(cache=True, inline="always")
def _send(dq, dq_m, d, budget, bq, bq_m, q, who):  # type: ignore[no-untyped-def]
    """Spend ``budget`` Mbit on device ``d``'s FIFO uplink; finished jobs join BS queue ``q``."""
    mask = dq.shape[1] - 1
    while budget > 0.0 and dq_m[d, LEN] > 0:
        h = dq_m[d, HEAD]
        rem = dq[d, h, 1]
        if rem <= budget + EPS:
            budget = max(budget - rem, 0.0)
            j = tail_slot(bq, bq_m, q)
            bq[q, j, 0] = dq[d, h, 0]
            bq[q, j, 1] = dq[d, h, 2]
            bq[q, j, 2] = who
            bq[q, j, 3] = -1.0
            dq_m[d, HEAD] = (h + 1) & mask
            dq_m[d, LEN] -= 1
        else:
            dq[d, h, 1] = rem - budget
            budget = 0.0


@njit(cache=True, inline="always")
def _compute(bq, q, h, budget, used):  # type: ignore[no-untyped-def]
    """Spend ``budget`` compute units on job ``h`` of BS queue ``q``: returns the budget left,
    ``used`` plus what was spent, and whether the job finished (else it keeps the rest)."""
    rem = bq[q, h, 1]
    if rem <= budget + EPS:
        return max(budget - rem, 0.0), used + rem, True
    bq[q, h, 1] = rem - budget
    return 0.0, used + budget, False


@njit(cache=True, inline="always")
def _switch_regime(t, prm, trf, rnd, row, col):  # type: ignore[no-untyped-def]
    """Markov-modulated traffic: at the start of step ``t >= 1`` leave the regime with
    probability ``prm[P_SWITCH]`` for one of the others, uniformly (see envs.core.traffic)."""
    n_reg = int(prm[P_N_REG])
    if t < 1 or rnd[row, col] >= prm[P_SWITCH]:
        return
    cur = int(trf[TR_REGIME])
    nxt = min(int(rnd[row, col + 1] * (n_reg - 1)), n_reg - 2)
    if nxt >= cur:
        nxt += 1
    o = P_REG_TAB + 3 * nxt
    trf[TR_REGIME] = nxt
    trf[TR_P_JOB] = prm[o]
    trf[TR_N_UE] = prm[o + 1]
    trf[TR_S_INT] = prm[o + 2]


@njit(cache=True)
def step_kernel(  # type: ignore[no-untyped-def]
    t, action, cells, prm, s_start, s_cell, cdf, geo, ue_cell, sens, trf,
    dq, dq_m, bq, bq_m, rnd, row, kpi, acc, ue_acc, obs,
):  # fmt: skip
    """Advance the system by one step (step index ``t``); see the module docstring.

    Returns 0, or ``ACTION_NOT_FINITE`` (nothing changed), or a bit mask ``GROW_*`` of queue
    families to grow (see :func:`envs.core.queues.grow`) before the next call.
    """
    n_c = cells.shape[0]
    n_u = geo.shape[0]
    n_s = sens.shape[0]
    for c in range(n_c):
        if not (np.isfinite(action[c, 0]) and np.isfinite(action[c, 1])):
            return ACTION_NOT_FINITE
    kpi[:, :] = 0.0
    tau = prm[P_TAU]
    sigma = prm[P_SIGMA]
    o_s = 3 * n_u  # offsets of the random row's segments
    o_mob = 3 * n_u + 2 * n_s

    # 0. traffic in force: regime switch (Markov-modulated traffic), active devices
    if prm[P_N_REG] > 0:
        _switch_regime(t, prm, trf, rnd, row, o_mob + 2 * n_u)
    n_act_u = min(int(trf[TR_N_UE]), n_u)
    n_act_s = int(trf[TR_N_S])

    # 1. association: every UE to its nearest BS (ties: lowest cell id); UEs share the uplink
    # while active or while their uplink queue still holds jobs
    for u in range(n_u):
        best = 0
        if n_c > 1:
            best_d2 = np.inf
            for c in range(n_c):
                dx = geo[u, 0] - cells[c, 0]
                dy = geo[u, 1] - cells[c, 1]
                d2 = dx * dx + dy * dy
                if d2 < best_d2:
                    best_d2 = d2
                    best = c
        ue_cell[u] = best
        if u < n_act_u or dq_m[u, LEN] > 0:
            kpi[best, K_NUE] += 1.0

    # 2. job generation: active UEs in id order (Bernoulli, data, compute), then sensors
    p_job = trf[TR_P_JOB]
    surge_cell = int(prm[P_SURGE_CELL]) if 0 <= prm[P_SURGE_STEP] <= t else -1
    surge_r2 = prm[P_SURGE_R2]
    for u in range(n_act_u):
        c = ue_cell[u]
        surging = c == surge_cell
        if surge_r2 > 0.0 and surge_cell >= 0 and not surging:  # regional surge
            dx = cells[c, 0] - cells[surge_cell, 0]
            dy = cells[c, 1] - cells[surge_cell, 1]
            surging = dx * dx + dy * dy <= surge_r2
        p_u = prm[P_SURGE_PROB] if surging else p_job
        if rnd[row, 3 * u] < p_u:
            i = tail_slot(dq, dq_m, u)
            dq[u, i, 0] = t
            dq[u, i, 1] = _draw(cdf, TAB_UE_DATA, rnd[row, 3 * u + 1])
            dq[u, i, 2] = _draw(cdf, TAB_UE_COMPUTE, rnd[row, 3 * u + 2])
            kpi[ue_cell[u], K_UE_GEN] += 1.0
            ue_acc[u, U_GEN] += 1.0
    if t % int(trf[TR_S_INT]) == 0:
        for c in range(n_c):  # each cell's first n_act_s sensors (all by default), in id order
            for s in range(s_start[c], min(s_start[c + 1], s_start[c] + n_act_s)):
                i = tail_slot(dq, dq_m, n_u + s)
                dq[n_u + s, i, 0] = t
                dq[n_u + s, i, 1] = _draw(cdf, TAB_S_DATA, rnd[row, o_s + 2 * s])
                dq[n_u + s, i, 2] = _draw(cdf, TAB_S_COMPUTE, rnd[row, o_s + 2 * s + 1])
                kpi[c, K_S_GEN] += 1.0

    # 3. clipped action; residual mode: the action, clipped to [-1, 1], corrects the queue-aware
    # rule (envs.core.policies.queue_aware) of the BS queues the last observation showed
    residual = prm[P_ACT_MODE] == 1.0
    for c in range(n_c):
        w_b = action[c, 0]
        w_c = action[c, 1]
        if residual:
            scale = prm[P_RES_SCALE]
            w_b = prm[P_RULE] + scale * min(max(w_b, -1.0), 1.0)
            w_c = queue_aware_share(prm[P_RULE + 1], prm[P_RULE + 2], prm[P_RULE + 3],
                                    bq_m[c, LEN], bq_m[n_c + c, LEN])  # fmt: skip
            w_c += scale * min(max(action[c, 1], -1.0), 1.0)
        kpi[c, K_WB] = min(max(w_b, 0.0), 1.0)
        kpi[c, K_WC] = min(max(w_c, 0.0), 1.0)
        kpi[c, K_CAPACITY] = cells[c, 3]

    # 4. uplink: each device spends its rate on its FIFO queue; finished jobs reach the BS
    snr_k = prm[P_SNR_K]
    snr_e = prm[P_SNR_E]
    thr = prm[P_SNR_THR]
    min_dkm = prm[P_MIN_DKM]
    for u in range(n_u):
        if dq_m[u, LEN] == 0:
            continue
        c = ue_cell[u]
        se = se_at(geo[u, 0] - cells[c, 0], geo[u, 1] - cells[c, 1], snr_k, snr_e, min_dkm, thr)
        budget = cells[c, 2] * kpi[c, K_WB] / kpi[c, K_NUE] * se / 1e6
        _send(dq, dq_m, u, budget, bq, bq_m, c, u)
    for c in range(n_c):
        n_cell_s = s_start[c + 1] - s_start[c]  # sensors sharing: active or backlogged
        if n_act_s < n_cell_s:
            n_cell_s = 0
            for s in range(s_start[c], s_start[c + 1]):
                if s - s_start[c] < n_act_s or dq_m[n_u + s, LEN] > 0:
                    n_cell_s += 1
        for s in range(s_start[c], s_start[c + 1]):
            if dq_m[n_u + s, LEN] == 0:
                continue
            budget = cells[c, 2] * (1.0 - kpi[c, K_WB]) / n_cell_s * sens[s, 2] / 1e6
            _send(dq, dq_m, n_u + s, budget, bq, bq_m, n_c + c, s)

    # 5.-7. MEC: UE queue first (sync gate, AoRI, AoSI, reward), then the sensor queue
    r_s_base = prm[P_RS]
    delta = prm[P_DELTA]
    penalty = prm[P_PENALTY]
    for c in range(n_c):
        budget = cells[c, 3] * kpi[c, K_WC]
        used = 0.0
        while budget > 0.0 and bq_m[c, LEN] > 0:
            h = bq_m[c, HEAD]
            if bq[c, h, 3] < 0.0:  # the job starts now: sync gate on its covering sensor
                u = int(bq[c, h, 2])
                hi = min(s_start[c + 1], s_start[c] + n_act_s)  # active sensors cover UEs
                s = _nearest_sensor(sens, s_start[c], hi, geo[u, 0], geo[u, 1])
                if sens[s, 3] < 0.0:
                    kpi[c, K_GATE] = 1.0
                    break  # head-of-line: the whole UE queue waits this step
                bq[c, h, 3] = sens[s, 3]
            budget, used, finished = _compute(bq, c, h, budget, used)
            if not finished:
                break
            u = int(bq[c, h, 2])
            aori = t - bq[c, h, 0]
            aosi = abs(bq[c, h, 0] - bq[c, h, 3])
            kpi[c, K_UE_DONE] += 1.0
            kpi[c, K_AORI] += aori
            kpi[c, K_AOSI] += aosi
            ia = int(aosi)
            kpi[c, K_SYNC_R] += r_s_base * (prm[N_PRM + ia] if ia < N_DELTA_POW else delta**aosi)
            ue_acc[u, U_DONE] += 1.0
            if aori > tau:
                kpi[c, K_PEN] += penalty
            else:
                kpi[c, K_ONTIME] += 1.0
                if aosi <= sigma:
                    kpi[c, K_FULFIL] += 1.0
                    ue_acc[u, U_FULFIL] += 1.0
            pop(bq, bq_m, c)
        budget = cells[c, 3] * (1.0 - kpi[c, K_WC])
        q = n_c + c
        while budget > 0.0 and bq_m[q, LEN] > 0:
            h = bq_m[q, HEAD]
            budget, used, finished = _compute(bq, q, h, budget, used)
            if not finished:
                break
            s = int(bq[q, h, 2])
            sens[s, 3] = max(sens[s, 3], bq[q, h, 0])
            kpi[c, K_S_DONE] += 1.0
            pop(bq, bq_m, q)
        kpi[c, K_CU_USED] = used

    # 8. UEs move. A moving hotspot's region drifts first (reflecting off the area's edges) and
    # carries its UEs' positions and waypoints along; then random waypoint: straight towards the
    # waypoint, land and redraw (inside the region) when close
    area = prm[P_AREA]
    for u in range(n_u):
        if geo[u, 8] == 0.0 and geo[u, 9] == 0.0:
            continue
        for j in range(2):
            lo = geo[u, 4 + j]
            x0 = lo + geo[u, 8 + j]
            if x0 < 0.0:
                x0 = -x0
                geo[u, 8 + j] = -geo[u, 8 + j]
            elif x0 + geo[u, 6 + j] > area:
                x0 = 2.0 * (area - geo[u, 6 + j]) - x0
                geo[u, 8 + j] = -geo[u, 8 + j]
            geo[u, 4 + j] = x0
            geo[u, j] += x0 - lo
            geo[u, 2 + j] += x0 - lo
    speed = prm[P_SPEED]
    for u in range(n_u):
        dx = geo[u, 2] - geo[u, 0]
        dy = geo[u, 3] - geo[u, 1]
        d = math.sqrt(dx * dx + dy * dy)
        if d <= speed:
            geo[u, 0] = geo[u, 2]
            geo[u, 1] = geo[u, 3]
            geo[u, 2] = geo[u, 4] + rnd[row, o_mob + 2 * u] * geo[u, 6]
            geo[u, 3] = geo[u, 5] + rnd[row, o_mob + 2 * u + 1] * geo[u, 7]
        else:
            geo[u, 0] += speed * dx / d
            geo[u, 1] += speed * dy / d

    # backlogs and observation after the step: the BS queues; with a 4- or 5-wide ``obs`` the
    # uplink backlogs (obs_uplink); with a 3- or 5-wide one, last, the mean age of the latest
    # update completed at the MEC over the cell's active sensors (obs_age; t + 1 for a sensor
    # without one); transformed per P_OBS_MODE
    for u in range(n_u):
        kpi[ue_cell[u], K_UP_UE] += dq_m[u, LEN]
    for s in range(n_s):
        kpi[s_cell[s], K_UP_S] += dq_m[n_u + s, LEN]
    mode = int(prm[P_OBS_MODE])
    n_obs = obs.shape[1]
    for c in range(n_c):
        kpi[c, K_Q_UE] = bq_m[c, LEN]
        kpi[c, K_Q_S] = bq_m[n_c + c, LEN]
        for j in range(n_obs):
            if j < 2:
                v = kpi[c, K_Q_UE + j]
            elif n_obs >= 4 and j < 4:
                v = kpi[c, K_UP_UE + j - 2]
            else:
                lo = s_start[c]
                hi = min(s_start[c + 1], s_start[c] + n_act_s)
                v = 0.0
                for s in range(lo, hi):
                    v += t + 1.0 if sens[s, 3] < 0.0 else t - sens[s, 3]
                v /= max(hi - lo, 1)
            if mode == 1:
                v = math.log1p(v)
            elif mode == 2:
                v = v / prm[P_OBS_SCALE]
            obs[c, j] = v
    acc += kpi

    need_d, need_b = needed_capacity(dq_m, bq_m, n_u)
    status = 0
    if need_d > dq.shape[1]:
        status |= GROW_DQ
    if need_b > bq.shape[1]:
        status |= GROW_BQ
    return status


@njit(cache=True)
def place_devices(  # type: ignore[no-untyped-def]
    cells, area, s_start, min_bs, max_bs, spacing, se_k, se_e, min_dkm, thr,
    u_ue, cand, geo, sens,
):  # fmt: skip
    """Initial UE positions/waypoints and sensor placement; returns sensors placed.

    UEs: position and first waypoint uniform in their region (``geo[:, 4:8]``: x0, y0, width,
    height; the whole area by default), from ``u_ue`` ``(U, 4)``. Sensors, cell by
    cell: candidates uniform in the area (``cand`` ``(N, 2)``, used in order), accepted when
    ``min_bs <= distance to own BS <= max_bs``, the own BS is a nearest BS, and the candidate is
    ``>= spacing`` from every sensor placed so far. Returns the number of sensors placed, which is
    less than ``S`` when the candidates ran out (the caller draws more and calls again).
    Rules: ``docs/model/cell.md#mobility`` and ``docs/model/cell.md#sensor-placement``.
    """
    for u in range(geo.shape[0]):
        for j in range(4):
            geo[u, j] = geo[u, 4 + j % 2] + u_ue[u, j] * geo[u, 6 + j % 2]
    n_c = cells.shape[0]
    k = 0
    placed = 0
    for c in range(n_c):
        for s in range(s_start[c], s_start[c + 1]):
            ok = False
            while k < cand.shape[0]:
                x = cand[k, 0] * area
                y = cand[k, 1] * area
                k += 1
                dx = x - cells[c, 0]
                dy = y - cells[c, 1]
                d = math.sqrt(dx * dx + dy * dy)
                if d < min_bs or d > max_bs:
                    continue
                nearest = True
                for c2 in range(n_c):
                    if c2 != c and math.hypot(x - cells[c2, 0], y - cells[c2, 1]) < d:
                        nearest = False
                        break
                if not nearest:
                    continue
                far = True
                for s2 in range(placed):
                    if math.hypot(x - sens[s2, 0], y - sens[s2, 1]) < spacing:
                        far = False
                        break
                if not far:
                    continue
                sens[s, 0] = x
                sens[s, 1] = y
                sens[s, 2] = se_at(dx, dy, se_k, se_e, min_dkm, thr)
                sens[s, 3] = -1.0
                ok = True
                placed += 1
                break
            if not ok:
                return placed
    return placed


guard(globals())  # numba's cache follows every simulator source (envs/core/jitcache.py)
