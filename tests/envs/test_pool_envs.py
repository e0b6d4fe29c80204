"""The pool environments: Gymnasium contract, multi-agent contract, errors, determinism."""

from __future__ import annotations

import pickle

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

import envs
from envs.pool.env import MetaLorePoolEnv
from envs.pool.multiagent import MultiCellPoolEnv


def test_central_env_registered_and_checked() -> None:
    assert envs.POOL_ENV_ID == "MetaLorePool-v0"
    env = gym.make("MetaLorePool-v0", preset="three_cell_hetero", endowment=500.0)
    check_env(env.unwrapped, skip_render_check=True)
    assert env.action_space.shape == (3, 3) and env.observation_space.shape == (3, 3)
    assert env.action_space.low[0].tolist() == [0.0, 0.0, -1.0]


def test_central_env_episode() -> None:
    env = MetaLorePoolEnv("three_cell_hetero", episode_steps=30, endowment=1000.0)
    obs, info = env.reset(seed=4)
    assert obs[:, 2].tolist() == [1000.0] * 3 and obs[:, :2].sum() == 0.0
    act = np.array([[0.5, 0.5, -0.5], [0.4, 0.3, 0.3], [0.3, 0.4, 0.3]], np.float32)
    total = 0.0
    for t in range(30):
        obs, r, term, trunc, info = env.step(act)
        total += r
        assert env.observation_space.contains(obs)
        assert not term and trunc == (t == 29)
    civic = info["civic"]
    assert civic["episode_return"] == pytest.approx(total)
    assert civic["cells"][0]["units_borrowed"] > 0
    assert obs[:, 2].sum() == pytest.approx(3000.0)


def test_central_env_errors() -> None:
    env = MetaLorePoolEnv("three_cell")
    env.reset(seed=0)
    with pytest.raises(ValueError, match="shape"):
        env.step(np.zeros((3, 2)))
    with pytest.raises(ValueError, match="finite"):
        env.step(np.array([[0.5, 0.5, np.nan]] * 3))
    with pytest.raises(ValueError, match="at least 2 cells"):
        MetaLorePoolEnv("paper")
    with pytest.raises(ValueError, match="endowment"):
        MetaLorePoolEnv("three_cell", endowment=-5.0)
    with pytest.raises(ValueError, match="unknown"):
        MetaLorePoolEnv("three_cell", endowmint=5.0)
    with pytest.raises(ValueError, match="reward"):
        MetaLorePoolEnv("three_cell", reward="money")


def _random_actions(env: MultiCellPoolEnv, rng: np.random.Generator) -> dict[str, np.ndarray]:
    return {
        a: np.array([rng.random(), rng.random(), rng.uniform(-1, 1)], np.float32)
        for a in env.possible_agents
    }


@pytest.mark.parametrize("preset", ["three_cell", "seven_cell"])
def test_multiagent_contract(preset: str) -> None:
    env = MultiCellPoolEnv(preset, obs_mode="log1p", episode_steps=25)
    n = env.n_cells
    assert env.possible_agents == [f"cell_{i}" for i in range(n)]
    obs, infos = env.reset(seed=1)
    assert set(obs) == set(infos) == set(env.agents) == set(env.possible_agents)
    rng = np.random.default_rng(0)
    steps = 0
    while env.agents:
        obs, rew, term, trunc, infos = env.step(_random_actions(env, rng))
        steps += 1
        for a in env.possible_agents:
            assert env.observation_space(a).contains(obs[a])
            assert isinstance(rew[a], float) and np.isfinite(rew[a])
            assert term[a] is False
        # team reward: everyone gets the same
        assert len(set(rew.values())) == 1
    assert steps == 25
    # final step: every agent truncated, with its final observation and the CIVIC metrics
    assert all(trunc.values()) and set(obs) == set(env.possible_agents)
    assert all("civic" in infos[a] for a in env.possible_agents)
    assert len(infos["cell_0"]["civic"]["cells"]) == n
    with pytest.raises(RuntimeError, match="reset"):
        env.step(_random_actions(env, rng))


def test_multiagent_observation_features() -> None:
    env = MultiCellPoolEnv("three_cell_hetero", endowment=200.0, price=2.0)
    obs, _ = env.reset(seed=2)
    assert obs["cell_0"].tolist() == [0.0, 0.0, 200.0, 2.0, 0.0, 0.0]
    acts = {
        "cell_0": np.array([0.5, 0.5, -0.4]),
        "cell_1": np.array([0.5, 0.5, 0.2]),
        "cell_2": np.array([0.5, 0.5, 0.0]),
    }
    obs, *_ = env.step(acts)
    # cell 0 asks 20 units (cut to 100 by 200 credits / price 2), cell 1 offers 20: matched 20
    assert obs["cell_0"][3:].tolist() == [2.0, 20.0, -20.0]
    assert obs["cell_1"][2:].tolist() == [240.0, 2.0, 20.0, 20.0]
    assert obs["cell_0"][2] == pytest.approx(160.0)
    assert obs["cell_2"][5] == 0.0


