"""RLlib side of the pool: env checks, one PPO iteration (3 and 7 cells), replay, sweep."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from envs.core import make_params
from envs.core.pool.clearing import PoolParams
from envs.core.pool.rules import evaluate_controller

pytestmark = pytest.mark.ray

ray = pytest.importorskip("ray")

from ray.rllib.utils.pre_checks.env import check_multiagent_environments  # noqa: E402

from tune_configs.callbacks import civic_log_items, civic_metric_name, layout_of  # noqa: E402
from tune_configs.controllers import PER_CELL, get_controller  # noqa: E402
from tune_configs.controllers.per_cell import (  # noqa: E402
    PoolMultiAgentEnv,
    build_pool_ppo_config,
    load_pool_controller,
)
from tune_configs.ppo import Resources  # noqa: E402
from tune_configs.training import select_metrics, train  # noqa: E402
from tune_configs.trials import trial_config, trial_label  # noqa: E402

TINY = {"train_batch_size": 400, "minibatch_size": 200, "num_epochs": 2, "fcnet_hiddens": [32]}


@pytest.mark.parametrize("preset", ["three_cell", "seven_cell"])
def test_rllib_multiagent_env_check(preset: str) -> None:
    env = PoolMultiAgentEnv({"preset": preset, "episode_steps": 10})
    check_multiagent_environments(env)
    obs, _ = env.reset(seed=0)
    assert set(obs) == set(env.possible_agents) == set(env.observation_spaces)
    acts = {a: env.get_action_space(a).sample() for a in env.agents}
    for _ in range(9):
        _, _, term, trunc, _ = env.step(acts)
        assert term["__all__"] is False and trunc["__all__"] is False
    obs, _rew, term, trunc, infos = env.step(acts)
    # the horizon: every agent truncated, "__all__" set, final observations for all
    assert trunc["__all__"] is True and all(trunc[a] for a in env.possible_agents)
    assert set(obs) == set(env.possible_agents)
    for a in env.possible_agents:
        assert env.get_observation_space(a).contains(obs[a])
    assert all("civic" in infos[a] for a in env.possible_agents)


def test_civic_log_items() -> None:
    env = PoolMultiAgentEnv({"preset": "surge", "episode_steps": 60, "surge_step": 30})
    env.reset(seed=0)
    acts = {a: np.array([0.5, 0.5, 0.1], np.float32) for a in env.agents}
    infos: dict[str, Any] = {}
    for _ in range(60):
        *_, infos = env.step(acts)
    items = dict(civic_log_items(infos["cell_0"]["civic"]))
    assert ("civic", "fulfillment_pct") in items
    assert ("civic", "cell2", "units_lent") in items
    assert ("civic", "after", "fulfillment_pct") in items
    assert all(math.isfinite(v) for v in items.values())
    assert civic_metric_name("fairness") == "env_runners/civic/fairness"
    assert layout_of(infos) is None
    # an episode of a mix of layouts: its overall metrics per layout too
    infos["cell_1"]["layout"] = "surge"
    mixed = dict(civic_log_items(infos["cell_0"]["civic"], layout_of(infos)))
    assert (
        mixed[("civic", "layout", "surge", "fulfillment_pct")]
        == items[("civic", "fulfillment_pct")]
    )


def _finite_learner_stats(result: dict[str, Any], modules: list[str]) -> None:
    learners = result["learners"]
    for mid in modules:
        stats = learners[mid]
        numbers = [v for v in stats.values() if isinstance(v, (int, float, np.floating))]
        assert numbers, f"no learner stats for {mid}"
        assert all(math.isfinite(float(v)) for v in numbers), (mid, stats)


@pytest.mark.parametrize(
    ("preset", "policies", "modules"),
    [
        ("three_cell", "separate", ["cell_0", "cell_1", "cell_2"]),
        ("seven_cell", "shared", ["shared"]),
    ],
)
def test_one_ppo_iteration(
    ray_session: Any, tmp_path: Path, preset: str, policies: str, modules: list[str]
) -> None:
    config = build_pool_ppo_config(
        {"preset": preset, "endowment": 500.0}, TINY, Resources(0, 2), seed=0, policies=policies
    )
    algo = config.build_algo()
    results: list[Any] = []
    try:
        summary = train(algo, 1, lambda _m, result: results.append(result))
        ckpt = get_controller(PER_CELL).save(algo, tmp_path / "checkpoint", config.env_config,
            policies=policies,
        )  # fmt: skip
    finally:
        algo.stop()
    result = results[-1]
    assert summary == select_metrics(result)
    assert summary["timesteps"] >= 400
    assert math.isfinite(summary["env_runners/episode_return_mean"])
    assert 0.0 <= summary["env_runners/civic/fulfillment_pct"] <= 100.0
    assert any(k.startswith("env_runners/civic/cell0/") for k in summary)
    _finite_learner_stats(result, modules)
    # the checkpoint replays outside RLlib on the same scenario
    assert ckpt is not None
    ctrl = load_pool_controller(ckpt)
    assert ctrl.policies == policies and sorted(ctrl.modules) == sorted(modules)
    params = make_params(preset, episode_steps=20)
    metrics = evaluate_controller(params, PoolParams(endowment=500.0), ctrl, 1, seed=0)
    assert metrics[0]["ue_generated"] > 0
    acts = ctrl.actions(np.zeros((params.scenario.n_cells, 6), np.float32))
    assert (acts[:, :2] >= 0).all() and (acts[:, :2] <= 1).all()
    assert (acts[:, 2] >= -1).all() and (acts[:, 2] <= 1).all()


def test_pool_sweep_definition(tmp_path: Path) -> None:
    from tune_configs.sweeps import pool as pool_sweep

    assert pool_sweep.NAME == "pool" and pool_sweep.METRIC == "eval/fulfillment_pct"
    # the default: the city controller per seed, on city_19, beside the rules
    space = pool_sweep.param_space("small", seeds=[0, 1])
    rules, *jobs = space["job"]["grid_search"]
    assert rules["kind"] == "pool-rules"
    assert [(j["controller"], j["seed"]) for j in jobs] == [("city", 0), ("city", 1)]
    cfg = trial_config({**space, "job": jobs[0]})
    assert cfg["preset"] == "city_19" and trial_label({**space, "job": jobs[0]}) == "pool_city_s0"
    # the per-cell controller of the pool-learning study: one trial per scope and seed
    space = pool_sweep.param_space("small", seeds=[0, 1], controllers=["per-cell"])
    rules, *jobs = space["job"]["grid_search"]
    assert space["controller"] == "per-cell"
    assert {(j["env"]["scope"], j["seed"]) for j in jobs} == {
        ("team", 0),
        ("team", 1),
        ("local", 0),
        ("local", 1),
    }
    assert pool_sweep.total_trials("small", seeds=[0, 1], controllers=["per-cell"]) == 4 + 1
    assert pool_sweep.total_trials("small", seed=3, with_rules=False) == 1
    assert pool_sweep.total_trials("paper") == 3 + 1
    assert pool_sweep.stop("paper") == {"timesteps": 200_000}
    cfg = trial_config({**space, "job": jobs[0]})
    assert cfg["env"]["scope"] == "team" and cfg["preset"] == "city_19"
    with pytest.raises(ValueError, match="unknown --set key 'endowmint' for sweep pool"):
        pool_sweep.param_space("small", endowmint=5)
    with pytest.raises(ValueError, match="budget"):
        pool_sweep.param_space("huge")
    assert pool_sweep.build_tuner("small", storage=tmp_path) is not None


@pytest.mark.slow
def test_pool_sweep_runs(ray_session: Any, tmp_path: Path) -> None:
    from tune_configs.sweeps import pool as pool_sweep

    tuner = pool_sweep.build_tuner(
        "small", storage=tmp_path, name="pool-test", progress=False, max_concurrent_trials=1,
        timesteps=400, batch=400, minibatch=200, epochs=1, envs=2, eval_episodes=2,
        scenario="three_cell", with_rules=False, controllers=["per-cell"],
    )  # fmt: skip
    grid = tuner.fit()
    assert len(grid) == 2 and not grid.errors
    best = grid.get_best_result(metric=pool_sweep.METRIC, mode=pool_sweep.MODE)
    assert 0.0 <= best.metrics["eval/fulfillment_pct"] <= 100.0
    assert best.checkpoint is not None
    ctrl = load_pool_controller(best.checkpoint.path)
    assert ctrl.policies == "shared"
    # the CIVIC metrics reach TensorBoard
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = sorted(Path(best.path).glob("events.out.tfevents.*"))
    assert events, f"no TensorBoard file in {best.path}"
    acc = EventAccumulator(str(events[0]))
    acc.Reload()
    tags = acc.Tags()["scalars"]
    assert "ray/tune/env_runners/civic/fulfillment_pct" in tags
    assert "ray/tune/env_runners/civic/cell0/units_lent" in tags
    assert "ray/tune/eval/fulfillment_pct" in tags


def test_per_cell_trader_residual_iteration_and_shipping(ray_session: Any, tmp_path: Path) -> None:
    """Per-cell PPO with the trader observation and the residual action: one iteration, then
    the shipped policy replays like the checkpoint and a zero output is the greedy rule."""
    from envs.core.pool.rules import GreedyController, GreedyRule
    from tune_configs.controllers import load_any_pool_controller
    from tune_configs.export import export_pool_policy

    splits = [[0.6, 0.5], [0.4, 0.4], [0.5, 0.5]]
    env = {"preset": "three_cell_hetero", "endowment": 1000.0, "obs": "trader",
           "action_mode": "residual", "base_splits": splits, "reward": "fulfilled",
           "reward_scale": 0.01}  # fmt: skip
    config = build_pool_ppo_config(env, TINY, Resources(0, 2), seed=0)
    algo = config.build_algo()
    try:
        train(algo, 1)
        ckpt = get_controller(PER_CELL).save(algo, tmp_path / "ckpt", config.env_config)
    finally:
        algo.stop()
    ctrl = load_pool_controller(ckpt)
    assert not ctrl.normalize  # residual outputs are not unsquashed
    shipped = load_any_pool_controller(export_pool_policy(ckpt, tmp_path / "shipped"))
    params = make_params("three_cell_hetero", episode_steps=25)
    pool = PoolParams(endowment=1000.0)
    a = evaluate_controller(params, pool, ctrl, 1, seed=3)[0]
    b = evaluate_controller(params, pool, shipped, 1, seed=3)[0]
    assert a["fulfillment_pct"] == pytest.approx(b["fulfillment_pct"])
    assert a["units_borrowed"] == pytest.approx(b["units_borrowed"], rel=1e-4)
    shipped.modules = {"shared": lambda o: np.zeros((len(o), 3))}
    zero = evaluate_controller(params, pool, shipped, 1, seed=3)[0]
    rule = GreedyController(tuple(map(tuple, splits)), GreedyRule())
    greedy = evaluate_controller(params, pool, rule, 1, seed=3)[0]
    assert zero["fulfillment_pct"] == pytest.approx(greedy["fulfillment_pct"])


def test_city_controller_recipe_and_a_mixed_iteration() -> None:
    """The city controller: its recipe as defaults, the best measured controller per preset,
    and one PPO iteration through RLlib on a mix of layouts (agents that change per episode)."""
    from tune_configs.controllers import CENTRAL, CITY, default_controller
    from tune_configs.controllers.per_cell import CITY_RECIPE, city_env_defaults

    assert default_controller("city_49") == CITY and default_controller("paper") == "single"
    from tune_configs.controllers import POOL_CONTROLLERS
    from tune_configs.policies.pool import POOL_CONTROLLERS as LOADABLE

    assert set(POOL_CONTROLLERS) == set(LOADABLE)  # every pool controller loads as a policy
    assert default_controller("three_cell_hetero") == CENTRAL == default_controller("surge")
    assert city_env_defaults({})["preset"] == "city_19"
    city = get_controller(CITY)
    cfg = city.resolve_env_config({"preset": "three_cell", "episode_steps": 10})
    assert {k: cfg[k] for k in CITY_RECIPE} == CITY_RECIPE and "mix" not in cfg
    assert city.resolve_env_config(cfg) == cfg
    assert city.resolve_hparams(TINY)["log_std_clip_param"] == 1.0
    mixed = city.resolve_env_config(
        {"preset": "three_cell_hetero", "mix": ["three_cell_hetero", "seven_cell"],
         "scope": "mean", "episode_steps": 10}
    )  # fmt: skip
    resources = Resources(num_envs_per_env_runner=2)  # 10-step episodes end within the batch
    config = city.build_config(mixed, city.resolve_hparams(TINY), resources, 0)
    algo = config.build_algo()
    try:
        result = algo.train()
        assert result["env_runners"]["num_env_steps_sampled"] >= 400
        played = set(result["env_runners"]["civic"]["layout"])
        assert played == {"three_cell_hetero", "seven_cell"}, played
    finally:
        algo.stop()
