"""Replays: controllers acting on one episode, side by side (``python -m launch replay``).

A controller is named one way on the command line (:func:`parse_spec`):

* a trained policy by its path: a shipped directory (``models/paper/adaptive``,
  ``models/pool/three_cell_hetero``) or a checkpoint (``OUT/checkpoint``); the controller registry
  (:func:`tune_configs.controllers.controller_of_checkpoint`) tells single-cell from pool
  policies, and they load as ``launch eval`` loads them (numpy only for shipped ones);
* a static split ``split:W_B,W_C`` (every cell), or one per cell ``split:B,C;B,C;...``;
* a rule: ``rule:queue_aware`` (our backlog-balancing rule, default parameters),
  ``rule:heuristic`` (the paper's heuristic split) or, on the credit pool, ``rule:greedy`` (the
  greedy share rule; its splits are a pool policy's ``base_splits`` when the policy is replayed
  on its training scenario, else the rule's own split search on tuning seeds, about 10 s) or
  ``rule:greedy:B,C;B,C;...`` (given splits).

Every controller runs on the same scenario and episode seed (common random numbers: the traffic
does not depend on the actions), so the episodes differ only by what the controllers do. A
single-cell policy acts through its interface (observation transform, action mapping) on the
scenario it is replayed on; the rules see the raw queues. The replay is a single-cell one
(``MetaLore-v0``, one or several cells) unless a controller is a pool policy or the greedy rule:
then every controller acts on the credit pool (:class:`envs.core.pool.sim.PoolSimulator`).

:func:`run_replay` returns the traces (:class:`analysis.replay.EpisodeTrace`) with the rendered
frames; :func:`analysis.replay.write_replay` writes the figure, the video and the CSV.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from analysis.replay import EpisodeTrace, Recorder

POLICY, SPLIT, RULE = "policy", "split", "rule"
CELL_RULES = ("queue_aware", "heuristic")
POOL_RULES = ("greedy",)
SPEC_FORMS = (
    "a policy directory (shipped or a checkpoint), split:W_B,W_C, split:B,C;B,C;..., "
    "rule:queue_aware, rule:heuristic, rule:greedy or rule:greedy:B,C;B,C;..."
)
DEFAULT_CELL_PRESET, DEFAULT_POOL_PRESET = "paper", "three_cell_hetero"
Splits = tuple[tuple[float, float], ...]


class SpecError(ValueError):
    """A controller spec that names no controller."""


@dataclass(frozen=True)
class ControllerSpec:
    """One controller as named on the command line."""

    text: str
    kind: str  # POLICY, SPLIT or RULE
    path: Path | None = None
    splits: Splits = ()  # SPLIT, or the greedy rule's given splits
    rule: str = ""
    pool: bool = False  # acts on the credit pool


def _splits(text: str, spec: str) -> Splits:
    out = []
    for part in text.split(";"):
        values = part.split(",")
        try:
            pair = tuple(float(v) for v in values)
        except ValueError:
            pair = ()
        if len(pair) != 2 or not all(math.isfinite(v) and 0.0 <= v <= 1.0 for v in pair):
            raise SpecError(
                f"controller {spec!r}: {part!r} is not W_B,W_C with both shares in [0, 1]"
            )
        out.append((pair[0], pair[1]))
    return tuple(out)


def parse_spec(text: str) -> ControllerSpec:
    """The controller ``text`` names (:class:`SpecError`, a ``ValueError``, if none)."""
    if text.startswith("split:"):
        return ControllerSpec(text, SPLIT, splits=_splits(text[len("split:") :], text))
    if text.startswith("rule:"):
        name, _, rest = text[len("rule:") :].partition(":")
        if name not in CELL_RULES + POOL_RULES:
            raise SpecError(
                f"controller {text!r}: unknown rule {name!r}; rules: "
                + ", ".join(CELL_RULES + POOL_RULES)
            )
        if rest and name != "greedy":
            raise SpecError(f"controller {text!r}: rule {name} takes no parameters")
        splits = _splits(rest, text) if rest else ()
        return ControllerSpec(text, RULE, splits=splits, rule=name, pool=name in POOL_RULES)
    path = Path(text).expanduser()
    if not path.is_dir():
        raise SpecError(f"controller {text!r} is not a directory; a controller is {SPEC_FORMS}")
    from tune_configs.controllers import POOL_CONTROLLERS, controller_of_checkpoint
    from tune_configs.policies.checkpoint import MODULE_DIR, read_sidecar
    from tune_configs.policies.shipped import is_shipped

    if not (is_shipped(path) or read_sidecar(path) is not None or (path / MODULE_DIR).is_dir()):
        raise SpecError(
            f"controller {text!r} holds no policy (neither a shipped policy nor an RLlib "
            f"checkpoint); a controller is {SPEC_FORMS}"
        )
    try:
        controller = controller_of_checkpoint(path)
    except (ValueError, OSError) as exc:
        raise SpecError(f"controller {text!r}: {exc}") from None
    pool = controller.name in POOL_CONTROLLERS or controller.run_kind_prefix == "pool-"
    return ControllerSpec(text, POLICY, path=path, pool=pool)


@dataclass
class Replay:
    """What :func:`run_replay` produced."""

    traces: list[EpisodeTrace]
    pool: bool
    preset: str
    seed: int
    scenario: str  # one line: which scenario
    regimes: str = ""  # one line: the traffic of each regime (if any)
    notes: list[str] = field(default_factory=list)

    @property
    def title(self) -> str:
        return f"{self.scenario}, episode seed {self.seed}"

    def meta(self) -> dict[str, Any]:
        return {
            "kind": "replay",
            "pool": self.pool,
            "preset": self.preset,
            "seed": self.seed,
            "scenario": self.scenario,
            "controllers": [tr.controller for tr in self.traces],
            "notes": self.notes,
        }


def regime_text(params: Any) -> str:
    """``R0: p_job 0.3, 4 UEs, update every 2; R1: ...`` for a scenario with regimes."""
    from envs.core.traffic import regime_array

    s = params.scenario
    if not s.has_regimes:
        return ""
    parts = [
        f"R{r}: p_job {p:.2g}, {int(n)} UEs, update every {int(i)}"
        for r, (p, n, i) in enumerate(regime_array(s))
    ]
    return "regimes (bands): " + "; ".join(parts)


def run_replay(
    specs: Sequence[ControllerSpec],
    seed: int,
    preset: str | None = None,
    overrides: Mapping[str, Any] | None = None,
    frames: bool = True,
    say: Callable[[str], None] = lambda _msg: None,
) -> Replay:
    """Every controller of ``specs`` on episode ``seed`` of one scenario (``preset`` plus
    ``overrides``; without a preset the first policy's evaluation scenario, else
    :data:`DEFAULT_CELL_PRESET` / :data:`DEFAULT_POOL_PRESET`)."""
    if not specs:
        raise SpecError("name at least one controller")
    names = [s.text for s in specs]
    if len(set(names)) < len(names):
        raise SpecError(f"a controller is named twice: {', '.join(names)}")
    overrides = dict(overrides or {})
    if any(s.pool for s in specs):
        return _pool_replay(specs, seed, preset, overrides, frames, say)
    return _cell_replay(specs, seed, preset, overrides, frames)


# --- single-cell env (one or several cells, no pool) -------------------------------------------
def _cell_replay(
    specs: Sequence[ControllerSpec], seed: int, preset: str | None, overrides: dict[str, Any],
    frames: bool,
) -> Replay:  # fmt: skip
    from tune_configs.env import env_creator, params_from_env_config
    from tune_configs.policies.interface import SINGLE_INTERFACE
    from tune_configs.policies.single import load_policy

    asked = {**({"preset": preset} if preset else {}), **overrides}
    policies = {}
    for spec in specs:
        if spec.kind == POLICY:
            assert spec.path is not None
            policies[spec.text] = load_policy(spec.path, **asked)
    if policies:  # the rules get the first policy's scenario and reward setting
        first = next(iter(policies.values()))
        scenario = {k: v for k, v in first.env_config.items() if k not in SINGLE_INTERFACE}
        describe = first.evaluation.describe() if first.evaluation else str(first.preset)
    else:
        scenario = {"preset": preset or DEFAULT_CELL_PRESET, **overrides}
        describe = f"preset {scenario['preset']}" + "".join(
            f" {k}={v}" for k, v in overrides.items()
        )
    params = params_from_env_config(scenario)
    traces = []
    for spec in specs:
        act: Callable[[Any, Any], Any]
        if spec.kind == POLICY:
            policy = policies[spec.text]
            env = env_creator(policy.env_config)
            act = _policy_act(policy)
        else:
            env = env_creator(scenario)
            act = _cell_rule(spec, params)
        traces.append(_cell_episode(spec.text, env, act, seed, frames))
    return Replay(traces, False, str(scenario.get("preset", DEFAULT_CELL_PRESET)), seed,
                  describe, regime_text(params))  # fmt: skip


def _policy_act(policy: Any) -> Callable[[Any, Any], Any]:
    """A single-cell policy's deterministic action for one observation."""
    return lambda obs, _env: policy.act(np.asarray(obs, dtype=np.float32)[None])[0]


