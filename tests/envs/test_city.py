"""A city of cells: the layout generator, moving hotspots, the regional surge, the pool at 49
cells, the batched evaluator and the native vector env on the city presets, the class search."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest

from envs.core import Simulator, make_params
from envs.core.metrics import K_NUE, K_UE_GEN
from envs.core.pool.city import CITY_PRESETS, CityLayout, city_sites, hexagon
from envs.core.pool.clearing import PoolParams
from envs.core.pool.load import cell_load, surge_cells
from envs.core.pool.rules import best_static_splits, cell_classes
from envs.core.pool.sim import PoolSimulator


def _neighbours(pos: np.ndarray, spacing: float) -> list[tuple[int, int]]:
    d = np.linalg.norm(pos[:, None] - pos[None], axis=2)
    return [(i, j) for i, j in zip(*np.nonzero(np.abs(d - spacing) < 1e-6), strict=True) if i < j]


@pytest.mark.parametrize(("name", "n"), [("city_19", 19), ("city_49", 49)])
def test_city_layouts(name: str, n: int) -> None:
    s = make_params(name).scenario
    pos = np.asarray(s.bs_positions)
    assert s.n_cells == n and len({tuple(p) for p in s.bs_positions}) == n
    assert ((pos >= 0) & (pos <= s.area_m)).all()
    # cell 0 is the centre of the square area; every cell has a neighbour 120 m away
    assert np.allclose(pos[0], s.area_m / 2)
    pairs = _neighbours(pos, 120.0)
    assert {i for p in pairs for i in p} == set(range(n))
    # a hexagonal lattice: no two BSs closer than the spacing
    d = np.linalg.norm(pos[:, None] - pos[None], axis=2) + np.eye(n) * 1e9
    assert d.min() == pytest.approx(120.0)
    # neighbours never share a capacity class; all three classes are used
    cap = s.mec_capacity
    assert all(cap[i] != cap[j] for i, j in pairs)
    assert sorted(set(cap)) == [70.0, 100.0, 130.0]
    assert s.n_ues == 5 * n + len(s.hotspot_cells) * s.hotspot_ues
    assert s.surge_step == 50 and surge_cells(make_params(name)) == list(range(7))


def test_cluster_tiling_and_ring_counts() -> None:
    assert [len(hexagon(r)) for r in range(4)] == [1, 7, 19, 37]
    # 49 = 7 clusters of 7, without gaps or overlaps; 19 x 7 = 133 likewise
    for rings, m in ((1, 1), (2, 1), (1, 2)):
        sites = city_sites(rings, m)
        assert len(set(sites)) == len(sites) == len(hexagon(rings)) * len(hexagon(m))
    assert CityLayout(rings=1, cluster_rings=1).n_cells == 49
    assert make_params("city_19", city_rings=3).scenario.n_cells == 37
    assert make_params("city_49", city_cluster_rings=0, city_rings=1).scenario.n_cells == 7


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"city_rings": -1}, "city_rings"),
        ({"city_rings": 0}, "city_rings"),
        ({"city_rings": 5, "city_cluster_rings": 1}, "city_rings"),
        ({"city_capacities": [0.0]}, "city_capacities[0]"),
        ({"city_capacities": [1.0, 2.0, 3.0, 4.0]}, "city_capacities"),
        ({"city_hotspots": 20}, "city_hotspots"),
        ({"city_hotspot_speed": -1.0}, "city_hotspot_speed"),
        ({"city_hotspot_speed": 1e4}, "city_hotspot_speed"),
        ({"city_margin_m": 10.0}, "city_margin_m"),
        ({"city_spacing_m": math.nan}, "city_spacing_m"),
        ({"city_surge_job_prob": 2.0}, "city_surge_job_prob"),
        ({"hotspot_cells": [99], "hotspot_heading_deg": [0.0]}, "hotspot_cells[0]"),
        ({"hotspot_heading_deg": [0.0]}, "hotspot_heading_deg"),
        ({"hotspot_heading_deg": [0.0, math.inf, 0.0]}, "hotspot_heading_deg[1]"),
        ({"hotspot_speed": 1e4}, "hotspot_speed"),
        ({"hotspot_ues": 1000}, "hotspot_ues"),
        ({"hotspot_ues": 0}, "hotspot_ues"),
        ({"ue_hotspot_cell": 0}, "ue_hotspot_cell"),
        ({"ue_hotspot_radius_m": 500.0}, "hotspot_cells[0]"),
        ({"surge_radius_m": -1.0}, "surge_radius_m"),
        ({"city_episode_steps": 10**9}, "city_episode_steps"),
        ({"city_ues_per_cell": 1e6}, "city_ues_per_cell"),
        ({"city_rings": True}, "city_rings"),
        ({"city_capacities": "abc"}, "city_capacities[0]"),
    ],
)
def test_bad_city_values_name_the_field(overrides: dict[str, Any], field: str) -> None:
    with pytest.raises(ValueError, match=rf"{re_escape(field)}="):
        make_params("city_19", **overrides)


def re_escape(s: str) -> str:
    import re

    return re.escape(s)


def test_city_parameters_need_a_city_and_suggest_names() -> None:
    with pytest.raises(ValueError, match="city_rings: city_\\* parameters build a city preset"):
        make_params("seven_cell", city_rings=2)
    with pytest.raises(ValueError, match="did you mean 'city_rings'"):
        make_params("city_19", city_ring=2)
    # model fields given next to the city's override what it generates
    p = make_params("city_19", city_hotspots=2, surge_step=-1, episode_steps=20)
    assert len(p.scenario.hotspot_cells) == 2 and p.scenario.surge_step == -1
    assert p.scenario.episode_steps == 20
    assert p == type(p).from_dict(p.to_dict())


def test_moving_hotspots_drift_reflect_and_carry_their_ues() -> None:
    # one hotspot in a 3-cell strip, heading +x at 40 m/step: it hits the right edge and returns
    p = make_params(
        "three_cell", area_m=300.0, bs_positions=[[60.0, 150.0], [150.0, 150.0], [240.0, 150.0]],
        hotspot_cells=[0], hotspot_heading_deg=[0.0], hotspot_ues=4, hotspot_speed=40.0,
        ue_hotspot_radius_m=50.0, n_ues=10, episode_steps=12,
    )  # fmt: skip
    sim = Simulator(p)
    sim.reset(3)
    x0 = []
    cells_seen = set()
    for _ in range(12):
        sim.step(np.full((3, 2), 0.5))
        g = sim.geo[:4]
        assert np.allclose(g[:, 4:8], g[0, 4:8])  # one square for the hotspot's UEs
        assert (g[:, 0] >= g[:, 4] - 1e-9).all() and (g[:, 0] <= g[:, 4] + g[:, 6] + 1e-9).all()
        assert (g[:, 1] >= g[:, 5] - 1e-9).all() and (g[:, 1] <= g[:, 5] + g[:, 7] + 1e-9).all()
        x0.append(float(g[0, 4]))
        cells_seen |= set(sim.ue_cell[:4].tolist())
    # start 10, room 0..200: 50, 90, 130, 170, then reflected: 200 - (210 - 200) = 190, 150, ...
    assert x0[:6] == pytest.approx([50.0, 90.0, 130.0, 170.0, 190.0, 150.0])
    assert cells_seen == {0, 1, 2}
    assert (sim.geo[4:, 8:] == 0).all() and np.allclose(sim.geo[4:, 4:8], [0, 0, 300, 300])


def test_regional_surge_reaches_the_neighbours_only() -> None:
    p = make_params("city_19", ue_job_prob=0.0, city_hotspots=0, surge_step=5, episode_steps=15)
    region = set(surge_cells(p))
    assert region == set(range(7))
    sim = Simulator(p)
    sim.reset(0)
    for t in range(15):
        sim.step(np.full((19, 2), 0.5))
        gen, nue = sim.kpi[:, K_UE_GEN], sim.kpi[:, K_NUE]
        if t < 5:
            assert gen.sum() == 0
        else:  # every UE attached to a surge cell sends a job, nobody else does
            inside = np.isin(np.arange(19), sorted(region))
            assert (gen[~inside] == 0).all()
            assert (gen[inside] == nue[inside]).all()


def test_pool_conserves_credits_at_49_cells() -> None:
    params = make_params("city_49", episode_steps=40)
    rng = np.random.default_rng(7)
    for delay, slope in ((1, 0.0), (0, 2.0)):
        pool = PoolParams(endowment=50.0, backhaul_delay=delay, scarcity_slope=slope)
        ps = PoolSimulator(params, pool)
        ps.reset(11)
        base = np.asarray(params.scenario.mec_capacity)
        matched = 0.0
        while not ps.done:
            ps.step(rng.random((49, 2)), rng.uniform(-1.2, 1.2, 49))
            assert ps.balance.sum() == pytest.approx(49 * 50.0, rel=1e-12)
            assert (ps.balance >= 0.0).all()
            assert ps.sim.cells[:, 3].sum() == pytest.approx(base.sum(), rel=1e-12)
            matched += ps.last_matched
        m = ps.metrics()
        assert matched > 0 and m["units_lent"] == pytest.approx(m["units_borrowed"])
        spent = sum(c["credits_spent"] for c in m["cells"])
        assert spent == pytest.approx(sum(c["credits_earned"] for c in m["cells"]))


def test_class_search_on_a_city_and_auto_keeps_small_scenarios() -> None:
    params = make_params("city_19", episode_steps=30)
    assert [len(c) for c in cell_classes(params)] == [7, 6, 6]
    _, v_common = best_static_splits(params, 1, grid=0.5, rounds=0)
    splits, v = best_static_splits(params, 1, grid=0.5)  # auto: classes beyond 7 cells
    assert v >= v_common and len(splits) == 19
    for cls in cell_classes(params):  # one split per class
        assert len({splits[c] for c in cls}) == 1
    small = make_params("seven_cell_hetero", episode_steps=20)
    assert best_static_splits(small, 1, grid=0.5) == best_static_splits(
        small, 1, grid=0.5, strategy="cells"
    )
    with pytest.raises(ValueError, match="strategy"):
        best_static_splits(small, 1, grid=0.5, strategy="bogus")


def test_city_load_report() -> None:
    load = cell_load(make_params("city_19", episode_steps=60), episodes=1)
    caps = [c["capacity"] for c in load["classes"]]
    assert caps == [70.0, 100.0, 130.0] and sum(c["cells"] for c in load["classes"]) == 19
    assert load["capacity_total"] == 7 * 70 + 6 * 100 + 6 * 130
    assert load["surge"]["cells"] == list(range(7))


def test_city_presets_are_registered() -> None:
    from envs.core.pool.scenarios import SCENARIOS

    assert set(CITY_PRESETS) <= set(SCENARIOS)
