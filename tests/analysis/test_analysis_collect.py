"""The collector on a small results directory built here with the real result-set writer."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from analysis.collect import METRICS, collect, find_result_sets, points
from analysis.resultset import run_metadata, write_result_set
from envs.core import make_params
from envs.core.metrics import SUMMARY_KEYS


def fake_rows(
    policy: str,
    kind: str,
    w_b: float | None,
    w_c: float | None,
    episodes: int,
    sync: float,
    e2e: float,
    served: float,
    delta: float = 0.9,
    penalty: float = 0.0,
    seed: int = 0,
) -> list[dict[str, Any]]:
    """Episode rows in the episodes.csv format with simple, known metric values."""
    rows = []
    for i in range(episodes):
        row: dict[str, Any] = {k: float(i) for k in SUMMARY_KEYS}
        row.update(
            policy=policy,
            kind=kind,
            w_b=w_b,
            w_c=w_c,
            delta=delta,
            penalty=penalty,
            preset="paper",
            seed=seed + i,
            sync_delay=sync + (i % 2),
            e2e_delay=e2e,
            served_pct=served,
        )
        rows.append(row)
    return rows


def write_set(out: Path, kind: str, rows: list[dict[str, Any]], **extra: Any) -> None:
    d, p = rows[0]["delta"], rows[0]["penalty"]
    params = make_params("paper", delta=d, penalty=p)
    episodes = len({r["seed"] for r in rows})
    meta = run_metadata(
        kind, params, preset="paper", seed=rows[0]["seed"], episodes=episodes, **extra
    )
    write_result_set(out, meta, rows)


def tune_trial_files(d: Path, delta: float, iters: int = 3, trial_id: str = "abc_00000") -> None:
    """result.json (nested, one JSON object per line), progress.csv and params.json as Tune does."""
    d.mkdir(parents=True, exist_ok=True)
    with (d / "result.json").open("w") as fh:
        for it in range(1, iters + 1):
            rec = {
                "training_iteration": it,
                "trial_id": trial_id,
                "num_env_steps_sampled_lifetime": 400.0 * it,
                "time_total_s": 2.0 * it,
                "env_runners": {
                    "episode_return_mean": 100.0 * it,
                    "env_step_timer": 0.1,
                    "metalore": {"sync_delay": 20.0 - it, "served_pct": 90.0 + it},
                    "module_episode_return_mean": {"default_policy": 1.0},
                },
                "learners": {"default_policy": {"entropy": 3.0 - 0.1 * it, "vf_loss": 1.0}},
                "timers": {"training_iteration": 1.0},
                "config": {"env_config": {"delta": delta}},
            }
            fh.write(json.dumps(rec) + "\n")
    (d / "params.json").write_text(
        json.dumps(
            {"env_config": {"preset": "paper", "overrides": {"delta": delta, "penalty": -1.0}}}
        )
    )
    pd.DataFrame({"training_iteration": [1]}).to_csv(d / "progress.csv", index=False)


def make_results_dir(root: Path, with_training: bool = True) -> dict[str, int]:
    """A static grid (2x2 + heuristic), a smaller duplicate of one split, trained points."""
    rows = []
    for b in (0.3, 0.4):
        for c in (0.3, 0.4):
            rows += fake_rows(
                f"static({b:g},{c:g})",
                "static",
                b,
                c,
                4,
                sync=10 * b + 20 * c,
                e2e=30 - 20 * c - 10 * b,
                served=60 + 50 * c,
            )
    rows += fake_rows("heuristic(0.4)", "heuristic", 0.4, 0.4, 4, 16, 14, 80)
    rows += fake_rows("queue_aware(0.4,0.3-0.5)", "queue_aware", 0.4, None, 4, 13, 15, 79)
    write_set(root / "static", "static", rows, grid_step=0.1)
    write_set(
        root / "again", "static", fake_rows("static(0.3,0.3)", "static", 0.3, 0.3, 2, 9, 21, 75)
    )
    n = {"static": len(rows), "again": 2}
    if with_training:
        for i, (delta, pen) in enumerate(((0.5, -1.0), (0.9, 0.0), (0.8, 0.0))):
            trial = root / "sweep" / f"trial_{i}"
            tune_trial_files(trial, delta, trial_id=f"abc_{i:05d}")
            r = fake_rows(
                "ppo(x)",
                "ppo",
                None,
                None,
                3,
                sync=9 + i,
                e2e=10,
                served=85,
                delta=delta,
                penalty=pen,
            )
            write_set(trial, "ppo-trial", r, trial_id=f"abc_{i:05d}", timesteps=1200, budget=1200)
            n[f"trial_{i}"] = len(r)
            # checkpoints are never searched
            (trial / "checkpoint_000001").mkdir()
            (trial / "checkpoint_000001" / "run.json").write_text("{}")
        # launch train layout: train.json + progress.csv, the evaluation in OUT/eval
        train = root / "train-a"
        train.mkdir()
        (train / "train.json").write_text(
            json.dumps({"kind": "train", "delta": 0.7, "penalty": -3.0, "preset": "paper"})
        )
        pd.DataFrame(
            {
                "training_iteration": [1, 2],
                "timesteps": [1000, 2000],
                "env_runners/episode_return_mean": [5.0, 6.0],
                "env_runners/metalore/e2e_delay": [9.0, 8.0],
            }
        ).to_csv(train / "progress.csv", index=False)
        r = fake_rows("ppo(y)", "ppo", None, None, 3, 8, 9, 84, delta=0.7, penalty=-3.0)
        write_set(train / "eval", "eval", r, checkpoint=str(train / "checkpoint"))
        n["train"] = len(r)
    # a run.json without episodes is reported, not fatal
    (root / "broken").mkdir()
    (root / "broken" / "run.json").write_text(json.dumps({"kind": "eval"}))
    return n


def test_collect_joins_metadata_and_writes_the_tidy_tables(tmp_path: Path) -> None:
    n = make_results_dir(tmp_path)
    c = collect(tmp_path)
    assert len(c.episodes) == sum(n.values())
    assert [p.name for p, _ in c.skipped] == ["broken"]
    assert not any("checkpoint_" in str(p) for p in find_result_sets(tmp_path))
    e = pd.read_csv(c.files["results"])
    assert len(e) == len(c.episodes)
    for col in (
        "point",
        "source",
        "run_kind",
        "policy",
        "kind",
        "role",
        "tag",
        "split",
        "w_b",
        "w_c",
        "delta",
        "penalty",
        "preset",
        "scenario",
        "seed",
        "budget",
        "timesteps",
        "trial_id",
        "checkpoint",
        "git_commit",
        "command",
        "run_grid_step",
        *METRICS,
    ):
        assert col in e.columns, col
    one = e.loc[e["source"] == "sweep/trial_1"]
    assert set(one["run_kind"]) == {"ppo-trial"} and set(one["trial_id"]) == {"abc_00001"}
    assert set(one["timesteps"]) == {1200} and set(one["role"]) == {"trained"}
    st = e.loc[e["source"] == "static"]
    assert set(st["role"]) == {"static", "baseline"} and set(st["run_grid_step"]) == {0.1}
    assert set(st.loc[st["policy"] == "static(0.3,0.4)", "split"]) == {"(0.3, 0.4)"}
    assert st.loc[st["kind"] == "queue_aware", "w_c"].isna().all()
    # trained tags: no penalty first, delta decreasing, then penalties
    tags = e.drop_duplicates("point").set_index("source")["tag"]
    assert tags["sweep/trial_1"] == "A" and tags["sweep/trial_2"] == "B"
    assert tags["sweep/trial_0"] == "C" and tags["train-a/eval"] == "D"


def test_collect_learning_curves(tmp_path: Path) -> None:
    make_results_dir(tmp_path)
    c = collect(tmp_path)
    cur = pd.read_csv(c.files["curves"])
    assert len(cur) == 3 * 3 + 2
    t0 = cur.loc[cur["source"] == "sweep/trial_0"].sort_values("iteration")
    assert t0["env_steps"].tolist() == [400, 800, 1200]
    assert t0["env_runners/metalore/sync_delay"].tolist() == [19, 18, 17]
    assert t0["learners/default_policy/entropy"].tolist() == pytest.approx([2.9, 2.8, 2.7])
    # reward setting from run.json of the trial (params.json would say penalty -1 as well)
    assert set(t0["delta"]) == {0.5} and set(t0["penalty"]) == {-1.0}
    assert "env_runners/env_step_timer" not in cur.columns  # timers are left out
    tr = cur.loc[cur["source"] == "train-a"]
    assert tr["env_steps"].tolist() == [1000, 2000] and set(tr["penalty"]) == {-3.0}


def test_trials_that_train_nothing_have_no_curves(tmp_path: Path) -> None:
    # a static-grid block run as a Tune trial: result.json without env_runners/learners metrics
    d = tmp_path / "static_block"
    d.mkdir()
    (d / "result.json").write_text(json.dumps({"training_iteration": 1, "best_return": 3.0}) + "\n")
    assert collect(tmp_path, write=False).curves.empty


def test_curves_metadata_from_params_json_alone(tmp_path: Path) -> None:
    tune_trial_files(tmp_path / "t", 0.6)
    c = collect(tmp_path)
    assert c.episodes.empty and len(c.curves) == 3
    assert set(c.curves["delta"]) == {0.6} and set(c.curves["penalty"]) == {-1.0}
    assert "curves" in c.files and "results" in c.files


def test_points_statistics_and_superseded_duplicates(tmp_path: Path) -> None:
    make_results_dir(tmp_path, with_training=False)
    pts = points(collect(tmp_path, write=False).episodes)
    dup = pts.loc[pts["policy"] == "static(0.3,0.3)"].set_index("source")
    assert bool(dup.loc["again", "superseded"]) and not bool(dup.loc["static", "superseded"])
    r = pts.loc[(pts["policy"] == "static(0.3,0.4)")].iloc[0]
    # sync alternates base, base + 1 over 4 episodes: mean base + 0.5, sample std
    assert r["sync_delay"] == pytest.approx(0.3 * 10 + 0.4 * 20 + 0.5)
    assert r["sync_delay_std"] == pytest.approx(np.std([0, 1, 0, 1], ddof=1))
    assert r["sync_delay_n"] == 4 and r["episodes"] == 4


def test_scenario_label_names_the_overrides(tmp_path: Path) -> None:
    rows = fake_rows("static(0.3,0.3)", "static", 0.3, 0.3, 2, 9, 21, 75)
    write_set(tmp_path / "a", "static", rows)
    params = make_params("paper", n_ues=20)
    meta = run_metadata("static", params, preset="paper", seed=0, episodes=2)
    write_result_set(tmp_path / "b", meta, rows)
    e = collect(tmp_path, write=False).episodes
    assert e.groupby("source")["scenario"].first().to_dict() == {
        "a": "paper",
        "b": "paper (n_ues=20)",
    }


def test_collect_parquet_and_errors(tmp_path: Path) -> None:
    make_results_dir(tmp_path, with_training=False)
    c = collect(tmp_path, fmt="parquet")
    assert c.files["results"].suffix == ".parquet"
    assert len(pd.read_parquet(c.files["results"])) == len(c.episodes)
    with pytest.raises(FileNotFoundError):
        collect(tmp_path / "missing")
    with pytest.raises(ValueError):
        collect(tmp_path, fmt="xlsx")


def test_runs_of_one_reward_setting_share_a_letter(tmp_path: Path) -> None:
    for seed in (2, 0, 1):  # numbered by training seed, not by directory
        rows = fake_rows("ppo", "ppo", None, None, 2, 9 + seed, 10, 85, delta=0.9)
        write_set(tmp_path / f"run_{seed}x", "ppo-trial", rows, train_seed=seed)
    rows = fake_rows("ppo", "ppo", None, None, 2, 9, 10, 85, delta=0.5)
    write_set(tmp_path / "other", "ppo-trial", rows, train_seed=0)
    pts = points(collect(tmp_path, write=False).episodes).set_index("source")
    assert pts.loc["run_0x", "tag"] == "A1" and pts.loc["run_2x", "tag"] == "A3"
    assert set(pts.loc[["run_0x", "run_1x", "run_2x"], "setting"]) == {"A"}
    assert pts.loc["other", "tag"] == "B" and pts.loc["other", "setting"] == "B"
    assert pts.loc["run_1x", "label"] == "A2: δ=0.9, p=0"
