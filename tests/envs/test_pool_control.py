"""Control options of the pool environments: trader observation, residual / dead-zone actions,
reward scale and shaping, endowment curriculum, permuted cells (no Ray)."""

from __future__ import annotations

import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

from envs.core.pool.actions import ActionMap, action_map_from
from envs.core.pool.clearing import PoolParams
from envs.core.pool.rules import GreedyController, GreedyRule, evaluate_controller
from envs.core.presets import make_params
from envs.pool.control import ControlOptions
from envs.pool.env import MetaLorePoolEnv
from envs.pool.multiagent import MultiCellPoolEnv
from envs.pool.obs import N_TRADER_BASE, TRADER_FEATURES

SPLITS = ((0.6, 0.5), (0.4, 0.4), (0.5, 0.5))
RESIDUAL = {"obs": "trader", "action_mode": "residual", "base_splits": SPLITS}


def _greedy_metrics(seed: int, steps: int = 40, endowment: float = 1000.0) -> dict:
    params = make_params("three_cell_hetero", episode_steps=steps)
    ctrl = GreedyController(SPLITS, GreedyRule())
    return evaluate_controller(params, PoolParams(endowment=endowment), ctrl, 1, seed)[0]


def _central_episode(env: MetaLorePoolEnv, seed: int, action: np.ndarray) -> dict:
    env.reset(seed=seed)
    while True:
        _, _, _, trunc, info = env.step(action)
        if trunc:
            return info["civic"]


def test_residual_at_zero_output_is_the_greedy_rule() -> None:
    env = MetaLorePoolEnv(
        "three_cell_hetero", episode_steps=40, endowment=1000.0, reward="fulfilled", **RESIDUAL
    )
    assert env.action_space.shape == (3, 3) and not np.isfinite(env.action_space.low).any()
    for seed in (0, 7):
        got = _central_episode(env, seed, np.zeros((3, 3)))
        want = _greedy_metrics(seed)
        for key in ("fulfillment_pct", "units_borrowed", "operational_cost", "served_clients"):
            assert got[key] == pytest.approx(want[key]), key
        assert got["units_borrowed"] > 0


def test_residual_per_cell_env_at_zero_is_greedy_and_conserves_credits() -> None:
    env = MultiCellPoolEnv(
        "three_cell_hetero", episode_steps=40, endowment=1000.0, reward="fulfilled", **RESIDUAL
    )
    obs, _ = env.reset(seed=3)
    assert obs["cell_0"].shape == (N_TRADER_BASE + 3,)
    assert obs["cell_1"][N_TRADER_BASE:].tolist() == [0.0, 1.0, 0.0]  # identity one-hot
    zero = {a: np.zeros(3, np.float32) for a in env.possible_agents}
    while env.agents:
        _, _, _, _, infos = env.step(zero)
    assert infos["cell_0"]["civic"]["fulfillment_pct"] == pytest.approx(
        _greedy_metrics(3)["fulfillment_pct"]
    )
    # large random corrections: still valid actions, credits conserved
    rng = np.random.default_rng(0)
    env.reset(seed=4)
    while env.agents:
        env.step({a: rng.normal(0, 5, 3).astype(np.float32) for a in env.possible_agents})
        assert env.ps.balance.sum() == pytest.approx(3000.0)
        assert (env.ps.balance >= -1e-9).all()


def test_action_map_modes() -> None:
    env = MetaLorePoolEnv("three_cell", endowment=100.0)
    env.reset(seed=0)
    ps = env.ps
    raw = np.array([[0.2, 0.9, 0.1], [1.4, -0.2, -0.5], [0.5, 0.5, 1.0]])
    split, share = ActionMap("direct").apply(raw, ps)
    assert split.tolist() == raw[:, :2].tolist() and share.tolist() == raw[:, 2].tolist()
    _, share = ActionMap("deadzone", deadzone=0.25).apply(raw, ps)
    assert share == pytest.approx([0.0, -1 / 3, 1.0])
    amap = ActionMap("residual", scale=0.5)
    split, share = amap.apply(raw, ps)
    assert split == pytest.approx(np.clip(0.5 + 0.5 * raw[:, :2], 0, 1))
    assert share == pytest.approx(np.clip(amap.greedy_share(ps) + 0.5 * raw[:, 2], -1, 1))
    with pytest.raises(ValueError, match="finite"):
        amap.apply(np.full((3, 3), np.nan), ps)
    with pytest.raises(ValueError, match="shape"):
        amap.apply(np.zeros((2, 3)), ps)
    with pytest.raises(ValueError, match="action_mode"):
        ActionMap("sideways")
    with pytest.raises(ValueError, match="base_splits"):
        ActionMap("residual", base_splits=((0.5, 1.5),))
    assert action_map_from(**{"action_mode": "residual", "base_splits": [[0.1, 0.2]]}).base_splits


