"""How far beyond a traffic variant's static front a controller gets when it is tuned *knowing*
the variant: the reference that says whether "beyond the front" is within reach at all.

The adaptivity study (:mod:`tune_configs.studies.adaptivity`) asks one policy, trained without
knowing the variant, to lie beyond each variant's front. This module measures, per variant, what the
best member of a family of controllers does when it is chosen for that very variant. Each
family is tuned on *tuning* episode seeds (default 5000..5099: the highest placement score
against the variant's own static front, :attr:`analysis.placement.Placement.score`) and the
chosen member is then placed on the study's episode seeds (default 20000..20099), so the
claimed numbers are not the maximum over hundreds of tries on the same episodes.

Families (:data:`FAMILIES`):

* ``queue_aware``: the queue-aware rule ``queue_aware(w_b, lo, hi, k)`` (bandwidth share fixed,
  compute share between ``lo`` and ``hi`` with the weighted UE part of the BS backlog), 378
  members: ``w_b`` 0.1..0.6, ``(lo, hi)`` from (0.1, 0.3) to (0.4, 0.8), ``k`` 0.25, 1, 4. Run
  through the batched evaluator;
* ``backlog``: both shares follow the backlogs. Compute in proportion to the UE jobs waiting at
  the BS, ``w_c = clip(a_c q_ue, lo, hi)``, and bandwidth growing with the UE uplink backlog,
  ``w_b = clip(b + a_b u_ue, b, 0.7)``; 288 members (``a_c`` 0.01..0.08, ``lo`` 0 or 0.2,
  ``hi`` 0.3..0.7, ``a_b`` 0..0.03, ``b`` 0.1..0.4). It observes what the shipped adaptive
  policy observes (the two BS queues and the two uplink backlogs). Run through the native
  vector env;
* ``horizon``: *not a controller anyone should deploy*. Each front split of the variant, switched
  to all the compute (and either the same or all the bandwidth) for the last ``K`` = 3, 6 or 12
  steps of the episode. It reads the step counter, which no policy of the study observes, and
  serves UE jobs at the end instead of sensor updates nobody will sync with. It measures how far
  beyond the front the finite 100-step episode alone can carry a controller.

:func:`run_reach` returns one row per (variant, family); :func:`write_reach` writes them with
the counts per family (:func:`analysis.adaptivity.reach_summary`) and a Markdown table.
``python -m launch adapt reach`` is the command; ``launch report`` shows a ``reach.json`` found
under its directory in the "Adaptivity" section.
"""

from __future__ import annotations

import itertools
import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from analysis.adaptivity import reach_markdown, reach_summary
from analysis.placement import BEYOND, Noise, Placement, StaticGrid, place
from tune_configs.studies.adaptivity import (
    TUNING_SEED,
    StudySettings,
    Variant,
    held_out,
    is_switching,
    variant_grid,
)

__all__ = [
    "FAMILIES",
    "Family",
    "ReachSettings",
    "family_members",
    "run_family",
    "run_reach",
    "write_reach",
]  # fmt: skip

ENV_CHUNK = 4096  # sub-envs of one vector env (memory: the device queues of every sub-env)
B_MAX = 0.7  # the backlog family's largest bandwidth share


@dataclass(frozen=True)
class Family:
    name: str
    labels: tuple[str, ...]  # parameter names (the module docstring says what they do)


FAMILIES: dict[str, Family] = {
    f.name: f
    for f in (
        Family("queue_aware", ("w_b", "lo", "hi", "k")),
        Family("backlog", ("a_c", "lo", "hi", "a_b", "b")),
        Family("horizon", ("w_b", "w_c", "last_k", "flush_w_b")),
    )
}


@dataclass
class ReachSettings(StudySettings):
    """The study's settings (episodes, ``seed`` of the placement, grid, reward) plus the first
    tuning episode seed the members are chosen on."""

    tune_seed: int = TUNING_SEED


