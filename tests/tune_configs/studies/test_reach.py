"""The reach of controller families tuned per variant: the families' members, the vector-env
runs against the batched evaluator, the horizon switch, the summary and the command."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from analysis.adaptivity import reach_summary as summary
from analysis.placement import BEHIND, BEYOND, ON
from envs.core.batch import evaluate
from envs.core.policies import static
from tests.helpers.cli import run_launch, run_launch_here
from tune_configs.studies.adaptivity import VARIANTS, get_variants
from tune_configs.studies.reach import (
    FAMILIES,
    ReachSettings,
    family_members,
    run_family,
    run_reach,
)

EPISODES = 4


def _static_metrics(variant: str, w_b: float, w_c: float, seed: int) -> dict[str, np.ndarray]:
    params = VARIANTS[variant].params(delta=0.9, penalty=0.0)
    m = evaluate(params, [static(w_b, w_c)], EPISODES, seed).metrics
    return {k: m[k][0] for k in ("sync_delay", "served_pct", "episode_return")}


def test_family_members() -> None:
    assert family_members("queue_aware").shape == (378, 4)
    assert family_members("backlog").shape == (288, 5)
    front = [(0.3, 0.3), (1.0, 0.4)]
    h = family_members("horizon", front)
    # each front split, K in (3, 6, 12), the flush bandwidth the same or all (once if already 1)
    assert h.shape == (3 * 2 + 3 * 1, 4)
    assert set(map(tuple, h[:, :2].tolist())) == set(front)
    assert (h[:, 1] < 1.0).all() and set(h[:, 2]) == {3.0, 6.0, 12.0}
    with pytest.raises(ValueError, match="unknown family"):
        family_members("nope")


@pytest.mark.parametrize("variant", ["ues_3", "dyn_interval"])
def test_degenerate_members_equal_the_static_split_of_the_batched_evaluator(variant: str) -> None:
    """A backlog member with both slopes 0 and a horizon member whose flush is its own split
    are static splits: the vector-env path must give the batched evaluator's episodes."""
    settings = ReachSettings(episodes=EPISODES)
    seed = 321
    ref = _static_metrics(variant, 0.3, 0.2, seed)
    backlog = run_family(VARIANTS[variant], "backlog",
                         np.array([[0.0, 0.2, 0.5, 0.0, 0.3]]), settings, seed)  # fmt: skip
    np.testing.assert_allclose(backlog.sync[0], ref["sync_delay"], rtol=1e-9)
    np.testing.assert_allclose(backlog.served[0], ref["served_pct"], rtol=1e-9)
    np.testing.assert_allclose(backlog.ret[0], ref["episode_return"], rtol=1e-9)
    ref1 = _static_metrics(variant, 0.3, 1.0, seed)
    horizon = run_family(VARIANTS[variant], "horizon", np.array([[0.3, 1.0, 12, 0.3]]), settings,
                         seed)  # fmt: skip
    np.testing.assert_allclose(horizon.served[0], ref1["served_pct"], rtol=1e-9)
    np.testing.assert_allclose(horizon.ret[0], ref1["episode_return"], rtol=1e-9)


def test_the_horizon_member_switches_only_in_the_last_k_steps() -> None:
    from tune_configs.studies.reach import _horizon_act

    prm = np.array([[0.3, 0.2, 6, 1.0], [0.4, 0.5, 3, 0.4]])
    obs = np.zeros((2, 5, 4))
    before = _horizon_act(prm, obs, 93, 100)  # the last 6 steps are 94..99
    assert before.shape == (2, 5, 2)
    np.testing.assert_array_equal(before[0], np.tile([0.3, 0.2], (5, 1)))
    at = _horizon_act(prm, obs, 94, 100)
    np.testing.assert_array_equal(at[0], np.tile([1.0, 1.0], (5, 1)))
    np.testing.assert_array_equal(at[1], np.tile([0.4, 0.5], (5, 1)))  # its last 3: 97..99
    np.testing.assert_array_equal(_horizon_act(prm, obs, 97, 100)[1], np.tile([0.4, 1.0], (5, 1)))


def test_the_backlog_member_follows_the_queues() -> None:
    from tune_configs.studies.reach import _backlog_act

    prm = np.array([[0.02, 0.0, 0.5, 0.01, 0.2]])
    obs = np.array([[[0, 0, 0, 0], [10, 3, 20, 5], [100, 0, 200, 0]]], dtype=float)
    a = _backlog_act(prm, obs, 0, 100)[0]
    np.testing.assert_allclose(a, [[0.2, 0.0], [0.4, 0.2], [0.7, 0.5]])


