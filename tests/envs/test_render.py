"""Rendering of the envs: Gymnasium's checks, fixed-size frames, and episodes unchanged by it."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

import envs
from envs.pool.multiagent import MultiCellPoolEnv
from envs.render import FRAME_HEIGHT, FRAME_WIDTH, pool_flows, ue_jobs_in_flight

SHAPE = (FRAME_HEIGHT, FRAME_WIDTH, 3)
CASES = [
    (envs.ENV_ID, {"preset": "paper_dynamic"}),
    (envs.ENV_ID, {"preset": "three_cell"}),
    (envs.POOL_ENV_ID, {"preset": "three_cell_hetero"}),
]


@pytest.mark.parametrize(("env_id", "kwargs"), CASES)
@pytest.mark.parametrize("mode", ["rgb_array", "ansi"])
def test_check_env_passes_with_rendering(env_id: str, kwargs: dict, mode: str) -> None:
    env = gym.make(env_id, render_mode=mode, **kwargs)
    check_env(env.unwrapped)  # also makes and renders every declared mode


def _episode(env_id: str, kwargs: dict, mode: str | None, seed: int) -> tuple[list, list]:
    env = gym.make(env_id, render_mode=mode, disable_env_checker=True, **kwargs)
    rng = np.random.default_rng(1)
    obs, _ = env.reset(seed=seed)
    steps: list = [obs.tolist()]
    frames: list = []
    truncated = False
    while not truncated:
        action = rng.random(env.action_space.shape).astype(np.float32)
        obs, reward, _, truncated, info = env.step(action)
        steps.append((obs.tolist(), reward, sorted(info)))
        if mode is not None:
            frames.append(env.render())
    steps.append(info.get("episode_metrics") or info.get("civic"))
    return steps, frames


@pytest.mark.parametrize(("env_id", "kwargs"), CASES)
def test_an_episode_with_rendering_equals_it_without(env_id: str, kwargs: dict) -> None:
    off, _ = _episode(env_id, kwargs, None, 7)
    on, frames = _episode(env_id, kwargs, "rgb_array", 7)
    assert on == off
    assert len(frames) == len(off) - 2
    for frame in frames:
        assert frame.shape == SHAPE and frame.dtype == np.uint8
    assert not np.array_equal(frames[0], frames[-1])  # the state shows
    text_on, texts = _episode(env_id, kwargs, "ansi", 7)
    assert text_on == off
    assert all(isinstance(t, str) and "step" in t for t in texts)


def test_render_before_reset_and_without_mode() -> None:
    env = envs.metalore_env.MetaLoreEnv(render_mode="rgb_array")
    frame = env.render()
    assert frame.shape == SHAPE and frame.dtype == np.uint8
    assert envs.metalore_env.MetaLoreEnv().render() is None
    with pytest.raises(ValueError, match="render_mode 'human' is not supported"):
        envs.metalore_env.MetaLoreEnv(render_mode="human")


def test_multi_agent_pool_view_renders_the_same_frame_as_the_central_env() -> None:
    multi = MultiCellPoolEnv("three_cell_hetero", render_mode="rgb_array")
    central = gym.make(envs.POOL_ENV_ID, preset="three_cell_hetero", render_mode="rgb_array")
    multi.reset(seed=4)
    central.reset(seed=4)
    act = np.array([[0.5, 0.5, -0.6], [0.4, 0.3, 0.3], [0.3, 0.4, 0.3]], np.float32)
    for _ in range(12):  # the same float32 actions in both
        multi.step({a: act[i].astype(np.float64) for i, a in enumerate(multi.possible_agents)})
        central.step(act)
    assert np.array_equal(multi.render(), central.render())
    text = MultiCellPoolEnv("three_cell", render_mode="ansi")
    text.reset(seed=0)
    assert "balance 1000.0" in text.render()


def test_jobs_in_flight_count_every_queued_ue_job() -> None:
    env = envs.metalore_env.MetaLoreEnv(preset="paper")
    env.reset(seed=2)
    for _ in range(30):
        env.step(np.array([0.1, 0.1]))
    jobs = ue_jobs_in_flight(env.sim)
    assert jobs.sum() == env.sim.jobs_in_system()["ue"]
    assert jobs.sum() > 0


def test_pool_flows_split_the_matched_units_pro_rata() -> None:
    env = gym.make(envs.POOL_ENV_ID, preset="three_cell_hetero", disable_env_checker=True)
    env.reset(seed=3)
    act = np.array([[0.5, 0.5, -0.6], [0.4, 0.3, 0.3], [0.3, 0.4, 0.3]], np.float32)
    info: dict = {}
    for _ in range(5):
        info = env.step(act)[4]
    ps = env.unwrapped.ps
    flows = pool_flows(ps)
    assert flows.sum() == pytest.approx(info["matched"])
    assert np.all(flows[0] == 0.0)  # cell 0 asks: it lends nothing
    assert flows[1, 0] > 0 and flows[2, 0] > 0