def _cell_rule(spec: ControllerSpec, params: Any) -> Callable[[Any, Any], Any]:
    from envs.core.policies import heuristic, queue_aware

    n_cells = params.scenario.n_cells
    shape = (2,) if n_cells == 1 else (n_cells, 2)
    if spec.kind == SPLIT:
        if len(spec.splits) not in (1, n_cells):
            raise SpecError(
                f"controller {spec.text!r}: {len(spec.splits)} splits for {n_cells} cells"
            )
        fixed = np.resize(np.asarray(spec.splits, dtype=np.float64), (n_cells, 2)).reshape(shape)
        return lambda _obs, _env: fixed
    rule = queue_aware() if spec.rule == "queue_aware" else heuristic(params)
    return lambda _obs, env: rule.act(env.raw_queues()).reshape(shape)


def _cell_episode(
    name: str, env: Any, act: Callable[[Any, Any], Any], seed: int, frames: bool
) -> EpisodeTrace:
    obs, _ = env.reset(seed=seed)
    rec = Recorder(name, env.sim, frames=frames)
    rec.start()
    info: dict[str, Any] = {}
    done = False
    while not done:
        obs, _, terminated, truncated, info = env.step(act(obs, env))
        rec.step()
        done = terminated or truncated
    return rec.finish(info.get("episode_metrics", env.sim.summary()))


