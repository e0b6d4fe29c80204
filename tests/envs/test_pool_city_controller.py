"""The pieces of a pool controller that runs on any layout: the adjacent neighbourhood, the mean
team reward and a mix of layouts behind one per-cell env."""

from __future__ import annotations

import numpy as np
import pytest

from envs.core.presets import make_params
from envs.pool.multiagent import MixedCellPoolEnv, MultiCellPoolEnv, make_pool_env
from envs.pool.obs import CITY_FEATURES, N_TRADER_BASE, TRADER_FEATURES, adjacency

F = {name: i for i, name in enumerate(TRADER_FEATURES)}
CITY = {name: N_TRADER_BASE + i for i, name in enumerate(CITY_FEATURES)}
LOCAL = {"obs": "trader", "identity": False, "neighbourhood": "adjacent", "endowment": 1000.0}


def test_adjacency_is_the_first_ring_of_a_hexagonal_layout() -> None:
    adj = adjacency(make_params("city_19").scenario.bs_positions)
    assert adj.shape == (19, 19)
    assert (adj == adj.T).all() and not adj.diagonal().any()
    degree = adj.sum(axis=1)
    assert degree.max() == 6 and degree.min() == 3  # interior cells and corners of ring 2
    assert np.bincount(degree).tolist() == [0, 0, 0, 6, 6, 0, 7]  # corners, edges, the rest
    seven = adjacency(make_params("seven_cell_hetero").scenario.bs_positions)
    assert seven.sum(axis=1).tolist() == [6, 3, 3, 3, 3, 3, 3]


def test_all_neighbourhood_keeps_the_original_features() -> None:
    base = MultiCellPoolEnv("seven_cell_hetero", obs="trader", identity=False, endowment=1000.0)
    same = MultiCellPoolEnv("seven_cell_hetero", obs="trader", identity=False, endowment=1000.0,
                            neighbourhood="all")  # fmt: skip
    local = MultiCellPoolEnv("seven_cell_hetero", **LOCAL)
    assert local.own_features == N_TRADER_BASE + len(CITY_FEATURES) == base.own_features + 2
    act = {a: np.array([0.5, 0.5, 0.2], np.float32) for a in base.possible_agents}
    for env in (base, same, local):
        env.reset(seed=3)
    for _ in range(30):
        ob, _, _, _, _ = base.step(act)
        os_, _, _, _, _ = same.step(act)
        ol, _, _, _, _ = local.step(act)
    for a in base.possible_agents:
        np.testing.assert_array_equal(ob[a], os_[a])
        np.testing.assert_array_equal(ob[a][: N_TRADER_BASE - 5], ol[a][: N_TRADER_BASE - 5])
        # the city-wide summary is what "all" called the neighbours
        assert ol[a][CITY["city_load"]] == pytest.approx(ob[a][F["nb_load"]])
        assert ol[a][CITY["city_runway"]] == pytest.approx(ob[a][F["nb_runway"]])
    # an outer cell of the hexagon sees 3 neighbours, not the 6 others: its nb_load_max can only
    # be smaller or equal
    assert ol["cell_1"][F["nb_load_max"]] <= ob["cell_1"][F["nb_load_max"]] + 1e-6
    # the centre is adjacent to every cell: both views agree there
    assert ol["cell_0"][F["nb_load"]] == pytest.approx(ob["cell_0"][F["nb_load"]])


def test_mean_scope_is_the_team_reward_over_the_cells() -> None:
    team = MultiCellPoolEnv("seven_cell_hetero", scope="team", reward="fulfilled", endowment=1e3)
    mean = MultiCellPoolEnv("seven_cell_hetero", scope="mean", reward="fulfilled", endowment=1e3)
    act = {a: np.array([0.5, 0.5, 0.0], np.float32) for a in team.possible_agents}
    team.reset(seed=0)
    mean.reset(seed=0)
    total = 0.0
    for _ in range(20):
        _, rt, _, _, _ = team.step(act)
        _, rm, _, _, _ = mean.step(act)
        assert list(rm.values()) == pytest.approx([rt["cell_0"] / 7] * 7)
        total += rt["cell_0"]
    assert total > 0
    with pytest.raises(ValueError, match="scope"):
        MultiCellPoolEnv("three_cell", scope="everyone")


def test_a_mix_plays_every_layout_with_one_set_of_spaces() -> None:
    env = make_pool_env(
        mix=["three_cell_hetero", "city_19"], episode_steps=5, action_mode="residual", **LOCAL
    )
    assert isinstance(env, MixedCellPoolEnv)
    assert env.possible_agents == [f"cell_{i}" for i in range(19)]
    seen = set()
    layouts = []
    for e in range(12):
        obs, infos = env.reset(seed=100 if e == 0 else None)
        assert sorted(obs) == sorted(env.agents) and len(obs) == env.n_cells
        assert {i["layout"] for i in infos.values()} == {env.layout}
        layouts.append(env.layout)
        while env.agents:
            obs, _, _, _, info = env.step({a: np.zeros(3, np.float32) for a in env.agents})
            for a, o in obs.items():
                assert env.observation_space(a).contains(o)
        assert {i["layout"] for i in info.values()} == {env.layout}
        assert "civic" in info["cell_0"]
        seen.add(env.n_cells)
    assert seen == {3, 19}
    again = make_pool_env(mix="three_cell_hetero,city_19", episode_steps=5, action_mode="residual",
                          **LOCAL)  # fmt: skip
    replay = []
    for e in range(12):
        again.reset(seed=100 if e == 0 else None)
        replay.append(again.layout)
        while again.agents:
            again.step({a: np.zeros(3, np.float32) for a in again.agents})
    assert replay == layouts  # a function of the first seed


