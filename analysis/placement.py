"""Where a policy lies against a static front, beyond the evaluation noise.

Two placements of a policy against a scenario's static splits, both measuring the improvement of
one over the other per objective with :func:`improvement` (paired over common seeds, else Welch):

**The claims check** (:func:`claims_check`, the report's Pareto sections): for a policy ``T``, a
static split ``S`` and an objective ``j`` of a plane (:data:`analysis.pareto.PLANES`), let ``d_j``
be the improvement of ``S`` over ``T`` in ``j`` (positive when ``S`` is better) and ``se_j`` its
standard error:

* paired (common random numbers): when both were evaluated on at least two common episode seeds
  of the same scenario, ``d_j`` is the mean of the per-episode differences over the shared seeds
  and ``se_j = sd(differences) / sqrt(n)`` over the shared episodes where both values are
  defined (an episode seed gives the same episode to every policy);
* otherwise (Welch): ``d_j`` is the difference of the means and
  ``se_j = sqrt(s_S^2 / n_S + s_T^2 / n_T)`` with sample standard deviations (ddof = 1).

``S`` dominates ``T`` *beyond noise* when ``d_j > z * se_j`` in every objective of the plane
(default ``z = 1.96``: a one-sided 2.5 % test per objective, normal approximation). The verdict of
a policy in a plane is ``on front`` (no static split dominates its mean point), ``within noise``
(some split dominates the means, none beyond noise) or ``dominated`` (at least one beyond noise).

**The adaptivity study's placement** (:func:`place`, :mod:`analysis.adaptivity`) in the (sync
delay, served %) plane against a traffic variant's static grid (:class:`StaticGrid`):

* **noise**: 1 step of sync delay and 1 percentage point of served (:class:`Noise`);
* **margin of A over B**: the paired mean improvement of A over B in each objective (B's sync
  delay minus A's, A's served minus B's), over the episode seeds both were evaluated on (common
  random numbers; per objective, the seeds where both values are defined), with the standard
  error of the per-episode differences (:func:`margin`);
* **A dominates B beyond noise**: A's improvement exceeds the noise in *both* objectives,
  ``d_sync > 1 step`` and ``d_served > 1 pp`` (with ``z > 0`` also ``d - noise > z * se`` in
  both; the study's verdicts use ``z = 0``, the definition of its acceptance checks);
* **behind**: some split of the variant's static grid dominates the policy beyond noise;
  **beyond**: the policy dominates beyond noise at least one split of the variant's static front
  (the non-dominated splits by mean); **on**: neither. Behind and beyond exclude each other
  (dominance beyond noise is transitive and nothing in the grid dominates a front split);
* **gap**: ``max`` over the grid's splits ``s`` of ``min(d_sync(s over P) / 1 step,
  d_served(s over P) / 1 pp)``, in noise units: above 1 means behind, above 0 means some split
  beats the policy's means in both objectives; **lead**: the same with the roles swapped, over
  the front's splits: above 1 means beyond. :attr:`Placement.score` combines them into one signed
  number (lead if positive, else minus the gap if positive, else 0);
* **return regret**: how much lower the policy's mean episode return is than the best static
  split's, in % of the latter (negative: the policy earns more than every static split);
* **room**: the front splits that *can* be dominated beyond noise at all (sync delay above 1
  step and served below 99 %). A variant whose front already reaches the (0 steps, 100 %) corner
  within the noise leaves no room: nothing can lie beyond it.

Run ``python -m analysis.placement DIR`` on a directory of result sets to print the static fronts,
the hypervolumes (:mod:`analysis.pareto`) and the claims check as text.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike, NDArray

from analysis.pareto import PLANES, dominates, non_dominated, plane_points

DEFAULT_Z = 1.96
VERDICT_ON_FRONT = "on front"
VERDICT_WITHIN_NOISE = "within noise"
VERDICT_DOMINATED = "dominated"
BEHIND, ON, BEYOND = "behind", "on", "beyond"
SERVED_MAX = 100.0


# --- the improvement of one policy over another, with its standard error ------------------------
@dataclass(frozen=True)
class Improvement:
    """Improvement of a candidate over a policy in one objective and its standard error."""

    diff: float  # positive when the candidate is better [metric units]
    se: float  # standard error of diff
    n: int  # episodes used (paired) or min of the two counts (Welch)
    paired: bool

    def beyond(self, z: float) -> bool:
        return math.isfinite(self.diff) and math.isfinite(self.se) and self.diff > z * self.se


def improvement(
    candidate: ArrayLike,
    policy: ArrayLike,
    maximise: bool,
    paired: bool,
) -> Improvement:
    """How much better ``candidate`` is than ``policy`` in one objective, with its SE.

    ``candidate`` and ``policy`` are per-episode values; with ``paired`` they are aligned by
    episode seed (same length) and the standard error is that of the per-episode differences,
    otherwise it is Welch's ``sqrt(s_a^2/n_a + s_b^2/n_b)``. NaN entries are ignored (pairwise
    when paired). Fewer than two usable values give an infinite SE.
    """
    a = np.asarray(candidate, dtype=np.float64)
    b = np.asarray(policy, dtype=np.float64)
    sign = 1.0 if maximise else -1.0
    if paired:
        if a.shape != b.shape:
            raise ValueError("paired values need equal lengths")
        ok = np.isfinite(a) & np.isfinite(b)
        d = sign * (a[ok] - b[ok])
        n = int(d.size)
        if n == 0:
            return Improvement(math.nan, math.inf, 0, True)
        se = float(d.std(ddof=1) / math.sqrt(n)) if n > 1 else math.inf
        return Improvement(float(d.mean()), se, n, True)
    a, b = a[np.isfinite(a)], b[np.isfinite(b)]
    if a.size == 0 or b.size == 0:
        return Improvement(math.nan, math.inf, 0, False)
    diff = sign * float(a.mean() - b.mean())
    if a.size < 2 or b.size < 2:
        return Improvement(diff, math.inf, int(min(a.size, b.size)), False)
    se = math.sqrt(float(a.var(ddof=1)) / a.size + float(b.var(ddof=1)) / b.size)
    return Improvement(diff, se, int(min(a.size, b.size)), False)


# --- the claims check ----------------------------------------------------------------------
def _episode_values(
    episodes: pd.DataFrame | None, point: str, metric: str
) -> tuple[pd.Series | None, frozenset[Any]]:
    if episodes is None:
        return None, frozenset()
    sub = episodes.loc[episodes["point"] == point, ["seed", metric]]
    if sub["seed"].duplicated().any():
        return sub[metric], frozenset()
    series = sub.set_index("seed")[metric].sort_index()
    return series, frozenset(series.index)


def claims_check(
    points: pd.DataFrame,
    episodes: pd.DataFrame | None = None,
    z: float = DEFAULT_Z,
    roles: Sequence[str] = ("trained", "baseline"),
) -> pd.DataFrame:
    """For each policy with a role in ``roles``, per plane: is a static split better beyond noise?

    ``points`` is the points table (:func:`analysis.collect.points`); ``episodes`` the tidy
    episode table with ``point``, ``seed`` and the metric columns. Without ``episodes`` (or when
    no episode seeds are shared) the Welch standard error is used; the noise
    definition is in the module docstring. Static splits are compared only within the policy's
    scenario. Columns: point, tag, label, role, scenario, plane, verdict, dominating (static splits
    dominating the means), beyond_noise (of those, how many beyond noise), strongest (the split
    with the largest smallest z-score), x_gain, x_se, y_gain, y_se (the strongest's improvements
    and SEs), paired.
    """
    rows: list[dict[str, Any]] = []
    static = points.loc[points["role"] == "static"]
    for _, pol in points.loc[points["role"].isin(list(roles))].iterrows():
        statics = static.loc[static["scenario"] == pol["scenario"]]
        for name, plane in PLANES.items():
            p_xy = [float(pol[m]) for m in plane.metrics]
            if not all(math.isfinite(v) for v in p_xy):
                continue
            cand = plane_points(statics, plane)
            dom = [
                s
                for _, s in cand.iterrows()
                if dominates([s[plane.x], s[plane.y]], p_xy, plane.maximise)
            ]
            best: tuple[float, Any, list[Improvement]] | None = None
            n_beyond = 0
            for s in dom:
                imps = []
                for metric, mx in zip(plane.metrics, plane.maximise, strict=True):
                    imps.append(_improvement_for(pol, s, metric, mx, episodes))
                if all(i.beyond(z) for i in imps):
                    n_beyond += 1
                score = min((i.diff / i.se) if i.se > 0 else math.inf for i in imps)
                if best is None or score > best[0]:
                    best = (score, s, imps)
            if not dom:
                verdict = VERDICT_ON_FRONT
            elif n_beyond == 0:
                verdict = VERDICT_WITHIN_NOISE
            else:
                verdict = VERDICT_DOMINATED
            row: dict[str, Any] = {
                "point": pol["point"],
                "tag": pol.get("tag", ""),
                "label": pol.get("label", pol["point"]),
                "role": pol["role"],
                "scenario": pol["scenario"],
                "plane": name,
                "verdict": verdict,
                "dominating": len(dom),
                "beyond_noise": n_beyond,
                "strongest": "",
                "x_gain": math.nan,
                "x_se": math.nan,
                "y_gain": math.nan,
                "y_se": math.nan,
                "paired": None,
            }
            if best is not None:
                _, s, imps = best
                row.update(
                    strongest=s.get("label", s["point"]),
                    x_gain=imps[0].diff,
                    x_se=imps[0].se,
                    y_gain=imps[1].diff,
                    y_se=imps[1].se,
                    paired=imps[0].paired and imps[1].paired,
                )
            rows.append(row)
    out = pd.DataFrame(rows)
    if out.empty:
        return out
    # trained first in tag order (A, B, ..., AA), then the rule-based policies
    order = out["tag"].fillna("").map(lambda t: (0 if t else 1, len(str(t)), str(t)))
    plane_rank = out["plane"].map({name: i for i, name in enumerate(PLANES)})
    out = out.assign(_o=order, _p=plane_rank).sort_values(["_o", "label", "_p"], kind="stable")
    return out.drop(columns=["_o", "_p"]).reset_index(drop=True)


def _improvement_for(
    pol: pd.Series, static: pd.Series, metric: str, maximise: bool, episodes: pd.DataFrame | None
) -> Improvement:
    a, seeds_a = _episode_values(episodes, static["point"], metric)
    b, seeds_b = _episode_values(episodes, pol["point"], metric)
    shared = sorted(seeds_a & seeds_b)
    if a is not None and b is not None and len(shared) >= 2:
        return improvement(a.loc[shared].to_numpy(), b.loc[shared].to_numpy(), maximise, True)
    if a is not None and b is not None and len(a) and len(b):
        return improvement(a.to_numpy(), b.to_numpy(), maximise, paired=False)
    # Only summary statistics: Welch from mean, std and n.
    ma, sa, na = (float(static[metric]), float(static[f"{metric}_std"]), int(static[f"{metric}_n"]))
    mb, sb, nb = (float(pol[metric]), float(pol[f"{metric}_std"]), int(pol[f"{metric}_n"]))
    sign = 1.0 if maximise else -1.0
    diff = sign * (ma - mb)
    if na < 2 or nb < 2:
        return Improvement(diff, math.inf, min(na, nb), False)
    return Improvement(diff, math.sqrt(sa**2 / na + sb**2 / nb), min(na, nb), False)


# --- the adaptivity study's placement ----------------------------------------------------------
@dataclass(frozen=True)
class Noise:
    """The evaluation noise per objective: sync delay [steps] and served [percentage points]."""

    sync: float = 1.0
    served: float = 1.0


@dataclass(frozen=True)
class Margin:
    """How much better A is than B (paired means over common seeds; positive: A better)."""

    sync: float  # B's sync delay minus A's [steps]
    served: float  # A's served minus B's [pp]
    sync_se: float
    served_se: float
    n: int  # episodes paired (the smaller of the two objectives' counts)

    def in_noise(self, noise: Noise) -> float:
        """``min(d_sync / noise_sync, d_served / noise_served)``: above 1 is beyond noise."""
        if not (math.isfinite(self.sync) and math.isfinite(self.served)):
            return -math.inf
        return min(self.sync / noise.sync, self.served / noise.served)

    def beyond(self, noise: Noise, z: float = 0.0) -> bool:
        """Better by more than the noise (plus ``z`` standard errors) in both objectives."""
        pairs = ((self.sync, self.sync_se, noise.sync), (self.served, self.served_se, noise.served))
        for d, se, eps in pairs:
            if not math.isfinite(d) or not d > eps:
                return False
            if z > 0 and not (math.isfinite(se) and d - eps > z * se):
                return False
        return True


def margin(
    a_sync: ArrayLike, a_served: ArrayLike, b_sync: ArrayLike, b_served: ArrayLike
) -> Margin:
    """The margin of A over B from per-episode values aligned by episode seed."""
    s = improvement(a_sync, b_sync, maximise=False, paired=True)
    v = improvement(a_served, b_served, maximise=True, paired=True)
    return Margin(s.diff, v.diff, s.se, v.se, min(s.n, v.n))


@dataclass
class StaticGrid:
    """A variant's static splits: labels and per-episode values ``(splits, episodes)``."""

    labels: list[str]
    sync: NDArray[np.float64]
    served: NDArray[np.float64]
    ret: NDArray[np.float64]

    def __post_init__(self) -> None:
        self.sync = np.asarray(self.sync, dtype=np.float64).reshape(len(self.labels), -1)
        self.served = np.asarray(self.served, dtype=np.float64).reshape(self.sync.shape)
        self.ret = np.asarray(self.ret, dtype=np.float64).reshape(self.sync.shape)

    @cached_property
    def means(self) -> NDArray[np.float64]:
        """``(splits, 2)``: mean sync delay and mean served (NaN where never defined)."""
        with np.errstate(all="ignore"):
            sync = np.array([finite_mean(r) for r in self.sync])
            served = np.array([finite_mean(r) for r in self.served])
        return np.asarray(np.c_[sync, served], dtype=np.float64)

    @cached_property
    def front(self) -> NDArray[np.bool_]:
        """The splits no other split dominates by mean (splits with NaN means excluded)."""
        return non_dominated(self.means, maximise=[False, True])

    def room(self, noise: Noise) -> NDArray[np.bool_]:
        """Front splits that a point of the plane could dominate beyond noise at all."""
        m = self.means
        return self.front & (m[:, 0] > noise.sync) & (m[:, 1] < SERVED_MAX - noise.served)

    def index(self, label: str) -> int:
        return self.labels.index(label)