# --- the credit pool ----------------------------------------------------------------------------
def _pool_policy(spec: ControllerSpec, asked: Mapping[str, Any]) -> tuple[Any, Any, Any]:
    """``(controller, its PoolSimulator, evaluation)`` of a pool policy: the simulator built
    from the policy's evaluation env config, as ``launch eval`` builds it."""
    from tune_configs.controllers import pool_policy_to_evaluate

    policy, ps, evaluation, _ = pool_policy_to_evaluate(spec.path, asked)  # type: ignore[arg-type]
    return policy, ps, evaluation


def _pool_replay(
    specs: Sequence[ControllerSpec], seed: int, preset: str | None, overrides: dict[str, Any],
    frames: bool, say: Callable[[str], None],
) -> Replay:  # fmt: skip
    from envs.core.pool.rules import GreedyController, GreedyRule, StaticController
    from envs.core.pool.sim import PoolSimulator
    from envs.pool.env import MetaLorePoolEnv

    asked = {**({"preset": preset} if preset else {}), **overrides}
    policies: dict[str, tuple[Any, Any, Any]] = {}
    for spec in specs:
        if spec.kind == POLICY:
            if not spec.pool:
                raise SpecError(
                    f"controller {spec.text!r} is a single-cell policy; it cannot act on the "
                    "credit pool beside pool controllers"
                )
            policies[spec.text] = _pool_policy(spec, asked)
    notes: list[str] = []
    if policies:
        first_policy, first_ps, evaluation = next(iter(policies.values()))
        params, pool = first_ps.params, first_ps.pool_params
        describe = evaluation.describe()
        same_scenario = evaluation.source == "training" or (
            set(asked) == {"preset"}
            and asked["preset"] == first_policy.info.get("env_config", {}).get("preset")
        )
        base = tuple(tuple(p) for p in first_policy.options.base_splits) if same_scenario else ()
    else:
        env = MetaLorePoolEnv(preset=preset or DEFAULT_POOL_PRESET, **overrides)
        params, pool = env.params, env.pool_params
        describe = f"preset {preset or DEFAULT_POOL_PRESET}" + "".join(
            f" {k}={v}" for k, v in overrides.items()
        )
        base = ()
    n_cells = params.scenario.n_cells
    traces = []
    for spec in specs:
        if spec.kind == POLICY:
            controller, ps, _ = policies[spec.text]
        else:
            ps = PoolSimulator(params, pool)
            if spec.kind == SPLIT:
                if len(spec.splits) not in (1, n_cells):
                    raise SpecError(
                        f"controller {spec.text!r}: {len(spec.splits)} splits for {n_cells} cells"
                    )
                splits = spec.splits * n_cells if len(spec.splits) == 1 else spec.splits
                controller = StaticController(tuple(splits))
            elif spec.rule == "greedy":
                splits = spec.splits or base
                if not splits:
                    say("searching the greedy rule's splits on tuning seeds ...")
                    from envs.core.pool.rules import greedy_splits_for

                    found = greedy_splits_for(ps.params, ps.pool_params)
                    splits = tuple((float(b), float(c)) for b, c in found)
                if len(splits) != n_cells:
                    raise SpecError(
                        f"controller {spec.text!r}: {len(splits)} splits for {n_cells} cells"
                    )
                notes.append(f"{spec.text}: splits {[list(p) for p in splits]}")
                controller = GreedyController(tuple(splits), GreedyRule())
            else:
                raise SpecError(
                    f"controller {spec.text!r} acts on one cell's queues; on the credit pool "
                    "use split:..., rule:greedy or a pool policy"
                )
        traces.append(_pool_episode(spec.text, ps, controller, seed, frames))
    return Replay(traces, True, _pool_preset(asked, policies), seed, describe,
                  regime_text(params), notes)  # fmt: skip


