"""Invariants under random configurations and actions (hypothesis), and queueing theory."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from envs.core import Simulator, make_params
from envs.core.metrics import (
    K_AORI,
    K_AOSI,
    K_CU_USED,
    K_Q_UE,
    K_S_DONE,
    K_S_GEN,
    K_UE_DONE,
    K_UE_GEN,
    K_UP_UE,
    N_KPI,
)
from tests.helpers.core import queued_sensor_jobs, queued_ue_jobs

configs = st.fixed_dictionaries(
    {
        "preset": st.sampled_from(["paper", "three_cell"]),
        "n_ues": st.integers(1, 12),
        "ue_job_prob": st.floats(0.0, 1.0),
        "ue_data_mean": st.floats(1.0, 120.0),
        "ue_compute_mean": st.floats(1.0, 20.0),
        "sensor_compute_mean": st.floats(1.0, 20.0),
        "mec_capacity": st.floats(1.0, 200.0),
        "bandwidth_hz": st.floats(1e5, 2e8),
        "sensor_interval": st.integers(1, 4),
        "episode_steps": st.integers(1, 60),
    }
)


def _sim(cfg: dict[str, Any]) -> Simulator:
    cfg = dict(cfg)
    preset = cfg.pop("preset")
    return Simulator(make_params(preset, **cfg))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(cfg=configs, seed=st.integers(0, 2**32), action_seed=st.integers(0, 2**32))
def test_conservation_and_signs_under_random_actions(
    cfg: dict[str, Any], seed: int, action_seed: int
) -> None:
    sim = _sim(cfg)
    sim.reset(seed)
    rng = np.random.default_rng(action_seed)
    capacity = np.array(sim.params.scenario.mec_capacity)
    for _ in range(sim.horizon):
        sim.step(rng.uniform(-0.2, 1.2, size=(sim.n_cells, 2)))  # out-of-range values clip
        k = sim.kpi
        assert np.all(k[:, [K_Q_UE, K_UP_UE]] >= 0)
        assert np.all(k[:, K_AORI] >= 0) and np.all(k[:, K_AOSI] >= 0)
        assert np.all(k[:, K_AORI] == np.round(k[:, K_AORI]))  # AoRI, AoSI are whole steps
        assert np.all(k[:, K_AOSI] == np.round(k[:, K_AOSI]))
        assert np.all(k[:, K_CU_USED] <= capacity + 1e-9)
        assert np.all(sim.dq_m[:, 1] >= 0) and np.all(sim.bq_m[:, 1] >= 0)
    acc = sim.acc
    # every generated job is completed or still queued somewhere (uplink or BS)
    assert acc[:, K_UE_GEN].sum() == acc[:, K_UE_DONE].sum() + queued_ue_jobs(sim)
    assert acc[:, K_S_GEN].sum() == acc[:, K_S_DONE].sum() + queued_sensor_jobs(sim)
    assert sim.ue_acc[:, 0].sum() == acc[:, K_UE_GEN].sum()
    assert sim.jobs_in_system() == {"ue": queued_ue_jobs(sim), "sensor": queued_sensor_jobs(sim)}


@settings(max_examples=30, deadline=None)
@given(cfg=configs, seed=st.integers(0, 2**32))
def test_littles_law_sample_path_identity(cfg: dict[str, Any], seed: int) -> None:
    """Sum over steps of UE jobs in the system = total time in system of all jobs (exact).

    A job generated at t and done at t + AoRI is counted after steps t .. t + AoRI - 1: AoRI
    times; a job still queued at the horizon T was counted T - t_gen times.
    """
    sim = _sim(cfg)
    sim.reset(seed)
    a = np.tile([0.4, 0.4], (sim.n_cells, 1))
    for _ in range(sim.horizon):
        sim.step(a)
    area = sim.acc[:, K_Q_UE].sum() + sim.acc[:, K_UP_UE].sum()
    censored = float((sim.horizon - sim.queued_generation_steps("ue")).sum())
    assert area == pytest.approx(sim.acc[:, K_AORI].sum() + censored)


def test_littles_law_in_a_stable_regime() -> None:
    """L = lambda W for a stable cell over a long horizon (within 3 %)."""
    sim = Simulator(make_params("paper", episode_steps=20_000, mec_capacity=200.0))
    sim.reset(7)
    a = np.array([[0.5, 0.5]])
    for _ in range(sim.horizon):
        sim.step(a)
    lam = sim.acc[0, K_UE_GEN] / sim.horizon
    w = sim.acc[0, K_AORI] / sim.acc[0, K_UE_DONE]
    big_l = (sim.acc[0, K_Q_UE] + sim.acc[0, K_UP_UE]) / sim.horizon
    assert lam == pytest.approx(0.7 * 10, rel=0.02)
    assert big_l == pytest.approx(lam * w, rel=0.03)


def test_long_horizon_overload_memory_bounded_by_contents() -> None:
    """10,000 steps with sensors starved: queues reach thousands of jobs, and the ring buffers
    hold at most 8x the raw bytes of the jobs queued (power-of-two growth, and queues of one
    family sharing the longest one's capacity)."""
    sim = Simulator(make_params("paper", episode_steps=10_000))
    sim.reset(0)
    a = np.array([[0.3, 0.95]])
    for _ in range(sim.horizon):
        sim.step(a)
    q_sensor = int(sim.bq_m[1, 1])
    assert q_sensor > 5_000
    jobs = queued_ue_jobs(sim) + queued_sensor_jobs(sim)
    queue_bytes = sim.dq.nbytes + sim.bq.nbytes
    raw_bytes_per_job = 4 * 8
    assert queue_bytes <= 8 * raw_bytes_per_job * jobs
    summary = sim.summary()
    assert summary["sensor_left_queued"] == queued_sensor_jobs(sim)
    assert sim.acc.shape == (1, N_KPI)


def test_stable_system_buffers_do_not_grow() -> None:
    """20,000 steps of a stable cell: the queues stay short and no buffer ever grows.

    (The paper's cell is not stable: its sensor uplink gets ~71 (1 - w_b) Mbit per step against
    70 offered. With 3x the bandwidth and capacity every queue is stable at a 0.5 split.)
    """
    sim = Simulator(
        make_params("paper", episode_steps=20_000, mec_capacity=300.0, bandwidth_hz=300e6)
    )
    sim.reset(3)
    initial = (sim.dq.shape, sim.bq.shape)
    a = np.array([[0.5, 0.5]])
    for _ in range(sim.horizon):
        sim.step(a)
    assert (sim.dq.shape, sim.bq.shape) == initial