def family_members(name: str, front: Sequence[tuple[float, float]] = ()) -> NDArray[np.float64]:
    """The members ``(K, parameters)`` of a family; ``front``: the variant's front splits
    ``(w_b, w_c)`` (the horizon family starts from them)."""
    rows: list[tuple[float, ...]]
    if name == "queue_aware":
        pairs = [(lo, hi) for lo in (0.1, 0.2, 0.3, 0.4) for hi in (0.3, 0.4, 0.5, 0.6, 0.7, 0.8)
                 if hi > lo]  # fmt: skip
        rows = [(w_b, lo, hi, k) for w_b in (0.1, 0.2, 0.3, 0.4, 0.5, 0.6) for lo, hi in pairs
                for k in (0.25, 1.0, 4.0)]  # fmt: skip
    elif name == "backlog":
        rows = list(itertools.product((0.01, 0.02, 0.04, 0.08), (0.0, 0.2), (0.3, 0.5, 0.7),
                                      (0.0, 0.01, 0.03), (0.1, 0.2, 0.3, 0.4)))  # fmt: skip
    elif name == "horizon":
        rows = [(w_b, w_c, k, fb) for w_b, w_c in front for k in (3, 6, 12)
                for fb in dict.fromkeys((w_b, 1.0))]  # fmt: skip
    else:
        raise ValueError(f"unknown family {name!r}; known: {', '.join(FAMILIES)}")
    return np.asarray(rows, dtype=np.float64).reshape(len(rows), len(FAMILIES[name].labels))


def _backlog_act(prm: NDArray[np.float64], obs: NDArray[np.float64], t: int, horizon: int
                 ) -> NDArray[np.float64]:  # fmt: skip
    a_c, lo, hi, a_b, b = (prm[:, None, i] for i in range(5))
    w_c = np.clip(a_c * obs[..., 0], lo, hi)
    w_b = np.clip(b + a_b * obs[..., 2], b, B_MAX)
    return np.stack([w_b, w_c], axis=-1)


def _horizon_act(prm: NDArray[np.float64], obs: NDArray[np.float64], t: int, horizon: int
                 ) -> NDArray[np.float64]:  # fmt: skip
    w_b, w_c, last_k, flush_b = (prm[:, None, i] for i in range(4))
    end = t >= horizon - last_k
    shape = obs.shape[:-1]
    return np.stack([np.broadcast_to(np.where(end, flush_b, w_b), shape),
                     np.broadcast_to(np.where(end, 1.0, w_c), shape)], axis=-1)  # fmt: skip


ACTS: dict[str, Callable[..., NDArray[np.float64]]] = {
    "backlog": _backlog_act, "horizon": _horizon_act,
}  # fmt: skip


@dataclass
class Runs:
    """Per-episode values ``(members, episodes)``."""

    sync: NDArray[np.float64]
    served: NDArray[np.float64]
    ret: NDArray[np.float64]


def _env_config(variant: Variant, settings: ReachSettings) -> dict[str, Any]:
    return {"preset": variant.preset, **dict(variant.overrides), "traffic_randomize": False,
            "obs_mode": "raw", "obs_uplink": True, "delta": settings.delta,
            "penalty": settings.penalty}  # fmt: skip


