"""Batched evaluation: many policies over many episodes at once, in parallel numba threads.

All policies run on the same episode seeds (common random numbers): the random blocks of an
episode seed are drawn once and shared, which makes comparisons between policies sharper and the
paper's exhaustive static grid (11 x 11 splits x 100 episodes) cheap. Each episode runs the same
:func:`envs.core.dynamics.step_kernel` as the single env, so the results equal the single env's
step by step (tested).

Example::

    from envs.core import make_params
    from envs.core.batch import evaluate
    from envs.core.policies import static_grid
    res = evaluate(make_params("paper"), static_grid(0.1), episodes=100, seed=0)
    best = max(res.summaries(), key=lambda s: s["served_pct"])

Run ``python -m envs.core.batch [preset] [episodes]`` (default ``paper_dynamic 100``) to print,
for every traffic regime of the preset held fixed, the best static split of the 0.1 grid by mean
episode return, and what the split best over the switching episodes loses in each regime (about
25 s on 2 cores; quoted in ``docs/model/traffic.md#why-no-static-split-suits-every-regime``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numba import njit, prange
from numpy.typing import NDArray

from envs.core import dynamics as dyn
from envs.core import queues
from envs.core.jitcache import guard
from envs.core.metrics import N_KPI, N_UE_ACC, SUMMARY_KEYS, aggregate, summarize_arrays
from envs.core.params import EnvParams
from envs.core.policies import N_POLICY_PRM, Policy, act_kernel, static_grid
from envs.core.presets import make_params
from envs.core.rng import EpisodeStreams, block_width, poisson_cdf, size_cdfs, size_tables
from envs.core.sim import INITIAL_DEVICE_QUEUE, initial_bs_queue, place
from envs.core.traffic import held_regime, initial_traffic, size_means

CHUNK_BYTES = 128 * 2**20  # random blocks held at once
KERNEL_EPISODES = 2048  # policy x seed episodes per kernel call (progress granularity)

Progress = Callable[[int, int], None]


@njit(parallel=True, cache=True)
def _run(  # type: ignore[no-untyped-def]
    codes, pprm, cells0, prm, s_start, s_cell, cdf, cdf_of, init_geo, init_sens, init_trf, rnd,
    horizon, cap_b, out_acc, out_last, out_ue,
):  # fmt: skip
    n_p = codes.shape[0]
    n_e = init_geo.shape[0]
    n_c = cells0.shape[0]
    n_u = init_geo.shape[1]
    n_s = init_sens.shape[1]
    for k in prange(n_p * n_e):
        p = k // n_e
        e = k % n_e
        cells = cells0.copy()
        geo = init_geo[e].copy()
        sens = init_sens[e].copy()
        trf = init_trf[e].copy()
        cdf_e = cdf[cdf_of[e]]
        ue_cell = np.zeros(n_u, np.int64)
        dq = np.zeros((n_u + n_s, INITIAL_DEVICE_QUEUE, 3))
        dq_m = np.zeros((n_u + n_s, 2), np.int64)
        bq = np.zeros((2 * n_c, cap_b, 4))
        bq_m = np.zeros((2 * n_c, 2), np.int64)
        kpi = np.zeros((n_c, N_KPI))
        acc = np.zeros((n_c, N_KPI))
        ue_acc = np.zeros((n_u, N_UE_ACC))
        obs = np.zeros((n_c, 2), np.float32)
        action = np.zeros((n_c, 2))
        for t in range(horizon):
            act_kernel(codes[p], pprm[p], kpi, action)
            status = dyn.step_kernel(
                t, action, cells, prm, s_start, s_cell, cdf_e, geo, ue_cell, sens, trf,
                dq, dq_m, bq, bq_m, rnd[e], t, kpi, acc, ue_acc, obs,
            )  # fmt: skip
            if status > 0:
                need_d, need_b = dyn.needed_capacity(dq_m, bq_m, n_u)
                if status & dyn.GROW_DQ:
                    dq = queues.grow(dq, dq_m, need_d)
                if status & dyn.GROW_BQ:
                    bq = queues.grow(bq, bq_m, need_b)
        out_acc[p, e] = acc
        out_last[p, e] = kpi
        out_ue[p, e] = ue_acc


@dataclass
class BatchResult:
    """Per-episode accumulators of ``P`` policies x ``E`` episode seeds."""

    params: EnvParams
    policies: list[Policy]
    seeds: NDArray[np.int64]
    acc: NDArray[np.float64]  # (P, E, C, N_KPI) episode sums of the per-step KPIs
    last: NDArray[np.float64]  # (P, E, C, N_KPI) KPIs of the last step
    ue_acc: NDArray[np.float64]  # (P, E, U, N_UE_ACC) per-UE counters
    steps: int
    traffic: list[dict[str, Any]] | None = None  # per episode seed: its traffic (at reset)

    @property
    def metrics(self) -> dict[str, NDArray[np.float64]]:
        """Episode metrics, name -> ``(P, E)`` (NaN where undefined)."""
        return summarize_arrays(self.acc, self.last, self.steps)

    def summaries(self, **extra: Any) -> list[dict[str, Any]]:
        """One dict per policy: identity, ``extra`` fields, mean and ``_std`` of every metric."""
        m = self.metrics
        r = self.params.reward
        out = []
        for i, pol in enumerate(self.policies):
            row: dict[str, Any] = {
                "policy": pol.label, "kind": pol.kind, "w_b": pol.w_b, "w_c": pol.w_c,
                "delta": r.delta, "penalty": r.penalty, **extra,
                "episodes": len(self.seeds), "seed": int(self.seeds[0]),
            }  # fmt: skip
            row.update(aggregate({k: m[k][i] for k in SUMMARY_KEYS}))
            out.append(row)
        return out

    def episode_rows(self, **extra: Any) -> list[dict[str, Any]]:
        """One dict per (policy, episode): identity, ``extra`` fields and every metric."""
        m = self.metrics
        r = self.params.reward
        rows = []
        for i, pol in enumerate(self.policies):
            for j, seed in enumerate(self.seeds):
                row: dict[str, Any] = {
                    "policy": pol.label, "kind": pol.kind, "w_b": pol.w_b, "w_c": pol.w_c,
                    "delta": r.delta, "penalty": r.penalty, **extra, "seed": int(seed),
                }  # fmt: skip
                for k in SUMMARY_KEYS:
                    v = float(m[k][i, j])
                    row[k] = None if np.isnan(v) else v
                rows.append(row)
        return rows


@dataclass
class EpisodeDraw:
    """Everything random of one episode seed, drawn before it runs (as the single env does)."""

    geo: NDArray[np.float64]  # initial UE positions (see dynamics)
    sens: NDArray[np.float64]  # sensor sites
    trf: NDArray[np.float64]  # traffic state at reset (see envs.core.traffic)
    traffic: dict[str, Any]  # the episode's traffic (drawn when randomised)
    rnd: NDArray[np.float64]  # the whole horizon's uniforms


def draw_episode(
    params: EnvParams, seed: int, cells: NDArray[np.float64], s_start: NDArray[np.int64]
) -> EpisodeDraw:
    """Placement, traffic at reset and the whole horizon's uniforms of one episode seed."""
    s = params.scenario
    streams = EpisodeStreams(seed, s.n_ues, s.n_sensors_total, s.has_regimes)
    geo, sens = place(params, streams, cells, s_start)
    trf, traffic = initial_traffic(params, streams)
    return EpisodeDraw(geo, sens, trf, traffic, streams.traffic_block(s.episode_steps))


