"""The adaptivity study: front placement on hand-made points, held-out variants, the study
command on a tiny budget (result sets and the report section), and the shipped adaptive policy."""

from __future__ import annotations

import json
import math
import pickle
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from analysis.adaptivity import ADAPTIVE, study_table, verdicts
from analysis.placement import BEHIND, BEYOND, ON, Noise, StaticGrid, margin, place
from envs.core.presets import make_params
from tests.helpers.cli import ROOT, run_launch, run_launch_here
from tune_configs.policies.interface import SINGLE_INTERFACE
from tune_configs.studies.adaptivity import VARIANTS, held_out

SHIPPED = ROOT / "models" / "paper" / "adaptive"


def _grid(points: dict[str, tuple[float, float]], episodes: int = 4) -> StaticGrid:
    """A grid whose splits take the same (sync, served) in every episode."""
    labels = list(points)
    sync = np.array([[points[k][0]] * episodes for k in labels], dtype=float)
    served = np.array([[points[k][1]] * episodes for k in labels], dtype=float)
    return StaticGrid(labels, sync, served, -sync)  # return: the lower the sync, the more


def _place(grid: StaticGrid, sync: float, served: float, z: float = 0.0) -> Any:
    e = grid.sync.shape[1]
    return place(grid, [sync] * e, [served] * e, [-sync] * e, z=z)


# A front of three splits and two splits behind it.
POINTS = {
    "A": (10.0, 80.0),
    "B": (5.0, 70.0),
    "C": (20.0, 95.0),
    "D": (12.0, 75.0),  # dominated by A
    "E": (25.0, 90.0),  # dominated by C
}


def test_front_and_room_of_a_hand_made_grid() -> None:
    g = _grid(POINTS)
    assert [lab for lab, f in zip(g.labels, g.front, strict=True) if f] == ["A", "B", "C"]
    # a front split with sync delay within 1 step of 0, or served within 1 pp of 100, cannot be
    # dominated beyond noise by any point of the plane
    g = _grid({"A": (10.0, 80.0), "X": (0.8, 50.0), "Y": (30.0, 99.5), "D": (12.0, 75.0)})
    assert list(g.front) == [True, True, True, False]
    assert list(g.room(Noise())) == [True, False, False, False]


@pytest.mark.parametrize(
    ("point", "verdict", "gap", "lead", "split"),
    [
        ((8.0, 83.0), BEYOND, None, 2.0, "A"),  # beats A by 2 steps and 3 pp
        ((9.5, 80.5), ON, None, 0.5, "A"),  # beats A in means, within noise
        ((12.0, 78.0), BEHIND, 2.0, None, "A"),  # A beats it by 2 steps and 2 pp
        ((10.5, 79.5), ON, 0.5, None, "A"),  # A beats it within noise
        ((9.0, 81.0), ON, None, 1.0, "A"),  # exactly the noise is not beyond it
        ((3.0, 90.0), BEYOND, None, 7.0, "A"),  # beats A by (7, 10) and B by (2, 20)
    ],
)
def test_placement_of_hand_made_points(
    point: tuple[float, float], verdict: str, gap: float | None, lead: float | None, split: str
) -> None:
    pl = _place(_grid(POINTS), *point)
    assert pl.verdict == verdict
    if gap is not None:
        assert pl.gap == pytest.approx(gap) and pl.gap_split == split
        assert pl.score == pytest.approx(-gap)
    if lead is not None:
        assert pl.lead == pytest.approx(lead) and pl.lead_split == split
        assert pl.score == pytest.approx(lead)
    assert pl.beats == {(8.0, 83.0): 1, (3.0, 90.0): 2}.get(point, 0)
    assert pl.beaten_by == (1 if verdict == BEHIND else 0)


def test_beyond_needs_both_objectives_and_z_demands_significance() -> None:
    g = _grid(POINTS)
    assert _place(g, 5.0, 80.5).verdict == ON  # 5 steps better than A but only 0.5 pp
    # 2 steps and 2 pp better than A on average, but very noisy across episodes
    sync = np.array([4.0, 12.0, 4.0, 12.0])
    served = np.array([90.0, 74.0, 90.0, 74.0])
    m = margin(sync, served, g.sync[0], g.served[0])
    assert m.sync == pytest.approx(2.0) and m.served == pytest.approx(2.0)
    assert m.beyond(Noise()) and not m.beyond(Noise(), z=1.96)
    assert place(g, sync, served, -sync).verdict == BEYOND
    assert place(g, sync, served, -sync, z=1.96).verdict == ON


