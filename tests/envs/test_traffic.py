"""Traffic that varies (docs/model/traffic.md): regimes within an episode and per-episode
randomisation.

Determinism, the statistics of the regime process, the ranges of the randomised draws, the
regime kept out of the observation, parameter validation, the defaults left bit-identical, and
the batched evaluator equal to the single env on both.
"""

from __future__ import annotations

import json
import warnings
from typing import Any

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

import envs
from envs.core import Simulator, make_params
from envs.core.batch import evaluate, evaluate_regimes
from envs.core.metrics import K_NUE, K_S_GEN, K_UE_GEN, U_DONE, U_GEN
from envs.core.params import EnvParams
from envs.core.policies import queue_aware, static, static_grid
from envs.core.traffic import RANDOM_ORDER, TR_REGIME, held_regime
from envs.metalore_env import MetaLoreEnv

ACTIONS = np.random.default_rng(3).uniform(0.0, 1.0, size=(150, 2))


def _trace(env: MetaLoreEnv, seed: int, actions: np.ndarray) -> list[tuple[Any, ...]]:
    obs, info = env.reset(seed=seed)
    out: list[tuple[Any, ...]] = [(*obs.tolist(), json.dumps(info, sort_keys=True))]
    for a in actions:
        obs, r, _, trunc, info = env.step(a)
        out.append((*obs.tolist(), r, trunc, info.get("regime")))
    return out


# --- determinism -----------------------------------------------------------------------------
@pytest.mark.parametrize("preset", ["paper_dynamic", "paper_random"])
def test_same_seed_same_episode_different_seed_differs(preset: str) -> None:
    a = _trace(MetaLoreEnv(preset=preset), 5, ACTIONS[:100])
    b = _trace(MetaLoreEnv(preset=preset), 5, ACTIONS[:100])
    c = _trace(MetaLoreEnv(preset=preset), 6, ACTIONS[:100])
    assert a == b
    assert a != c


@pytest.mark.parametrize("preset", ["paper_dynamic", "paper_random"])
def test_check_env_passes(preset: str) -> None:
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*maximum value is infinity.*")
        check_env(gym.make(envs.ENV_ID, preset=preset).unwrapped, skip_render_check=True)


def test_regime_path_does_not_depend_on_the_actions() -> None:
    def path(action: np.ndarray) -> list[int]:
        env = MetaLoreEnv(preset="paper_dynamic")
        out = [env.reset(seed=9)[1]["regime"]]
        for _ in range(100):
            out.append(env.step(action)[4]["regime"])
        return out

    assert path(np.array([0.1, 0.9])) == path(np.array([0.6, 0.2]))


def test_trivial_variation_leaves_the_paper_episode_bit_identical() -> None:
    """Extra random streams do not shift the existing ones: regimes that all equal the paper's
    traffic, and randomisation whose ranges are the paper's values, give the paper's episodes."""
    paper = make_params("paper", episode_steps=150)
    same_regimes = make_params(
        paper, regime_ue_job_prob=(0.7, 0.7, 0.7), regime_n_ues=(10, 10, 10), regime_hold_steps=3
    )
    point_ranges = make_params(
        paper, traffic_randomize=True, rand_n_ues=10, rand_ue_job_prob=0.7,
        rand_ue_data_mean=50, rand_ue_compute_mean=5, rand_sensor_data_mean=70,
        rand_sensor_compute_mean=7, rand_n_sensors=15, rand_sensor_interval=1,
    )  # fmt: skip
    policies = [static(0.3, 0.4), queue_aware()]
    ref = evaluate(paper, policies, episodes=6, seed=40)
    for params in (same_regimes, point_ranges):
        res = evaluate(params, policies, episodes=6, seed=40)
        assert np.array_equal(res.acc, ref.acc) and np.array_equal(res.ue_acc, ref.ue_acc)


# --- the regime process ----------------------------------------------------------------------
def _regime_path(params: EnvParams, seed: int) -> np.ndarray:
    sim = Simulator(params)
    sim.reset(seed)
    path = np.empty(sim.horizon, np.int64)
    a = np.array([[0.5, 0.5]])
    for t in range(sim.horizon):
        sim.step(a)
        path[t] = int(sim.trf[TR_REGIME])
    return path


