"""The simulator of one episode at a time: state arrays, seeding, stepping, summary.

:class:`Simulator` is the engine under the Gymnasium envs; it holds numpy arrays and calls the
numba kernels of :mod:`envs.core.dynamics`. It knows nothing of Gymnasium or Ray.

Example::

    sim = Simulator(make_params("paper"))
    sim.reset(seed=0)
    while not sim.done:
        sim.step(np.array([[0.3, 0.4]]))
    print(sim.summary()["sync_delay"])
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import NDArray

from envs.core import dynamics as dyn
from envs.core import queues
from envs.core.metrics import N_KPI, N_UE_ACC, summarize
from envs.core.params import EnvParams
from envs.core.radio import snr_constants
from envs.core.rng import EpisodeStreams, size_tables
from envs.core.traffic import initial_traffic, size_means, traffic_in_force

BLOCK_STEPS = 128  # uniforms are drawn for this many steps at a time
INITIAL_DEVICE_QUEUE = 16  # initial ring capacity of a device's uplink queue [jobs]
MAX_PLACEMENT_CANDIDATES = 1_000_000


def initial_bs_queue(params: EnvParams) -> int:
    """Initial ring capacity of the BS compute queues [jobs]."""
    return 4 * (params.scenario.n_ues + params.scenario.n_sensors_total + 16)


def placement_candidates_hint(n_sensors: int) -> int:
    return max(256, 64 * n_sensors)


def place(
    params: EnvParams,
    streams: EpisodeStreams,
    cells: NDArray[np.float64],
    s_start: NDArray[np.int64],
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Initial ``geo`` ``(U, 4)`` and ``sens`` ``(S, 4)`` of an episode (see ``place_devices``)."""
    s = params.scenario
    k, e = snr_constants(s)
    geo = dyn.new_geo(params)
    sens = np.zeros((s.n_sensors_total, 4))
    u_ue = streams.ue_placement()
    cand = streams.sensor_candidates(placement_candidates_hint(s.n_sensors_total))
    while True:
        placed = dyn.place_devices(
            cells, s.area_m, s_start, s.sensor_min_bs_dist, s.sensor_max_bs_dist,
            s.sensor_min_spacing, k, e, s.min_distance_m / 1000.0, s.snr_threshold,
            u_ue, cand, geo, sens,
        )  # fmt: skip
        if placed == s.n_sensors_total:
            return geo, sens
        if len(cand) >= MAX_PLACEMENT_CANDIDATES:
            raise ValueError(
                f"cannot place {s.n_sensors_total} sensors ({s.n_sensors} per cell) at "
                f"{s.sensor_min_bs_dist}-{s.sensor_max_bs_dist} m from their BS, nearest to it "
                f"and {s.sensor_min_spacing} m apart: only {placed} fit after {len(cand)} "
                "candidates; use fewer sensors (n_sensors), a smaller sensor_min_spacing or a "
                "wider ring (sensor_min_bs_dist, sensor_max_bs_dist)"
            )
        cand = np.concatenate([cand, streams.sensor_candidates(len(cand))])


