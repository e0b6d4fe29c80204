"""Pareto dominance, fronts and hypervolumes of the static splits and the trained policies.

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
per evaluated policy with ``<metric>``, ``<metric>_std``, ``<metric>_n`` columns):

* :func:`fronts`: the non-dominated static splits per plane;
* :func:`compromise`: the front split nearest the ideal point of a plane (a "knee" pick);
* :func:`hypervolume_table`: hypervolume of the static grid, of the trained policies and of both,
  against one common reference point per plane.

Whether a policy lies on, within the noise of, or behind a static front is decided in
:mod:`analysis.placement` (the claims check).

``python -m analysis.placement DIR`` prints the fronts, the hypervolumes and the claims check of a
directory of result sets.
"""

from __future__ import annotations

import math
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


# --- table-level functions ------------------------------------------------------------------
def plane_points(points: pd.DataFrame, plane: Plane) -> pd.DataFrame:
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
        pts = plane_points(sub, plane)
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
        pts = plane_points(points, plane)
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
