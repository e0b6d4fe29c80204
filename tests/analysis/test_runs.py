"""Claims over training runs (analysis.runs): verdicts on synthetic runs whose answer is known,
reproducible intervals, the report section and the per-run CSV it can be recomputed from."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from analysis import runs

SEEDS = list(range(20))
REPS = 100  # bootstrap replications in these tests (the report uses runs.REPS)
SPLITS = {"static(0.2,0.2)": (5.0, 60.0), "static(0.4,0.4)": (10.0, 80.0),
          "static(0.8,0.8)": (20.0, 95.0)}  # fmt: skip
# (sync delay, served %) of each training run of three settings
SETTINGS = {
    (0.9, 0.0): [(7.0, 83.0), (7.2, 83.5), (6.8, 82.8)],  # beyond s(0.4,0.4) by ~3 units
    (0.5, 0.0): [(12.0, 77.0), (12.5, 76.0), (12.2, 77.2)],  # behind s(0.4,0.4) by ~2
    (0.9, -5.0): [(7.0, 83.0), (14.0, 70.0), (10.0, 80.0)],  # one beyond, one behind, one on
}


def _rows(
    point: str,
    role: str,
    kind: str,
    policy: str,
    delta: float,
    penalty: float,
    sync: float,
    served: float,
    **extra: object,
) -> list[dict[str, object]]:
    wobble = np.sin(np.arange(len(SEEDS)))  # deterministic episode noise, mean ~0
    return [
        {"point": point, "role": role, "kind": kind, "policy": policy, "scenario": "paper",
         "delta": delta, "penalty": penalty, "seed": s, "sync_delay": sync + 0.1 * w,
         "served_pct": served + 0.1 * w, "e2e_delay": 100 - served,
         "episode_return": 10 * served - 5 * sync + w, **extra}
        for s, w in zip(SEEDS, wobble, strict=True)
    ]  # fmt: skip


def episodes() -> pd.DataFrame:
    rows: list[dict[str, object]] = []
    for (delta, penalty), runs_ in SETTINGS.items():
        for label, (sync, served) in SPLITS.items():
            rows += _rows(f"{label}@{delta}{penalty}", "static", "static", label, delta, penalty,
                          sync, served)  # fmt: skip
        rows += _rows(f"qa@{delta}{penalty}", "baseline", "queue_aware", "queue_aware", delta,
                      penalty, 9.0, 81.0)  # fmt: skip
        for i, (sync, served) in enumerate(runs_):
            rows += _rows(f"ppo{delta}{penalty}s{i}", "trained", "ppo", "ppo", delta, penalty,
                          sync, served, run_train_seed=i, run_controller="single")  # fmt: skip
    return pd.DataFrame(rows)


@pytest.fixture(scope="module")
def stats() -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    e = episodes()
    scores = runs.run_scores(e)
    return e, scores, runs.setting_stats(scores, e, reps=REPS)


def test_verdicts_on_known_answers(stats: tuple[pd.DataFrame, ...]) -> None:
    _, scores, st = stats
    assert len(scores) == 9 and set(scores["seed"]) == {0, 1, 2}
    verdicts = {(r.delta, r.penalty): r.verdict for r in st.itertuples()}
    assert verdicts == {(0.9, 0.0): runs.BEYOND, (0.5, 0.0): runs.BEHIND,
                        (0.9, -5.0): runs.INCONCLUSIVE}  # fmt: skip
    beyond = st.loc[st["delta"] == 0.9].iloc[0]
    # return 10 served - 5 sync: the runs beyond (0.4, 0.4) earn 795, the best split 850, the
    # worst 575 (score 0.8), the queue-aware rule 765: the runs beat it with certainty
    assert beyond["score_mean"] == pytest.approx(0.8, abs=0.01)
    assert beyond["poi_queue_aware"] == 1.0 and beyond["poi_best_split"] == 0.0
    assert st.loc[st["verdict"] == runs.BEHIND, "poi_best_split"].iloc[0] == 0.0


def test_verdict_rule() -> None:
    assert runs.verdict(1.2, 3.0) == runs.BEYOND
    assert runs.verdict(-0.9, 4.0) == runs.ON
    assert runs.verdict(-3.0, -1.5) == runs.BEHIND
    assert runs.verdict(-3.0, 2.0) == runs.INCONCLUSIVE
    assert runs.verdict(float("nan"), 1.0) == runs.INCONCLUSIVE


def test_intervals_are_reproducible(stats: tuple[pd.DataFrame, ...]) -> None:
    e, scores, st = stats
    again = runs.setting_stats(scores, e, reps=REPS)
    pd.testing.assert_frame_equal(st, again)
    point, lo, hi = runs.interval([0.1, 0.5, 0.9, 1.3], "iqm", reps=REPS)
    assert lo <= point <= hi and (point, lo, hi) == runs.interval([0.1, 0.5, 0.9, 1.3], "iqm",
                                                                  reps=REPS)  # fmt: skip


def test_pseudo_runs_resample_blocks() -> None:
    x = np.arange(100, dtype=float)
    p = runs.baseline_pseudo_runs(x, n=50, block=10, seed=1)
    assert p.shape == (50,) and np.all((p >= 0) & (p <= 99)) and p.std() > 0
    assert np.array_equal(p, runs.baseline_pseudo_runs(x, n=50, block=10, seed=1))


def test_report_section_and_recompute(tmp_path: Path, stats: tuple[pd.DataFrame, ...]) -> None:
    from analysis import runs_report
    from analysis.report import MarkdownDoc

    e, _, _ = stats
    md = MarkdownDoc(tmp_path)
    (tmp_path / "figures").mkdir()
    (tmp_path / "tables").mkdir()
    st = runs_report.report_section(md, tmp_path, e, pd.DataFrame(), tmp_path / "figures",
                                    tmp_path / "tables", reps=REPS)  # fmt: skip
    text = md.text()
    assert "## Claims over training runs" in text and "1 of 3 reward settings" in text
    assert (tmp_path / "figures" / "runs_aggregate.png").is_file()
    assert (tmp_path / "figures" / "runs_profile.png").is_file()
    again = runs_report.recompute(tmp_path / runs_report.RUN_SCORES, e, reps=REPS)
    pd.testing.assert_frame_equal(st.reset_index(drop=True), again, check_dtype=False)


def test_pool_runs_against_the_rules() -> None:
    rows = []
    for s in SEEDS:
        rows += [
            {"run_kind": "pool-rules", "kind": rule, "policy": rule, "point": rule,
             "scenario": "three_cell_hetero", "seed": s, "fulfillment_pct": value + 0.1 * (s % 3),
             "run_controller": None}
            for rule, value in (("greedy", 60.0), ("noncoop", 45.0))
        ]  # fmt: skip
        rows += [
            {"run_kind": "pool-ppo-trial", "kind": "ppo", "policy": "ppo", "point": f"r{k}",
             "scenario": "three_cell_hetero", "seed": s, "fulfillment_pct": 70.0 + k,
             "run_controller": "central"}
            for k in range(3)
        ]  # fmt: skip
    st = runs.pool_stats(pd.DataFrame(rows), reps=REPS)
    (r,) = st.to_dict("records")
    assert r["controller"] == "central" and r["runs"] == 3
    assert r["mean"] == pytest.approx(71.0) and r["mean_lo"] <= 71.0 <= r["mean_hi"]
    assert r["rule_greedy"] == pytest.approx(60.1, abs=0.05) and r["poi_greedy"] == 1.0
    assert r["poi_noncoop"] == 1.0


def test_adaptivity_margins_over_seeds() -> None:
    from analysis.runs_report import adaptivity_runs_markdown

    table = pd.DataFrame(
        [{"variant": v, "group": g, "candidate": c, "score": s}
         for v, scores in (("ues_3", (2.0, 2.5, 3.0)), ("paper_dynamic", (-0.2, 0.0, 0.4)))
         for (g, c), s in zip((("adaptive", "shipped"), ("adaptive seed", "seed1"),
                               ("adaptive seed", "seed2")), scores, strict=True)]
        + [{"variant": "ues_3", "group": "queue-aware", "candidate": "qa", "score": -5.0}]
    )  # fmt: skip
    md = adaptivity_runs_markdown(table, ("adaptive", "adaptive seed"), reps=REPS)
    assert "| ues_3 | 3 | +2.0 +2.5 +3.0 |" in md and "| beyond |" in md
    assert "| paper_dynamic | 3 |" in md and "| on |" in md


def test_learning_curves_over_runs_without_a_reward_grid(tmp_path: Path) -> None:
    from analysis import runs_report
    from analysis.report import MarkdownDoc

    curves = pd.DataFrame(
        [{"source": f"run_s{s}", "preset": "three_cell_hetero", "delta": 0.9, "penalty": 0.0,
          "iteration": i, "env_steps": 4000 * i,
          runs_report.CURVE_METRIC: float(i + s)} for s in range(3) for i in range(1, 6)]
    )  # fmt: skip
    md = MarkdownDoc(tmp_path)
    st = runs_report.report_section(md, tmp_path, pd.DataFrame(), curves, tmp_path, tmp_path,
                                    reps=REPS)  # fmt: skip
    assert st.empty and "## Learning curves over runs" in md.text()
    assert (tmp_path / "runs_learning_curves.png").stat().st_size > 5_000