def test_margins_are_paired_on_common_seeds_and_skip_undefined_episodes() -> None:
    m = margin([1.0, 2.0, math.nan], [90.0, 91.0, 92.0], [3.0, 5.0, 0.0], [88.0, 88.0, 88.0])
    assert m.sync == pytest.approx(2.5)  # the third episode has no sync delay for A
    assert m.served == pytest.approx(3.0)
    assert m.n == 2


def test_a_grid_split_is_placed_against_the_other_splits() -> None:
    g = _grid(POINTS)
    a = g.index("A")
    pl = place(g, g.sync[a], g.served[a], g.ret[a], exclude="A")
    assert pl.verdict == ON and pl.gap < 0 and pl.gap_split != "A"
    d = g.index("D")
    pl = place(g, g.sync[d], g.served[d], g.ret[d], exclude="D")
    assert pl.verdict == BEHIND and pl.gap == pytest.approx(2.0) and pl.gap_split == "A"


def test_return_regret_is_relative_to_the_best_static_return() -> None:
    g = StaticGrid(["a", "b"], [[1.0, 1.0], [2.0, 2.0]], [[50.0] * 2, [60.0] * 2],
                   [[100.0, 100.0], [200.0, 200.0]])  # fmt: skip
    pl = place(g, [1.5, 1.5], [55.0, 55.0], [150.0, 150.0])
    assert pl.return_regret_pct == pytest.approx(25.0) and pl.best_return_split == "b"


def test_held_out_is_judged_field_by_field_against_the_training_ranges() -> None:
    random = make_params("paper_random")
    dyn = held_out(VARIANTS["paper_dynamic"].params(), random)
    assert dyn["text"].startswith("no:") and not dyn["outside"]
    ues = held_out(VARIANTS["ues_26"].params(), random)
    assert list(ues["outside"]) == ["n_ues"] and "26 outside [4, 20]" in ues["text"]
    for name, v in VARIANTS.items():
        if name != "paper_dynamic":  # every other variant leaves paper_random's ranges
            assert held_out(v.params(), random)["outside"], name
    # against a policy trained on the paper scenario alone, paper_dynamic is held out too
    assert "n_ues 10/4/10/10" in held_out(VARIANTS["paper_dynamic"].params(), make_params())["text"]


def _study_rows(verdict_of: dict[str, str], held: dict[str, bool]) -> pd.DataFrame:
    rows = []
    for v, verdict in verdict_of.items():
        rows.append({"variant": v, "group": ADAPTIVE, "verdict": verdict,
                     "held_out": "n_ues 26 outside [4, 20]" if held[v] else "no: inside",
                     "beaten_by": int(verdict == BEHIND), "beats": int(verdict == BEYOND),
                     "gap": 0.0, "gap_split": "", "lead": 0.0, "lead_split": "",
                     "front_splits": 5, "room_splits": 3})  # fmt: skip
    return pd.DataFrame(rows)


def test_done_when_verdicts() -> None:
    ok = _study_rows({"paper_dynamic": BEYOND, "a": BEYOND, "b": BEYOND, "c": ON},
                     {"paper_dynamic": False, "a": True, "b": True, "c": True})  # fmt: skip
    lines = verdicts(ok)
    assert all(line.startswith("PASS") for line in lines), lines
    bad = _study_rows({"paper_dynamic": ON, "a": BEHIND, "b": ON},
                      {"paper_dynamic": False, "a": True, "b": True})  # fmt: skip
    lines = verdicts(bad)
    assert [line.split(":")[0] for line in lines] == ["PASS", "FAIL", "FAIL", "FAIL"], lines


