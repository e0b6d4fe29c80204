"""Baselines of the credit-pool study and the loop that evaluates any controller on seeds.

* :func:`best_static_splits`: the NON-COOPERATIVE baseline: the best static split per cell. First
  the best split common to all cells on a grid, then coordinate search: each cell in turn tries
  every grid split while the others keep theirs (``rounds`` passes). "Best" maximises an episode
  metric (default: overall fulfillment) averaged over TUNING seeds that differ from the
  evaluation seeds (``tune_seed``), so the baseline is not fitted to the episodes it is judged on.
  On more than :data:`CELL_SEARCH_MAX_CELLS` cells (the cities) the second stage works on
  *classes* of cells instead (cells with equal MEC capacity and sensor count share a split) and
  climbs: a class moves to the best of its eight grid neighbours until none is better
  (``strategy="classes"``; ``docs/model/city.md#searching-the-splits-of-a-city``).
* :class:`GreedyRule`: our cooperative rule. It keeps a cell's split and sets only the share
  action, from the cell's own backlog in units of its own capacity,
  ``load = (q_ue m_ue + q_s m_s) / C`` (``m`` the mean compute per UE job / sensor update of the
  scenario, ``q`` the BS compute queue lengths observed after the last step):

  * ``load <= low``: queues short, offer spare capacity:
    ``s = offer_max (1 - load / low)`` (``offer_max`` when both queues are empty);
  * ``load >= high``: queues long, ask: ``s = -min(ask_max, ask_gain (load - high))``;
  * otherwise ``s = 0``.

  Defaults ``low = 0.2``, ``high = 0.5``, ``offer_max = 0.3``, ``ask_gain = 1``, ``ask_max = 1``
  (picked by hand among a few settings on tuning seeds of ``three_cell_hetero`` and ``surge``). A
  lender that
  lent too much sees its queues grow and stops offering; a borrower without credits gets nothing
  (the pool cuts its ask).
* :func:`evaluate_controller`: runs a :class:`Controller` on episode seeds ``seed..seed+n-1``
  (common random numbers across controllers) and returns the CIVIC metrics of every episode.

Pure numpy (no Gymnasium, no Ray).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
from numba import njit
from numpy.typing import NDArray

from envs.core.jitcache import guard
from envs.core.metrics import K_FULFIL, K_PEN, K_SYNC_R, K_UE_DONE, K_UE_GEN
from envs.core.params import EnvParams
from envs.core.pool.clearing import PoolParams
from envs.core.pool.sim import PoolSimulator
from envs.core.seeds import RULE_SEARCH
from envs.core.sim import Simulator

Progress = Callable[[int, int], None]
OBJECTIVES = ("fulfillment_pct", "completion_pct", "episode_return")
STRATEGIES = ("auto", "cells", "classes")
CELL_SEARCH_MAX_CELLS = 7  # "auto": coordinate search over cells up to this many cells
TUNE_SEED_OFFSET = RULE_SEARCH  # the split searches' tuning seeds (envs.core.seeds)


class Controller(Protocol):
    """Anything that picks every cell's split and share from the simulator state."""

    @property
    def label(self) -> str: ...

    def reset(self, ps: PoolSimulator) -> None: ...

    def act(self, ps: PoolSimulator) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        """``(split (C, 2), share (C,))`` for the next step."""
        ...


@dataclass(frozen=True)
class StaticController:
    """Fixed split per cell, share 0 (offers and asks nothing)."""

    splits: tuple[tuple[float, float], ...]
    label: str = "static"

    def reset(self, ps: PoolSimulator) -> None:
        if len(self.splits) != ps.n_cells:
            raise ValueError(f"{len(self.splits)} splits for {ps.n_cells} cells")

    def act(self, ps: PoolSimulator) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        return np.array(self.splits, dtype=np.float64), np.zeros(ps.n_cells)


