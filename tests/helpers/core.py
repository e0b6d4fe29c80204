"""Shared helpers for the simulator tests."""

from __future__ import annotations

from typing import Any

import numpy as np

from envs.core import Simulator, make_params
from envs.core.metrics import K_PEN, K_SYNC_R, K_UE_DONE


def tiny(**overrides: Any) -> Simulator:
    """1 UE, 1 sensor, deterministic arrivals and sizes, instant uplink (huge bandwidth)."""
    base: dict[str, Any] = {
        "n_ues": 1,
        "n_sensors": 1,
        "ue_job_prob": 1.0,
        "job_sizes": "fixed",
        "ue_data_mean": 1,
        "sensor_data_mean": 1,
        "ue_compute_mean": 2,
        "sensor_compute_mean": 3,
        "bandwidth_hz": 1e12,
        "mec_capacity": 4.0,
        "episode_steps": 10,
    }
    base.update(overrides)
    return Simulator(make_params("paper", **base))


def rollout(sim: Simulator, seed: int, actions: np.ndarray) -> list[tuple[float, ...]]:
    """Per step: (queue lengths..., completed, reward) as plain floats."""
    sim.reset(seed)
    trace = []
    for a in actions:
        sim.step(np.ascontiguousarray(a.reshape(sim.n_cells, 2)))
        k = sim.kpi
        trace.append((*k[:, :2].ravel().tolist(), float(k[:, K_UE_DONE].sum()),
                      float(k[:, K_SYNC_R].sum() + k[:, K_PEN].sum())))  # fmt: skip
    return trace


def queued_ue_jobs(sim: Simulator) -> int:
    return len(sim.queued_generation_steps("ue"))


def queued_sensor_jobs(sim: Simulator) -> int:
    return len(sim.queued_generation_steps("sensor"))
