"""Pareto fronts, hypervolumes and the "beyond the noise" claims check.

The paper compares policies in two planes (Fig. 4 and Fig. 5):

* ``sync_served``: sync delay (AoSI, steps, minimise) against traffic served (%, maximise);
* ``sync_e2e``: sync delay (minimise) against end-to-end delay (AoRI, steps, minimise).

The low-level functions work on plain arrays, one row per point and one column per objective,
with a ``maximise`` flag per objective:

* :func:`dominates`, :func:`non_dominated`: Pareto dominance (``a`` dominates ``b`` when it is at
  least as good in every objective and strictly better in one; duplicates of a non-dominated point
  are all non-dominated);
* :func:`hypervolume`: area dominated by a set and bounded by a reference point (moocore);
* :func:`reference_point`: the nadir of the given points pushed outwards by a margin.

The table-level functions work on the points table of :func:`analysis.collect.points` (one row
per evaluated policy with ``<metric>``, ``<metric>_std``, ``<metric>_n`` columns) and the tidy
episode table (for paired differences):

* :func:`fronts`: the non-dominated static splits per plane;
* :func:`hypervolume_table`: hypervolume of the static grid, of the trained policies and of both,
  against one common reference point per plane;
* :func:`claims_check`: for each non-static policy, whether a static split dominates it, and
  whether it does so beyond the evaluation noise.

Noise (the definition used by the claims check and stated in the report): for a policy ``T`` and a
static split ``S`` and an objective ``j``, let ``d_j`` be the improvement of ``S`` over ``T`` in
``j`` (positive when ``S`` is better) and ``se_j`` its standard error:

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

Run ``python -m analysis.pareto DIR`` on a directory of result sets to print the fronts, the
hypervolumes and the claims check as text.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike, NDArray


@dataclass(frozen=True)
class Plane:
    """Two objectives of one figure: metric column names and whether each is maximised."""

    name: str
    x: str
    y: str
    x_max: bool
    y_max: bool
    title: str

    @property
    def metrics(self) -> tuple[str, str]:
        return (self.x, self.y)

    @property
    def maximise(self) -> tuple[bool, bool]:
        return (self.x_max, self.y_max)


PLANES: dict[str, Plane] = {
    "sync_served": Plane(
        "sync_served", "sync_delay", "served_pct", False, True, "sync delay vs traffic served"
    ),
    "sync_e2e": Plane(
        "sync_e2e", "sync_delay", "e2e_delay", False, False, "sync delay vs E2E delay"
    ),
}

DEFAULT_Z = 1.96
VERDICT_ON_FRONT = "on front"
VERDICT_WITHIN_NOISE = "within noise"
VERDICT_DOMINATED = "dominated"


# --- pure functions on arrays ---------------------------------------------------------------
def _as_points(points: ArrayLike) -> NDArray[np.float64]:
    arr = np.asarray(points, dtype=np.float64)
    if arr.ndim == 1:
        arr = arr.reshape(0, 0) if arr.size == 0 else arr.reshape(1, -1)
    if arr.ndim != 2:
        raise ValueError(f"points must be a 2-D array (points x objectives), got shape {arr.shape}")
    return arr


def _signs(maximise: Sequence[bool], n_obj: int) -> NDArray[np.float64]:
    if len(maximise) != n_obj:
        raise ValueError(f"maximise has {len(maximise)} flags for {n_obj} objectives")
    return np.where(np.asarray(maximise, dtype=bool), -1.0, 1.0)


def dominates(a: ArrayLike, b: ArrayLike, maximise: Sequence[bool]) -> bool:
    """True when ``a`` is at least as good as ``b`` in every objective and better in one."""
    av = np.asarray(a, dtype=np.float64)
    bv = np.asarray(b, dtype=np.float64)
    s = _signs(maximise, av.size)
    am, bm = av * s, bv * s  # minimisation form
    return bool(np.all(am <= bm) and np.any(am < bm))


def non_dominated(points: ArrayLike, maximise: Sequence[bool]) -> NDArray[np.bool_]:
    """Boolean mask of the points no other point dominates.

    Rows with a NaN are never part of the front (and never dominate). Exact duplicates of a
    non-dominated point are all kept. O(n^2), fine for the few hundred points of a grid.
    """
    arr = _as_points(points)
    if arr.shape[0] == 0:
        return np.zeros(0, dtype=bool)
    m = arr * _signs(maximise, arr.shape[1])
    finite = np.all(np.isfinite(m), axis=1)
    mask = finite.copy()
    fin = m[finite]
    idx = np.flatnonzero(finite)
    for k, i in enumerate(idx):
        le = np.all(fin <= fin[k], axis=1)
        lt = np.any(fin < fin[k], axis=1)
        if np.any(le & lt):
            mask[i] = False
    return np.asarray(mask, dtype=bool)


def reference_point(
    points: ArrayLike, maximise: Sequence[bool], margin: float = 0.1
) -> NDArray[np.float64]:
    """Nadir (worst value per objective) of the finite points, pushed outwards.

    The push is ``margin`` times the range of each objective (or ``margin * |nadir|``, at least
    ``margin``, when all points share one value), so extreme points of the set still count.
    """
    arr = _as_points(points)
    arr = arr[np.all(np.isfinite(arr), axis=1)]
    if arr.shape[0] == 0:
        raise ValueError("reference_point needs at least one finite point")
    s = _signs(maximise, arr.shape[1])
    m = arr * s
    worst = m.max(axis=0)
    span = m.max(axis=0) - m.min(axis=0)
    push = np.where(span > 0, margin * span, np.maximum(margin * np.abs(worst), margin))
    return np.asarray((worst + push) * s, dtype=np.float64)


def hypervolume(points: ArrayLike, ref: ArrayLike, maximise: Sequence[bool]) -> float:
    """Hypervolume (area in 2-D) dominated by ``points`` and bounded by ``ref``.

    Points with a NaN or not strictly better than ``ref`` in every objective contribute nothing.
    An empty set has hypervolume 0.
    """
    import moocore

    arr = _as_points(points)
    refv = np.asarray(ref, dtype=np.float64).reshape(-1)
    if arr.shape[0] == 0:
        return 0.0
    if arr.shape[1] != refv.size:
        raise ValueError(f"ref has {refv.size} coordinates for {arr.shape[1]} objectives")
    s = _signs(maximise, arr.shape[1])
    m = arr * s
    r = refv * s
    keep = np.all(np.isfinite(m), axis=1) & np.all(m < r, axis=1)
    if not np.any(keep):
        return 0.0
    return float(moocore.hypervolume(m[keep], ref=r))


def front_path(
    points: ArrayLike, maximise: Sequence[bool]
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """The 2-D front as a staircase ``(xs, ys)`` for plotting, sorted by the first objective.

    Between two front points the staircase runs through the corner that both dominate weakly,
    so the shaded region under it is exactly the dominated region.
    """
    arr = _as_points(points)
    if arr.shape[0] and arr.shape[1] != 2:
        raise ValueError("front_path is for two objectives")
    mask = non_dominated(arr, maximise)
    front = arr[mask]
    if front.shape[0] == 0:
        return np.zeros(0), np.zeros(0)
    front = front[np.argsort(front[:, 0] * (-1 if maximise[0] else 1), kind="stable")]
    xs: list[float] = [float(front[0, 0])]
    ys: list[float] = [float(front[0, 1])]
    for i in range(1, front.shape[0]):
        xs += [float(front[i, 0]), float(front[i, 0])]
        ys += [float(front[i - 1, 1]), float(front[i, 1])]
    return np.asarray(xs), np.asarray(ys)


# --- noise ----------------------------------------------------------------------------------
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


# --- table-level functions ------------------------------------------------------------------
def _plane_points(points: pd.DataFrame, plane: Plane) -> pd.DataFrame:
    cols = list(plane.metrics)
    ok = np.isfinite(points[cols].to_numpy(dtype=np.float64)).all(axis=1)
    return points.loc[ok]


def fronts(points: pd.DataFrame, role: str = "static") -> dict[str, pd.DataFrame]:
    """Per plane: the rows of ``points`` with ``role`` that no other such row dominates.

    Sorted by the plane's first objective. Points with an undefined objective are left out.
    """
    out: dict[str, pd.DataFrame] = {}
    sub = points.loc[points["role"] == role]
    for name, plane in PLANES.items():
        pts = _plane_points(sub, plane)
        mask = non_dominated(pts[list(plane.metrics)].to_numpy(dtype=np.float64), plane.maximise)
        out[name] = pts.loc[mask].sort_values(plane.x, kind="stable")
    return out


def compromise(points: pd.DataFrame, plane_name: str, role: str = "static") -> pd.Series | None:
    """The front point of ``role`` closest to the ideal point of one plane (a "knee" pick).

    Both objectives are min-max normalised over the front (0 = the best value on the front, 1 =
    the worst); the pick minimises the Euclidean distance to (0, 0). None without a front.
    """
    plane = PLANES[plane_name]
    front = fronts(points, role)[plane_name]
    if front.empty:
        return None
    arr = front[list(plane.metrics)].to_numpy(dtype=np.float64) * _signs(plane.maximise, 2)
    span = arr.max(axis=0) - arr.min(axis=0)
    norm = (arr - arr.min(axis=0)) / np.where(span > 0, span, 1.0)
    return front.iloc[int(np.argmin(np.hypot(norm[:, 0], norm[:, 1])))]


def hypervolume_table(points: pd.DataFrame, margin: float = 0.1) -> pd.DataFrame:
    """Hypervolume per plane of the static grid, the trained policies and both together.

    One reference point per plane, shared by the three sets: the nadir of the union of the static
    front and the trained front, pushed outwards by ``margin`` times the range (see
    :func:`reference_point`). Columns: plane, set, points, front_points, hypervolume, ref_x,
    ref_y, gain_pct (relative gain of "static + trained" over "static", on that row only).
    """
    rows: list[dict[str, Any]] = []
    for name, plane in PLANES.items():
        pts = _plane_points(points, plane)
        cols = list(plane.metrics)
        sets = {
            "static grid": pts.loc[pts["role"] == "static", cols].to_numpy(dtype=np.float64),
            "trained": pts.loc[pts["role"] == "trained", cols].to_numpy(dtype=np.float64),
        }
        sets["static + trained"] = np.concatenate([sets["static grid"], sets["trained"]])
        fronts_union = [a[non_dominated(a, plane.maximise)] for a in sets.values() if len(a)]
        if not fronts_union:
            continue
        ref = reference_point(np.concatenate(fronts_union), plane.maximise, margin)
        hv = {k: hypervolume(v, ref, plane.maximise) for k, v in sets.items()}
        for key, arr in sets.items():
            if arr.shape[0] == 0:
                continue
            if key == "static + trained" and not (
                sets["static grid"].size and sets["trained"].size
            ):
                continue  # the union is one of the two sets
            gain = math.nan
            if key == "static + trained" and hv["static grid"] > 0 and sets["trained"].size:
                gain = 100.0 * (hv[key] / hv["static grid"] - 1.0)
            rows.append(
                {
                    "plane": name,
                    "set": key,
                    "points": int(arr.shape[0]),
                    "front_points": int(non_dominated(arr, plane.maximise).sum()),
                    "hypervolume": hv[key],
                    "ref_x": float(ref[0]),
                    "ref_y": float(ref[1]),
                    "gain_pct": gain,
                }
            )
    return pd.DataFrame(rows)


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
            cand = _plane_points(statics, plane)
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


def main(argv: Sequence[str] | None = None) -> int:
    """Print fronts, hypervolumes and the claims check of a results directory."""
    from analysis.collect import collect_for_cli, points

    args, data = collect_for_cli(
        "python -m analysis.pareto", __doc__, argv,
        lambda p: p.add_argument("--z", type=float, default=DEFAULT_Z, help="noise multiplier z"),
    )  # fmt: skip
    if data is None:
        return 2
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