@dataclass(frozen=True)
class GreedyRule:
    """The greedy cooperative share rule (see the module docstring)."""

    low: float = 0.2  # backlog / capacity at or below which a cell offers
    high: float = 0.5  # backlog / capacity at or above which a cell asks
    offer_max: float = 0.3  # share offered with empty queues
    ask_gain: float = 1.0  # ask = gain x (load - high) ...
    ask_max: float = 1.0  # ... at most this share of the own capacity

    def __post_init__(self) -> None:
        for name in ("low", "high", "offer_max", "ask_gain", "ask_max"):
            v = getattr(self, name)
            if not (isinstance(v, (int, float)) and math.isfinite(v) and v >= 0):
                raise ValueError(f"invalid GreedyRule.{name}={v!r}: must be a finite number >= 0")
        if self.low > self.high:
            raise ValueError(f"invalid GreedyRule low={self.low} > high={self.high}")
        if self.offer_max > 1 or self.ask_max > 1:
            raise ValueError("GreedyRule offer_max and ask_max must be <= 1 (shares of capacity)")

    def share(
        self, queues: NDArray[np.float64], capacity: NDArray[np.float64], unit: tuple[float, float]
    ) -> NDArray[np.float64]:
        """Share action ``(C,)`` for raw queue lengths ``(C, 2)`` and base capacities ``(C,)``."""
        out = np.zeros(len(capacity))
        _greedy_share(
            np.ascontiguousarray(queues, dtype=np.float64),
            np.ascontiguousarray(capacity, dtype=np.float64), float(unit[0]), float(unit[1]),
            self.low, self.high, self.offer_max, self.ask_gain, self.ask_max, out,
        )  # fmt: skip
        return out


@njit(cache=True)
def _greedy_share(q, cap, u_ue, u_s, low, high, offer_max, gain, ask_max, out):  # type: ignore[no-untyped-def]
    for i in range(cap.shape[0]):
        load = (q[i, 0] * u_ue + q[i, 1] * u_s) / cap[i]
        s = 0.0
        if load <= low:
            s = offer_max * (1.0 - load / low) if low > 0.0 else offer_max
        elif load >= high:
            s = -min(ask_max, gain * (load - high))
        out[i] = s


def greedy_share_into(
    kpi_or_queues: NDArray[np.float64],
    capacity: NDArray[np.float64],
    unit: tuple[float, float],
    rule: GreedyRule,
    out: NDArray[np.float64],
) -> None:
    """Write the greedy share of every cell into ``out`` ``(C,)``.

    ``kpi_or_queues`` holds the BS UE and sensor queue lengths in its first two columns (the
    simulator's ``kpi`` array or a ``(C, 2)`` array); ``capacity`` the base capacities.
    """
    _greedy_share(
        kpi_or_queues, capacity, float(unit[0]), float(unit[1]), rule.low, rule.high,
        rule.offer_max, rule.ask_gain, rule.ask_max, out,
    )  # fmt: skip


class GreedyController:
    """Fixed split per cell plus the :class:`GreedyRule` share."""

    def __init__(
        self,
        splits: tuple[tuple[float, float], ...],
        rule: GreedyRule | None = None,
        label: str = "greedy",
    ) -> None:
        self.splits = tuple((float(b), float(c)) for b, c in splits)
        self.rule = rule or GreedyRule()
        self.label = label
        self._split = np.array(self.splits, dtype=np.float64).reshape(-1, 2)
        self._share = np.zeros(len(self.splits))
        self._unit = (0.0, 0.0)

    def reset(self, ps: PoolSimulator) -> None:
        if len(self.splits) != ps.n_cells:
            raise ValueError(f"{len(self.splits)} splits for {ps.n_cells} cells")
        s = ps.params.scenario
        self._unit = (float(s.ue_compute_mean), float(s.sensor_compute_mean))

    def act(self, ps: PoolSimulator) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        r = self.rule
        _greedy_share(
            ps.sim.kpi, ps.pool.cap, self._unit[0], self._unit[1], r.low, r.high, r.offer_max,
            r.ask_gain, r.ask_max, self._share,
        )  # fmt: skip
        return self._split, self._share


