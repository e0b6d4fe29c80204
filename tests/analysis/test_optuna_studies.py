"""analysis.optuna_studies: reading stored studies, their Pareto trials, hypervolume over trials."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import numpy as np
import optuna
import pytest

from analysis.optuna_studies import (
    STUDY_FILE,
    find_studies,
    hypervolume_curve,
    pareto_rows,
    searched_vs_grid,
    studies_section,
    trial_commands,
    trials_table,
)
from analysis.report import MarkdownDoc

OBJ = ["eval/served_pct", "eval/sync_delay", "eval/e2e_delay"]
DIRS = ["maximize", "minimize", "minimize"]
REWARD = {
    "delta": optuna.distributions.FloatDistribution(0.1, 1.0),
    "penalty": optuna.distributions.FloatDistribution(-5.0, 0.0),
}


def make_study(
    exp: Path,
    trials: list[tuple[dict[str, float], list[float]]],
    study: str = "s",
    storage: str | None = None,
) -> str:
    """A stored study as an optuna-reward sweep leaves it (trials told in order), plus its file."""
    exp.mkdir(parents=True, exist_ok=True)
    url = storage or f"sqlite:///{exp / 'optuna.db'}"
    s = optuna.create_study(storage=url, study_name=study, directions=DIRS, load_if_exists=True)
    for i, (params, values) in enumerate(trials):
        s.enqueue_trial({"penalty": -1.0, **params})
        t = s.ask(REWARD)
        t.set_user_attr("experiment", exp.name)
        t.set_user_attr("tune_trial_id", f"id{i}")
        t.set_user_attr("tune_trial_dir", str(exp / f"ppo_{i}_id{i}"))
        s.tell(t, values)
    (exp / STUDY_FILE).write_text(
        json.dumps(
            {
                "storage": "optuna.db" if storage is None else storage,
                "study": study,
                "sweep": "optuna-reward",
                "objectives": OBJ,
                "directions": DIRS,
                "constants": {
                    "preset": "paper",
                    "timesteps": 60000,
                    "seed": 0,
                    "obs_mode": "log1p",
                    "eval_episodes": 100,
                },
            }
        )
    )
    return url


def test_trials_pareto_and_links(tmp_path: Path) -> None:
    exp = tmp_path / "e"
    make_study(
        exp,
        [
            ({"delta": 0.9}, [90.0, 10.0, 5.0]),
            ({"delta": 0.5}, [95.0, 20.0, 4.0]),
            ({"delta": 0.3}, [89.0, 11.0, 6.0]),  # dominated by trial 0 in all three
        ],
    )
    (ref,) = find_studies(tmp_path)
    table = trials_table(ref)
    assert list(table["state"]) == ["COMPLETE"] * 3
    assert list(table["served_pct"]) == [90.0, 95.0, 89.0]
    assert list(table["tune_trial_id"]) == ["id0", "id1", "id2"]
    assert table["param_delta"].tolist() == pytest.approx([0.9, 0.5, 0.3])
    assert sorted(pareto_rows(ref, table)["number"]) == [0, 1]
    cmds = trial_commands(ref, table.iloc[1])
    assert cmds["retrain"].startswith("python -m launch train --preset paper --delta 0.5 ")
    assert "--timesteps 60000 --seed 0 --obs-mode log1p" in cmds["retrain"]
    assert cmds["ship"] == f"python -m launch export {exp}/ppo_1_id1/checkpoint --out models/s-t1"


def test_static_split_trial_command() -> None:
    from analysis.optuna_studies import StudyRef

    ref = StudyRef(
        "sqlite:///x.db",
        "st",
        "optuna-static",
        tuple(OBJ),
        tuple(DIRS),
        constants={
            "preset": "paper",
            "delta": 0.9,
            "penalty": 0.0,
            "episodes": 100,
            "eval_seed": 0,
        },
    )
    cmds = trial_commands(ref, {"number": 4, "param_w_b": 0.31, "param_w_c": 0.42})
    assert cmds["retrain"] == (
        "python -m launch static --split 0.31,0.42 --preset paper --delta 0.9 --penalty 0 "
        "--episodes 100 --seed 0 --out results/splits/st-t4"
    )


def test_hypervolume_curve_known_answer(tmp_path: Path) -> None:
    """In (sync down, served up) with reference (sync 10, served 0): a point (4, 50) dominates
    6 x 50 = 300; adding (2, 20) adds 2 x 20 = 40; a dominated (5, 40) adds nothing."""
    exp = tmp_path / "e"
    make_study(
        exp,
        [
            ({"delta": 0.9}, [50.0, 4.0, 1.0]),
            ({"delta": 0.5}, [40.0, 5.0, 1.0]),
            ({"delta": 0.3}, [20.0, 2.0, 1.0]),
        ],
    )
    (ref,) = find_studies(tmp_path)
    curve, refpt = hypervolume_curve(trials_table(ref), ref_point=(10.0, 0.0))
    assert refpt == (10.0, 0.0)
    assert curve["trials"].tolist() == [1, 2, 3]
    assert curve["hypervolume"].tolist() == pytest.approx([300.0, 300.0, 340.0])


def test_searched_vs_grid_known_answers() -> None:
    rng = np.random.default_rng(0)
    grid = np.c_[rng.uniform(50, 100, 30), rng.uniform(5, 40, 30), rng.uniform(0, 10, 30)]
    # a search that proposes the grid's trials in its order reaches the grid's hypervolume at the
    # end; one that proposes the grid's best three first can only match or beat the first
    order = np.argsort(-(grid[:, 0] - grid[:, 1]))
    out = searched_vs_grid({0: grid, 1: grid[order]}, grid, counts=(3, 30), subsets=200)
    assert out["at"][30]["search_2d"]["values"] == pytest.approx([1.0, 1.0])
    assert out["at"][30]["search_3d"]["values"] == pytest.approx([1.0, 1.0])
    assert out["at"][30]["grid_2d"]["mean"] == pytest.approx(1.0)  # all 30: the grid itself
    assert out["at"][3]["search_2d"]["n"] == 2 and len(out["at"][3]["search_2d"]["ci95"]) == 2
    lo, hi = out["at"][3]["grid_2d"]["q025"], out["at"][3]["grid_2d"]["q975"]
    assert 0.0 <= lo <= out["at"][3]["grid_2d"]["mean"] <= hi <= 1.0
    assert out["match"]["2d"][0] == 30 or out["match"]["2d"][0] <= 30
    for seed in (0, 1):
        c = out["curves"]["2d"][seed]
        assert all(b >= a - 1e-12 for a, b in itertools.pairwise(c))  # never decreases
    # a count beyond a seed's trials is left out of that count's statistics
    short = searched_vs_grid({0: grid[:5], 1: grid}, grid, counts=(10,), subsets=10)
    assert short["at"][10]["search_2d"]["n"] == 1


def test_report_section_lists_pareto_trials_and_draws_the_curve(tmp_path: Path) -> None:
    root = tmp_path / "results"
    url = make_study(root / "a", [({"delta": 0.9}, [90.0, 10.0, 5.0])], study="shared")
    make_study(root / "b", [({"delta": 0.5}, [95.0, 20.0, 4.0])], study="shared", storage=url)
    md = MarkdownDoc(root)
    (root / "figures").mkdir()
    (root / "tables").mkdir()
    studies_section(md, root, root / "figures", root / "tables")
    text = md.text()
    assert text.count("### Study shared (optuna-reward)") == 1  # two experiments, one study
    assert "2 trials (2 complete); fed by a (1), b (1)" in text
    assert "python -m launch train --preset paper --delta 0.9 " in text
    assert "python -m launch export" in text
    assert (root / "figures" / "optuna_hypervolume.png").is_file()
    assert (root / "tables" / "optuna_trials_shared.csv").is_file()
    empty = MarkdownDoc(tmp_path)
    studies_section(empty, tmp_path / "nothing", tmp_path, tmp_path)
    assert "Optuna" not in empty.text()