def test_switching_held_out_variants_are_reported_apart_from_the_checks() -> None:
    rows = _study_rows(
        {"paper_dynamic": BEYOND, "a": ON, "b": ON, "c": BEYOND, "dyn_a": BEYOND, "dyn_b": BEHIND},
        {"paper_dynamic": False, "a": True, "b": True, "c": True, "dyn_a": True, "dyn_b": True},
    )
    rows["switching"] = rows["variant"].str.startswith(("dyn_", "paper_dynamic"))
    lines = verdicts(rows)
    # the held-out checks count the stationary variants only: beyond in 1 of 3, none behind
    assert lines[2].startswith("PASS") and "0 of 3" in lines[2], lines
    assert lines[3].startswith("FAIL") and "1 of 3 (c)" in lines[3], lines
    assert lines[4].startswith("INFO") and "1 of 2 (dyn_b)" in lines[4], lines
    assert "beyond the front: 1 of 2 (dyn_a)" in lines[4], lines


def test_switching_variants_are_held_out_and_switch() -> None:
    from tune_configs.studies.adaptivity import is_switching

    trained = make_params("paper", traffic_randomize=True)
    dyn = [v for v in VARIANTS.values() if is_switching(v)]
    assert {v.name for v in dyn} == {"paper_dynamic", "dyn_ues", "dyn_job_prob", "dyn_interval",
                                     "dyn_mixed"}  # fmt: skip
    for v in dyn:
        if v.name != "paper_dynamic":
            assert held_out(v.params(), trained)["outside"], v.name
            assert v.params().scenario.regime_hold_steps == 25
    assert not is_switching(VARIANTS["ues_26"])


def _tiny_policy(path: Path) -> Path:
    from tune_configs.policies.shipped import Dense, MLPActor, write_shipped

    rng = np.random.default_rng(0)
    layers = (
        Dense(rng.normal(0, 0.5, (8, 2)).astype(np.float32), np.zeros(8, np.float32), "tanh"),
        Dense(rng.normal(0, 0.5, (4, 8)).astype(np.float32), np.zeros(4, np.float32)),
    )
    cfg = {"preset": "paper_random", "obs_mode": "log1p", "delta": 0.9, "penalty": 0.0}
    return write_shipped(path, {"default_policy": MLPActor(layers, 2)}, controller="single",
                         env_config=cfg, interface=SINGLE_INTERFACE,
                         action={"normalize": True, "low": 0.0, "high": 1.0, "shape": [2]},
                         manifest={"seed": 0})  # fmt: skip


def test_study_command_writes_result_sets_and_the_report_section(tmp_path: Path) -> None:
    tiny = _tiny_policy(tmp_path / "tiny")
    out = tmp_path / "study"
    res = run_launch_here(
        "adapt", "study", "--out", str(out), "--episodes", "3", "--grid", "0.5",
        "--variants", "paper_dynamic,ues_3", "--adaptive", str(tiny),
        "--seed-policy", f"s1={tiny}", "--paper-only", "none", "--report",
    )  # fmt: skip
    assert res.returncode == 0, res.stderr[-3000:]
    for variant in ("paper_dynamic", "ues_3"):
        for name in ("static", "adaptive", "s1"):
            run = json.loads((out / variant / name / "run.json").read_text())
            assert run["study"] == "adaptivity" and run["variant"] == variant
            assert run["seed"] == 20000 and run["episodes"] == 3
            if name != "static":
                assert run["candidate"] == name and run["kind"] == "eval"
    assert (
        "n_ues 3 outside [4, 20]"
        in json.loads((out / "ues_3/static/run.json").read_text())["held_out"]
    )
    report = (out / "report.md").read_text()
    section = report.split("## Adaptivity", 1)[1].split("\n## ", 1)[0]
    assert "figures/adaptivity_margins.png" in section
    assert "figures/adaptivity_planes.png" in section
    assert (out / "figures" / "adaptivity_margins.png").stat().st_size > 10_000
    assert (out / "figures" / "adaptivity_planes.png").stat().st_size > 10_000
    table = pd.read_csv(out / "tables" / "adaptivity.csv")
    assert set(table["variant"]) == {"paper_dynamic", "ues_3"}
    assert set(table["candidate"]) >= {"adaptive", "s1", "queue-aware"}
    assert set(table["verdict"]) <= {BEHIND, ON, BEYOND}
    # the two learned rows are one policy: the same numbers
    ad = table.loc[table["candidate"] == "adaptive"].set_index("variant")
    s1 = table.loc[table["candidate"] == "s1"].set_index("variant")
    assert np.allclose(ad["sync_delay"], s1["sync_delay"])
    assert "PASS" in res.stdout or "FAIL" in res.stdout  # the acceptance checks are printed