def test_multiagent_local_scope_and_fulfilled_reward() -> None:
    env = MultiCellPoolEnv("three_cell_hetero", scope="local", reward="fulfilled")
    env.reset(seed=0)
    rng = np.random.default_rng(1)
    sums = np.zeros(3)
    while env.agents:
        _, rew, _, _, infos = env.step(_random_actions(env, rng))
        sums += [rew[a] for a in env.possible_agents]
    fulfilled = [c["ue_fulfilled"] for c in infos["cell_0"]["civic"]["cells"]]
    assert sums.tolist() == pytest.approx(fulfilled)


def test_multiagent_errors() -> None:
    env = MultiCellPoolEnv("three_cell")
    env.reset(seed=0)
    good = np.array([0.5, 0.5, 0.0])
    with pytest.raises(ValueError, match="missing action"):
        env.step({"cell_0": good, "cell_1": good})
    with pytest.raises(ValueError, match="unknown agents"):
        env.step({"cell_0": good, "cell_1": good, "cell_2": good, "cell_9": good})
    with pytest.raises(ValueError, match=r"\(w_b, w_c, s\)"):
        env.step({"cell_0": good, "cell_1": good, "cell_2": np.array([0.5])})
    with pytest.raises(ValueError, match="finite"):
        env.step({"cell_0": good, "cell_1": good, "cell_2": np.array([0.5, np.inf, 0.0])})
    with pytest.raises(ValueError, match="scope"):
        MultiCellPoolEnv("three_cell", scope="selfish")


def test_multiagent_determinism_and_pickling() -> None:
    def rollout(env: MultiCellPoolEnv, seed: int) -> list[float]:
        env.reset(seed=seed)
        rng = np.random.default_rng(7)
        out = []
        while env.agents:
            obs, rew, *_ = env.step(_random_actions(env, rng))
            out += [float(rew["cell_0"]), *obs["cell_1"].tolist()]
        return out

    env = MultiCellPoolEnv("surge", episode_steps=60, surge_step=30)
    a = rollout(env, 11)
    clone = pickle.loads(pickle.dumps(env))
    assert rollout(clone, 11) == a
    assert rollout(env, 11) == a
    assert rollout(env, 12) != a


@pytest.mark.parametrize("obs_kind", ["basic", "trader"])
def test_per_cell_env_global_state_for_a_central_critic(obs_kind: str) -> None:
    """``critic="central"``: own features first (exactly the default env's), then every cell's
    features in cell order without the identity columns; the dynamics do not change."""
    from envs.pool.obs import N_AGENT_FEATURES, N_TRADER_BASE

    kw = {"episode_steps": 12, "endowment": 300.0, "obs": obs_kind}
    local = MultiCellPoolEnv("three_cell_hetero", **kw)
    central = MultiCellPoolEnv("three_cell_hetero", critic="central", **kw)
    own = local.observation_spaces["cell_0"].shape[0]
    cols = N_TRADER_BASE if obs_kind == "trader" else N_AGENT_FEATURES
    assert central.own_features == own == local.own_features
    assert central.observation_spaces["cell_1"].shape == (own + 3 * cols,)
    a, _ = local.reset(seed=5)
    b, _ = central.reset(seed=5)
    rng = np.random.default_rng(0)
    for _ in range(12):
        for i, agent in enumerate(central.possible_agents):
            assert central.observation_spaces[agent].contains(b[agent])
            np.testing.assert_array_equal(b[agent][:own], a[agent])
            state = np.concatenate([a[x][:cols] for x in local.possible_agents])
            np.testing.assert_array_equal(b[agent][own:], state)
            if obs_kind == "trader":  # the identity is in the own view, not in the state
                assert b[agent][N_TRADER_BASE + i] == 1.0
        acts = {x: rng.uniform([0, 0, -1], [1, 1, 1]).astype(np.float32) for x in local.agents}
        a, ra, *_ = local.step(acts)
        b, rb, *_ = central.step(acts)
        assert ra == rb
    with pytest.raises(ValueError, match="invalid critic 'global'"):
        MultiCellPoolEnv("three_cell_hetero", critic="global")