class Simulator:
    """One MetaLore system (``n_cells`` cells), stepped one action at a time."""

    def __init__(self, params: EnvParams, block_steps: int = BLOCK_STEPS) -> None:
        self.params = params
        s = params.scenario
        self.n_cells = s.n_cells
        self.n_ues = s.n_ues
        self.n_sensors = s.n_sensors_total
        self.horizon = s.episode_steps
        self.block_steps = min(block_steps, self.horizon)
        self.prm = dyn.param_vector(params)
        self.base_cells = dyn.cell_array(params)
        self.cells = self.base_cells.copy()
        self.s_start = np.asarray(s.sensor_cell_start, dtype=np.int64)
        self.s_cell = np.repeat(np.arange(s.n_cells, dtype=np.int64), s.n_sensors)
        self.cdf = size_tables(
            (s.ue_data_mean, s.ue_compute_mean, s.sensor_data_mean, s.sensor_compute_mean),
            s.job_sizes,
        )
        self.trf = np.zeros(0)
        self.traffic: dict[str, Any] = {}  # the episode's traffic (drawn when randomised)
        self.kpi = np.zeros((self.n_cells, N_KPI))
        self.obs = np.zeros((self.n_cells, params.obs_width), np.float32)
        self.acc = np.zeros((self.n_cells, N_KPI))
        self.ue_acc = np.zeros((self.n_ues, N_UE_ACC))
        self.t = 0
        self.seed: int | None = None
        self._ready = False
        self._queues_allocated = False
        self.dq_m: NDArray[np.int64]
        self.bq_m: NDArray[np.int64]

    # ------------------------------------------------------------------------------------------
    def reset(self, seed: int) -> None:
        """Start an episode; everything random derives from ``seed``.

        Streams: ``docs/model/cell.md#episodes-seeds-and-random-streams``.
        """
        s = self.params.scenario
        self.streams = EpisodeStreams(seed, s.n_ues, self.n_sensors, s.has_regimes)
        self.seed = self.streams.seed
        self.cells[:] = self.base_cells
        self.geo, self.sens = place(self.params, self.streams, self.cells, self.s_start)
        self.trf, self.traffic = initial_traffic(self.params, self.streams)
        if s.traffic_randomize:
            self.cdf = size_tables(size_means(self.traffic), s.job_sizes)
        self.ue_cell = np.zeros(self.n_ues, np.int64)
        if self._queues_allocated:
            # empty queues in the buffers of the last episode (their contents are never read
            # beyond the queue lengths, and capacity never changes the dynamics): a big city's
            # buffers that grew in a congested episode are not allocated again every episode
            self.dq_m[:] = 0
            self.bq_m[:] = 0
        else:
            self.dq, self.dq_m = queues.alloc(self.n_ues + self.n_sensors, INITIAL_DEVICE_QUEUE, 3)
            self.bq, self.bq_m = queues.alloc(2 * self.n_cells, initial_bs_queue(self.params), 4)
            self._queues_allocated = True
        self.kpi[:] = 0.0
        self.obs[:] = 0.0
        self.acc[:] = 0.0
        self.ue_acc[:] = 0.0
        self.t = 0
        self._ready = True

    @property
    def done(self) -> bool:
        return self.t >= self.horizon

    def step(self, action: NDArray[np.float64]) -> None:
        """One step with ``action`` ``(n_cells, 2)`` float64 (clipped to [0, 1] in the kernel).

        Raises ``ValueError`` for NaN or infinite entries, ``RuntimeError`` before ``reset``.
        Stepping past the horizon continues the dynamics (the env truncates at the horizon).
        """
        if not self._ready:
            raise RuntimeError("call reset() before step()")
        row = self.t % self.block_steps
        if row == 0:
            self.rnd = self.streams.traffic_block(self.block_steps)
        status = dyn.step_kernel(
            self.t, action, self.cells, self.prm, self.s_start, self.s_cell, self.cdf, self.geo,
            self.ue_cell, self.sens, self.trf, self.dq, self.dq_m, self.bq, self.bq_m, self.rnd,
            row, self.kpi, self.acc, self.ue_acc, self.obs,
        )  # fmt: skip
        if status != 0:
            if status == dyn.ACTION_NOT_FINITE:
                raise ValueError(f"action must be finite, got {action.tolist()}")
            self._grow(status)
        self.t += 1

    def _grow(self, status: int) -> None:
        need_d, need_b = dyn.needed_capacity(self.dq_m, self.bq_m, self.n_ues)
        if status & dyn.GROW_DQ:
            self.dq = queues.grow(self.dq, self.dq_m, need_d)
        if status & dyn.GROW_BQ:
            self.bq = queues.grow(self.bq, self.bq_m, need_b)

    def traffic_now(self) -> dict[str, Any]:
        """The traffic in force during the last step (before any step: the first one's):
        regime (-1 without regimes), UE job probability, active UEs and sensors, interval."""
        return traffic_in_force(self.trf)

    # ------------------------------------------------------------------------------------------
    def queue_lengths(self) -> NDArray[np.float64]:
        """Raw observation ``(n_cells, 2)``: BS UE and sensor compute queue lengths [jobs]."""
        return self.kpi[:, :2]

    def jobs_in_system(self) -> dict[str, int]:
        """UE and sensor jobs currently queued anywhere (uplink or BS)."""
        u, c = self.n_ues, self.n_cells
        return {
            "ue": int(self.dq_m[:u, 1].sum() + self.bq_m[:c, 1].sum()),
            "sensor": int(self.dq_m[u:, 1].sum() + self.bq_m[c:, 1].sum()),
        }

    def queued_generation_steps(self, kind: str = "ue") -> NDArray[np.float64]:
        """Generation steps of every queued UE (or sensor) job, uplink and BS queues."""
        u, c = self.n_ues, self.n_cells
        ue = kind == "ue"
        parts = [np.zeros(0)]
        for buf, meta, rows in (
            (self.dq, self.dq_m, range(0, u) if ue else range(u, u + self.n_sensors)),
            (self.bq, self.bq_m, range(0, c) if ue else range(c, 2 * c)),
        ):
            mask = buf.shape[1] - 1
            for q in rows:
                h, n = int(meta[q, 0]), int(meta[q, 1])
                parts.append(buf[q, (h + np.arange(n)) & mask, 0])
        return np.concatenate(parts)

    def uplink_head(self, device: int) -> tuple[float, float] | None:
        """(t_gen, data left) of device ``device``'s head job (UEs first, then sensors)."""
        if self.dq_m[device, 1] == 0:
            return None
        h = self.dq_m[device, 0]
        return float(self.dq[device, h, 0]), float(self.dq[device, h, 1])

    def summary(self) -> dict[str, Any]:
        """Episode metrics so far (see :mod:`envs.core.metrics`), system-wide and per cell."""
        steps = max(self.t, 1)
        out = summarize(self.acc, self.kpi, steps)
        if self.n_cells > 1:
            out["cells"] = [
                summarize(self.acc[c : c + 1], self.kpi[c : c + 1], steps)
                for c in range(self.n_cells)
            ]
        out["seed"] = self.seed
        return out
