"""How a learned controller's raw output becomes the cells' splits and share actions.

A policy network outputs three numbers per cell. :class:`ActionMap` turns them into the split
``(w_b, w_c)`` and the share action ``s`` the pool simulator takes, in one of three modes
(:data:`ACTION_MODES`):

* ``direct``: the numbers are ``(w_b, w_c, s)`` themselves (the simulator clips them). This is
  the action of the plain environments.
* ``residual``: a correction on top of the greedy cooperative rule
  (:class:`envs.core.pool.rules.GreedyRule`): ``w = clip(base_split + scale a_w, 0, 1)`` and
  ``s = clip(greedy_share + scale a_s, -1, 1)``, with ``base_split`` a fixed split per cell (for
  example the greedy rule's best static splits) and ``greedy_share`` the rule's share for the
  queues observed after the last step. A zero output is exactly the greedy controller; a policy
  whose outputs start small (a Gaussian policy with unit noise times a small ``scale``) starts
  next to it and explores around it.
* ``deadzone``: ``direct`` splits, and a share with a dead zone around zero:
  ``s = sign(a) max(|a| - dz, 0) / (1 - dz)``, so small random outputs neither offer nor ask
  (a random policy then keeps its credits instead of emptying them in a few steps).

Pure numpy (no Gymnasium, no Ray); the same map is used by the environments during training and
by the controllers that replay a trained policy, so both see identical actions.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray

from envs.core.pool.rules import GreedyRule, greedy_share_into
from envs.core.pool.sim import PoolSimulator

ACTION_MODES: tuple[str, ...] = ("direct", "residual", "deadzone")
DEFAULT_BASE_SPLIT = (0.5, 0.5)


def _finite(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


@dataclass(frozen=True)
class ActionMap:
    """Raw policy output ``(C, 3)`` -> ``(split (C, 2), share (C,))`` (see the module doc).

    ``base_splits`` (residual mode): one ``(w_b, w_c)`` per cell; empty means 0.5/0.5 everywhere.
    """

    mode: str = "direct"
    base_splits: tuple[tuple[float, float], ...] = ()
    rule: GreedyRule = field(default_factory=GreedyRule)
    scale: float = 0.2  # residual: correction per unit of output (splits and share alike)
    deadzone: float = 0.25  # deadzone: |output| below this asks and offers nothing

    def __post_init__(self) -> None:
        if self.mode not in ACTION_MODES:
            raise ValueError(f"invalid action_mode {self.mode!r}: choose one of {ACTION_MODES}")
        if not (_finite(self.scale) and self.scale > 0):
            raise ValueError(f"invalid residual_scale {self.scale!r}: must be a finite number > 0")
        if not (_finite(self.deadzone) and 0 <= self.deadzone < 1):
            raise ValueError(f"invalid deadzone {self.deadzone!r}: must lie in [0, 1)")
        for i, pair in enumerate(self.base_splits):
            if len(pair) != 2 or not all(_finite(v) and 0 <= v <= 1 for v in pair):
                raise ValueError(f"invalid base_splits[{i}]={pair!r}: need (w_b, w_c) in [0, 1]")

    @property
    def bounded(self) -> bool:
        """Whether the raw output lives in the plain action box (direct, deadzone modes)."""
        return self.mode != "residual"

    def splits_for(self, n_cells: int) -> NDArray[np.float64]:
        """The base split ``(C, 2)`` of the residual mode."""
        if not self.base_splits:
            return np.tile(np.array(DEFAULT_BASE_SPLIT, dtype=np.float64), (n_cells, 1))
        if len(self.base_splits) != n_cells:
            raise ValueError(f"{len(self.base_splits)} base splits for {n_cells} cells")
        return np.array(self.base_splits, dtype=np.float64)

    def greedy_share(self, ps: PoolSimulator) -> NDArray[np.float64]:
        """The greedy rule's share ``(C,)`` for the queues observed after the last step."""
        s = ps.params.scenario
        out = np.zeros(ps.n_cells)
        greedy_share_into(
            ps.sim.kpi, ps.pool.cap, (float(s.ue_compute_mean), float(s.sensor_compute_mean)),
            self.rule, out,
        )  # fmt: skip
        return out

    def apply(
        self, raw: NDArray[np.floating[Any]], ps: PoolSimulator
    ) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        """``(split (C, 2), share (C,))`` for raw outputs ``(C, 3)`` in the state of ``ps``.

        Raises ``ValueError`` for a wrong shape or a NaN / infinite output.
        """
        a = np.asarray(raw, dtype=np.float64)
        n = ps.n_cells
        if a.shape != (n, 3):
            raise ValueError(f"action must have shape {(n, 3)}, got {a.shape}")
        if not np.all(np.isfinite(a)):
            raise ValueError(f"action must be finite, got {a.tolist()}")
        if self.mode == "direct":
            return np.ascontiguousarray(a[:, :2]), np.ascontiguousarray(a[:, 2])
        if self.mode == "deadzone":
            s = np.clip(a[:, 2], -1.0, 1.0)
            dz = self.deadzone
            share = np.sign(s) * np.maximum(np.abs(s) - dz, 0.0) / (1.0 - dz)
            return np.ascontiguousarray(a[:, :2]), share
        split = np.clip(self.splits_for(n) + self.scale * a[:, :2], 0.0, 1.0)
        share = np.clip(self.greedy_share(ps) + self.scale * a[:, 2], -1.0, 1.0)
        return np.ascontiguousarray(split), share

    def to_dict(self) -> dict[str, Any]:
        """Plain-type dict (env configs, sidecars), the inverse of :func:`action_map_from`."""
        return {
            "action_mode": self.mode,
            "base_splits": [list(p) for p in self.base_splits],
            "residual_scale": self.scale,
            "deadzone": self.deadzone,
            "rule": dict(self.rule.__dict__),
        }


def action_map_from(
    action_mode: str = "direct",
    base_splits: Sequence[Sequence[float]] | None = None,
    residual_scale: float = 0.2,
    deadzone: float = 0.25,
    rule: GreedyRule | dict[str, float] | None = None,
) -> ActionMap:
    """An :class:`ActionMap` from plain values (as found in an env config)."""
    if isinstance(rule, dict):
        rule = GreedyRule(**rule)
    splits = tuple((float(p[0]), float(p[1])) for p in (base_splits or ()))
    return ActionMap(
        mode=str(action_mode), base_splits=splits, rule=rule or GreedyRule(),
        scale=float(residual_scale), deadzone=float(deadzone),
    )  # fmt: skip