def test_regime_holding_times_and_transitions_match_the_documented_process() -> None:
    """Geometric holding times with mean ``regime_hold_steps``, uniform over the other regimes,
    uniform occupancy (over ~7,000 regime periods)."""
    hold, n_reg, steps = 8.0, 3, 60_000
    params = make_params(
        "paper", n_ues=2, n_sensors=1, episode_steps=steps, regime_hold_steps=hold,
        regime_ue_job_prob=(0.2, 0.5, 0.8),
    )  # fmt: skip
    path = _regime_path(params, seed=1)
    change = np.flatnonzero(np.diff(path)) + 1
    runs = np.diff(change)  # complete periods (the first and last are cut by the horizon)
    q = 1.0 / hold
    se = np.sqrt(1.0 - q) / q / np.sqrt(len(runs))
    assert abs(runs.mean() - hold) < 4 * se
    assert np.mean(runs == 1) == pytest.approx(q, abs=0.02)  # P(hold = 1) = q
    assert np.all(path[change] != path[change - 1])  # a switch always goes elsewhere
    occupancy = np.bincount(path, minlength=n_reg) / steps
    assert np.allclose(occupancy, 1.0 / n_reg, atol=0.03)
    pairs = np.zeros((n_reg, n_reg))
    np.add.at(pairs, (path[change - 1], path[change]), 1)
    share = pairs / pairs.sum(axis=1, keepdims=True)
    off = ~np.eye(n_reg, dtype=bool)
    assert np.allclose(share[off], 1.0 / (n_reg - 1), atol=0.05)


def test_first_regime_is_uniform_and_reported_at_reset() -> None:
    env = MetaLoreEnv(preset="paper_dynamic")
    firsts = []
    for seed in range(800):
        _, info = env.reset(seed=seed)
        firsts.append(info["regime"])
    counts = np.bincount(firsts, minlength=4)
    assert np.all(np.abs(counts - 200) < 4 * np.sqrt(800 * 0.25 * 0.75))
    # the reset's regime is the one in force during step 0 (no switch before step 1)
    for seed in range(20):
        _, info = env.reset(seed=seed)
        assert env.step(np.array([0.3, 0.3]))[4]["regime"] == info["regime"]


def test_regime_sets_the_traffic_in_force() -> None:
    params = make_params("paper_dynamic", episode_steps=400)
    table = params.scenario.regime_table()
    sim = Simulator(params)
    sim.reset(2)
    seen = set()
    for _ in range(sim.horizon):
        sim.step(np.array([[0.3, 0.4]]))
        now = sim.traffic_now()
        seen.add(now["regime"])
        assert (now["ue_job_prob"], now["n_ues_active"], now["sensor_interval"]) == table[
            now["regime"]
        ]
        if now["regime"] == 3 and sim.t % 2 == 0:  # the step just taken was odd: no updates
            assert sim.kpi[0, K_S_GEN] == 0
    assert seen == {0, 1, 2, 3}


def test_inactive_ues_stop_generating_and_drain_their_backlog() -> None:
    """Two UEs, then only UE 0 active: UE 1 sends what it holds (sharing the uplink while it has
    jobs) and generates nothing more."""
    params = make_params(
        "paper", n_ues=2, n_sensors=1, ue_job_prob=1.0, bandwidth_hz=2e6, episode_steps=400,
        regime_n_ues=(2, 1), regime_hold_steps=40,
    )  # fmt: skip
    sim = Simulator(params)
    sim.reset(4)
    a = np.array([[0.9, 0.5]])
    drained = 0
    for _ in range(sim.horizon):
        gen1, len1 = sim.ue_acc[1, U_GEN], sim.dq_m[1, 1]
        sim.step(a)
        if sim.trf[TR_REGIME] == 1:
            assert sim.ue_acc[1, U_GEN] == gen1 and sim.dq_m[1, 1] <= len1
            assert sim.kpi[0, K_NUE] == 1 + (len1 > 0)
            drained += int(sim.dq_m[1, 1] < len1)
    assert drained > 0 and sim.ue_acc[1, U_DONE] > 0


def test_held_regime_keeps_its_traffic() -> None:
    params = held_regime(make_params("paper_dynamic", episode_steps=300), 1)
    sim = Simulator(params)
    sim.reset(0)
    for _ in range(sim.horizon):
        sim.step(np.array([[0.2, 0.2]]))
        now = sim.traffic_now()
        assert (now["ue_job_prob"], now["n_ues_active"], now["sensor_interval"]) == (0.5, 4, 1)
    assert sim.ue_acc[4:, U_GEN].sum() == 0
    with pytest.raises(ValueError, match="regime"):
        held_regime(params, 2)