def run_episode(ps: PoolSimulator, controller: Controller, seed: int) -> dict[str, Any]:
    """One episode of ``controller`` on ``ps`` with episode seed ``seed``; its metrics."""
    ps.reset(seed)
    controller.reset(ps)
    while not ps.done:
        split, share = controller.act(ps)
        ps.step(np.ascontiguousarray(split, dtype=np.float64),
                np.ascontiguousarray(share, dtype=np.float64))  # fmt: skip
    return ps.metrics()


def evaluate_controller(
    params: EnvParams,
    pool: PoolParams,
    controller: Controller,
    episodes: int,
    seed: int = 0,
    progress: Progress | None = None,
) -> list[dict[str, Any]]:
    """Metrics of ``episodes`` episodes with seeds ``seed, ..., seed + episodes - 1``."""
    if isinstance(episodes, bool) or not isinstance(episodes, int) or episodes < 1:
        raise ValueError(f"invalid episodes={episodes!r}: must be an integer >= 1")
    ps = PoolSimulator(params, pool)
    out = []
    for e in range(episodes):
        out.append(run_episode(ps, controller, seed + e))
        if progress is not None:
            progress(e + 1, episodes)
    return out


# ---------------------------------------------------------------------------------------------
def _objective(acc: NDArray[np.float64], name: str) -> float:
    gen = float(acc[:, K_UE_GEN].sum())
    if name == "fulfillment_pct":
        return 100.0 * float(acc[:, K_FULFIL].sum()) / gen if gen > 0 else 0.0
    if name == "completion_pct":
        return 100.0 * float(acc[:, K_UE_DONE].sum()) / gen if gen > 0 else 0.0
    return float(acc[:, K_SYNC_R].sum() + acc[:, K_PEN].sum())


class _Scorer:
    """Mean objective of fixed splits over seeds: plain simulator, or the pool with a rule."""

    def __init__(
        self, params: EnvParams, pool: PoolParams | None, rule: GreedyRule | None,
        seeds: Sequence[int], objective: str,
    ) -> None:  # fmt: skip
        self.seeds = seeds
        self.objective = objective
        self.rule = rule
        self.sim = Simulator(params)
        self.ps = PoolSimulator(params, pool) if rule is not None and pool is not None else None

    def __call__(self, splits: NDArray[np.float64]) -> float:
        total = 0.0
        if self.ps is not None and self.rule is not None:
            ctrl = GreedyController(tuple((float(b), float(c)) for b, c in splits), self.rule)
            for sd in self.seeds:
                run_episode(self.ps, ctrl, int(sd))
                total += _objective(self.ps.sim.acc, self.objective)
        else:
            sim = self.sim
            for sd in self.seeds:
                sim.reset(int(sd))
                while sim.t < sim.horizon:
                    sim.step(splits)
                total += _objective(sim.acc, self.objective)
        return total / len(self.seeds)


SPLIT_EPISODES, SPLIT_GRID = 10, 0.1  # greedy_splits_for: tuning episodes per candidate, grid
_SPLITS_CACHE: dict[str, list[list[float]]] = {}


def greedy_splits_for(params: EnvParams, pool: PoolParams) -> list[list[float]]:
    """The greedy rule's best static splits for a scenario (:func:`best_static_splits` on the
    tuning seeds, pool on; once per scenario and process): the base of a residual controller
    that asks for ``base_splits="greedy"`` (:mod:`envs.pool.base_splits`)."""
    import json

    key = json.dumps([params.to_dict(), pool.to_dict()], sort_keys=True, default=str)
    if key not in _SPLITS_CACHE:
        splits, _ = best_static_splits(
            params, SPLIT_EPISODES, TUNE_SEED_OFFSET, SPLIT_GRID,
            pool=pool.replace(cooperative=True), rule=GreedyRule(),
        )  # fmt: skip
        _SPLITS_CACHE[key] = [[float(b), float(c)] for b, c in splits]
    return [list(p) for p in _SPLITS_CACHE[key]]


