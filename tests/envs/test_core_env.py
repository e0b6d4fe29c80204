"""The Gymnasium contract, determinism, pickling, batched == single, bad input."""

from __future__ import annotations

import pickle
import warnings

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

import envs
from envs.core import Simulator, make_params
from envs.core.batch import evaluate
from envs.core.policies import heuristic, queue_aware, static
from envs.metalore_env import MetaLoreEnv
from tests.helpers.core import rollout

ACTIONS = np.random.default_rng(0).uniform(-0.1, 1.1, size=(100, 2))


@pytest.mark.parametrize("kwargs", [{}, {"preset": "three_cell"}, {"preset": "v1"},
                                    {"obs_mode": "log1p"}])  # fmt: skip
def test_check_env_passes(kwargs: dict[str, str]) -> None:
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*maximum value is infinity.*")
        check_env(gym.make(envs.ENV_ID, **kwargs).unwrapped, skip_render_check=True)


def test_spaces_single_and_multi_cell() -> None:
    env = gym.make(envs.ENV_ID)
    assert env.action_space.shape == (2,) and env.observation_space.shape == (2,)
    env3 = gym.make(envs.ENV_ID, preset="three_cell")
    assert env3.action_space.shape == (3, 2) and env3.observation_space.shape == (3, 2)
    obs, info = env3.reset(seed=1)
    assert obs.shape == (3, 2) and np.all(obs == 0) and info["episode_seed"] == 1


def _env_rollout(env: gym.Env, seed: int, actions: np.ndarray) -> list[tuple]:
    obs, _ = env.reset(seed=seed)
    out = [tuple(obs.ravel())]
    for a in actions:
        obs, r, term, trunc, _ = env.step(a)
        out.append((*obs.ravel(), r, term, trunc))
    return out


def test_same_seed_same_rollout_different_seed_differs() -> None:
    env = gym.make(envs.ENV_ID)
    a = _env_rollout(env, 11, ACTIONS)
    b = _env_rollout(gym.make(envs.ENV_ID), 11, ACTIONS)
    c = _env_rollout(env, 12, ACTIONS)
    assert a == b
    assert a != c


def test_unseeded_resets_follow_the_first_seed() -> None:
    e1, e2 = MetaLoreEnv(), MetaLoreEnv()
    e1.reset(seed=5)
    e2.reset(seed=5)
    assert e1.reset()[1]["episode_seed"] == e2.reset()[1]["episode_seed"]


def test_truncation_and_episode_metrics() -> None:
    env = gym.make(envs.ENV_ID, episode_steps=7)
    env.reset(seed=0)
    for t in range(7):
        _, _, term, trunc, info = env.step(np.array([0.4, 0.4]))
        assert not term
        assert trunc == (t == 6)
    summary = info["episode_metrics"]
    assert summary["steps"] == 7 and summary["seed"] == 0
    assert {"sync_delay", "e2e_delay", "served_pct", "episode_return", "left_queued"} <= set(
        summary
    )


def test_pickle_mid_episode_continues_identically() -> None:
    env = MetaLoreEnv()
    env.reset(seed=3)
    for a in ACTIONS[:30]:
        env.step(a)
    clone = pickle.loads(pickle.dumps(env))
    for a in ACTIONS[30:]:
        o1, r1, *_ = env.step(a)
        o2, r2, *_ = clone.step(a)
        assert np.array_equal(o1, o2) and r1 == r2


# the cities: the regional surge (step 50) and the hotspots' drift inside the episode
@pytest.mark.parametrize(
    "preset", ["paper", "three_cell", "paper_dynamic", "paper_random", "city_19", "city_49"]
)
def test_batched_equals_single_env(preset: str) -> None:
    params = make_params(preset, episode_steps=150)  # crosses a random-block boundary (128)
    policies = [static(0.3, 0.4), heuristic(params), queue_aware()]
    res = evaluate(params, policies, episodes=4, seed=20)
    env = MetaLoreEnv(params=params)
    for i, pol in enumerate(policies):
        for j in range(4):
            obs, _ = env.reset(seed=20 + j)
            while True:
                obs, _, _, trunc, info = env.step(pol.act(env.raw_queues()).reshape(obs.shape))
                if trunc:
                    break
            single = info["episode_metrics"]
            for key, batched in res.metrics.items():
                want = single[key]
                got = batched[i, j]
                assert (want is None and np.isnan(got)) or want == pytest.approx(got, rel=1e-12), (
                    key
                )


