"""Hand-computed tiny scenarios: exact queue lengths, AoRI, AoSI and reward, step by step.

Scenario (tests.helpers.core.tiny): 1 UE and 1 sensor, a UE job and a sensor update every step, UE
compute 2 units, sensor compute 3 units, MEC capacity 4, instant uplink. With w_c = 0.5 both
queues get 2 units per step. Worked by hand from spec section 4:

t  arrivals  UE queue (MEC)                          sensor queue (MEC)          done (AoRI, AoSI)
0  j0, s0    j0 waits: sensor has no update (gate)   s0: 3 -> 1                  -
1  j1, s1    gate holds again                         s0 done (last=0); s1 3->2   -
2  j2, s2    j0 starts, synced to s0, done            s1 done (last=1)            j0 (2, 0)
3  j3, s3    j1 starts, synced to s1, done            s2: 3 -> 1                  j1 (2, 0)
4  j4, s4    j2 starts, synced to s1, done            s2 done (last=2), s3 3->2   j2 (2, 1)
5  j5, s5    j3 synced to s2, done                    s3 done (last=3), s4 3->2   j3 (2, 1)
Queue lengths after each step (UE, sensor): (1,1) (2,1) (2,1) (2,2) (2,2) (2,2).
"""

from __future__ import annotations

import numpy as np
import pytest

from envs.core.metrics import K_AORI, K_AOSI, K_GATE, K_Q_S, K_Q_UE, K_UE_DONE
from tests.helpers.core import tiny

EXPECTED = [
    # (q_ue, q_s, done, sum AoRI, sum AoSI, gate held)
    (1, 1, 0, 0, 0, 1),
    (2, 1, 0, 0, 0, 1),
    (2, 1, 1, 2, 0, 0),
    (2, 2, 1, 2, 0, 0),
    (2, 2, 1, 2, 1, 0),
    (2, 2, 1, 2, 1, 0),
]


@pytest.mark.parametrize("delta,penalty,tau", [(0.9, 0.0, 2), (0.5, -1.0, 1), (0.8, -5.0, 2)])
def test_tiny_scenario_step_by_step(delta: float, penalty: float, tau: int) -> None:
    sim = tiny(delta=delta, penalty=penalty, delay_threshold=tau)
    sim.reset(seed=3)
    action = np.array([[0.5, 0.5]])
    total = 0.0
    for t, (q_ue, q_s, done, aori, aosi, gate) in enumerate(EXPECTED):
        sim.step(action)
        k = sim.kpi[0]
        assert (k[K_Q_UE], k[K_Q_S], k[K_UE_DONE]) == (q_ue, q_s, done), f"step {t}"
        assert (k[K_AORI], k[K_AOSI], k[K_GATE]) == (aori, aosi, gate), f"step {t}"
        expected_reward = 0.0
        if done:
            expected_reward = 10.0 * delta**aosi + (penalty if aori > tau else 0.0)
        reward = k[6] + k[7]
        assert reward == pytest.approx(expected_reward, abs=1e-12), f"step {t}"
        total += expected_reward
    summary = sim.summary()
    assert summary["episode_return"] == pytest.approx(total)
    assert summary["ue_completed"] == 4 and summary["ue_generated"] == 6
    assert summary["e2e_delay"] == 2.0 and summary["sync_delay"] == 0.5
    assert summary["served_pct"] == pytest.approx(100 * 4 / 6)


def test_all_compute_to_ues_starves_the_sync_gate() -> None:
    """w_c = 1: sensors never complete, so no UE job can ever start (served 0 %)."""
    sim = tiny()
    sim.reset(seed=0)
    for _ in range(10):
        sim.step(np.array([[0.5, 1.0]]))
    assert sim.summary()["ue_completed"] == 0
    assert sim.kpi[0, K_Q_UE] == 10


def test_zero_bandwidth_share_sends_nothing() -> None:
    sim = tiny()
    sim.reset(seed=0)
    sim.step(np.array([[0.0, 0.5]]))
    assert sim.kpi[0, K_Q_UE] == 0 and sim.uplink_head(0) == (0.0, 1.0)
    assert sim.kpi[0, K_Q_S] == 1  # the sensor got all the bandwidth


def test_partial_uplink_carries_over_exactly() -> None:
    """A job larger than one step's rate leaves exactly data - rate for the next step."""
    from envs.core.radio import spectral_efficiency

    sim = tiny(bandwidth_hz=1e6, ue_data_mean=50)  # ~1 MHz: a few Mbit per step
    sim.reset(seed=5)
    bs = np.array(sim.params.scenario.bs_positions[0])
    d = float(np.hypot(*(sim.geo[0, :2] - bs)))
    rate = 1e6 * 0.5 * float(spectral_efficiency(d, sim.params.scenario)) / 1e6
    assert rate < 50
    sim.step(np.array([[0.5, 0.5]]))
    t_gen, left = sim.uplink_head(0)
    assert t_gen == 0 and left == pytest.approx(50 - rate, rel=1e-12)


def test_sensor_update_completing_at_t_serves_only_later_jobs() -> None:
    """Spec 5: the UE queue runs first, so an update completed at t syncs jobs from t+1 on."""
    sim = tiny(sensor_compute_mean=2)
    sim.reset(seed=1)
    sim.step(np.array([[0.5, 0.5]]))  # t=0: s0 completes at t=0, j0 was held by the gate
    assert sim.kpi[0, K_GATE] == 1 and sim.sens[0, 3] == 0
    sim.step(np.array([[0.5, 0.5]]))  # t=1: j0 starts, synced to s0
    assert sim.kpi[0, K_UE_DONE] == 1 and sim.kpi[0, K_AORI] == 1 and sim.kpi[0, K_AOSI] == 0
