"""The native vector env (envs.vector): parity with the single env, the VectorEnv contract, RLlib.

Parity: ``MetaLoreVectorEnv`` and ``SyncVectorEnv`` of ``MetaLoreEnv`` (both with Gymnasium's
next-step autoreset) give identical observations, rewards, flags and episode metrics step by
step, over several episodes, on the paper preset, traffic regimes, randomised traffic, several
cells, and an overloaded cell whose queues must grow.
"""

from __future__ import annotations

import math
from typing import Any

import gymnasium as gym
import numpy as np
import pytest

import envs
from envs.metalore_env import MetaLoreEnv
from envs.vector import MetaLoreVectorEnv

SCENARIOS: list[dict[str, Any]] = [
    {"preset": "paper", "obs_mode": "log1p"},
    {"preset": "paper_dynamic"},
    {"preset": "paper_random", "obs_mode": "scaled"},
    {"preset": "three_cell", "obs_mode": "log1p"},
    # a city: moving hotspots, the regional surge (step 50), 19 cells
    {"preset": "city_19", "episode_steps": 60, "obs_mode": "log1p"},
    # overloaded: the queues outgrow their initial capacity (the grow path)
    {"preset": "paper", "mec_capacity": [5.0], "ue_job_prob": 1.0, "episode_steps": 60},
    # learning options: uplink observation, residual action on the rule, scaled reward
    {
        "preset": "paper_dynamic",
        "obs_mode": "log1p",
        "obs_uplink": True,
        "obs_age": True,
        "action_mode": "residual",
        "reward_scale": 0.01,
    },
]


def _same(x: Any, y: Any) -> bool:
    if isinstance(x, float) and isinstance(y, float) and math.isnan(x) and math.isnan(y):
        return True
    return bool(np.all(np.asarray(x) == np.asarray(y)))


@pytest.mark.parametrize("kwargs", SCENARIOS, ids=lambda k: "-".join(map(str, k.values())))
def test_vector_env_equals_single_env_step_by_step(kwargs: dict[str, Any]) -> None:
    n = 4
    ref: Any = gym.vector.SyncVectorEnv([lambda: MetaLoreEnv(**kwargs) for _ in range(n)])
    vec = MetaLoreVectorEnv(n, **kwargs)
    o_ref, _ = ref.reset(seed=11)
    o_vec, info = vec.reset(seed=11)
    assert np.array_equal(o_ref, o_vec)
    assert info["episode_seed"].tolist() == [11, 12, 13, 14]
    horizon = vec.horizon
    rng = np.random.default_rng(5)
    shape = tuple(vec.single_action_space.shape or ())
    finished = 0
    for k in range(3 * horizon + 3):  # three episodes per sub-env plus autoresets
        a = (rng.random((n, *shape)) * 1.2 - 0.1).astype(np.float32)  # some out of [0, 1]
        r_ref, r_vec = ref.step(a), vec.step(a)
        for j, what in enumerate(("obs", "reward", "terminated", "truncated")):
            assert np.array_equal(np.asarray(r_ref[j]), np.asarray(r_vec[j])), (k, what)
        if r_vec[3].any():
            finished += int(r_vec[3].sum())
            m_ref, m_vec = r_ref[4]["episode_metrics"], r_vec[4]["episode_metrics"]
            for i in np.flatnonzero(r_vec[4]["_episode_metrics"]):
                for key, value in m_vec[i].items():
                    if key != "cells":
                        assert _same(m_ref[key][i], value), (k, key)
    assert finished == 3 * n
    if "mec_capacity" in kwargs:  # the overloaded scenario really exercised queue growth
        sim = vec.sims[0]
        sim.reset(0)  # initial capacities
        assert vec._bq.shape[2] > sim.bq.shape[1] and vec._dq.shape[2] > sim.dq.shape[1]


