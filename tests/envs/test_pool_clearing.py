"""The credit pool: hand-computed clearings, conservation and non-negativity, backhaul delay."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from envs.core import make_params
from envs.core.pool.clearing import (
    A_ASKED,
    A_BORROWED,
    A_EARNED,
    A_LENT,
    A_OFFERED,
    A_SPENT,
    G_ASKED,
    G_ASKED_RAW,
    G_MATCHED,
    G_OFFERED,
    G_PRICE,
    N_GLOBAL,
    N_POOL_ACC,
    PoolParams,
    PoolState,
    clear,
    resolve_pool,
)
from envs.core.pool.sim import PoolSimulator


def run_clear(share, cap, balance, price=1.0, slope=0.0, max_factor=10.0):
    share = np.asarray(share, dtype=np.float64)
    cap = np.asarray(cap, dtype=np.float64)
    bal = np.asarray(balance, dtype=np.float64).copy()
    last = np.zeros((len(share), N_POOL_ACC))
    glob = np.zeros(N_GLOBAL)
    clear(share, cap, bal, price, slope, max_factor, last, glob)
    return bal, last, glob


def test_two_cells_hand_computed() -> None:
    # cell 0 offers 0.5 x 100 = 50; cell 1 asks 0.8 x 50 = 40, cut to its 30 credits / price 1
    bal, last, glob = run_clear([0.5, -0.8], [100.0, 50.0], [100.0, 30.0])
    assert last[0, A_OFFERED] == 50.0 and last[1, A_ASKED] == 30.0
    assert glob[G_ASKED_RAW] == 40.0 and glob[G_ASKED] == 30.0 and glob[G_OFFERED] == 50.0
    assert glob[G_MATCHED] == 30.0 and glob[G_PRICE] == 1.0
    assert last[0, A_LENT] == 30.0 and last[1, A_BORROWED] == 30.0
    assert last[1, A_SPENT] == 30.0 and last[0, A_EARNED] == 30.0
    assert bal.tolist() == [130.0, 0.0]


def test_two_cells_price_two() -> None:
    # price 2: the ask is cut to 30 / 2 = 15 units, which cost all 30 credits
    bal, last, glob = run_clear([0.5, -0.8], [100.0, 50.0], [100.0, 30.0], price=2.0)
    assert glob[G_MATCHED] == 15.0
    assert last[0, A_LENT] == 15.0 and last[1, A_BORROWED] == 15.0
    assert bal.tolist() == [130.0, 0.0]


def test_pro_rata_both_sides() -> None:
    # offers 40 and 20 (60), asks 30 and 15 (45): matched 45, lenders at 3/4, borrowers in full
    bal, last, glob = run_clear([0.4, 0.2, -0.3, -0.15], [100.0] * 4, [100.0] * 4)
    assert glob[G_MATCHED] == pytest.approx(45.0)
    assert last[:, A_LENT] == pytest.approx([30.0, 15.0, 0.0, 0.0])
    assert last[:, A_BORROWED] == pytest.approx([0.0, 0.0, 30.0, 15.0])
    assert bal == pytest.approx([130.0, 115.0, 70.0, 85.0])
    # more asked than offered: borrowers share the offer pro rata
    bal, last, glob = run_clear([0.1, -0.3, -0.1], [100.0] * 3, [100.0] * 3)
    assert glob[G_MATCHED] == pytest.approx(10.0)
    assert last[:, A_BORROWED] == pytest.approx([0.0, 7.5, 2.5])
    assert bal == pytest.approx([110.0, 92.5, 97.5])


def test_scarcity_price() -> None:
    # offered 10, asked 60: factor 1 + 1 x (6 - 1) = 6; asks cut to 100 / 6 each
    bal, last, glob = run_clear([0.1, -0.3, -0.3], [100.0] * 3, [100.0] * 3, slope=1.0)
    assert glob[G_PRICE] == pytest.approx(6.0)
    assert last[1:, A_ASKED] == pytest.approx([100 / 6, 100 / 6])
    assert last[1:, A_BORROWED] == pytest.approx([5.0, 5.0])
    assert bal == pytest.approx([160.0, 70.0, 70.0])
    # the factor is capped
    _, _, glob = run_clear([0.01, -1.0], [100.0, 100.0], [100.0, 100.0], slope=1.0, max_factor=3)
    assert glob[G_PRICE] == pytest.approx(3.0)
    # no scarcity when offers cover the asks
    _, _, glob = run_clear([0.5, -0.1], [100.0, 100.0], [100.0, 100.0], slope=5.0)
    assert glob[G_PRICE] == 1.0


def test_no_match_without_both_sides_or_credits() -> None:
    bal, last, glob = run_clear([0.5, 0.5], [100.0, 100.0], [10.0, 10.0])
    assert glob[G_MATCHED] == 0.0 and bal.tolist() == [10.0, 10.0]
    assert last[:, A_LENT].sum() == 0.0
    bal, last, glob = run_clear([0.5, -1.0], [100.0, 100.0], [10.0, 0.0])
    assert glob[G_MATCHED] == 0.0 and bal.tolist() == [10.0, 0.0]
    # shares outside [-1, 1] are clipped
    _, last, _ = run_clear([3.0, -7.0], [10.0, 10.0], [100.0, 100.0])
    assert last[0, A_OFFERED] == 10.0 and last[1, A_ASKED] == 10.0


@settings(max_examples=300, deadline=None)
@given(
    data=st.data(),
    n=st.integers(2, 8),
    price=st.floats(0.01, 20.0),
    slope=st.sampled_from([0.0, 0.5, 3.0]),
)
def test_clearing_conserves_credits_and_never_overdraws(
    data: st.DataObject, n: int, price: float, slope: float
) -> None:
    share = data.draw(st.lists(st.floats(-1.5, 1.5), min_size=n, max_size=n))
    cap = data.draw(st.lists(st.floats(0.1, 500.0), min_size=n, max_size=n))
    balance = data.draw(st.lists(st.floats(0.0, 1e4), min_size=n, max_size=n))
    bal, last, glob = run_clear(share, cap, balance, price, slope)
    assert math.isclose(bal.sum(), sum(balance), rel_tol=1e-12, abs_tol=1e-9)
    assert (bal >= 0.0).all()
    assert (last[:, A_SPENT] <= np.asarray(balance) + 1e-9).all()
    matched = glob[G_MATCHED]
    assert last[:, A_LENT].sum() == pytest.approx(matched, rel=1e-9, abs=1e-9)
    assert last[:, A_BORROWED].sum() == pytest.approx(matched, rel=1e-9, abs=1e-9)
    assert matched <= min(glob[G_OFFERED], glob[G_ASKED]) + 1e-9
    assert (last[:, A_LENT] <= last[:, A_OFFERED] + 1e-9).all()
    assert (last[:, A_BORROWED] <= last[:, A_ASKED] + 1e-9).all()
    # nobody both lends and borrows
    assert not ((last[:, A_LENT] > 0) & (last[:, A_BORROWED] > 0)).any()


def test_backhaul_delay_moves_capacity_next_step() -> None:
    cap = np.array([100.0, 50.0])
    for delay in (0, 1, 2):
        st_ = PoolState(PoolParams(backhaul_delay=delay), cap, horizon=10)
        cells = np.zeros((2, 4))
        seen = []
        st_.step(0, np.array([0.3, -1.0]), cells)  # lends 30
        seen.append(cells[:, 3].tolist())
        for t in range(1, 4):
            st_.step(t, np.zeros(2), cells)
            seen.append(cells[:, 3].tolist())
        moved = [[70.0, 80.0] if t == delay else [100.0, 50.0] for t in range(4)]
        assert seen == moved, (delay, seen)


def test_pool_closes_in_the_last_delay_steps() -> None:
    pool = PoolParams(backhaul_delay=2, endowment=100.0)
    st_ = PoolState(pool, np.array([100.0, 100.0]), horizon=5)
    cells = np.zeros((2, 4))
    st_.step(3, np.array([0.5, -0.5]), cells)  # units would arrive at step 5 = horizon
    assert st_.glob[G_MATCHED] == 0.0 and st_.balance.tolist() == [100.0, 100.0]
    st_.step(2, np.array([0.5, -0.5]), cells)
    assert st_.glob[G_MATCHED] == 50.0


def test_non_cooperative_ignores_shares() -> None:
    off = PoolParams(cooperative=False, endowment=100.0)
    st_ = PoolState(off, np.array([100.0, 50.0]), horizon=10)
    cells = np.zeros((2, 4))
    for t in range(3):
        st_.step(t, np.array([1.0, -1.0]), cells)
        assert cells[:, 3].tolist() == [100.0, 50.0]
    assert st_.acc.sum() == 0.0 and st_.balance.tolist() == [100.0, 100.0]


def test_non_finite_share_raises() -> None:
    st_ = PoolState(PoolParams(), np.array([100.0, 50.0]), horizon=10)
    with pytest.raises(ValueError, match="finite"):
        st_.step(0, np.array([np.nan, 0.0]), np.zeros((2, 4)))


@settings(max_examples=25, deadline=None)
@given(
    seed=st.integers(0, 2**31),
    delay=st.integers(0, 3),
    endowment=st.sampled_from([0.0, 5.0, 100.0, 1e4]),
    slope=st.sampled_from([0.0, 2.0]),
)
def test_episode_conserves_credits_and_capacity(
    seed: int, delay: int, endowment: float, slope: float
) -> None:
    params = make_params("three_cell_hetero", episode_steps=30)
    pool = PoolParams(endowment=endowment, backhaul_delay=delay, scarcity_slope=slope)
    ps = PoolSimulator(params, pool)
    ps.reset(seed)
    rng = np.random.default_rng(seed)
    base = np.asarray(params.scenario.mec_capacity)
    total = 3 * endowment
    while not ps.done:
        ps.step(rng.random((3, 2)), rng.uniform(-1.2, 1.2, 3))
        assert ps.balance.sum() == pytest.approx(total, rel=1e-12, abs=1e-9)
        assert (ps.balance >= 0.0).all()
        cap = ps.sim.cells[:, 3]
        assert (cap >= 0.0).all()
        assert cap.sum() == pytest.approx(base.sum())
    m = ps.metrics()
    assert m["units_lent"] == pytest.approx(m["units_borrowed"])
    earned = sum(c["credits_earned"] for c in m["cells"])
    spent = sum(c["credits_spent"] for c in m["cells"])
    assert earned == pytest.approx(spent) and spent == pytest.approx(m["credits_traded"])


def test_pool_params_validation_and_round_trip() -> None:
    p = PoolParams(endowment=500.0, price=2.0, backhaul_delay=2, cooperative=False)
    assert PoolParams.from_dict(p.to_dict()) == p
    assert resolve_pool(p.to_dict(), price=3.0).price == 3.0
    for bad in (
        {"endowment": -1.0}, {"price": 0.0}, {"backhaul_delay": -1}, {"backhaul_delay": 1.5},
        {"served_threshold": 1.5}, {"cooperative": 1}, {"max_price_factor": 0.5},
        {"backhaul_cost": math.inf},
    ):  # fmt: skip
        name = next(iter(bad))
        with pytest.raises(ValueError, match=name):
            PoolParams(**bad)
    with pytest.raises(ValueError, match="unknown pool parameter"):
        PoolParams.from_dict({"endowmint": 3})
