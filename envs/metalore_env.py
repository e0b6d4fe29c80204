"""Gymnasium environment of the MetaLore sub-metaverse (``MetaLore-v0``).

Run ``python -m envs.metalore_env`` to step one paper episode with the heuristic split and print
its summary (sync delay about 19, E2E delay about 2, served about 98 %).
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
from numpy.typing import NDArray

from envs.core.metrics import K_PEN, K_SYNC_R, KPI_NAMES
from envs.core.params import EnvParams
from envs.core.presets import make_params
from envs.core.sim import Simulator
from envs.core.traffic import TR_REGIME
from envs.render import RENDER_FPS, RENDER_MODES, cell_text, render_as, render_cell_frame

# The per-cell KPIs a step's ``info`` carries, by their names in ``envs.core.metrics.KPI_NAMES``.
_INFO_NAMES = (
    "queue_ue", "queue_sensor", "ue_generated", "ue_completed", "sync_reward", "delay_penalty",
    "sum_aosi", "sum_aori", "uplink_ue", "uplink_sensor", "w_b", "w_c",
)  # fmt: skip
_INFO_COLUMNS = tuple((name, KPI_NAMES.index(name)) for name in _INFO_NAMES)


def next_episode_seed(np_random: np.random.Generator, seed: int | None) -> int:
    """The episode seed of a ``reset``: ``seed`` itself, or (``reset()`` without a seed) the next
    draw of the env's generator, so a run of unseeded resets follows the last seeded one."""
    return int(seed) if seed is not None else int(np_random.integers(0, 2**63 - 1))


class SeededEnv(gym.Env[NDArray[np.float32], NDArray[np.float32]]):
    """The ``reset`` of the MetaLore Gymnasium envs: each episode is a pure function of its episode
    seed (:func:`next_episode_seed`), which ``info["episode_seed"]`` reports; a subclass starts
    its simulator in :meth:`_start_episode`."""

    episode_seed: int | None = None

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[NDArray[np.float32], dict[str, Any]]:
        super().reset(seed=seed)
        self.episode_seed = next_episode_seed(self.np_random, seed)
        obs, info = self._start_episode(self.episode_seed)
        return obs, {"episode_seed": self.episode_seed, **info}

    def _start_episode(self, episode_seed: int) -> tuple[NDArray[np.float32], dict[str, Any]]:
        """Start episode ``episode_seed``: the first observation and the rest of the info."""
        raise NotImplementedError


def check_render_mode(render_mode: str | None) -> str | None:
    """``render_mode`` if the envs support it (None, ``"rgb_array"``, ``"ansi"``)."""
    if render_mode is not None and render_mode not in RENDER_MODES:
        raise ValueError(
            f"render_mode {render_mode!r} is not supported; choose one of {RENDER_MODES}"
        )
    return render_mode


def resolve_params(
    preset: str = "paper", params: EnvParams | dict[str, Any] | None = None, **overrides: Any
) -> EnvParams:
    """Parameters from a preset name, or an ``EnvParams`` / its ``to_dict()``, plus overrides."""
    if params is None:
        return make_params(preset, **overrides)
    if isinstance(params, dict):
        params = EnvParams.from_dict(params)
    return make_params(params, **overrides) if overrides else params


def obs_shape(params: EnvParams) -> tuple[int, ...]:
    """Observation shape: ``(width,)`` for one cell, ``(n_cells, width)`` for several."""
    n, w = params.scenario.n_cells, params.obs_width
    return (w,) if n == 1 else (n, w)


def action_space(params: EnvParams) -> gym.spaces.Box:
    """``Box(0, 1)`` of the shares, or ``Box(-1, 1)`` of the corrections (residual mode)."""
    n = params.scenario.n_cells
    low = -1.0 if params.action_mode == "residual" else 0.0
    return gym.spaces.Box(low, 1.0, (2,) if n == 1 else (n, 2), np.float32)


