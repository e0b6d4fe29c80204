"""Multi-cell scenarios: presets, handover keeps every job, CIVIC metrics, modes on equal seeds."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from envs.core import Simulator, make_params
from envs.core.metrics import K_UE_DONE, K_UE_GEN
from envs.core.pool.civic import flat_row, jain
from envs.core.pool.clearing import PoolParams
from envs.core.pool.rules import (
    GreedyController,
    GreedyRule,
    StaticController,
    best_static_splits,
    evaluate_controller,
)
from envs.core.pool.scenarios import SCENARIOS, hex_positions
from envs.core.pool.sim import PoolSimulator
from envs.core.presets import PRESETS as MULTICELL_PRESETS


@pytest.mark.parametrize("name", SCENARIOS)
def test_presets_place_their_sensors(name: str) -> None:
    params = make_params(name)
    s = params.scenario
    assert s.n_cells >= 3
    sim = Simulator(params)
    for seed in range(10):
        sim.reset(seed)
        # every sensor is nearest to its own BS and inside the area
        bs = np.asarray(s.bs_positions)
        d = np.linalg.norm(sim.sens[:, None, :2] - bs[None], axis=2)
        owner = np.repeat(np.arange(s.n_cells), s.n_sensors)
        assert (d.argmin(axis=1) == owner).all()
        assert ((sim.sens[:, :2] >= 0) & (sim.sens[:, :2] <= s.area_m)).all()


def test_preset_shapes() -> None:
    hetero = MULTICELL_PRESETS["three_cell_hetero"].scenario
    assert hetero.mec_capacity == (50.0, 100.0, 100.0) and hetero.ue_hotspot_cell == 0
    surge = MULTICELL_PRESETS["surge"].scenario
    assert surge.surge_step == 50 and surge.surge_job_prob == 1.0
    seven = MULTICELL_PRESETS["seven_cell"].scenario
    assert seven.n_cells == 7 and seven.n_ues == 35
    pos = np.asarray(hex_positions(180.0, 120.0))
    assert np.allclose(np.linalg.norm(pos[1:] - pos[0], axis=1), 120.0)
    # neighbours on the ring are 120 m apart too (a hexagon)
    ring = pos[1:]
    assert np.allclose(np.linalg.norm(ring - np.roll(ring, 1, axis=0), axis=1), 120.0)


@settings(max_examples=20, deadline=None)
@given(
    seed=st.integers(0, 2**31),
    name=st.sampled_from(["three_cell", "three_cell_hetero", "surge", "seven_cell"]),
    coop=st.booleans(),
)
def test_handover_keeps_every_job(seed: int, name: str, coop: bool) -> None:
    """generated = completed + queued (uplinks and every BS) at every step, random actions."""
    params = make_params(name, episode_steps=60, surge_step=20 if name == "surge" else -1)
    ps = PoolSimulator(params, PoolParams(cooperative=coop, endowment=1000.0))
    ps.reset(seed)
    rng = np.random.default_rng(seed)
    n = params.scenario.n_cells
    moved = 0
    prev = None
    while not ps.done:
        ps.step(rng.random((n, 2)), rng.uniform(-1.0, 1.0, n))
        acc = ps.sim.acc
        queued = ps.sim.jobs_in_system()["ue"]
        assert acc[:, K_UE_GEN].sum() == acc[:, K_UE_DONE].sum() + queued
        if prev is not None:
            moved += int((ps.sim.ue_cell != prev).sum())
        prev = ps.sim.ue_cell.copy()
    m = ps.metrics()
    attributed = sum(c["ue_attributed"] for c in m["cells"])
    assert attributed == pytest.approx(m["ue_generated"])
    assert m["ue_generated"] == pytest.approx(m["ue_completed"] + m["left_queued"])
    assert sum(c["clients"] for c in m["cells"]) == params.scenario.n_ues
    for cell in m["cells"]:
        for key in ("completion_pct", "fulfillment_pct"):
            assert cell[key] is None or 0.0 <= cell[key] <= 100.0


def test_handover_happens_in_the_scenarios() -> None:
    ps = PoolSimulator(make_params("three_cell"), PoolParams(cooperative=False))
    ps.reset(0)
    cells = []
    while not ps.done:
        ps.step(np.full((3, 2), 0.5), np.zeros(3))
        cells.append(ps.sim.ue_cell.copy())
    changes = (np.diff(np.asarray(cells), axis=0) != 0).sum()
    assert changes > 0


def test_zero_shares_equal_non_cooperative() -> None:
    """Same seeds: with nothing offered or asked the pool changes nothing."""
    params = make_params("three_cell_hetero", episode_steps=50)
    splits = ((0.4, 0.6), (0.5, 0.4), (0.5, 0.3))
    on = evaluate_controller(params, PoolParams(), StaticController(splits), 3, seed=5)
    off = evaluate_controller(
        params, PoolParams(cooperative=False), StaticController(splits), 3, seed=5
    )
    for a, b in zip(on, off, strict=True):
        a, b = dict(a), dict(b)
        a.pop("cooperative"), b.pop("cooperative")
        assert a == b


def test_same_seed_same_episode_and_greedy_helps_hetero() -> None:
    params = make_params("three_cell_hetero")
    splits = ((0.5, 0.5), (0.4, 0.3), (0.3, 0.4))
    rule = GreedyRule(low=0.2, high=0.5)
    big = PoolParams(endowment=1e4)
    a = evaluate_controller(params, big, GreedyController(splits, rule), 2, seed=0)
    b = evaluate_controller(params, big, GreedyController(splits, rule), 2, seed=0)
    assert [flat_row(m) for m in a] == [flat_row(m) for m in b]
    off = evaluate_controller(
        params, big.replace(cooperative=False), StaticController(splits), 2, seed=0
    )
    for coop, non in zip(a, off, strict=True):
        assert coop["fulfillment_pct"] > non["fulfillment_pct"] + 10.0
        assert coop["units_lent"] > 0.0 and non["units_lent"] == 0.0
        # cell 0 (half MEC, hotspot) borrows, the others lend
        assert coop["cells"][0]["units_borrowed"] > 0.0
        assert coop["cells"][0]["credits_spent"] > 0.0


def test_surge_phases() -> None:
    params = make_params("surge")
    ps = PoolSimulator(params, PoolParams(cooperative=False))
    ps.reset(1)
    while not ps.done:
        ps.step(np.full((3, 2), 0.5), np.zeros(3))
    m = ps.metrics()
    before, after = m["phases"]["before"], m["phases"]["after"]
    assert before["ue_generated"] + after["ue_generated"] == m["ue_generated"]
    assert before["ue_completed"] + after["ue_completed"] == m["ue_completed"]
    # the surge cell generates more after the surge
    assert after["cells"][0]["ue_generated"] > before["cells"][0]["ue_generated"]
    assert after["fulfillment_pct"] < before["fulfillment_pct"]
    row = flat_row(m)
    assert "after_fulfillment_pct" in row and "cell2_fulfillment_pct" in row


def test_metric_definitions_on_a_small_episode() -> None:
    params = make_params("three_cell", episode_steps=40)
    pool = PoolParams(cooperative=True, endowment=1000.0, backhaul_cost=2.0, compute_cost=0.5)
    ps = PoolSimulator(params, pool)
    ps.reset(3)
    while not ps.done:
        ps.step(np.full((3, 2), 0.4), np.array([-0.2, 0.3, 0.0]))
    m = ps.metrics()
    acc = ps.sim.acc
    assert m["completion_pct"] == pytest.approx(
        100 * acc[:, K_UE_DONE].sum() / acc[:, K_UE_GEN].sum()
    )
    cost = 0.5 * m["compute_used"] + 2.0 * m["backhaul_units"]
    assert m["operational_cost"] == pytest.approx(cost)
    rates = [c["fulfillment_pct"] for c in m["cells"]]
    assert m["fairness"] == pytest.approx(sum(rates) ** 2 / (3 * sum(r * r for r in rates)))
    gen = ps.sim.ue_acc[:, 0]
    ful = ps.sim.ue_acc[:, 2]
    assert m["served_clients"] == int(((gen > 0) & (ful / np.maximum(gen, 1) >= 0.5)).sum())
    assert m["cells"][0]["units_borrowed"] > 0 and m["cells"][1]["units_lent"] > 0


def test_jain() -> None:
    assert jain([50.0, 50.0, 50.0]) == pytest.approx(1.0)
    assert jain([90.0, 0.0, 0.0]) == pytest.approx(1 / 3)
    assert jain([None, 10.0, 30.0]) == pytest.approx(40**2 / (2 * 1000))
    assert jain([0.0, 0.0]) is None and jain([]) is None


def test_greedy_rule() -> None:
    rule = GreedyRule(low=0.1, high=0.2, offer_max=0.3, ask_gain=1.0, ask_max=0.8)
    cap = np.array([100.0, 100.0, 100.0, 100.0])
    # loads (backlog / capacity): 0, 0.05, 0.15 and 0.7 with unit sizes 5 (UE) and 7 (sensor)
    q = np.array([[0.0, 0.0], [1.0, 0.0], [3.0, 0.0], [0.0, 10.0]])
    s = rule.share(q, cap, (5.0, 7.0))
    assert s == pytest.approx([0.3, 0.15, 0.0, -0.5])
    s = rule.share(np.array([[40.0, 0.0]]), np.array([100.0]), (5.0, 7.0))
    assert s == pytest.approx([-0.8])
    with pytest.raises(ValueError, match="low"):
        GreedyRule(low=0.5, high=0.2)


def test_best_static_splits_small() -> None:
    params = make_params("three_cell_hetero", episode_steps=30)
    splits, value = best_static_splits(params, episodes=1, grid=0.5, rounds=1)
    assert len(splits) == 3 and all(b in (0.0, 0.5, 1.0) for b, _ in splits)
    assert 0.0 <= value <= 100.0 and math.isfinite(value)
    with pytest.raises(ValueError, match="grid"):
        best_static_splits(params, episodes=1, grid=0.3)
