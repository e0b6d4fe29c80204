"""Per-cell multi-agent view of the credit pool: one agent per cell, a plain parallel API.

No RL library is imported here (the RLlib adapter is
``tune_configs.controllers.per_cell.PoolMultiAgentEnv``).
The API follows the common "parallel" convention: every agent acts at every step.

Run ``python -m envs.pool.multiagent`` to play one ``three_cell_hetero`` episode with the greedy
rule
(cooperative) and with the pool off, and print the fulfillment of both (about 99 % vs 50 % with a
large endowment, see :mod:`envs.core.pool.rules`). ``python -m envs.pool.multiagent --bench PRESET``
measures the env's throughput with random actions (:func:`bench`): env steps per second of wall
time and per CPU second (about 45,000 per CPU second for ``three_cell``).
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
from numpy.typing import NDArray

from envs.core.params import EnvParams
from envs.core.pool.clearing import PoolParams, resolve_pool, split_pool_overrides
from envs.core.pool.sim import PoolSimulator
from envs.metalore_env import check_render_mode, resolve_params
from envs.pool.control import GREEDY_SPLITS, ControlOptions, PoolControl, split_control_overrides
from envs.pool.obs import (
    FEATURES,
    REWARD_FULFILLED,
    REWARD_METALORE,
    TRADER_FEATURES,
    state_columns,
    with_city_summary,
    with_global_state,
)
from envs.render import RENDER_FPS, RENDER_MODES, pool_text, render_as, render_pool_frame

REWARDS = ("metalore", "fulfilled")
SCOPES = ("team", "mean", "local")
CRITICS = ("local", "central", "summary")


def render_pool(ps: PoolSimulator, render_mode: str | None) -> Any:
    """What ``render()`` of a pool env returns in ``render_mode`` (:mod:`envs.render`)."""
    return render_as(render_mode, ps, render_pool_frame, pool_text)


def agent_ids(n_cells: int) -> list[str]:
    return [f"cell_{i}" for i in range(n_cells)]


def build_pool_sim(
    preset: str,
    params: EnvParams | dict[str, Any] | None,
    pool: PoolParams | dict[str, Any] | None,
    overrides: dict[str, Any],
) -> PoolSimulator:
    """A :class:`PoolSimulator` from a preset / params, pool params and flat overrides of both."""
    pool_over, env_over = split_pool_overrides(overrides)
    env_params = resolve_params(preset, params, **env_over)
    if env_params.scenario.n_cells < 2:
        raise ValueError(
            f"the pool needs at least 2 cells, preset {preset!r} has "
            f"{env_params.scenario.n_cells}; use e.g. preset='three_cell'"
        )
    return PoolSimulator(env_params, resolve_pool(pool, **pool_over))


class _AgentSpaces:
    """Per-agent spaces of the parallel API, looked up in ``observation_spaces`` /
    ``action_spaces``."""

    observation_spaces: dict[str, gym.spaces.Box]
    action_spaces: dict[str, gym.spaces.Box]

    def observation_space(self, agent: str) -> gym.spaces.Box:
        return self.observation_spaces[agent]

    def action_space(self, agent: str) -> gym.spaces.Box:
        return self.action_spaces[agent]


class MultiCellPoolEnv(_AgentSpaces):
    """MetaLore cells sharing MEC compute through a credit pool, one agent per cell.

    ## Description
    Every cell (BS, MEC, sensors; UEs roam and hand over) is an agent. Each step each agent picks
    its split and its share action; the pool clears (see :mod:`envs.core.pool`) and the system
    advances one step (:class:`envs.core.pool.sim.PoolSimulator`).

    ## Action space (per agent)
    ``Box([0, 0, -1], [1, 1, 1], (3,), float32)``: ``(w_b, w_c, s)``: UE share of the cell's
    bandwidth and compute, and the share action (s > 0 offers s C, s < 0 asks |s| C units).
    Out-of-range values are clipped; NaN / infinite values raise ``ValueError``.

    ## Observation space (per agent)
    ``Box(-inf, inf, (6,), float32)``: own UE and sensor compute queue lengths, own credit balance,
    the last clearing's price and total matched units, and the agent's own net units lent in it
    (transformed by ``obs_mode``, see :mod:`envs.pool.obs`).

    With ``critic="central"`` every agent's observation is its own features followed by the
    global state (every cell's features without the identity columns, in cell order;
    :func:`envs.pool.obs.with_global_state`): ``own_features`` columns for the actor, all of them
    for a centralised critic (:mod:`tune_configs.controllers.critic`). ``critic="summary"``
    appends instead the mean and the largest value over every cell of each of those columns
    (:func:`envs.pool.obs.with_city_summary`): a centralised critic's input of one size for any
    number of cells. The default ``"local"`` keeps the
    own features only.

    ## Rewards
    ``reward="metalore"`` (default): the MetaLore reward (``docs/model/cell.md#reward``) of the
    cell's completed UE jobs; ``"fulfilled"``: the number of its jobs completed with AoRI <= tau
    and AoSI <= sigma.
    ``scope="team"`` (default): every agent receives the sum over all cells (cooperative);
    ``"mean"``: the mean over all cells (the same team objective, on one scale whatever the number
    of cells, for a policy trained on several layouts); ``"local"``: its own cell's.

    ## Episode end
    Never terminated; every agent is truncated after ``episode_steps``. The truncating step
    returns the final observation of every agent, and every agent's info holds ``"civic"``: the
    episode's CIVIC metrics (:mod:`envs.core.pool.civic`). ``agents`` is then empty until ``reset``.

    With ``obs="trader"`` the observation is the trader features of :mod:`envs.pool.obs`
    (plus a one-hot cell identity unless ``identity=False``); with ``action_mode="residual"``
    the action is an unbounded correction on top of the greedy rule (:mod:`envs.core.pool.
    actions`); see :class:`envs.pool.control.ControlOptions` for these and the reward options.

    ## Arguments
    ``MultiCellPoolEnv(preset="three_cell", params=None, pool=None, reward="metalore",
    scope="team", critic="local", **overrides)``: overrides may name any EnvParams field
    (``n_ues=20``, ``obs_mode="log1p"``), PoolParams field (``cooperative=False``,
    ``endowment=1000``) or control option (``obs="trader"``, ``action_mode="residual"``,
    ``reward_scale=0.1``).

    ``render_mode="rgb_array"`` / ``"ansi"``: ``render()`` shows every cell as the central
    env's does (:mod:`envs.render`).

    ## Version history
    * v0: initial version; control options added later (their defaults keep the original
      observation, action and reward, so the version stays); rendering added.
    """

    metadata: dict[str, Any] = {  # noqa: RUF012
        "name": "metalore_pool_v0",
        "render_modes": RENDER_MODES,
        "render_fps": RENDER_FPS,
    }

    def __init__(
        self,
        preset: str = "three_cell",
        params: EnvParams | dict[str, Any] | None = None,
        pool: PoolParams | dict[str, Any] | None = None,
        reward: str = "metalore",
        scope: str = "team",
        critic: str = "local",
        render_mode: str | None = None,
        **overrides: Any,
    ) -> None:
        self.render_mode = check_render_mode(render_mode)
        if critic not in CRITICS:
            raise ValueError(f"invalid critic {critic!r}: choose one of {CRITICS}")
        if reward not in REWARDS:
            raise ValueError(f"invalid reward {reward!r}: choose one of {REWARDS}")
        if scope not in SCOPES:
            raise ValueError(f"invalid scope {scope!r}: choose one of {SCOPES}")
        control, overrides = split_control_overrides(overrides)
        self.control_options = ControlOptions.from_values(control)
        if self.control_options.permute_cells:
            raise ValueError("permute_cells is an option of the central env only")
        self.ps = build_pool_sim(preset, params, pool, overrides)
        self.params = self.ps.params
        self.pool_params = self.ps.pool_params
        self.reward_kind = reward
        self.scope = scope
        self.n_cells = self.ps.n_cells
        self.possible_agents: list[str] = agent_ids(self.n_cells)
        self.agents: list[str] = []
        self._reward_code = REWARD_METALORE if reward == "metalore" else REWARD_FULFILLED
        self.control = PoolControl(self.ps, self.control_options, self._reward_code, True)
        self.control_options = self.control.options  # on this layout (base_splits="greedy")
        if self.control.bounded_actions:
            act = gym.spaces.Box(
                np.array([0.0, 0.0, -1.0], np.float32), np.array([1.0, 1.0, 1.0], np.float32),
                (3,), np.float32,
            )  # fmt: skip
        else:  # residual outputs: unbounded corrections, clipped after adding the base
            act = gym.spaces.Box(-np.inf, np.inf, (3,), np.float32)
        self.critic = critic
        self.own_features = self.control.n_features
        self._state_cols = state_columns(self.control.observer) if critic != "local" else 0
        width = self.n_cells if critic == "central" else 2  # "summary": mean and max over cells
        n_obs = self.own_features + width * self._state_cols
        obs = gym.spaces.Box(-np.inf, np.inf, (n_obs,), np.float32)
        self.action_spaces = dict.fromkeys(self.possible_agents, act)
        self.observation_spaces = dict.fromkeys(self.possible_agents, obs)
        self.features = FEATURES if self.control_options.obs == "basic" else TRADER_FEATURES
        self._raw = np.zeros((self.n_cells, 3))
        self._rng = np.random.default_rng()
        self.episode_seed: int | None = None

    # ------------------------------------------------------------------------------------------
    def reset(
        self, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[dict[str, NDArray[np.float32]], dict[str, dict[str, Any]]]:
        """Start an episode; ``seed`` makes it a pure function of the seed (None: draw one)."""
        if seed is not None:
            self._rng = np.random.default_rng(seed)
            self.episode_seed = int(seed)
        else:
            self.episode_seed = int(self._rng.integers(0, 2**63 - 1))
        self.ps.reset(self.episode_seed)
        self.control.reset(self.episode_seed)
        self.agents = list(self.possible_agents)
        obs = self._observe()
        ids = self.possible_agents
        return (
            {a: obs[i] for i, a in enumerate(ids)},
            {a: {"episode_seed": self.episode_seed} for a in ids},
        )

    def step(self, actions: dict[str, Any]) -> tuple[
        dict[str, NDArray[np.float32]], dict[str, float], dict[str, bool], dict[str, bool],
        dict[str, dict[str, Any]],
    ]:  # fmt: skip
        """Apply every agent's ``(w_b, w_c, s)``; returns the parallel-API 5-tuple of dicts."""
        if not self.agents:
            raise RuntimeError("the episode is over (or never started): call reset()")
        raw = self._raw
        ids = self.possible_agents
        try:
            for i, a in enumerate(ids):
                act = actions[a]
                raw[i, 0] = act[0]
                raw[i, 1] = act[1]
                raw[i, 2] = act[2]
        except KeyError as exc:
            raise ValueError(f"missing action for agent {exc}; agents: {ids}") from None
        except (IndexError, TypeError, ValueError):
            raise ValueError(f"every action must be (w_b, w_c, s), got {dict(actions)!r}") from None
        if len(actions) != len(ids):
            extra = sorted(set(actions) - set(ids))
            raise ValueError(f"actions for unknown agents {extra}; agents: {ids}")
        ps = self.ps
        control = self.control
        split, share = control.act(raw)
        ps.step(split, share)
        obs = self._observe()
        if self.scope == "team":
            rewards = dict.fromkeys(ids, control.total_reward)
        elif self.scope == "mean":
            rewards = dict.fromkeys(ids, control.total_reward / self.n_cells)
        else:
            vals = control.rewards.tolist()
            rewards = {a: vals[i] for i, a in enumerate(ids)}
        done = ps.done
        observations = {a: obs[i] for i, a in enumerate(ids)}
        if done:
            civic = ps.metrics()
            infos: dict[str, dict[str, Any]] = {a: {"civic": civic} for a in ids}
            self.agents = []
        else:
            infos = {a: {} for a in ids}
        return (
            observations,
            rewards,
            dict.fromkeys(ids, False),
            dict.fromkeys(ids, done),
            infos,
        )

    def _observe(self) -> NDArray[np.float32]:
        feats = self.control.observe()
        if self.critic == "central":
            return with_global_state(feats, self._state_cols)
        if self.critic == "summary":
            return with_city_summary(feats, self._state_cols)
        return feats

    def render(self) -> Any:
        """The current state: a frame (``rgb_array``), text (``ansi``) or None (no mode)."""
        return render_pool(self.ps, self.render_mode)

    def episode_metrics(self) -> dict[str, Any]:
        """CIVIC metrics of the episode so far."""
        return self.ps.metrics()

    def close(self) -> None:
        pass


class MixedCellPoolEnv(_AgentSpaces):
    """Several pool layouts behind one per-cell env: each episode plays one of them.

    ``MixedCellPoolEnv(mix=("three_cell_hetero", "city_49"), **kwargs)`` builds one
    :class:`MultiCellPoolEnv` per preset of ``mix`` with the same ``kwargs`` (their ``preset``
    ignored). Every ``reset`` draws the episode's layout uniformly from the seeded generator and
    the episode seed from it too, so a sequence of episodes is a function of the first seed. Its
    agents are the layout's cells; ``possible_agents`` are those of the largest layout. Every
    layout must give the same observation and action spaces: a policy shared by every cell
    without a one-hot identity (``identity=False``) and a local or summary critic; residual
    actions start from no base splits or from each layout's own greedy splits
    (``base_splits="greedy"``).

    ``env`` is the layout being played (its ``ps``, ``n_cells``, ``control``...); ``layout`` its
    preset name.
    """

    def __init__(self, mix: tuple[str, ...] | list[str], **kwargs: Any) -> None:
        names = [str(m) for m in mix]
        if not names:
            raise ValueError("mix needs at least one preset")
        kwargs.pop("preset", None)
        if kwargs.get("critic") == "central":
            raise ValueError(
                "a mix of layouts needs critic=local or summary (the central critic's global "
                "state grows with the cells)"
            )
        if kwargs.get("base_splits") and kwargs["base_splits"] != GREEDY_SPLITS:
            raise ValueError(
                "a mix of layouts cannot use fixed base_splits (one split per cell of one "
                'layout): leave base_splits unset or "greedy" (each layout\'s own)'
            )
        self.envs = [MultiCellPoolEnv(preset=n, **kwargs) for n in names]
        self.names = names
        first = self.envs[0]
        want = first.observation_space("cell_0").shape
        for name, e in zip(names, self.envs, strict=True):
            got = e.observation_space("cell_0").shape
            if got != want:  # the action space is (3,) on every layout
                raise ValueError(
                    f"mix preset {name!r} gives observations {got} where {names[0]!r} gives "
                    f"{want}: a mix needs identity=false (the spaces of every layout must agree)"
                )
        largest = max(self.envs, key=lambda e: e.n_cells)
        self.possible_agents: list[str] = list(largest.possible_agents)
        self.observation_spaces = dict(largest.observation_spaces)
        self.action_spaces = dict(largest.action_spaces)
        self.env = first
        self.layout = names[0]
        self._rng = np.random.default_rng()

    @property
    def agents(self) -> list[str]:
        return self.env.agents

    @property
    def ps(self) -> PoolSimulator:
        return self.env.ps

    @property
    def n_cells(self) -> int:
        return self.env.n_cells

    def reset(
        self, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[dict[str, NDArray[np.float32]], dict[str, dict[str, Any]]]:
        """Draw the layout and the episode seed, then reset that layout's env."""
        if seed is not None:
            self._rng = np.random.default_rng(seed)
        k = int(self._rng.integers(len(self.envs)))
        self.env, self.layout = self.envs[k], self.names[k]
        obs, infos = self.env.reset(seed=int(self._rng.integers(0, 2**63 - 1)), options=options)
        for info in infos.values():
            info["layout"] = self.layout
        return obs, infos

    def step(self, actions: dict[str, Any]) -> tuple[
        dict[str, NDArray[np.float32]], dict[str, float], dict[str, bool], dict[str, bool],
        dict[str, dict[str, Any]],
    ]:  # fmt: skip
        out = self.env.step(actions)
        if self.env.ps.done:
            for info in out[4].values():
                info["layout"] = self.layout
        return out

    def render(self) -> Any:
        return self.env.render()

    def episode_metrics(self) -> dict[str, Any]:
        return self.env.episode_metrics()

    def close(self) -> None:
        for e in self.envs:
            e.close()


def make_pool_env(**kwargs: Any) -> MultiCellPoolEnv | MixedCellPoolEnv:
    """The per-cell pool env of flat keyword arguments: a :class:`MixedCellPoolEnv` when they
    name a non-empty ``mix`` of presets, else a :class:`MultiCellPoolEnv`."""
    mix = mix_presets(kwargs.pop("mix", None))
    return MixedCellPoolEnv(mix, **kwargs) if mix else MultiCellPoolEnv(**kwargs)


def mix_presets(value: Any) -> list[str]:
    """The presets of a ``mix`` value: a list, or one string ``"a,b"`` (``--set mix=a,b``);
    ``[]`` for none."""
    if not value:
        return []
    if isinstance(value, str):
        return [m.strip() for m in value.split(",") if m.strip()]
    return [str(m) for m in value]


def bench(
    env: MultiCellPoolEnv | str = "three_cell",
    episodes: int = 200,
    seed: int = 0,
    actions: list[dict[str, NDArray[np.float32]]] | None = None,
) -> dict[str, float]:
    """Steps per second (wall and CPU) of a :class:`MultiCellPoolEnv` (or a preset's, with
    ``log1p`` observations) over ``episodes`` episodes after a warm-up episode; ``actions``
    cycled through, default 64 random ones."""
    import time

    if isinstance(env, str):
        env = MultiCellPoolEnv(env, obs_mode="log1p")
    if actions is None:
        rng = np.random.default_rng(seed)
        actions = [
            {a: np.array([rng.random(), rng.random(), rng.uniform(-1, 1)], np.float32)
             for a in env.possible_agents}
            for _ in range(64)
        ]  # fmt: skip
    env.reset(seed=seed)  # compile / warm up
    while env.agents:
        env.step(actions[0])
    n = 0
    wall, cpu = time.perf_counter(), time.process_time()
    for e in range(episodes):
        env.reset(seed=seed + e)
        while env.agents:
            env.step(actions[n % len(actions)])
            n += 1
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    return {"steps": n, "steps_per_s": n / wall, "steps_per_cpu_s": n / max(cpu, 1e-9)}


if __name__ == "__main__":
    import sys

    from envs.core.pool.rules import GreedyRule

    if len(sys.argv) >= 2 and sys.argv[1] == "--bench":
        for name in sys.argv[2:] or ["three_cell"]:
            r = bench(name)
            print(f"{name}: {r['steps']} steps, {r['steps_per_s']:,.0f} steps/s wall, "
                  f"{r['steps_per_cpu_s']:,.0f} steps per CPU second")  # fmt: skip
        sys.exit(0)

    for coop in (True, False):
        env = MultiCellPoolEnv("three_cell_hetero", cooperative=coop, endowment=10_000.0)
        obs, _ = env.reset(seed=0)
        rule = GreedyRule(low=0.2, high=0.5)
        s = env.params.scenario
        while env.agents:
            q = np.array([[env.ps.queues()[i, 0], env.ps.queues()[i, 1]] for i in range(3)])
            sh = rule.share(q, env.ps.pool.cap, (s.ue_compute_mean, s.sensor_compute_mean))
            splits = ((0.5, 0.5), (0.4, 0.3), (0.3, 0.4))
            acts = {a: np.array([*splits[i], sh[i]]) for i, a in enumerate(env.possible_agents)}
            obs, rew, term, trunc, info = env.step(acts)
        m = info["cell_0"]["civic"]
        print(f"cooperative={coop}: fulfillment {m['fulfillment_pct']:.1f} %, "
              f"completion {m['completion_pct']:.1f} %, served clients {m['served_clients']}, "
              f"fairness {m['fairness']:.3f}, cost {m['operational_cost']:.0f}")  # fmt: skip
