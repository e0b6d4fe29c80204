"""What a learned pool controller sees, does and is rewarded with: one place for both environments.

:class:`ControlOptions` collects the learning-side choices that sit on top of the pool simulator
(none changes the dynamics):

* ``obs``: ``basic`` (queues, balance, last clearing; :class:`envs.pool.obs.Observer`) or
  ``trader`` (:class:`envs.pool.obs.TraderObserver`); ``identity`` adds a one-hot cell identity
  to the trader features of the per-cell environment (a network shared by the cells of one layout
  needs it); ``neighbourhood="adjacent"`` makes the trader's neighbour features local (the
  adjacent cells) and adds two city-wide ones, so a policy without identity runs on any layout;
* ``action_mode``, ``base_splits``, ``residual_scale``, ``deadzone``: how raw outputs become
  splits and shares (:class:`envs.core.pool.actions.ActionMap`; ``residual`` starts at the greedy
  rule; ``base_splits="greedy"``: the greedy rule's searched splits of whichever layout the
  options are used on, :meth:`ControlOptions.for_layout`, resolved by :class:`PoolControl`);
* ``reward_scale``: the reward is multiplied by it (e.g. 0.1 fulfilled jobs);
* ``shaping``: optional potential-based shaping ``F = gamma Phi(s') - Phi(s)`` with
  ``Phi = -shaping x sum of the cells' UE backlog in units of their capacity`` and
  ``gamma = shaping_gamma``; it does not change which policy is optimal;
* ``endowment_range``: a curriculum over endowments: every episode starts every cell with the
  same balance drawn log-uniformly from ``[low, high]`` (from the episode seed, so an episode is
  still a function of its seed) instead of the pool's ``endowment``;
* ``permute_cells`` (central env): every episode presents the cells in a random order drawn from
  the episode seed, so the policy must find the loaded cell from what it observes (randomised
  loaded cells) rather than from its position.

:class:`PoolControl` applies them to one :class:`envs.core.pool.sim.PoolSimulator`; the
environments and the replaying controllers (``tune_configs``) use it, so training and evaluation
build identical observations and actions. No RL library is imported.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, fields, replace
from typing import Any

import numpy as np
from numpy.typing import NDArray

from envs.core.pool.actions import ActionMap, action_map_from
from envs.core.pool.sim import PoolSimulator
from envs.pool.obs import (
    N_AGENT_FEATURES,
    NEIGHBOURHOODS,
    OBS_KINDS,
    Observer,
    TraderObserver,
    make_observer,
)

N_CENTRAL_FEATURES = 3  # the central env's basic observation: queue lengths and balance
GREEDY_SPLITS = "greedy"  # base_splits: the greedy rule's searched splits of the layout played


def _finite(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


@dataclass(frozen=True)
class ControlOptions:
    """Learning-side options of the pool environments (see the module docstring)."""

    obs: str = "basic"
    identity: bool = True  # trader features of the per-cell env: one-hot cell identity
    neighbourhood: str = "all"  # trader nb_* features over all other cells or the adjacent ones
    action_mode: str = "direct"
    # residual base: one (w_b, w_c) per cell, or "greedy": the layout's searched greedy splits
    base_splits: tuple[tuple[float, float], ...] | str = ()
    residual_scale: float = 0.2
    deadzone: float = 0.25
    reward_scale: float = 1.0
    shaping: float = 0.0
    shaping_gamma: float = 0.99
    endowment_range: tuple[float, ...] = ()  # (low, high) credits; () = the pool's endowment
    permute_cells: bool = False

    def __post_init__(self) -> None:
        if self.obs not in OBS_KINDS:
            raise ValueError(f"invalid obs {self.obs!r}: choose one of {OBS_KINDS}")
        if self.neighbourhood not in NEIGHBOURHOODS:
            raise ValueError(
                f"invalid neighbourhood {self.neighbourhood!r}: choose one of {NEIGHBOURHOODS}"
            )
        for name in ("identity", "permute_cells"):
            if not isinstance(getattr(self, name), bool):
                raise ValueError(f"invalid {name}={getattr(self, name)!r}: must be True or False")
        if not (_finite(self.reward_scale) and self.reward_scale > 0):
            raise ValueError(f"invalid reward_scale {self.reward_scale!r}: must be > 0")
        if not (_finite(self.shaping) and self.shaping >= 0):
            raise ValueError(f"invalid shaping {self.shaping!r}: must be >= 0")
        if not (_finite(self.shaping_gamma) and 0 < self.shaping_gamma <= 1):
            raise ValueError(f"invalid shaping_gamma {self.shaping_gamma!r}: must lie in (0, 1]")
        rng = self.endowment_range
        if rng and not (len(rng) == 2 and all(_finite(v) for v in rng) and 0 < rng[0] <= rng[1]):
            raise ValueError(f"invalid endowment_range {rng!r}: need (low, high), 0 < low <= high")
        self.action_map()  # validates the action fields

    def action_map(self) -> ActionMap:
        """The action map (with ``base_splits="greedy"``: 0.5/0.5 until :class:`PoolControl`
        resolves them for its layout)."""
        splits = () if isinstance(self.base_splits, str) else self.base_splits
        return action_map_from(self.action_mode, splits, self.residual_scale, self.deadzone)

    def for_layout(self, ps: PoolSimulator) -> ControlOptions:
        """These options on ``ps``'s layout: ``base_splits="greedy"`` replaced by the greedy
        rule's searched splits of the layout (residual action; :func:`envs.core.pool.rules.
        greedy_splits_for`, once per scenario and process), or dropped (other actions)."""
        if self.base_splits != GREEDY_SPLITS:
            return self
        if self.action_mode != "residual":
            return replace(self, base_splits=())
        from envs.core.pool.rules import greedy_splits_for

        splits = greedy_splits_for(ps.params, ps.pool_params)
        return replace(self, base_splits=tuple((float(b), float(c)) for b, c in splits))

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        if self.base_splits != GREEDY_SPLITS:
            d["base_splits"] = [list(p) for p in self.base_splits]
        d["endowment_range"] = list(self.endowment_range)
        return d

    @classmethod
    def from_values(cls, values: Mapping[str, Any]) -> ControlOptions:
        """From plain values (lists where tuples are meant); unknown names raise ``ValueError``."""
        unknown = set(values) - CONTROL_FIELDS
        if unknown:
            raise ValueError(f"unknown control option(s) {sorted(unknown)}")
        v = dict(values)
        if "base_splits" in v:
            v["base_splits"] = _pairs(v["base_splits"])
        if "endowment_range" in v:
            er = v["endowment_range"]
            v["endowment_range"] = tuple(float(x) for x in er) if er else ()
        return cls(**v)


def _pairs(value: Any) -> tuple[tuple[float, float], ...] | str:
    if not value:
        return ()
    if value == GREEDY_SPLITS:
        return GREEDY_SPLITS
    if not isinstance(value, Sequence) or isinstance(value, str):
        raise ValueError(f"invalid base_splits {value!r}: need a list of (w_b, w_c) pairs")
    out = []
    for p in value:
        if not isinstance(p, Sequence) or len(p) != 2:
            raise ValueError(f"invalid base_splits {value!r}: need a list of (w_b, w_c) pairs")
        out.append((float(p[0]), float(p[1])))
    return tuple(out)


CONTROL_FIELDS = frozenset(f.name for f in fields(ControlOptions))


def split_control_overrides(overrides: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Split flat keyword arguments into (control options, everything else)."""
    ctl = {k: v for k, v in overrides.items() if k in CONTROL_FIELDS}
    rest = {k: v for k, v in overrides.items() if k not in CONTROL_FIELDS}
    return ctl, rest


class PoolControl:
    """Observation, action map and reward of one pool simulator (see the module docstring).

    ``per_cell``: the per-cell environment (identity columns if asked for); the central env
    never adds them (with ``permute_cells`` they would be meaningless).
    """

    def __init__(
        self,
        ps: PoolSimulator,
        options: ControlOptions,
        reward_kind: int,
        per_cell: bool,
        obs_mode: str | None = None,
        obs_scale: float | None = None,
    ) -> None:
        """``obs_mode`` / ``obs_scale`` (basic observation) default to the simulator's; a policy
        replayed on another scenario passes its training ones."""
        self.ps = ps
        self.options = options = options.for_layout(ps)
        self.reward_kind = reward_kind
        self.amap = options.action_map()
        identity = per_cell and options.identity
        self.observer: Observer | TraderObserver = make_observer(
            ps,
            options.obs,
            identity=identity,
            rule=self.amap.rule,
            obs_mode=obs_mode,
            obs_scale=obs_scale,
            neighbourhood=options.neighbourhood,
        )
        if isinstance(self.observer, TraderObserver):
            self.n_features = self.observer.n_features
        else:  # the central env's basic observation: queues and balance only
            self.n_features = N_AGENT_FEATURES if per_cell else N_CENTRAL_FEATURES
        self.perm = np.arange(ps.n_cells)
        self._potential = 0.0
        self.rewards = np.zeros(ps.n_cells)
        self.total_reward = 0.0

    @property
    def bounded_actions(self) -> bool:
        return self.amap.bounded

    def reset(self, episode_seed: int) -> None:
        """After ``ps.reset``: draw the episode's endowment and cell order (if asked for)."""
        o = self.options
        if o.endowment_range or o.permute_cells:
            rng = np.random.default_rng([int(episode_seed) % (2**63), 0x9E3779B9])
            if o.endowment_range:
                lo, hi = o.endowment_range
                e = math.exp(rng.uniform(math.log(lo), math.log(hi)))
                self.ps.pool.balance[:] = e
            if o.permute_cells:
                self.perm = rng.permutation(self.ps.n_cells)
        self._potential = self._phi()

    def _phi(self) -> float:
        if self.options.shaping <= 0:
            return 0.0
        s = self.ps.params.scenario
        q = self.ps.sim.kpi[:, 0] * float(s.ue_compute_mean)
        return -self.options.shaping * float((q / self.ps.pool.cap).sum())

    def observe(self) -> NDArray[np.float32]:
        """Features ``(C, F)`` in the presented cell order; sets the step's (scaled) rewards."""
        feats = self.observer(self.reward_kind)
        scale = self.options.reward_scale
        self.rewards = self.observer.rewards * scale
        total = self.observer.total_reward * scale
        if self.options.shaping > 0:
            phi = self._phi()
            total += self.options.shaping_gamma * phi - self._potential
            self._potential = phi
        self.total_reward = total
        if feats.shape[1] != self.n_features:
            feats = np.ascontiguousarray(feats[:, : self.n_features])
        return feats[self.perm] if self.options.permute_cells else feats

    def act(
        self, raw: NDArray[np.floating[Any]]
    ) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        """``(split, share)`` in cell order from raw outputs ``(C, 3)`` in presented order."""
        a = np.asarray(raw, dtype=np.float64)
        if self.options.permute_cells and a.shape == (self.ps.n_cells, 3):
            a = a[np.argsort(self.perm)]
        return self.amap.apply(a, self.ps)