def best_static_splits(
    params: EnvParams,
    episodes: int = 10,
    tune_seed: int = TUNE_SEED_OFFSET,
    grid: float = 0.1,
    objective: str = "fulfillment_pct",
    rounds: int = 1,
    progress: Progress | None = None,
    pool: PoolParams | None = None,
    rule: GreedyRule | None = None,
    strategy: str = "auto",
) -> tuple[tuple[tuple[float, float], ...], float]:
    """Best static split per cell and its mean objective on the tuning seeds.

    Without ``rule`` the cells run without the pool (the non-cooperative baseline). With ``rule``
    and a cooperative ``pool`` the splits are searched with the greedy share rule active, i.e. the
    best splits of the greedy cooperative controller. ``strategy``: ``"cells"`` (coordinate
    search over cells), ``"classes"`` (hill climbing over classes of cells, see
    :func:`cell_classes`), ``"auto"`` (cells up to :data:`CELL_SEARCH_MAX_CELLS` cells, classes
    beyond). Cost in episodes, with ``K = (1/grid + 1)^2`` grid splits: cells
    ``(1 + rounds x n_cells) x K x episodes``; classes ``K x episodes`` plus at most 8 per climbing
    move and class.
    """
    if objective not in OBJECTIVES:
        raise ValueError(f"invalid objective {objective!r}: choose one of {OBJECTIVES}")
    if strategy not in STRATEGIES:
        raise ValueError(f"invalid strategy {strategy!r}: choose one of {STRATEGIES}")
    if isinstance(rounds, bool) or not isinstance(rounds, int) or rounds < 0:
        raise ValueError(f"invalid rounds={rounds!r}: must be an integer >= 0")
    if isinstance(episodes, bool) or not isinstance(episodes, int) or episodes < 1:
        raise ValueError(f"invalid episodes={episodes!r}: must be an integer >= 1")
    n = round(1.0 / grid) if math.isfinite(grid) and 0 < grid <= 1 else 0
    if n < 1 or abs(n * grid - 1.0) > 1e-9:
        raise ValueError(f"invalid grid step {grid!r}: 1/step must be a whole number (0.1, 0.05)")
    values = np.round(np.linspace(0.0, 1.0, n + 1), 12)
    pairs = [(float(b), float(c)) for b in values for c in values]
    n_c = params.scenario.n_cells
    score = _Scorer(params, pool, rule, list(range(tune_seed, tune_seed + episodes)), objective)
    total = len(pairs) * (1 + rounds * n_c)
    done = 0

    def tick() -> None:
        nonlocal done
        done += 1
        if progress is not None:
            progress(done, total)

    best_val = -math.inf
    splits = np.zeros((n_c, 2))
    for pair in pairs:
        cand = np.tile(np.array(pair), (n_c, 1))
        val = score(cand)
        tick()
        if val > best_val + 1e-12:
            best_val, splits = val, cand
    if strategy == "classes" or (strategy == "auto" and n_c > CELL_SEARCH_MAX_CELLS):
        splits, best_val = _climb_classes(
            params, score, splits, best_val, n, rounds, len(pairs), progress
        )
        return tuple((float(b), float(c)) for b, c in splits), best_val
    for _ in range(rounds):
        for c in range(n_c):
            for pair in pairs:
                cand = splits.copy()
                cand[c] = pair
                same = pair == (float(splits[c, 0]), float(splits[c, 1]))
                val = best_val if same else score(cand)
                tick()
                if val > best_val + 1e-12:
                    best_val, splits = val, cand
    return tuple((float(b), float(c)) for b, c in splits), best_val


def cell_classes(params: EnvParams) -> list[list[int]]:
    """Cells grouped by (MEC capacity, sensor count), in order of first appearance."""
    s = params.scenario
    groups: dict[tuple[float, int], list[int]] = {}
    for c, key in enumerate(zip(s.mec_capacity, s.n_sensors, strict=True)):
        groups.setdefault(key, []).append(c)
    return list(groups.values())


