"""Central Gymnasium environment of the credit pool (``MetaLorePool-v0``).

One agent controls every cell: action ``(n_cells, 3)`` = ``(w_b, w_c, s)`` per cell, observation
``(n_cells, 3)`` = each BS's two compute queue lengths and its credit balance.

Run ``python -m envs.pool.env`` to step one ``three_cell_hetero`` episode with a fixed action in
both modes and print the CIVIC metrics (cooperation raises fulfillment from about 50 % to about
73 % with this crude fixed action and 10,000 credits per cell).
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
from numpy.typing import NDArray

from envs.core.params import EnvParams
from envs.core.pool.clearing import PoolParams
from envs.metalore_env import SeededEnv, check_render_mode
from envs.pool.control import (
    ControlOptions,
    PoolControl,
    split_control_overrides,
)
from envs.pool.multiagent import REWARDS, build_pool_sim, render_pool
from envs.pool.obs import REWARD_FULFILLED, REWARD_METALORE
from envs.render import RENDER_FPS, RENDER_MODES


class MetaLorePoolEnv(SeededEnv):
    """MetaLore cells sharing MEC compute through a credit pool, one central controller.

    ## Description
    Several MetaLore cells (BS, MEC, sensors; UEs roam and hand over to the nearest BS) share MEC
    capacity through a credit pool (``docs/model/pool.md``; rules in
    :mod:`envs.core.pool`). Each step the controller sets every cell's split and share action; the
    pool clears, lent units leave the lender's capacity and reach the borrower's after
    ``backhaul_delay`` steps, and credits move from borrowers to lenders. With
    ``cooperative=False`` the pool is off and the share actions are ignored.

    ## Action space
    ``Box(low, high, (n_cells, 3), float32)`` with rows ``(w_b, w_c, s)``: ``w_b, w_c`` in [0, 1]
    (UE share of bandwidth and compute), ``s`` in [-1, 1] (s > 0 offers s C units of the cell's
    MEC capacity C, s < 0 asks for |s| C). Out-of-range values are clipped; NaN, infinities or a
    wrong shape raise ``ValueError``.

    ## Observation space
    ``Box(0, inf, (n_cells, 3), float32)``: per cell the BS's UE and sensor compute queue lengths
    [jobs] and its credit balance, transformed by ``obs_mode`` (see :mod:`envs.pool.obs`).

    ## Rewards
    Sum over cells of the MetaLore reward (``docs/model/cell.md#reward``) of the step's completed
    UE jobs, or with ``reward="fulfilled"`` the number of jobs fulfilled (AoRI <= tau and
    AoSI <= sigma).

    ## Episode end
    Never terminated; truncated after ``episode_steps``. The truncating step's ``info`` holds
    ``"civic"``, the episode's CIVIC-style metrics per cell and overall
    (:mod:`envs.core.pool.civic`).

    Control options (:class:`envs.pool.control.ControlOptions`, all off by default):
    ``obs="trader"`` gives ``(n_cells, len(TRADER_FEATURES))`` scale-free trader features
    (:mod:`envs.pool.obs`); ``action_mode="residual"`` makes the action an unbounded correction
    on top of the greedy rule (``Box(-inf, inf, (n_cells, 3))``; zero = the greedy controller with
    ``base_splits``), ``"deadzone"`` a share with a dead zone; ``reward_scale``, ``shaping``,
    ``endowment_range`` (curriculum) and ``permute_cells`` (the cells in a random order per
    episode: randomised loaded cells).

    ## Arguments
    ``gymnasium.make("MetaLorePool-v0", preset="three_cell", params=None, pool=None,
    reward="metalore", **overrides)``; overrides name EnvParams fields (``n_ues=20``,
    ``obs_mode="log1p"``), PoolParams fields (``cooperative=False``, ``endowment=1000``,
    ``price=2``, ``backhaul_delay=2``) or control options (``obs="trader"``).

    ``render_mode="rgb_array"`` / ``"ansi"``: ``render()`` shows the cells, their backlogs,
    shares, capacities and balances and the last clearing's trades as arrows between cells
    (:mod:`envs.render`); rendering never changes an episode.

    ## Version history
    * v0: initial version; control options added later (their defaults keep the original
      observation, action and reward, so the version stays); rendering added.
    """

    metadata: dict[str, Any] = {"render_modes": RENDER_MODES, "render_fps": RENDER_FPS}  # noqa: RUF012

    def __init__(
        self,
        preset: str = "three_cell",
        params: EnvParams | dict[str, Any] | None = None,
        pool: PoolParams | dict[str, Any] | None = None,
        reward: str = "metalore",
        render_mode: str | None = None,
        **overrides: Any,
    ) -> None:
        self.render_mode = check_render_mode(render_mode)
        if reward not in REWARDS:
            raise ValueError(f"invalid reward {reward!r}: choose one of {REWARDS}")
        control, overrides = split_control_overrides(overrides)
        self.control_options = ControlOptions.from_values(control)
        self.ps = build_pool_sim(preset, params, pool, overrides)
        self.params = self.ps.params
        self.pool_params = self.ps.pool_params
        self.reward_kind = reward
        n = self.ps.n_cells
        self.n_cells = n
        self._reward_code = REWARD_METALORE if reward == "metalore" else REWARD_FULFILLED
        self.control = PoolControl(self.ps, self.control_options, self._reward_code, False)
        if self.control.bounded_actions:
            low = np.tile(np.array([0.0, 0.0, -1.0], np.float32), (n, 1))
            high = np.ones((n, 3), np.float32)
            self.action_space = gym.spaces.Box(low, high, (n, 3), np.float32)
        else:  # residual outputs: unbounded corrections, clipped after adding the base
            self.action_space = gym.spaces.Box(-np.inf, np.inf, (n, 3), np.float32)
        self.n_features = self.control.n_features
        floor = 0.0 if self.control_options.obs == "basic" else -np.inf
        self.observation_space = gym.spaces.Box(floor, np.inf, (n, self.n_features), np.float32)

    def _start_episode(self, episode_seed: int) -> tuple[NDArray[np.float32], dict[str, Any]]:
        self.ps.reset(episode_seed)
        self.control.reset(episode_seed)
        return self._obs(), {}

    def step(self, action: Any) -> tuple[NDArray[np.float32], float, bool, bool, dict[str, Any]]:
        a = np.asarray(action, dtype=np.float64)
        if a.shape != (self.n_cells, 3):
            raise ValueError(f"action must have shape {(self.n_cells, 3)}, got {a.shape}")
        ps = self.ps
        split, share = self.control.act(a)
        ps.step(split, share)
        obs = self._obs()
        reward = self.control.total_reward
        truncated = ps.done
        info: dict[str, Any] = {
            "t": ps.t,
            "balance": ps.balance.copy(),
            "price": ps.last_price,
            "matched": ps.last_matched,
        }
        if truncated:
            info["civic"] = ps.metrics()
        return obs, reward, False, truncated, info

    def _obs(self) -> NDArray[np.float32]:
        return self.control.observe()

    def render(self) -> Any:
        """The current state: a frame (``rgb_array``), text (``ansi``) or None (no mode)."""
        return render_pool(self.ps, self.render_mode)


if __name__ == "__main__":
    for coop in (True, False):
        env = MetaLorePoolEnv("three_cell_hetero", cooperative=coop, endowment=10_000.0)
        env.reset(seed=0)
        act = np.array([[0.5, 0.5, -0.6], [0.4, 0.3, 0.3], [0.3, 0.4, 0.3]], np.float32)
        truncated = False
        while not truncated:
            step_out = env.step(act)
            truncated, last_info = step_out[3], step_out[4]
        m = last_info["civic"]
        print(f"cooperative={coop}: fulfillment {m['fulfillment_pct']:.1f} %, completion "
              f"{m['completion_pct']:.1f} %, served clients {m['served_clients']}, fairness "
              f"{m['fairness']:.3f}, cost {m['operational_cost']:.0f}")  # fmt: skip