def test_a_mix_refuses_what_differs_between_layouts() -> None:
    with pytest.raises(ValueError, match="identity=false"):
        make_pool_env(mix=["three_cell_hetero", "city_19"], obs="trader", identity=True)
    with pytest.raises(ValueError, match="critic=local"):
        make_pool_env(mix=["three_cell_hetero", "city_19"], critic="central", **LOCAL)
    with pytest.raises(ValueError, match="neighbourhood"):
        MultiCellPoolEnv("three_cell", obs="trader", neighbourhood="street")
    with pytest.raises(ValueError, match="preset"):
        make_pool_env(mix=["three_cell_hetero", "metropolis"], **LOCAL)


def test_greedy_base_splits_follow_the_layout_played() -> None:
    from envs.core.pool.clearing import PoolParams
    from envs.core.pool.rules import (
        GreedyController,
        GreedyRule,
        evaluate_controller,
        greedy_splits_for,
    )

    kw = {**LOCAL, "action_mode": "residual", "base_splits": "greedy", "episode_steps": 12}
    env = make_pool_env(mix=["three_cell", "three_cell_hetero"], **kw)
    for layout in env.envs:
        want = greedy_splits_for(layout.ps.params, layout.ps.pool_params)
        assert [list(p) for p in layout.control_options.base_splits] == want
        assert len(want) == layout.n_cells
    # at zero correction every layout of the mix plays the greedy rule with its own splits
    played: dict[str, float] = {}
    for e in range(6):
        env.reset(seed=50 if e == 0 else None)
        seed = env.env.episode_seed
        while env.agents:
            _, _, _, _, info = env.step({a: np.zeros(3, np.float32) for a in env.agents})
        layout = env.env
        greedy = GreedyController(layout.control_options.base_splits, GreedyRule())
        want_m = evaluate_controller(layout.ps.params, PoolParams(endowment=1000.0), greedy, 1,
                                     seed)[0]  # fmt: skip
        assert info["cell_0"]["civic"]["fulfillment_pct"] == pytest.approx(
            want_m["fulfillment_pct"]
        )
        played[env.layout] = want_m["fulfillment_pct"]
    assert set(played) == {"three_cell", "three_cell_hetero"}
    with pytest.raises(ValueError, match="fixed base_splits"):
        make_pool_env(mix=["three_cell"], **{**kw, "base_splits": [[0.5, 0.5]] * 3})


def test_summary_critic_state_has_one_size_for_every_layout() -> None:
    from envs.pool.obs import with_city_summary

    feats = np.arange(12, dtype=np.float32).reshape(3, 4)
    got = with_city_summary(feats, 2)
    assert got.shape == (3, 4 + 4)
    np.testing.assert_array_equal(got[:, :4], feats)
    assert got[1, 4:].tolist() == [4.0, 5.0, 8.0, 9.0]  # mean, then max, of columns 0 and 1
    sizes = set()
    for preset in ("three_cell_hetero", "city_19"):
        env = MultiCellPoolEnv(preset, critic="summary", **LOCAL)
        obs, _ = env.reset(seed=0)
        sizes.add(obs["cell_0"].shape)
        assert env.own_features == N_TRADER_BASE + len(CITY_FEATURES)
    assert sizes == {(3 * (N_TRADER_BASE + len(CITY_FEATURES)),)}
    mixed = make_pool_env(mix=["three_cell_hetero", "city_19"], critic="summary", **LOCAL)
    assert mixed.observation_space("cell_0").shape == sizes.pop()


def test_control_options_take_greedy_base_splits_and_resolve_them_per_layout() -> None:
    from envs.core.pool.rules import greedy_splits_for
    from envs.pool.control import GREEDY_SPLITS, ControlOptions

    opts = ControlOptions.from_values({"action_mode": "residual", "base_splits": "greedy"})
    assert opts.base_splits == GREEDY_SPLITS
    assert ControlOptions.from_values(opts.to_dict()) == opts
    env = MultiCellPoolEnv("three_cell", episode_steps=12, endowment=1000.0)
    resolved = opts.for_layout(env.ps)
    want = greedy_splits_for(env.ps.params, env.ps.pool_params)
    assert [list(p) for p in resolved.base_splits] == want
    direct = ControlOptions.from_values({"base_splits": "greedy"})  # not residual: dropped
    assert direct.for_layout(env.ps).base_splits == ()
    with pytest.raises(ValueError, match="base_splits"):
        ControlOptions.from_values({"base_splits": "greedier"})