def _climb_classes(
    params: EnvParams,
    score: Callable[[NDArray[np.float64]], float],
    splits: NDArray[np.float64],
    best_val: float,
    n: int,
    rounds: int,
    done: int,
    progress: Progress | None,
) -> tuple[NDArray[np.float64], float]:
    """Hill climbing over classes of cells on the grid of ``n`` steps per axis, from ``splits``
    (common to all cells): each class in turn moves to its best grid neighbour (8 around it)
    while that improves the score; ``rounds`` passes over the classes."""
    classes = cell_classes(params)
    seen: dict[bytes, float] = {np.round(splits * n).astype(np.int64).tobytes(): best_val}
    steps = [(db, dc) for db in (-1, 0, 1) for dc in (-1, 0, 1) if (db, dc) != (0, 0)]
    total = done + 8 * len(classes) * max(rounds, 1) * n  # an upper bound, closed at the end
    for _ in range(rounds):
        for cls in classes:
            while True:
                cur = np.round(splits[cls[0]] * n).astype(np.int64)
                best_move = None
                for db, dc in steps:
                    b, c = int(cur[0]) + db, int(cur[1]) + dc
                    if not (0 <= b <= n and 0 <= c <= n):
                        continue
                    cand = splits.copy()
                    cand[cls] = (round(b / n, 12), round(c / n, 12))
                    key = np.round(cand * n).astype(np.int64).tobytes()
                    if key not in seen:
                        seen[key] = score(cand)
                        done += 1
                        if progress is not None:
                            progress(done, max(total, done + 1))
                    if seen[key] > best_val + 1e-12:
                        best_val, best_move = seen[key], cand
                if best_move is None:
                    break
                splits = best_move
    if progress is not None:
        progress(done, done)
    return splits, best_val


Splits = tuple[tuple[float, float], ...]


def rule_baselines(
    params: EnvParams,
    pool: PoolParams,
    episodes: int = 10,
    tune_seed: int = TUNE_SEED_OFFSET,
    grid: float = 0.1,
    objective: str = "fulfillment_pct",
    rule: GreedyRule | None = None,
    noncoop_splits: Splits | None = None,
    greedy_splits: Splits | None = None,
    progress: Callable[[str], Progress | None] | None = None,
    strategy: str = "auto",
) -> tuple[list[tuple[str, Controller, PoolParams]], dict[str, Splits]]:
    """The pool's rule baselines, each with the pool parameters it runs under.

    ``noncoop``: the pool off, each cell at its best static split; ``greedy``: the pool on, the
    greedy share rule with its own best splits. Splits not given are searched by coordinate
    search (:func:`best_static_splits`) on ``episodes`` tuning seeds from ``tune_seed``, which
    the caller keeps disjoint from its evaluation seeds. ``progress(label)`` may return a
    progress callback for each search. Returns the variants and the splits used.
    """
    rule = rule or GreedyRule()
    off = pool.replace(cooperative=False)
    bar = progress or (lambda _label: None)
    if noncoop_splits is None:
        noncoop_splits, _ = best_static_splits(
            params, episodes, tune_seed, grid, objective, progress=bar("noncoop splits"),
            strategy=strategy,
        )  # fmt: skip
    if greedy_splits is None:
        greedy_splits, _ = best_static_splits(
            params, episodes, tune_seed, grid, objective, progress=bar("greedy splits"),
            pool=pool, rule=rule, strategy=strategy,
        )  # fmt: skip
    variants: list[tuple[str, Controller, PoolParams]] = [
        ("noncoop", StaticController(noncoop_splits, label="noncoop"), off),
        ("greedy", GreedyController(greedy_splits, rule, label="greedy"), pool),
    ]
    return variants, {"noncoop": noncoop_splits, "greedy": greedy_splits}


guard(globals())  # numba's cache follows every simulator source (envs/core/jitcache.py)