def test_study_refuses_unknown_variants_and_missing_policies(tmp_path: Path) -> None:
    res = run_launch_here("adapt", "study", "--out", str(tmp_path), "--variants", "nope",
                          "--adaptive", "none", "--paper-only", "none")  # fmt: skip
    assert res.returncode == 2 and "unknown variant" in res.stderr
    res = run_launch_here("adapt", "study", "--out", str(tmp_path), "--adaptive",
                          str(tmp_path / "x"))  # fmt: skip
    assert res.returncode == 2 and "does not exist" in res.stderr


def test_study_table_from_collected_rows_matches_place(tmp_path: Path) -> None:
    from analysis.collect import collect
    from tune_configs.studies.adaptivity import Candidate, StudySettings, run_study

    tiny = _tiny_policy(tmp_path / "tiny")
    out = tmp_path / "s"
    run_study([VARIANTS["ues_3"]], [Candidate("adaptive", ADAPTIVE, tiny)], out,
              StudySettings(episodes=4, seed=7, grid_step=0.5), say=lambda _m: None)  # fmt: skip
    table = study_table(collect(out, write=False).episodes)
    row = table.loc[table["candidate"] == "adaptive"].iloc[0]
    ep = pd.read_csv(out / "ues_3" / "adaptive" / "episodes.csv")
    assert row["sync_delay"] == pytest.approx(ep["sync_delay"].mean())
    assert row["episodes"] == 4 and row["seeds"] == "7-10" and row["grid_splits"] == 9