def test_vector_env_contract() -> None:
    n = 3
    vec = gym.make_vec("MetaLore-v0", num_envs=n, vectorization_mode="vector_entry_point")
    assert isinstance(vec.unwrapped, MetaLoreVectorEnv)
    assert vec.metadata["autoreset_mode"] == gym.vector.AutoresetMode.NEXT_STEP
    assert vec.num_envs == n
    assert vec.single_observation_space == gym.spaces.Box(0.0, np.inf, (2,), np.float32)
    assert vec.action_space.shape == (n, 2)
    obs, _ = vec.reset(seed=0)
    assert obs.shape == (n, 2) and obs.dtype == np.float32 and not obs.any()
    assert vec.observation_space.contains(obs)
    a = np.full((n, 2), 0.4, np.float32)
    obs, rew, term, trunc, _ = vec.step(a)
    assert obs.shape == (n, 2) and rew.shape == (n,) and rew.dtype == np.float64
    assert term.dtype == np.bool_ and trunc.dtype == np.bool_ and not term.any()
    assert vec.observation_space.contains(obs)
    with pytest.raises(ValueError, match="finite"):
        vec.step(np.full((n, 2), np.nan, np.float32))
    with pytest.raises(ValueError):
        vec.step(np.zeros((n + 1, 2), np.float32))
    with pytest.raises(ValueError, match="num_envs"):
        MetaLoreVectorEnv(0)
    with pytest.raises(RuntimeError, match="reset"):
        MetaLoreVectorEnv(2).step(np.zeros((2, 2)))
    vec.close()


def test_vector_env_autoreset_next_step_and_reset_mask() -> None:
    vec = MetaLoreVectorEnv(2, episode_steps=5)
    vec.reset(seed=[7, None])
    assert vec.episode_seeds[0] == 7
    a = np.full((2, 2), 0.5)
    for _ in range(4):
        _, _, _, trunc, info = vec.step(a)
        assert not trunc.any() and "episode_metrics" not in info
    _, _, _, trunc, info = vec.step(a)
    assert trunc.all() and info["_episode_metrics"].all()
    assert info["episode_metrics"][0]["seed"] == 7
    # the next step resets: zero observation, zero reward, a fresh episode seed, action ignored
    obs, rew, _, trunc, info = vec.step(np.full((2, 2), np.float32(0.9)))
    assert not obs.any() and not rew.any() and not trunc.any()
    assert info["_episode_seed"].all() and "episode_metrics" not in info
    # the next episode seed comes from sub-env 0's generator, as MetaLoreEnv does
    single = MetaLoreEnv(episode_steps=5)
    single.reset(seed=7)
    _, first = single.reset()
    assert info["episode_seed"][0] == first["episode_seed"]
    # reset_mask resets only the masked sub-envs
    vec.step(a)
    t_before = vec._t.copy()
    vec.reset(options={"reset_mask": np.array([True, False])})
    assert vec._t[0] == 0 and vec._t[1] == t_before[1]
    with pytest.raises(ValueError, match="reset_mask"):
        vec.reset(options={"reset_mask": np.array([True])})


def test_vector_env_same_seed_same_rollout_different_seed_differs() -> None:
    def rollout(seed: int) -> np.ndarray:
        vec = MetaLoreVectorEnv(2)
        vec.reset(seed=seed)
        out = [vec.step(np.full((2, 2), 0.3))[1] for _ in range(30)]
        return np.array(out)

    assert np.array_equal(rollout(1), rollout(1))
    assert not np.array_equal(rollout(1), rollout(2))


@pytest.mark.ray
@pytest.mark.parametrize(
    "options",
    [{}, {"action_mode": "residual", "obs_uplink": True, "reward_scale": 0.01}],
    ids=["default", "residual-uplink"],
)
def test_rllib_env_runner_samples_from_the_native_vector_env(options: dict[str, Any]) -> None:
    """RLlib's SingleAgentEnvRunner takes the vector env through its vector entry point."""
    from ray.rllib.env.single_agent_env_runner import SingleAgentEnvRunner

    from tune_configs.ppo import Resources, build_ppo_config

    config = build_ppo_config(
        {"delta": 0.9, "penalty": 0.0, "episode_steps": 10, **options},
        {"train_batch_size": 40, "minibatch_size": 20, "fcnet_hiddens": [8]},
        Resources(num_envs_per_env_runner=4),
        seed=0,
    )
    runner: Any = SingleAgentEnvRunner(config=config)
    try:
        assert isinstance(runner.env.unwrapped, MetaLoreVectorEnv)
        width = 4 if options else 2
        assert runner.env.unwrapped.single_observation_space.shape == (width,)
        if options:  # the residual's rule is spelled out in the resolved env config
            assert config.env_config["residual_rule"] == [0.3, 0.1, 0.5, 4.0]
        episodes = runner.sample(num_timesteps=80, random_actions=False)
        steps = sum(len(e) for e in episodes)
        assert 80 <= steps < 80 + 4
        done = [e for e in episodes if e.is_done]
        assert done and all(len(e) == 10 for e in done)
        last = done[0].get_infos(-1)
        assert "episode_metrics" in last and last["episode_metrics"]["served_pct"] >= 0.0
        assert envs.ENV_ID == "MetaLore-v0"
    finally:
        runner.stop()