def test_no_static_split_is_best_in_every_regime() -> None:
    """The design claim of paper_dynamic (docs/model/traffic.md): the best split of the 0.1 grid by
    mean return differs between the regimes held fixed."""
    results = evaluate_regimes(make_params("paper_dynamic"), static_grid(0.1), episodes=20, seed=7)
    best = [int(np.argmax(r.metrics["episode_return"].mean(axis=1))) for r in results]
    assert len(set(best)) == len(best) == 4


# --- randomisation ---------------------------------------------------------------------------
def test_randomised_draws_lie_in_their_ranges_and_cover_them() -> None:
    params = make_params("paper_random")
    s = params.scenario
    env = MetaLoreEnv(params=params)
    draws = [env.reset(seed=seed)[1]["traffic"] for seed in range(1500)]
    for field, key in RANDOM_ORDER:
        lo, hi = getattr(s, field)
        values = np.array([d[key] for d in draws], dtype=np.float64)
        assert values.min() >= lo and values.max() <= hi, field
        if isinstance(lo, int):
            assert set(values.astype(int)) == set(range(lo, hi + 1)), field
        else:
            width = hi - lo
            assert values.min() < lo + 0.01 * width and values.max() > hi - 0.01 * width, field
            assert values.mean() == pytest.approx((lo + hi) / 2, abs=0.03 * width), field


def test_randomised_episode_uses_its_draw() -> None:
    params = make_params("paper_random", episode_steps=60)
    sim = Simulator(params)
    for seed in range(5):
        sim.reset(seed)
        tr = sim.traffic
        for _ in range(sim.horizon):
            sim.step(np.array([[0.4, 0.4]]))
        n_u, n_s, k = tr["n_ues"], tr["n_sensors"], tr["sensor_interval"]
        assert sim.ue_acc[n_u:, U_GEN].sum() == 0  # inactive UE slots send nothing
        assert sim.acc[0, K_S_GEN] == n_s * len(range(0, sim.horizon, k))
        assert np.all(sim.sens[n_s:, 3] == -1)  # inactive sensor sites never update
        gen = sim.acc[0, K_UE_GEN]
        assert abs(gen - n_u * sim.horizon * tr["ue_job_prob"]) < 5 * np.sqrt(n_u * sim.horizon)
        assert sim.traffic_now()["n_ues_active"] == n_u


def test_randomised_size_means_are_the_poisson_means() -> None:
    from envs.core.rng import size_tables
    from envs.core.traffic import size_means

    sim = Simulator(make_params("paper_random"))
    sim.reset(11)
    assert np.array_equal(sim.cdf, size_tables(size_means(sim.traffic)))
    cdf = sim.cdf[0]  # UE data
    pmf = np.diff(np.concatenate([[0.0], cdf]))
    assert float((np.arange(len(pmf)) * pmf).sum()) == pytest.approx(
        sim.traffic["ue_data_mean"], rel=1e-6
    )


def test_randomisation_works_from_flat_overrides_and_plain_dicts() -> None:
    p = make_params("paper", traffic_randomize=True, rand_n_ues=[2, 8], rand_ue_job_prob=[0.2, 1])
    assert p.scenario.rand_n_ues == (2, 8) and p.scenario.rand_ue_job_prob == (0.2, 1.0)
    for params in (p, make_params("paper_dynamic"), make_params("paper_random")):
        d = json.loads(json.dumps(params.to_dict()))
        assert EnvParams.from_dict(d) == params
        assert gym.make(envs.ENV_ID, params=d).unwrapped.params == params


# --- the observation -------------------------------------------------------------------------
@pytest.mark.parametrize("preset", ["paper_dynamic", "paper_random"])
def test_observation_is_the_two_queues_only(preset: str) -> None:
    env = MetaLoreEnv(preset=preset)
    assert env.observation_space.shape == (2,)
    obs, info = env.reset(seed=1)
    assert np.array_equal(obs, np.zeros(2, np.float32))
    regimes = set()
    for a in ACTIONS[:100]:
        obs, *_, info = env.step(a)
        assert np.array_equal(obs, env.raw_queues().ravel().astype(np.float32))
        regimes.add(info.get("regime"))
    assert (preset == "paper_dynamic") == (None not in regimes)