def finite_mean(x: NDArray[np.float64]) -> float:
    ok = np.isfinite(x)
    return float(x[ok].mean()) if ok.any() else math.nan


@dataclass(frozen=True)
class Placement:
    """Where one policy lies against a variant's static grid (see the module docstring)."""

    verdict: str
    gap: float  # noise units; > 1: a split dominates the policy beyond noise
    gap_split: str
    lead: float  # noise units; > 1: the policy dominates a front split beyond noise
    lead_split: str
    beaten_by: int  # grid splits dominating the policy beyond noise
    beats: int  # front splits the policy dominates beyond noise
    sync: float
    served: float
    ret: float
    return_regret_pct: float
    best_return_split: str

    @property
    def score(self) -> float:
        """Signed distance to the front in noise units: the lead when the policy dominates a
        front split by mean, minus the gap when a split dominates it, else 0. Above 1: beyond;
        below -1: behind."""
        if self.lead > 0:
            return self.lead
        if self.gap > 0:
            return -self.gap
        return 0.0


def place(
    grid: StaticGrid,
    sync: ArrayLike,
    served: ArrayLike,
    ret: ArrayLike,
    noise: Noise | None = None,
    z: float = 0.0,
    exclude: str | None = None,
) -> Placement:
    """Place a policy (per-episode values on the grid's episode seeds) against ``grid``;
    ``exclude``: a split's label left out of the comparison (a grid split placed against the
    others)."""
    noise = noise or Noise()
    p_sync = np.asarray(sync, dtype=np.float64).reshape(-1)
    p_served = np.asarray(served, dtype=np.float64).reshape(-1)
    p_ret = np.asarray(ret, dtype=np.float64).reshape(-1)
    if p_sync.shape[0] != grid.sync.shape[1]:
        raise ValueError(f"{p_sync.shape[0]} episodes for a grid of {grid.sync.shape[1]}")
    gap, gap_i, lead, lead_i, beaten_by, beats = -math.inf, -1, -math.inf, -1, 0, 0
    front = grid.front
    for i in range(len(grid.labels)):
        if grid.labels[i] == exclude:
            continue
        over = margin(grid.sync[i], grid.served[i], p_sync, p_served)  # split over policy
        g = over.in_noise(noise)
        if g > gap:
            gap, gap_i = g, i
        beaten_by += over.beyond(noise, z)
        if front[i]:
            under = margin(p_sync, p_served, grid.sync[i], grid.served[i])  # policy over split
            ld = under.in_noise(noise)
            if ld > lead:
                lead, lead_i = ld, i
            beats += under.beyond(noise, z)
    verdict = BEHIND if beaten_by else (BEYOND if beats else ON)
    grid_ret = np.nanmean(grid.ret, axis=1)
    best = int(np.nanargmax(grid_ret))
    mean_ret = finite_mean(p_ret)
    regret = 100.0 * (grid_ret[best] - mean_ret) / abs(grid_ret[best]) if grid_ret[best] else 0.0
    return Placement(
        verdict=verdict,
        gap=gap,
        gap_split=grid.labels[gap_i] if gap_i >= 0 else "",
        lead=lead,
        lead_split=grid.labels[lead_i] if lead_i >= 0 else "",
        beaten_by=int(beaten_by),
        beats=int(beats),
        sync=finite_mean(p_sync),
        served=finite_mean(p_served),
        ret=mean_ret,
        return_regret_pct=float(regret),
        best_return_split=grid.labels[best],
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Print fronts, hypervolumes and the claims check of a results directory."""
    from analysis.collect import collect_for_cli, points
    from analysis.pareto import fronts, hypervolume_table

    args, data = collect_for_cli(
        "python -m analysis.placement", __doc__, argv,
        lambda p: p.add_argument("--z", type=float, default=DEFAULT_Z, help="noise multiplier z"),
    )  # fmt: skip
    pts = points(data.episodes)
    if pts.empty:
        print("no result sets found")
        return 0
    pts = pts.loc[~pts["superseded"] & (pts["role"] != "pool")]
    with pd.option_context("display.width", 160, "display.max_columns", 20):
        for scenario, sub in pts.groupby("scenario", sort=True):
            print(f"=== scenario {scenario}")
            for name, front in fronts(sub).items():
                print(f"static front, {name}:")
                print(front[["label", *PLANES[name].metrics]].to_string(index=False))
            print(hypervolume_table(sub).to_string(index=False))
            print(claims_check(sub, data.episodes, z=args.z).to_string(index=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