def _episode_tables(
    params: EnvParams, draws: Sequence[EpisodeDraw]
) -> tuple[NDArray[np.float64], NDArray[np.int64]]:
    """Size tables ``(T, 8, K)`` and each episode's table index: one shared table, or one per
    episode when the traffic is randomised (padded to a common width)."""
    s = params.scenario
    if not s.traffic_randomize:
        means = (s.ue_data_mean, s.ue_compute_mean, s.sensor_data_mean, s.sensor_compute_mean)
        return size_tables(means, s.job_sizes)[None], np.zeros(len(draws), np.int64)
    means_e = [size_means(d.traffic) for d in draws]
    width = max(max(len(c) for c in size_cdfs(m, s.job_sizes)) for m in means_e)
    tables = np.stack([size_tables(m, s.job_sizes, width) for m in means_e])
    return tables, np.arange(len(draws), dtype=np.int64)


def _table_bytes_bound(params: EnvParams) -> int:
    """An upper bound of one episode's size-table bytes (randomised traffic only)."""
    s = params.scenario
    if not s.traffic_randomize:
        return 0
    hi = max(s.rand_ue_data_mean[1], s.rand_ue_compute_mean[1], s.rand_sensor_data_mean[1],
             s.rand_sensor_compute_mean[1])  # fmt: skip
    return 8 * 8 * len(poisson_cdf(float(hi)))