# --- validation ------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "overrides,field",
    [
        ({"regime_ue_job_prob": (0.5, 1.5)}, r"regime_ue_job_prob\[1\]"),
        ({"regime_n_ues": (4, 11)}, r"regime_n_ues\[1\]"),
        ({"regime_n_ues": (0, 4)}, r"regime_n_ues\[0\]"),
        ({"regime_sensor_interval": (1, 0)}, r"regime_sensor_interval\[1\]"),
        ({"regime_n_ues": (4,)}, "regime_n_ues"),
        ({"regime_n_ues": (4, 5), "regime_ue_job_prob": (0.1, 0.2, 0.3)}, "regime_"),
        ({"regime_ue_job_prob": (0.1, 0.2), "regime_hold_steps": 0.5}, "regime_hold_steps"),
        ({"traffic_randomize": "yes"}, "traffic_randomize"),
        ({"traffic_randomize": True, "regime_n_ues": (4, 5)}, "traffic_randomize"),
        ({"traffic_randomize": True, "job_sizes": "fixed"}, "traffic_randomize"),
        ({"traffic_randomize": True, "rand_n_ues": (4, 11)}, "rand_n_ues"),
        ({"traffic_randomize": True, "rand_n_sensors": (4, 16)}, "rand_n_sensors"),
        ({"rand_ue_job_prob": (0.5, 1.2)}, "rand_ue_job_prob"),
        ({"rand_ue_data_mean": (50, 40)}, "rand_ue_data_mean"),
        ({"rand_ue_compute_mean": (0, 4)}, "rand_ue_compute_mean"),
        ({"rand_n_ues": (2.5, 4)}, "rand_n_ues"),
        ({"rand_sensor_interval": (0, 2)}, "rand_sensor_interval"),
        ({"rand_sensor_data_mean": (1, 2, 3)}, "rand_sensor_data_mean"),
    ],
)
def test_invalid_traffic_parameters_name_the_field(overrides: dict, field: str) -> None:
    with pytest.raises(ValueError, match=field):
        make_params("paper", **overrides)


def test_randomisation_needs_one_cell() -> None:
    with pytest.raises(ValueError, match=r"traffic_randomize.*one cell"):
        make_params("three_cell", traffic_randomize=True, rand_n_sensors=(3, 6))


# --- batched == single env -------------------------------------------------------------------
PARITY = [
    ("paper_dynamic", {}),
    ("paper_random", {}),
    ("paper_dynamic", {"regime_hold_steps": 2.0}),
    ("three_cell", {"regime_n_ues": (15, 5, 10), "regime_ue_job_prob": (0.7, 1.0, 0.3)}),
]


@pytest.mark.parametrize("preset,overrides", PARITY)
def test_batched_equals_single_env_step_by_step(preset: str, overrides: dict) -> None:
    """Every accumulator of the batched evaluator equals the single env's, at several horizons
    (the first step, mid-way, past the single env's 128-step random block)."""
    steps = (1, 61, 150)
    params = make_params(preset, episode_steps=max(steps), **overrides)
    policies = [static(0.3, 0.4), queue_aware()]
    seeds = range(30, 33)
    single: dict[tuple[int, int, int], tuple[np.ndarray, ...]] = {}
    env = MetaLoreEnv(params=params)
    for i, pol in enumerate(policies):
        for j, seed in enumerate(seeds):
            obs, _ = env.reset(seed=seed)
            for t in range(1, max(steps) + 1):
                obs, *_ = env.step(pol.act(env.raw_queues()).reshape(obs.shape))
                if t in steps:
                    sim = env.sim
                    single[i, j, t] = (sim.acc.copy(), sim.kpi.copy(), sim.ue_acc.copy())
    for t in steps:
        res = evaluate(make_params(params, episode_steps=t), policies, len(seeds), seeds[0])
        for i in range(len(policies)):
            for j in range(len(seeds)):
                acc, kpi, ue_acc = single[i, j, t]
                assert np.array_equal(res.acc[i, j], acc), (t, i, j)
                assert np.array_equal(res.last[i, j], kpi), (t, i, j)
                assert np.array_equal(res.ue_acc[i, j], ue_acc), (t, i, j)


def test_batch_reports_each_episodes_traffic() -> None:
    params = make_params("paper_random", episode_steps=5)
    res = evaluate(params, [static(0.4, 0.4)], episodes=3, seed=12)
    env = MetaLoreEnv(params=params)
    assert res.traffic == [env.reset(seed=s)[1]["traffic"] for s in (12, 13, 14)]
    summary = res.summaries()[0]
    assert summary["episodes"] == 3