def run_family(
    variant: Variant, family: str, prm: NDArray[np.float64], settings: ReachSettings, seed: int
) -> Runs:
    """Every member of ``family`` on ``settings.episodes`` episodes from ``seed``."""
    n_m, n_e = prm.shape[0], settings.episodes
    if family == "queue_aware":
        from envs.core.batch import evaluate
        from envs.core.policies import queue_aware

        params = variant.params(delta=settings.delta, penalty=settings.penalty)
        m = evaluate(params, [queue_aware(*row) for row in prm.tolist()], n_e, seed).metrics
        return Runs(m["sync_delay"], m["served_pct"], m["episode_return"])
    from tune_configs.env import vector_env

    act = ACTS[family]
    out = Runs(*(np.full((n_m, n_e), np.nan) for _ in range(3)))
    per_env = max(1, ENV_CHUNK // n_e)
    for m0 in range(0, n_m, per_env):
        chunk = prm[m0 : m0 + per_env]
        k = chunk.shape[0]
        env = vector_env(_env_config(variant, settings), k * n_e)
        horizon = env.params.scenario.episode_steps
        obs, _ = env.reset(seed=[seed + e for _ in range(k) for e in range(n_e)])
        for t in range(horizon):
            a = act(chunk, obs.reshape(k, n_e, -1).astype(np.float64), t, horizon)
            obs, _, terminated, truncated, info = env.step(a.reshape(k * n_e, 2))
        if not (terminated | truncated).all():
            raise RuntimeError(f"{variant.name}: episodes did not end after {horizon} steps")
        for j, metrics in enumerate(info["episode_metrics"]):
            i, e = divmod(j, n_e)
            for arr, key in ((out.sync, "sync_delay"), (out.served, "served_pct"),
                             (out.ret, "episode_return")):  # fmt: skip
                v = metrics.get(key)
                arr[m0 + i, e] = np.nan if v is None else float(v)
        env.close()
    return out


def _placements(grid: StaticGrid, runs: Runs, noise: Noise) -> list[Placement]:
    return [place(grid, runs.sync[i], runs.served[i], runs.ret[i], noise)
            for i in range(runs.sync.shape[0])]  # fmt: skip


def run_reach(
    variants: Sequence[Variant],
    families: Sequence[str],
    settings: ReachSettings,
    reference: Any = None,
    noise: Noise | None = None,
    say: Callable[[str], None] = print,
) -> list[dict[str, Any]]:
    """Tune every family on each variant (tuning seeds), place the chosen member on the study's
    seeds; one row per (variant, family). ``reference``: the training scenario held-out is
    judged against (None: not judged)."""
    noise = noise or Noise()
    for f in families:
        if f not in FAMILIES:
            raise ValueError(f"unknown family {f!r}; known: {', '.join(FAMILIES)}")
    rows: list[dict[str, Any]] = []
    for v in variants:
        t0 = time.perf_counter()
        tune_grid, tune_front = variant_grid(v, replace(settings, seed=settings.tune_seed))
        eval_grid, _ = variant_grid(v, settings)
        ho = held_out(v.params(), reference) if reference is not None else None
        for f in families:
            prm = family_members(f, tune_front)
            tuned = _placements(tune_grid, run_family(v, f, prm, settings, settings.tune_seed),
                                noise)  # fmt: skip
            scores = np.array([(p.score, p.ret) for p in tuned])
            best = int(np.lexsort((scores[:, 1], scores[:, 0]))[-1])  # score, then return
            chosen = prm[best : best + 1]
            pl = _placements(eval_grid, run_family(v, f, chosen, settings, settings.seed),
                             noise)[0]  # fmt: skip
            rows.append({
                "variant": v.name, "note": v.note, "switching": is_switching(v),
                "held_out": ho["text"] if ho is not None else "",
                "is_held_out": bool(ho["outside"]) if ho is not None else None,
                "room_splits": int(eval_grid.room(noise).sum()),
                "front_splits": int(eval_grid.front.sum()),
                "family": f, "members": int(prm.shape[0]),
                "params": dict(zip(FAMILIES[f].labels, chosen[0].tolist(), strict=True)),
                "tuning_score": float(tuned[best].score),
                "tuning_beyond": int(sum(p.verdict == BEYOND for p in tuned)),
                "verdict": pl.verdict, "score": pl.score, "lead": pl.lead, "gap": pl.gap,
                "lead_split": pl.lead_split, "sync_delay": pl.sync, "served_pct": pl.served,
                "episode_return": pl.ret, "return_regret_pct": pl.return_regret_pct,
            })  # fmt: skip
            say(f"  {v.name:<21} {f:<12} {pl.verdict:<7} score {pl.score:6.2f} "
                f"(tuning {tuned[best].score:5.2f}, {prm.shape[0]} members)")  # fmt: skip
        say(f"{v.name}: {time.perf_counter() - t0:.1f} s")
    return rows


def write_reach(rows: Sequence[dict[str, Any]], out: str | Path, settings: ReachSettings,
                meta: dict[str, Any] | None = None) -> Path:  # fmt: skip
    """``OUT/reach.json``: the settings, the rows and the summary."""
    path = Path(out)
    path.mkdir(parents=True, exist_ok=True)
    doc = {"settings": settings.__dict__, **(meta or {}), "rows": list(rows),
           "summary": reach_summary(rows)}  # fmt: skip
    target = path / "reach.json"
    target.write_text(json.dumps(doc, indent=1, default=float) + "\n")
    (path / "reach.md").write_text(reach_markdown(rows))
    return target