def test_shipped_adaptive_policy_loads_without_pickle_and_evaluates(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from tune_configs.policies.shipped import load_shipped

    def refuse(*_a: Any, **_k: Any) -> Any:
        raise AssertionError("pickle used")

    monkeypatch.setattr(pickle, "load", refuse)
    monkeypatch.setattr(pickle, "loads", refuse)
    pol = load_shipped(SHIPPED)
    assert pol.controller == "single" and pol.env_config["traffic_randomize"] is True
    m = pol.description["manifest"]
    for key in ("command", "seed", "env_steps", "train_wall_s", "git_commit"):
        assert m.get(key) not in (None, ""), key
    assert sorted(p.name for p in SHIPPED.iterdir()) == ["policy.json", "policy.safetensors"]
    # the recipe: uplink observation (4 inputs) and corrections in [-1, 1] on the spelled-out rule
    cfg = pol.env_config
    assert cfg["obs_uplink"] is True and cfg["action_mode"] == "residual"
    assert len(cfg["residual_rule"]) == 4 and 0 < cfg["residual_scale"] <= 1
    assert pol.actors["default_policy"].in_features == 4 and pol.description["action"]["low"] == -1
    assert "placement" in m["selection"]
    # trained with traffic_randomize=true: another scenario is evaluated with it switched off
    res = run_launch("eval", str(SHIPPED), "--preset", "paper_dynamic", "--set",
                     "traffic_randomize=false", "--episodes", "3", "--seed", "20000",
                     "--json")  # fmt: skip
    assert res.returncode == 0, res.stderr[-2000:]
    summary = json.loads(res.stdout)
    assert summary["episodes"] == 3 and 0 < summary["served_pct"] <= 100
    assert math.isfinite(summary["sync_delay"])


# --- the placement criterion and the residual policies ----------------------------------------
def test_tuning_variants_lie_inside_the_training_ranges_and_never_are_study_variants() -> None:
    from tune_configs.studies.adaptivity import TUNING_VARIANTS

    trained = make_params("paper", traffic_randomize=True)  # the default ranges
    assert "paper_dynamic" in TUNING_VARIANTS and len(TUNING_VARIANTS) >= 5
    for name, v in TUNING_VARIANTS.items():
        assert not held_out(v.params(), trained)["outside"], name
    for name, v in VARIANTS.items():
        if name != "paper_dynamic":  # the verdicts' held-out variants: never used to select
            assert held_out(v.params(), trained)["outside"], name
            assert name not in TUNING_VARIANTS


def _residual_policy(path: Path, scale: float = 0.0) -> Path:
    """A shipped residual policy whose output is ``scale`` times a fixed network (0: the rule)."""
    from tune_configs.policies.shipped import Dense, MLPActor, write_shipped

    rng = np.random.default_rng(1)
    layers = (
        Dense(rng.normal(0, 0.5, (8, 4)).astype(np.float32), np.zeros(8, np.float32), "tanh"),
        Dense(scale * rng.normal(0, 0.5, (4, 8)).astype(np.float32), np.zeros(4, np.float32)),
    )
    cfg = {"preset": "paper", "traffic_randomize": True, "obs_mode": "log1p", "obs_uplink": True,
           "action_mode": "residual", "residual_rule": [0.3, 0.1, 0.5, 4.0], "delta": 0.9,
           "penalty": 0.0}  # fmt: skip
    return write_shipped(path, {"default_policy": MLPActor(layers, 2)}, controller="single",
                         env_config=cfg, interface=SINGLE_INTERFACE,
                         action={"normalize": True, "low": -1.0, "high": 1.0, "shape": [2]},
                         manifest={"seed": 0})  # fmt: skip


def test_a_zero_residual_policy_evaluates_to_the_tuned_rule(tmp_path: Path) -> None:
    from envs.core.batch import evaluate
    from envs.core.policies import queue_aware
    from tune_configs.policies.single import evaluate_policy, load_policy
    from tune_configs.studies.adaptivity import TUNED_RULE

    zero = load_policy(_residual_policy(tmp_path / "zero"), preset="paper_dynamic",
                       traffic_randomize=False)  # fmt: skip
    assert zero.action_low == -1.0
    rows = evaluate_policy(zero, 5, 20000)
    m = evaluate(make_params("paper_dynamic"), [queue_aware(*TUNED_RULE)], 5, 20000).metrics
    assert [r["episode_return"] for r in rows] == m["episode_return"][0].tolist()
    moved = load_policy(_residual_policy(tmp_path / "moved", 1.0), preset="paper_dynamic",
                        traffic_randomize=False)  # fmt: skip
    a = moved.act(np.abs(np.random.default_rng(2).normal(0, 3, (16, 4))).astype(np.float32))
    assert a.shape == (16, 2) and a.min() >= -1.0 and a.max() <= 1.0 and np.ptp(a) > 0
    assert [r["episode_return"] for r in evaluate_policy(moved, 5, 20000)] != [
        r["episode_return"] for r in rows
    ]
    with pytest.raises(ValueError, match="action_mode"):
        load_policy(tmp_path / "zero", action_mode="direct")
    with pytest.raises(ValueError, match="obs_uplink"):
        load_policy(tmp_path / "zero", obs_uplink=False)


def test_placement_selection_scores_against_each_scenarios_front(tmp_path: Path) -> None:
    from tune_configs.studies.adaptivity import TUNING_VARIANTS, selection_table

    zero, tiny = _residual_policy(tmp_path / "zero"), _tiny_policy(tmp_path / "tiny")
    variants = [TUNING_VARIANTS["paper_dynamic"], TUNING_VARIANTS["tune_ues_5"]]
    rows = selection_table([tiny, zero], episodes=6, seed=5000, criterion="placement",
                           variants=variants, say=lambda _m: None)  # fmt: skip
    assert [r["score"] for r in rows] == sorted((r["score"] for r in rows), reverse=True)
    for r in rows:
        scores = [r["paper_dynamic_score"], r["tune_ues_5_score"]]
        assert r["score"] == pytest.approx(np.mean(scores)) and r["worst"] == min(scores)
        assert r["behind"] + r["beyond"] <= 2
        assert {r["paper_dynamic_verdict"], r["tune_ues_5_verdict"]} <= {BEHIND, ON, BEYOND}
    with pytest.raises(ValueError, match="criterion"):
        selection_table([zero], criterion="nope")
    res = run_launch("adapt", "select", str(zero), "--criterion", "placement", "--episodes", "2")
    assert res.returncode == 0, res.stderr[-2000:]
    assert "chosen:" in res.stdout and "worst" in res.stdout


def test_select_against_named_variants_needs_the_placement_criterion(tmp_path: Path) -> None:
    res = run_launch_here("adapt", "select", str(tmp_path), "--variants", "ues_3")
    assert res.returncode == 2 and "--variants needs --criterion placement" in res.stderr
    res = run_launch("adapt", "select", str(tmp_path), "--criterion", "placement", "--variants",
                     "nope")  # fmt: skip
    assert res.returncode != 0 and "unknown variant" in res.stderr