def test_run_reach_rows_and_summary() -> None:
    from tune_configs.studies.adaptivity import reference_from

    rows = run_reach(get_variants(["ues_3", "dyn_interval"]), ["queue_aware", "horizon"],
                     ReachSettings(episodes=EPISODES, tune_seed=5000, seed=20000),
                     reference_from(None), say=lambda m: None)  # fmt: skip
    assert [(r["variant"], r["family"]) for r in rows] == [
        ("ues_3", "queue_aware"), ("ues_3", "horizon"),
        ("dyn_interval", "queue_aware"), ("dyn_interval", "horizon"),
    ]  # fmt: skip
    for r in rows:
        assert r["verdict"] in (BEHIND, ON, BEYOND)
        assert r["is_held_out"] and r["switching"] == (r["variant"] == "dyn_interval")
        assert set(r["params"]) == set(FAMILIES[r["family"]].labels)
        assert r["members"] == 378 if r["family"] == "queue_aware" else r["members"] >= 3
    lines = summary(rows)
    assert len(lines) == 4 and all("of 1 held-out" in line for line in lines)


def test_summary_counts_beyond_per_family_and_kind() -> None:
    def row(variant: str, family: str, verdict: str, switching: bool) -> dict[str, object]:
        return {"variant": variant, "family": family, "verdict": verdict,
                "switching": switching, "is_held_out": True}  # fmt: skip

    rows = [row("a", "f", BEYOND, False), row("b", "f", ON, False), row("c", "f", BEHIND, False),
            row("d", "f", BEYOND, True)]  # fmt: skip
    rows.append({**row("paper_dynamic", "f", BEYOND, True), "is_held_out": False})
    assert summary(rows) == [
        "f: beyond the front in 1 of 3 held-out stationary variants (a)",
        "f: beyond the front in 1 of 1 held-out switching variants (d)",
    ]


def test_reach_command(tmp_path: Path) -> None:
    out = tmp_path / "reach"
    res = run_launch("adapt", "reach", "--out", str(out), "--episodes", "3", "--variants",
                     "ues_3", "--families", "horizon")  # fmt: skip
    assert res.returncode == 0, res.stderr[-3000:]
    doc = json.loads((out / "reach.json").read_text())
    assert doc["settings"]["tune_seed"] == 5000 and doc["settings"]["seed"] == 20000
    assert [r["family"] for r in doc["rows"]] == ["horizon"]
    assert "held-out stationary variants" in res.stdout
    md = (out / "reach.md").read_text()
    assert "| ues_3 | stationary, held out |" in md and "- horizon: beyond the front in" in md
    bad = run_launch_here("adapt", "reach", "--out", str(out), "--seed", "5001")
    assert bad.returncode == 2 and "overlap" in bad.stderr
    bad = run_launch_here("adapt", "reach", "--out", str(out), "--families", "horizon,nope")
    assert bad.returncode == 2 and "nope" in bad.stderr


class _Md:
    def __init__(self) -> None:
        self.parts: list[str] = []

    def h(self, level: int, text: str) -> None:
        self.parts.append("#" * level + " " + text)

    def p(self, text: str) -> None:
        self.parts.append(text)

    def link(self, path: Path) -> str:
        return f"[{path.name}]({path})"


def test_the_report_shows_reach_beside_the_shipped_policy() -> None:
    import pandas as pd

    from analysis.adaptivity import ADAPTIVE
    from analysis.adaptivity_report import reach_section

    def row(variant: str, family: str, score: float, verdict: str) -> dict[str, object]:
        return {"variant": variant, "family": family, "score": score, "verdict": verdict,
                "switching": False, "is_held_out": True, "room_splits": 3}  # fmt: skip

    doc = {"settings": {"episodes": 100, "tune_seed": 5000, "seed": 20000},
           "rows": [row("a", "backlog", 1.5, BEYOND), row("a", "horizon", 0.2, ON),
                    row("b", "backlog", -2.0, BEHIND)]}  # fmt: skip
    table = pd.DataFrame([
        {"variant": "a", "group": ADAPTIVE, "score": 0.4, "verdict": ON, "seeds": "20000-20099"},
        {"variant": "b", "group": ADAPTIVE, "score": 1.2, "verdict": BEYOND,
         "seeds": "20000-20099"},
    ])  # fmt: skip
    md = _Md()
    reach_section(md, table, doc, Path("reach.json"))
    text = "\n".join(md.parts)
    assert "| variant | room | backlog | horizon | shipped policy |" in text
    assert "| a | 3 | **1.50** | 0.20 | 0.40 |" in text
    assert "| b | 3 | -2.00 |  | **1.20** |" in text
    assert "episode seeds 20000-20099" in text and "Note:" not in text
    md = _Md()
    reach_section(md, table.assign(seeds="7-9"), doc, Path("reach.json"))
    assert "the study above ran on seeds 7-9" in "\n".join(md.parts)