def test_rollout_trace_helper_is_deterministic() -> None:
    from envs.core import Simulator

    sim = Simulator(make_params("paper"))
    assert rollout(sim, 4, ACTIONS) == rollout(sim, 4, ACTIONS)


@pytest.mark.parametrize("action", [np.array([np.nan, 0.5]), np.array([0.5, np.inf]),
                                    np.array([0.5, 0.5, 0.5]), np.zeros((1, 2))])  # fmt: skip
def test_bad_actions_raise(action: np.ndarray) -> None:
    env = MetaLoreEnv()
    env.reset(seed=0)
    with pytest.raises(ValueError):
        env.step(action)


def test_out_of_range_actions_are_clipped() -> None:
    env = MetaLoreEnv()
    env.reset(seed=0)
    *_, info = env.step(np.array([1.7, -3.0]))
    assert info["w_b"] == 1.0 and info["w_c"] == 0.0


@pytest.mark.parametrize(
    "overrides,field",
    [
        ({"bandwidth_hz": -1.0}, "bandwidth_hz"),
        ({"ue_job_prob": 1.5}, "ue_job_prob"),
        ({"n_ues": 0}, "n_ues"),
        ({"n_sensors": 0}, "n_sensors"),
        ({"delta": 0.0}, "delta"),
        ({"penalty": 2.0}, "penalty"),
        ({"mec_capacity": float("nan")}, "mec_capacity"),
        ({"obs_mode": "zscore"}, "obs_mode"),
        ({"job_sizes": "fixed", "ue_data_mean": 2.5}, "ue_data_mean"),
        ({"sensor_max_bs_dist": 10.0}, "sensor_max_bs_dist"),
    ],
)
def test_invalid_parameters_name_the_field(overrides: dict, field: str) -> None:
    with pytest.raises(ValueError, match=field):
        make_params("paper", **overrides)


def test_unknown_preset_and_parameter() -> None:
    with pytest.raises(ValueError, match="unknown preset"):
        make_params("nope")
    with pytest.raises(ValueError, match="did you mean 'delta'"):
        make_params("paper", detla=0.5)


def test_impossible_sensor_placement_is_a_clear_error() -> None:
    env = MetaLoreEnv(n_sensors=200)
    with pytest.raises(ValueError, match="cannot place 200 sensors"):
        env.reset(seed=0)


def test_params_round_trip_through_plain_dicts() -> None:
    import json

    p = make_params("three_cell", delta=0.5, n_ues=7)
    d = json.loads(json.dumps(p.to_dict()))
    assert type(p).from_dict(d) == p
    env = gym.make(envs.ENV_ID, params=d)
    assert env.unwrapped.params == p


def test_reset_after_a_congested_episode_replays_a_fresh_one() -> None:
    # the simulator keeps its grown queue buffers across resets; that changes nothing
    params = make_params("three_cell", episode_steps=30)
    used = Simulator(params)
    used.reset(1)
    for _ in range(30):
        used.step(np.zeros((3, 2)))  # nothing is sent or computed: the buffers grow
    grown = used.bq.shape[1]
    fresh = Simulator(params)
    for sim in (used, fresh):
        sim.reset(2)
        for _ in range(30):
            sim.step(np.full((3, 2), 0.45))
    assert used.bq.shape[1] == grown > fresh.bq.shape[1]
    assert np.array_equal(used.acc, fresh.acc) and np.array_equal(used.ue_acc, fresh.ue_acc)
    assert np.array_equal(used.kpi, fresh.kpi)