def evaluate(
    params: EnvParams,
    policies: Sequence[Policy],
    episodes: int,
    seed: int = 0,
    progress: Progress | None = None,
) -> BatchResult:
    """Run every policy for ``episodes`` episodes with seeds ``seed .. seed+episodes-1``."""
    if not policies:
        raise ValueError("no policies to evaluate")
    if isinstance(episodes, bool) or not isinstance(episodes, int) or episodes < 1:
        raise ValueError(f"invalid episodes={episodes!r}: must be an integer >= 1")
    s = params.scenario
    n_p, n_c, n_u, n_s, horizon = (
        len(policies), s.n_cells, s.n_ues, s.n_sensors_total, s.episode_steps
    )  # fmt: skip
    cells = dyn.cell_array(params)
    prm = dyn.param_vector(params)
    s_start = np.asarray(s.sensor_cell_start, dtype=np.int64)
    s_cell = np.repeat(np.arange(n_c, dtype=np.int64), s.n_sensors)
    codes = np.array([p.code for p in policies], dtype=np.int64)
    pprm = np.array([p.prm for p in policies], dtype=np.float64).reshape(n_p, N_POLICY_PRM)
    cap_b = queues.next_pow2(initial_bs_queue(params))

    seeds = np.arange(seed, seed + episodes, dtype=np.int64)
    acc = np.zeros((n_p, episodes, n_c, N_KPI))
    last = np.zeros((n_p, episodes, n_c, N_KPI))
    ue_acc = np.zeros((n_p, episodes, n_u, N_UE_ACC))
    bytes_per_seed = 8 * horizon * block_width(n_u, n_s, s.has_regimes)
    bytes_per_seed += _table_bytes_bound(params)
    seed_chunk = int(max(1, min(episodes, CHUNK_BYTES // bytes_per_seed)))
    total = n_p * episodes
    done = 0
    traffic: list[dict[str, Any]] = []
    for e0 in range(0, episodes, seed_chunk):
        e1 = min(e0 + seed_chunk, episodes)
        drawn = [draw_episode(params, int(sd), cells, s_start) for sd in seeds[e0:e1]]
        geo, sens, trf, rnd = (
            np.stack([getattr(d, name) for d in drawn]) for name in ("geo", "sens", "trf", "rnd")
        )
        cdf, cdf_of = _episode_tables(params, drawn)
        traffic += [d.traffic for d in drawn]
        pol_chunk = max(1, KERNEL_EPISODES // (e1 - e0))
        for p0 in range(0, n_p, pol_chunk):
            p1 = min(p0 + pol_chunk, n_p)
            _run(
                codes[p0:p1], pprm[p0:p1], cells, prm, s_start, s_cell, cdf, cdf_of,
                geo, sens, trf, rnd, horizon, cap_b,
                acc[p0:p1, e0:e1], last[p0:p1, e0:e1], ue_acc[p0:p1, e0:e1],
            )  # fmt: skip
            done += (p1 - p0) * (e1 - e0)
            if progress is not None:
                progress(done, total)
    return BatchResult(params, list(policies), seeds, acc, last, ue_acc, horizon, traffic)


def evaluate_regimes(
    params: EnvParams, policies: Sequence[Policy], episodes: int, seed: int = 0
) -> list[BatchResult]:
    """:func:`evaluate` on each traffic regime of ``params`` held fixed for whole episodes
    (:func:`envs.core.traffic.held_regime`), one result per regime, on common episode seeds."""
    if not params.scenario.has_regimes:
        raise ValueError("the scenario has no traffic regimes (regime_* fields)")
    return [
        evaluate(held_regime(params, r), policies, episodes, seed)
        for r in range(params.scenario.n_regimes)
    ]


def best_static_per_regime(
    params: EnvParams, step: float = 0.1, episodes: int = 100, seed: int = 0
) -> list[dict[str, Any]]:
    """For each regime held fixed, and for ``params`` itself (regime ``"all"``): the static split
    of the ``step`` grid with the highest mean episode return, and the loss of return in that
    regime of the split that is best over the switching episodes (``regret_pct``)."""
    grid = static_grid(step)
    results = [
        *evaluate_regimes(params, grid, episodes, seed),
        evaluate(params, grid, episodes, seed),
    ]
    returns = [r.metrics["episode_return"].mean(axis=1) for r in results]
    overall = int(np.argmax(returns[-1]))
    rows = []
    for r, (res, ret) in enumerate(zip(results, returns, strict=True)):
        best = int(np.argmax(ret))
        m = res.metrics
        rows.append({
            "regime": r if r < len(results) - 1 else "all",
            "traffic": params.scenario.regime_table()[r] if r < len(results) - 1 else None,
            "best": grid[best].label,
            "episode_return": float(ret[best]),
            "sync_delay": float(np.nanmean(m["sync_delay"][best])),
            "served_pct": float(np.nanmean(m["served_pct"][best])),
            "overall_best": grid[overall].label,
            "regret_pct": float(100.0 * (1.0 - ret[overall] / ret[best])),
        })  # fmt: skip
    return rows


guard(globals())  # numba's cache follows every simulator source (envs/core/jitcache.py)


if __name__ == "__main__":
    import sys

    preset = sys.argv[1] if len(sys.argv) > 1 else "paper_dynamic"
    n_episodes = int(sys.argv[2]) if len(sys.argv) > 2 else 100
    print(f"{preset}: best static split of the 0.1 grid by mean episode return, "
          f"{n_episodes} episodes (seeds 0..{n_episodes - 1}) per regime held fixed")  # fmt: skip
    print(f"{'regime':<8}{'(p, UEs, interval)':<20}{'best':<18}{'return':>9}{'sync':>7}"
          f"{'served':>8}   regret of the overall best")  # fmt: skip
    for row in best_static_per_regime(make_params(preset), episodes=n_episodes):
        print(f"{row['regime']!s:<8}{row['traffic']!s:<20}{row['best']:<18}"
              f"{row['episode_return']:>9.0f}{row['sync_delay']:>7.2f}{row['served_pct']:>8.1f}"
              f"   {row['overall_best']} {row['regret_pct']:.1f} %")  # fmt: skip