def test_trader_observation() -> None:
    env = MetaLorePoolEnv("three_cell_hetero", endowment=1000.0, obs="trader", episode_steps=30)
    check_env(env, skip_render_check=True)
    obs, _ = env.reset(seed=1)
    f = {name: i for i, name in enumerate(TRADER_FEATURES)}
    assert obs.shape == (3, N_TRADER_BASE)
    assert obs[:, f["capacity_rel"]] == pytest.approx([0.6, 1.2, 1.2])
    assert obs[:, f["time"]].tolist() == [0.0] * 3
    assert obs[0, f["greedy_share"]] == pytest.approx(0.3)  # idle: offer offer_max
    act = np.array([[0.5, 0.5, -1.0], [0.5, 0.5, 0.3], [0.5, 0.5, 0.3]], np.float32)
    for t in range(1, 31):
        obs, _, _, _, _ = env.step(act)
        assert np.isfinite(obs).all()
        assert obs[0, f["time"]] == pytest.approx(t / 30)
        if t == 20:  # the pool is open: cell 0 borrows, the others lend
            assert obs[0, f["net"]] < 0 < obs[1, f["net"]]
            assert obs[0, f["matched"]] > 0
    assert obs[0, f["ue_load"]] + obs[0, f["sensor_load"]] > obs[1, f["ue_load"]]


def test_permuted_cells_present_rows_and_route_actions_consistently() -> None:
    plain = MetaLorePoolEnv("three_cell_hetero", endowment=1000.0, episode_steps=40, **RESIDUAL)
    perm = MetaLorePoolEnv(
        "three_cell_hetero", endowment=1000.0, episode_steps=40, permute_cells=True, **RESIDUAL
    )
    orders = set()
    for seed in range(6):
        a, _ = plain.reset(seed=seed)
        b, _ = perm.reset(seed=seed)
        order = tuple(perm.control.perm.tolist())
        orders.add(order)
        assert b == pytest.approx(a[list(order)])
        # a correction aimed at the loaded cell reaches it wherever it is presented
        act = np.zeros((3, 3))
        act[order.index(0), 2] = -3.0
        want = _central_episode(plain, seed, np.array([[0, 0, -3.0], [0, 0, 0], [0, 0, 0]]))
        got = _central_episode(perm, seed, act)
        assert got["units_borrowed"] == pytest.approx(want["units_borrowed"])
    assert len(orders) > 1


def test_endowment_curriculum_reward_scale_and_shaping() -> None:
    env = MetaLorePoolEnv(
        "three_cell_hetero", episode_steps=25, endowment_range=(100.0, 10_000.0), obs="trader"
    )
    seen = []
    for seed in range(5):
        env.reset(seed=seed)
        b = env.ps.balance.copy()
        assert (b == b[0]).all() and 100.0 <= b[0] <= 10_000.0
        seen.append(b[0])
        env.reset(seed=seed)
        assert env.ps.balance[0] == b[0]  # a function of the episode seed
    assert len(set(seen)) == 5
    act = np.array([[0.5, 0.5, -0.5], [0.5, 0.5, 0.3], [0.5, 0.5, 0.3]])
    base = MetaLorePoolEnv("three_cell_hetero", episode_steps=25, reward="fulfilled")
    scaled = MetaLorePoolEnv(
        "three_cell_hetero", episode_steps=25, reward="fulfilled", reward_scale=0.1,
        shaping=2.0, shaping_gamma=1.0,
    )  # fmt: skip
    base.reset(seed=2)
    scaled.reset(seed=2)
    r0 = r1 = 0.0
    for _ in range(25):
        r0 += base.step(act)[1]
        r1 += scaled.step(act)[1]
    # with gamma = 1 the shaping terms telescope to Phi(last) - Phi(first) = Phi(last)
    ps = scaled.ps
    backlog = ps.sim.kpi[:, 0] * ps.params.scenario.ue_compute_mean / ps.pool.cap
    phi_last = -2.0 * float(backlog.sum())
    assert r1 == pytest.approx(0.1 * r0 + phi_last)


def test_control_option_errors() -> None:
    with pytest.raises(ValueError, match="obs"):
        MetaLorePoolEnv("three_cell", obs="everything")
    with pytest.raises(ValueError, match="reward_scale"):
        MetaLorePoolEnv("three_cell", reward_scale=0.0)
    with pytest.raises(ValueError, match="endowment_range"):
        MetaLorePoolEnv("three_cell", endowment_range=(10.0, 1.0))
    with pytest.raises(ValueError, match="permute_cells"):
        MultiCellPoolEnv("three_cell", permute_cells=True)
    with pytest.raises(ValueError, match="unknown control"):
        ControlOptions.from_values({"obz": "trader"})
    opts = ControlOptions.from_values({"base_splits": [[0.1, 0.2]] * 3, "endowment_range": []})
    assert ControlOptions.from_values(opts.to_dict()) == opts
