"""Pareto dominance, fronts, hypervolume, knee pick and the claims check on hand-made points."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd
import pytest

from analysis.collect import points
from analysis.pareto import (
    compromise,
    dominates,
    front_path,
    fronts,
    hypervolume,
    hypervolume_table,
    non_dominated,
    reference_point,
)
from analysis.placement import (
    VERDICT_DOMINATED,
    VERDICT_ON_FRONT,
    VERDICT_WITHIN_NOISE,
    claims_check,
    improvement,
)

MIN_MIN = (False, False)
MIN_MAX = (False, True)


def test_dominates_needs_one_strict_improvement() -> None:
    assert dominates([1, 1], [2, 2], MIN_MIN)
    assert dominates([1, 2], [2, 2], MIN_MIN)
    assert not dominates([2, 2], [2, 2], MIN_MIN)  # equal points do not dominate each other
    assert not dominates([1, 3], [2, 2], MIN_MIN)  # a trade-off
    assert dominates([1, 90], [2, 80], MIN_MAX)  # lower sync delay and more served
    assert not dominates([1, 70], [2, 80], MIN_MAX)


def test_non_dominated_known_front_with_duplicates_and_nan() -> None:
    pts = [(1, 5), (2, 3), (3, 4), (4, 1), (2, 3), (math.nan, 0)]
    mask = non_dominated(pts, MIN_MIN)
    assert mask.tolist() == [True, True, False, True, True, False]


def test_non_dominated_with_a_maximised_objective() -> None:
    # (sync delay down, served up): (3, 70) is beaten by (2, 80)
    mask = non_dominated([(1, 50), (2, 80), (3, 70), (4, 90)], MIN_MAX)
    assert mask.tolist() == [True, True, False, True]
    assert non_dominated(np.zeros((0, 2)), MIN_MAX).size == 0


def test_hypervolume_staircase_area() -> None:
    # rectangles to the reference (4, 4): 1x1 + 1x2 + 1x3
    assert hypervolume([(1, 3), (2, 2), (3, 1)], [4, 4], MIN_MIN) == pytest.approx(6.0)
    # a dominated point adds nothing
    assert hypervolume([(1, 3), (2, 2), (3, 1), (3, 3)], [4, 4], MIN_MIN) == pytest.approx(6.0)


def test_hypervolume_maximised_objective_and_edge_cases() -> None:
    # served up: x in [1, 2) covers 95..97, x in [2, 3) covers 95..98
    assert hypervolume([(1, 97), (2, 98)], [3, 95], MIN_MAX) == pytest.approx(5.0)
    assert hypervolume([(5, 99)], [3, 95], MIN_MAX) == 0.0  # worse than the reference in x
    assert hypervolume(np.zeros((0, 2)), [3, 95], MIN_MAX) == 0.0
    assert hypervolume([(1, math.nan)], [3, 95], MIN_MAX) == 0.0
    with pytest.raises(ValueError):
        hypervolume([(1, 2, 3)], [3, 95], MIN_MAX)


def test_reference_point_pushes_the_nadir_outwards() -> None:
    assert reference_point([(1, 3), (3, 1)], MIN_MIN).tolist() == pytest.approx([3.2, 3.2])
    assert reference_point([(1, 90), (3, 80)], MIN_MAX).tolist() == pytest.approx([3.2, 79.0])
    # one point: pushed by margin * |value|
    assert reference_point([(10, 50)], MIN_MAX).tolist() == pytest.approx([11.0, 45.0])
    with pytest.raises(ValueError):
        reference_point([(math.nan, 1)], MIN_MIN)


def test_front_path_is_a_staircase() -> None:
    xs, ys = front_path([(2, 2), (1, 3), (3, 3)], MIN_MIN)
    assert xs.tolist() == [1, 2, 2] and ys.tolist() == [3, 3, 2]


def test_improvement_paired_and_welch() -> None:
    # candidate better (lower) by 1, 1, 2 -> mean 4/3, se = sd / sqrt(3)
    imp = improvement([1, 2, 3], [2, 3, 5], maximise=False, paired=True)
    assert imp.paired and imp.n == 3
    assert imp.diff == pytest.approx(4 / 3)
    assert imp.se == pytest.approx(np.std([1, 1, 2], ddof=1) / math.sqrt(3))
    assert imp.beyond(1.0) and not imp.beyond(10.0)
    welch = improvement([10, 12], [7, 9], maximise=True, paired=False)
    assert welch.diff == pytest.approx(3.0)
    assert welch.se == pytest.approx(math.sqrt(2 / 2 + 2 / 2))
    # NaN entries drop out pairwise
    imp = improvement([1, math.nan, 3], [2, 3, 4], maximise=False, paired=True)
    assert imp.n == 2 and imp.diff == pytest.approx(1.0)
    with pytest.raises(ValueError):
        improvement([1, 2], [1], maximise=False, paired=True)


# --- table-level: a synthetic tidy episode table ------------------------------------------
def tidy(spec: dict[str, dict[str, Any]], n: int = 40, scenario: str = "paper") -> pd.DataFrame:
    """Episode rows: ``spec`` maps a policy to its role, split and per-episode metric arrays."""
    rows = []
    for policy, s in spec.items():
        for i in range(n):
            rows.append(
                {
                    "point": f"set::{policy}",
                    "source": "set",
                    "policy": policy,
                    "kind": {"static": "static", "baseline": "heuristic"}.get(s["role"], "ppo"),
                    "role": s["role"],
                    "tag": s.get("tag", ""),
                    "label": policy,
                    "split": s.get("split", ""),
                    "w_b": s.get("w_b"),
                    "w_c": s.get("w_c"),
                    "delta": 0.9,
                    "penalty": 0.0,
                    "preset": "paper",
                    "scenario": scenario,
                    "seed": i,
                    "sync_delay": s["sync"][i],
                    "e2e_delay": s["e2e"][i],
                    "served_pct": s["served"][i],
                }
            )
    return pd.DataFrame(rows)


def wiggle(n: int, sd: float = 1.0) -> np.ndarray:
    """Zero-mean deterministic noise: +sd, -sd, +sd, ..."""
    return sd * np.where(np.arange(n) % 2 == 0, 1.0, -1.0)


def test_claims_check_three_verdicts_paired() -> None:
    n = 40
    base = np.linspace(9.0, 11.0, n)  # episode-to-episode variation shared by every policy

    def noisy(tag: str, worse: float, served: float) -> dict[str, object]:
        d = base + worse
        return {"role": "trained", "tag": tag, "sync": d + wiggle(n), "e2e": d + wiggle(n),
                "served": served - base + wiggle(n)}  # fmt: skip

    spec = {
        "S": {
            "role": "static",
            "w_b": 0.3,
            "w_c": 0.3,
            "split": "(0.3, 0.3)",
            "sync": base,
            "e2e": base,
            "served": 90 - base,
        },
        # 2 steps worse in every objective: dominated far beyond the noise
        "T_bad": noisy("A", 2, 88),
        # 0.05 worse: the means are dominated, but by less than the noise
        "T_close": noisy("B", 0.05, 89.95),
        # a trade-off: faster sync, less served
        "T_front": {
            "role": "trained",
            "tag": "C",
            "sync": base - 1,
            "e2e": base,
            "served": 80 - base,
        },
    }
    episodes = tidy(spec, n)
    pts = points(episodes)
    cc = claims_check(pts, episodes)
    verdict = {(r.label, r.plane): r.verdict for r in cc.itertuples()}
    for plane in ("sync_served", "sync_e2e"):
        assert verdict[("T_bad", plane)] == VERDICT_DOMINATED
        assert verdict[("T_close", plane)] == VERDICT_WITHIN_NOISE
    assert verdict[("T_front", "sync_served")] == VERDICT_ON_FRONT
    bad = cc.loc[(cc["label"] == "T_bad") & (cc["plane"] == "sync_served")].iloc[0]
    assert bad["paired"] and bad["strongest"] == "S"
    assert bad["x_gain"] == pytest.approx(2.0)
    assert bad["x_se"] == pytest.approx(np.std(wiggle(n) + 2, ddof=1) / math.sqrt(n))
    assert set(cc["role"]) == {"trained"}  # static rows are never checked


def test_claims_check_welch_without_episodes_and_other_scenarios_ignored() -> None:
    n = 40
    base = np.full(n, 10.0)
    episodes = pd.concat(
        [
            tidy(
                {
                    "S": {
                        "role": "static",
                        "w_b": 0.3,
                        "w_c": 0.3,
                        "sync": base + wiggle(n),
                        "e2e": base + wiggle(n),
                        "served": 90 + wiggle(n),
                    }
                },
                n,
            ),
            tidy(
                {
                    "T": {
                        "role": "trained",
                        "tag": "A",
                        "sync": base + 3 + wiggle(n),
                        "e2e": base + 3 + wiggle(n),
                        "served": 80 + wiggle(n),
                    }
                },
                n,
            ),
            # a much better split of another scenario must not count
            tidy(
                {
                    "S2": {
                        "role": "static",
                        "w_b": 0.1,
                        "w_c": 0.1,
                        "sync": base * 0,
                        "e2e": base * 0,
                        "served": base * 10,
                    }
                },
                n,
                scenario="other",
            ),
        ]
    )
    pts = points(episodes)
    cc = claims_check(pts, None)
    row = cc.loc[cc["plane"] == "sync_served"].iloc[0]
    assert row["verdict"] == VERDICT_DOMINATED and row["dominating"] == 1
    assert not row["paired"]
    assert row["x_se"] == pytest.approx(math.sqrt(2 * (np.std(wiggle(n), ddof=1) ** 2) / n))


def test_hypervolume_table_known_areas() -> None:
    spec = {
        "S1": {
            "role": "static",
            "w_b": 0.1,
            "w_c": 0.1,
            "sync": [1.0],
            "e2e": [5.0],
            "served": [50.0],
        },
        "S2": {
            "role": "static",
            "w_b": 0.2,
            "w_c": 0.2,
            "sync": [3.0],
            "e2e": [1.0],
            "served": [90.0],
        },
        "T": {"role": "trained", "tag": "A", "sync": [2.0], "e2e": [2.0], "served": [80.0]},
    }
    pts = points(tidy(spec, 1))
    hv = hypervolume_table(pts)
    ss = hv.loc[hv["plane"] == "sync_served"].set_index("set")
    # reference: nadir (3, 50) pushed out by 10 % of the ranges (2 and 40) -> (3.2, 46)
    assert ss.loc["static grid", "ref_x"] == pytest.approx(3.2)
    assert ss.loc["static grid", "ref_y"] == pytest.approx(46.0)
    assert ss.loc["static grid", "hypervolume"] == pytest.approx(2 * 4 + 0.2 * 44)
    assert ss.loc["static + trained", "hypervolume"] == pytest.approx(4 + 34 + 0.2 * 44)
    assert ss.loc["static + trained", "gain_pct"] == pytest.approx(100 * (46.8 / 16.8 - 1))
    assert ss.loc["trained", "front_points"] == 1


def test_fronts_and_compromise_pick_the_knee() -> None:
    spec = {
        name: {
            "role": "static",
            "w_b": b,
            "w_c": c,
            "split": f"({b}, {c})",
            "sync": [x],
            "e2e": [x],
            "served": [y],
        }
        for name, b, c, x, y in (
            ("a", 0.1, 0.1, 0.0, 10.0),
            ("b", 0.2, 0.2, 5.0, 90.0),
            ("c", 0.3, 0.3, 10.0, 100.0),
            ("d", 0.4, 0.4, 6.0, 80.0),  # dominated by b
        )
    }
    pts = points(tidy(spec, 1))
    fr = fronts(pts)
    assert fr["sync_served"]["policy"].tolist() == ["a", "b", "c"]
    knee = compromise(pts, "sync_served")
    assert knee is not None and knee["policy"] == "b"
    assert compromise(pts.iloc[0:0], "sync_served") is None