# --- learning options: residual action, uplink observation, reward scale ---------------------
RULE = (0.3, 0.1, 0.5, 4.0)


def test_zero_residual_is_the_queue_aware_rule_exactly() -> None:
    """Residual mode with a zero action replays the rule step by step (single env, vector env
    in either action unit) and episode by episode (the batched evaluator running the rule)."""
    from envs.core import make_params
    from envs.core.batch import evaluate
    from envs.core.policies import queue_aware

    rule = queue_aware(*RULE)
    kw: dict[str, Any] = {"preset": "paper_dynamic", "action_mode": "residual",
                          "residual_rule": list(RULE)}  # fmt: skip
    ref = MetaLoreEnv(preset="paper_dynamic")
    env = MetaLoreEnv(**kw)
    assert env.action_space == gym.spaces.Box(-1.0, 1.0, (2,), np.float32)
    ref.reset(seed=3)
    env.reset(seed=3)
    for _ in range(ref.params.scenario.episode_steps):
        a_rule = rule.act(ref.raw_queues())[0]
        r_ref = ref.step(a_rule)
        r_env = env.step(np.zeros(2, np.float32))
        assert np.array_equal(r_ref[0], r_env[0]) and r_ref[1] == r_env[1]
        assert (r_ref[4]["w_b"], r_ref[4]["w_c"]) == (r_env[4]["w_b"], r_env[4]["w_c"])
    assert r_env[4]["episode_metrics"] == r_ref[4]["episode_metrics"]
    res = evaluate(make_params("paper_dynamic"), [rule], 4, 3)  # episode seeds 3..6
    for normalized in (False, True):
        vec = MetaLoreVectorEnv(4, normalized_actions=normalized, **kw)
        vec.reset(seed=3)
        for _ in range(vec.horizon):
            vec.step(np.zeros((4, 2), np.float32))
        assert np.array_equal(vec._acc, res.acc[0])
        assert np.array_equal(vec._ue_acc, res.ue_acc[0])


def test_residual_action_corrects_the_rule_and_is_clipped() -> None:
    env = MetaLoreEnv(action_mode="residual", residual_scale=0.2, residual_rule=list(RULE))
    env.reset(seed=0)
    _, _, _, _, info = env.step(np.array([0.5, -0.25], np.float32))
    # empty queues at the first step: the rule's x = 1/2, so w_c = 0.1 + 0.4 / 2
    assert info["w_b"] == pytest.approx(0.3 + 0.2 * 0.5)
    assert info["w_c"] == pytest.approx(0.3 - 0.2 * 0.25)
    q_ue, q_s = env.raw_queues()[0]
    x = 0.5 if 4 * q_ue + q_s == 0 else 4 * q_ue / (4 * q_ue + q_s)
    _, _, _, _, info = env.step(np.array([-7.0, 3.0], np.float32))  # clipped to [-1, 1]
    assert info["w_b"] == pytest.approx(0.3 - 0.2)
    assert info["w_c"] == pytest.approx(min(0.1 + 0.4 * x + 0.2, 1.0))
    big = MetaLoreEnv(action_mode="residual", residual_scale=1.0)
    big.reset(seed=0)
    info = big.step(np.array([1.0, -1.0], np.float32))[4]
    assert (info["w_b"], info["w_c"]) == (1.0, 0.0)  # the shares are clipped to [0, 1]