def _pool_preset(asked: Mapping[str, Any], policies: Mapping[str, Any]) -> str:
    """The preset name of a pool replay (for its record)."""
    if "preset" in asked:
        return str(asked["preset"])
    for _policy, _ps, evaluation in policies.values():
        return str(evaluation.preset)
    return DEFAULT_POOL_PRESET


def _pool_episode(name: str, ps: Any, controller: Any, seed: int, frames: bool) -> EpisodeTrace:
    ps.reset(seed)
    controller.reset(ps)
    rec = Recorder(name, ps.sim, ps, frames=frames)
    rec.start()
    while not ps.done:
        split, share = controller.act(ps)
        ps.step(np.ascontiguousarray(split, dtype=np.float64),
                np.ascontiguousarray(share, dtype=np.float64))  # fmt: skip
        rec.step()
    return rec.finish(ps.metrics())


# --- TensorBoard ---------------------------------------------------------------------------------
TB_TIMELINE, TB_EPISODE = "replay/timeline", "replay/episode"
TB_SUFFIX = ".replay"  # the event file's suffix, beside the run's other event files
TB_GIF_SCALE = 1.0


def log_replay_to_tensorboard(
    policy: str | Path,
    logdir: str | Path,
    seed: int,
    step: int,
    label: str | None = None,
    **overrides: Any,
) -> dict[str, Any]:
    """Replay a trained policy on episode ``seed`` (its evaluation scenario, or ``overrides``)
    into the TensorBoard run ``logdir``: the timeline figure as image :data:`TB_TIMELINE` and
    the rendered episode as an animated GIF :data:`TB_EPISODE` (TensorBoard's image dashboard
    plays it), both at global step ``step``, in their own event file (suffix
    :data:`TB_SUFFIX`), which TensorBoard shows as part of the run. ``label`` names the policy in
    the figure and the frames (default: its path). Returns what was logged."""
    from tensorboardX import SummaryWriter
    from tensorboardX.proto.summary_pb2 import Summary

    from analysis.replay import (
        compose_frames,
        figure_rgb,
        gif_bytes,
        timeline_figure,
        trace_table,
    )

    spec = parse_spec(str(policy))
    if label:
        spec = replace(spec, text=label)
    replay = run_replay([spec], seed, overrides.pop("preset", None), overrides)
    timeline = figure_rgb(timeline_figure(trace_table(replay.traces), replay.title, replay.regimes))
    frames = compose_frames(replay.traces)
    gif = gif_bytes(frames, scale=TB_GIF_SCALE)
    height, width = (round(d * TB_GIF_SCALE) for d in frames[0].shape[:2])
    image = Summary.Image(height=height, width=width, colorspace=3, encoded_image_string=gif)
    with SummaryWriter(str(logdir), filename_suffix=TB_SUFFIX) as writer:
        writer.add_image(TB_TIMELINE, timeline, global_step=step, dataformats="HWC")
        writer.file_writer.add_summary(
            Summary(value=[Summary.Value(tag=TB_EPISODE, image=image)]), global_step=step
        )
    return {"tags": [TB_TIMELINE, TB_EPISODE], "frames": len(frames), "gif_bytes": len(gif),
            "timeline_shape": list(timeline.shape)}  # fmt: skip