class MetaLoreEnv(SeededEnv):
    """MetaLore: joint bandwidth and MEC-compute split between mobile UEs and IoT sensors.

    ## Description
    A sub-metaverse: a base station (BS) with an edge server (MEC) serves mobile UEs that send
    service requests and static sensors that send periodic updates (the digital twin's input). Jobs
    queue in each device's FIFO uplink queue, then in the BS's UE or sensor compute queue. A UE
    job may only start processing once its covering sensor has a completed update at the MEC (the
    sync gate). Model, every number and the step order: ``docs/model/cell.md``; source
    paper: Ohri et al., "MetaLore: Learning to Orchestrate Communication and Computation for
    Metaverse Synchronization". With several cells (``n_cells > 1``) each cell has its own BS,
    MEC and sensors and UEs attach to the nearest BS every step.

    ## Action space
    ``Box(0, 1, (2,), float32)`` for one cell, ``(n_cells, 2)`` for several: ``(w_b, w_c)``, the UE
    share of bandwidth and of MEC compute; sensors get the rest. Finite values outside [0, 1] are
    clipped; NaN, infinities or a wrong shape raise ``ValueError``.

    ## Observation space
    ``Box(0, inf, (2,), float32)`` (``(n_cells, 2)`` for several cells): the BS's UE and sensor
    compute queue lengths in jobs after the step (a partly processed head job counts); ``reset``
    returns zeros. ``obs_mode="log1p"`` or ``"scaled"`` (divided by ``obs_scale``) transform them
    for learning; ``"raw"`` (default) is the paper's.

    The observation never shows the traffic regime or the drawn traffic (see "Arguments").
    ``obs_uplink=True`` widens it to 4 entries per cell: the two queues, then the jobs waiting in
    the UE and in the sensor uplink queues (same transform); ``obs_age=True`` appends the mean
    age, over the cell's active sensors, of the latest update completed at the MEC (steps).

    ``action_mode="residual"``: the action is a correction ``a`` in ``Box(-1, 1)`` (clipped) on
    the queue-aware rule ``residual_rule`` = (w_b, lo, hi, k) of the queues the last observation
    showed: ``w = clip(rule + residual_scale * a, 0, 1)``; a zero action is the rule exactly.
    ``reward_scale`` multiplies the reward returned by ``step`` (the KPIs and the episode
    metrics are unscaled).

    ## Rewards
    Per step, over the UE jobs completed in it: ``R_s delta^AoSI + p_d 1(AoRI > tau)`` with
    AoSI the synchronisation delay and AoRI the end-to-end delay of the job (``sync_reward``,
    ``delta``, ``penalty``, ``delay_threshold``).

    ## Episode end
    Never terminated; truncated after ``episode_steps`` (100) steps. The last step's ``info``
    carries ``episode_metrics`` (sync delay, E2E delay, served %, return, jobs left queued, ...).

    ## Arguments
    ``gymnasium.make("MetaLore-v0", preset="paper", **overrides)``: ``preset`` names a scenario
    (``envs.core.PRESETS``); every parameter field can be overridden by name (``delta=0.5``,
    ``n_ues=20``, ``mec_capacity=80``); ``params=`` takes an ``EnvParams`` or its ``to_dict()``.
    ``reset(seed=s)`` makes the episode a pure function of ``s``; ``reset()`` without a seed
    draws the next episode seed from the generator of the last seeded reset.

    Traffic that varies (``docs/model/traffic.md``): with regimes (``preset="paper_dynamic"`` or
    the ``regime_*`` fields) the UE job probability, active UEs and sensor interval switch between
    regimes at random times; ``info["regime"]`` (reset and every step) is the regime in force
    during the step. With ``traffic_randomize=True`` (``preset="paper_random"``) each episode
    draws its traffic from the ``rand_*`` ranges at reset; ``info["traffic"]`` of ``reset``
    holds the draw.

    ``render_mode="rgb_array"``: ``render()`` returns the current state as a
    ``(400, 640, 3)`` ``uint8`` frame (map of BS, sensors and UEs with their jobs in flight,
    bars for the uplink and MEC queues, the applied ``(w_b, w_c)``, the regime; see
    :mod:`envs.render`); ``"ansi"`` returns the same as text. Rendering never changes an episode
    and costs nothing until ``render()`` is called.

    ## Version history
    * v0: initial version (model of 2026-11); traffic regimes and randomisation, the uplink
      observation, the residual action and the reward scale added as options (the defaults are
      unchanged); rendering added (no change to the dynamics).
    """

    metadata: dict[str, Any] = {"render_modes": RENDER_MODES, "render_fps": RENDER_FPS}  # noqa: RUF012

    def __init__(
        self,
        preset: str = "paper",
        params: EnvParams | dict[str, Any] | None = None,
        render_mode: str | None = None,
        **overrides: Any,
    ) -> None:
        self.render_mode = check_render_mode(render_mode)
        self.params = resolve_params(preset, params, **overrides)
        self.sim = Simulator(self.params)
        self.action_space = action_space(self.params)
        self._shape: tuple[int, ...] = self.action_space.shape
        self._cell_shape = (self.params.scenario.n_cells, 2)
        self._obs_shape = obs_shape(self.params)
        self.observation_space = gym.spaces.Box(0.0, np.inf, self._obs_shape, np.float32)
        self._obs_view = self.sim.obs.reshape(self._obs_shape)  # the kernel writes it every step
        self._reward_scale = self.params.reward_scale
        self._info_names = [name for name, _ in _INFO_COLUMNS]
        self._info_cols = [col for _, col in _INFO_COLUMNS]
        self._regimes = self.params.scenario.has_regimes

    def _start_episode(self, episode_seed: int) -> tuple[NDArray[np.float32], dict[str, Any]]:
        self.sim.reset(episode_seed)
        info: dict[str, Any] = {}
        if self.params.scenario.traffic_randomize:
            info["traffic"] = dict(self.sim.traffic)
        if self._regimes:
            info["regime"] = int(self.sim.trf[TR_REGIME])
        return np.zeros(self._obs_shape, np.float32), info

    def step(self, action: Any) -> tuple[NDArray[np.float32], float, bool, bool, dict[str, Any]]:
        a = np.array(action, dtype=np.float64)  # a private C-contiguous copy
        if a.shape != self._shape:
            raise ValueError(f"action must have shape {self._shape}, got {a.shape}")
        sim = self.sim
        sim.step(a.reshape(self._cell_shape))
        kpi = sim.kpi
        info: dict[str, Any]
        if kpi.shape[0] == 1:
            row = kpi[0].tolist()
            reward = row[K_SYNC_R] + row[K_PEN]
            info = dict(zip(self._info_names, [row[c] for c in self._info_cols], strict=True))
        else:
            reward = float(kpi[:, K_SYNC_R].sum() + kpi[:, K_PEN].sum())
            info = {name: kpi[:, col].copy() for name, col in _INFO_COLUMNS}
        if self._reward_scale != 1.0:
            reward *= self._reward_scale
        info["t"] = sim.t
        if self._regimes:
            info["regime"] = int(sim.trf[TR_REGIME])  # in force during this step
        truncated = sim.t >= sim.horizon
        if truncated:
            info["episode_metrics"] = sim.summary()
        return self._obs_view.copy(), reward, False, truncated, info

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._obs_view = self.sim.obs.reshape(self._obs_shape)  # pickling copied the view apart

    def render(self) -> Any:
        """The current state: a frame (``rgb_array``), text (``ansi``) or None (no mode)."""
        return render_as(self.render_mode, self.sim, render_cell_frame, cell_text)

    def raw_queues(self) -> NDArray[np.float64]:
        """Untransformed queue lengths ``(n_cells, 2)`` (whatever ``obs_mode`` is)."""
        return self.sim.queue_lengths().copy()


if __name__ == "__main__":
    env = MetaLoreEnv()
    env.reset(seed=0)
    heuristic = env.params.scenario.heuristic_split
    while True:
        step = env.step(np.array([heuristic, heuristic]))
        info = step[4]
        if step[3]:
            break
    for key, value in info["episode_metrics"].items():
        print(f"{key:>20}: {value}")