def test_uplink_observation_adds_the_uplink_backlogs_and_keeps_the_queues() -> None:
    ref = MetaLoreEnv(preset="paper_dynamic", obs_mode="log1p")
    env = MetaLoreEnv(preset="paper_dynamic", obs_mode="log1p", obs_uplink=True)
    assert env.observation_space.shape == (4,)
    ref.reset(seed=5)
    obs, _ = env.reset(seed=5)
    assert obs.shape == (4,) and not obs.any()
    rng = np.random.default_rng(0)
    backlog = 0.0
    for _ in range(40):
        a = rng.random(2).astype(np.float32) * 0.5
        o_ref, r_ref, *_ = ref.step(a)
        o_env, r_env, _, _, info = env.step(a)
        assert np.array_equal(o_env[:2], o_ref) and r_env == r_ref
        want = np.log1p([info["uplink_ue"], info["uplink_sensor"]]).astype(np.float32)
        assert np.array_equal(o_env[2:], want)
        backlog += info["uplink_ue"] + info["uplink_sensor"]
    assert backlog > 0  # the test saw uplink backlogs
    cells = MetaLoreEnv(preset="three_cell", obs_uplink=True)
    assert cells.observation_space.shape == (3, 4)


@pytest.mark.parametrize("uplink", [False, True])
def test_age_observation_is_the_mean_age_of_the_active_sensors_updates(uplink: bool) -> None:
    env = MetaLoreEnv(preset="paper_random", obs_age=True, obs_uplink=uplink)
    ref = MetaLoreEnv(preset="paper_random", obs_uplink=uplink)
    width = 5 if uplink else 3
    assert env.observation_space.shape == (width,)
    env.reset(seed=4)
    _, info = ref.reset(seed=4)
    n_act = info["traffic"]["n_sensors"]
    assert n_act < 20  # the draw leaves some sensor sites silent
    ages = []
    for _ in range(30):
        obs, *_ = env.step(np.array([0.3, 0.2]))
        o_ref, *_ = ref.step(np.array([0.3, 0.2]))
        assert np.array_equal(obs[: width - 1], o_ref)
        t = env.sim.t - 1  # the step just taken
        gen = env.sim.sens[:n_act, 3]
        want = np.where(gen < 0, t + 1.0, t - gen).mean()
        assert obs[-1] == np.float32(want)
        ages.append(want)
    assert min(ages) < max(ages)  # updates arrived and aged


def test_reward_scale_scales_the_reward_not_the_metrics() -> None:
    ref, env = MetaLoreEnv(), MetaLoreEnv(reward_scale=0.01)
    ref.reset(seed=1)
    env.reset(seed=1)
    total = 0.0
    for _ in range(ref.params.scenario.episode_steps):
        r_ref, r_env = ref.step(np.full(2, 0.4))[1:], env.step(np.full(2, 0.4))[1:]
        assert r_env[0] == pytest.approx(0.01 * r_ref[0], rel=1e-12)
        total += r_ref[0]
    assert total > 0
    assert r_env[3]["episode_metrics"] == r_ref[3]["episode_metrics"]


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"action_mode": "delta"}, "action_mode"),
        ({"residual_scale": 0.0}, "residual_scale"),
        ({"residual_rule": [0.3, 0.6, 0.5, 4.0]}, "residual_rule"),
        ({"residual_rule": [0.3, 0.1, 0.5]}, "residual_rule"),
        ({"reward_scale": -1.0}, "reward_scale"),
        ({"obs_uplink": 1}, "obs_uplink"),
        ({"obs_age": "yes"}, "obs_age"),
    ],
)
def test_invalid_learning_options_name_the_field(overrides: dict[str, Any], field: str) -> None:
    with pytest.raises(ValueError, match=field):
        MetaLoreEnv(**overrides)


def test_learning_options_round_trip_through_plain_dicts() -> None:
    import json

    from envs.core import make_params
    from envs.core.params import EnvParams

    p = make_params("paper", action_mode="residual", residual_rule=[0.2, 0.1, 0.6, 1],
                    obs_uplink=True, reward_scale=0.5)  # fmt: skip
    assert p.residual_rule == (0.2, 0.1, 0.6, 1.0)
    assert EnvParams.from_dict(json.loads(json.dumps(p.to_dict()))) == p
