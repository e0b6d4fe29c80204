"""The Optuna sweeps on a stored study, on the session's Ray (tiny budgets).

* the study is in ``<experiment>/optuna.db``, loadable by ``optuna`` in a new process, every
  trial complete and linked to its Tune trial and result set;
* two drivers at once (``launch sweep`` processes with their own experiment names on one storage
  URL and study name) feed one study: both experiments' trials in it, none twice, and the
  report reads them all;
* NSGA-II runs through the same path;
* optuna-reward (started from the paper's grid points) writes its scenario's static front: the
  report places the searched policies.
The killed driver is a fault drill (tests/tune_configs/ops/test_fault_drills.py).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.helpers.cli import ROOT, launch_env

pytestmark = pytest.mark.ray

TINY_PPO: dict[str, Any] = {
    "timesteps": 800,
    "eval_episodes": 3,
    "hparams": {"train_batch_size": 400, "minibatch_size": 100, "num_epochs": 1},
    "resources": {"num_envs_per_env_runner": 4},
}
PROBE = """
import json, sys, optuna
s = optuna.load_study(study_name=sys.argv[2], storage=sys.argv[1])
print(json.dumps([{"state": t.state.name, "values": t.values, "params": t.params,
                   "attrs": t.user_attrs, "system": t.system_attrs} for t in s.trials]))
"""


def load_in_new_process(url: str, study: str) -> list[dict[str, Any]]:
    """The study's trials as another process sees them (a fresh ``optuna.load_study``)."""
    r = subprocess.run(
        [sys.executable, "-c", PROBE, url, study], capture_output=True, text=True, timeout=120
    )
    assert r.returncode == 0, r.stderr
    return list(json.loads(r.stdout))


def test_study_stored_in_the_experiment_and_linked_to_tune_trials(
    ray_session: Any, tmp_path: Path
) -> None:
    from analysis.optuna_studies import find_studies, trials_table
    from tune_configs.sweeps import optuna_static

    tuner = optuna_static.build_tuner(
        budget="small", storage=tmp_path, name="st", samples=4, episodes=3, progress=False
    )
    results = tuner.fit()
    assert len(results) == 4 and not results.errors
    exp = tmp_path / "st"
    trials = load_in_new_process(f"sqlite:///{exp / 'optuna.db'}", "st")
    assert [t["state"] for t in trials] == ["COMPLETE"] * 4
    by_dir = {str(Path(r.path)): r for r in results}
    assert sorted(t["attrs"]["tune_trial_dir"] for t in trials) == sorted(by_dir)
    for t in trials:
        res = by_dir[t["attrs"]["tune_trial_dir"]]
        assert t["attrs"]["experiment"] == "st" and t["attrs"]["tune_trial_id"] in res.path
        assert t["attrs"]["result_set"] == t["attrs"]["tune_trial_dir"]
        assert (Path(t["attrs"]["result_set"]) / "summary.json").is_file()
        assert t["values"] == [res.metrics[k] for k in optuna_static.METRICS]
        assert t["params"] == {"w_b": res.config["w_b"], "w_c": res.config["w_c"]}
    (ref,) = find_studies(exp)
    assert len(trials_table(ref)) == 4


def test_two_drivers_feed_one_study(ray_session: Any, tmp_path: Path) -> None:
    from analysis.optuna_studies import find_studies, studies_section
    from analysis.report import MarkdownDoc

    url = f"sqlite:///{tmp_path / 'shared.db'}"
    address = str(ray_session.get_runtime_context().gcs_address)
    procs = []
    for name, seed in (("one", 1), ("two", 2)):  # two drivers at once, one storage and study
        args = [
            sys.executable,
            "-m",
            "launch",
            "sweep",
            "optuna-static",
            "--storage",
            str(tmp_path),
            "--name",
            name,
            "--address",
            address,
            "--max-concurrent",
            "1",
            "--set",
            "samples=3",
            "--set",
            "episodes=3",
            "--set",
            f"seed={seed}",
            "--set",
            f"optuna_storage={url}",
            "--set",
            "study=shared",
        ]
        procs.append(
            subprocess.Popen(
                args,
                cwd=ROOT,
                env=launch_env(),
                text=True,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
            )
        )
    for p in procs:
        out, err = p.communicate(timeout=600)
        assert p.returncode == 0, out[-2000:] + err[-3000:]
    trials = load_in_new_process(url, "shared")
    assert [t["state"] for t in trials] == ["COMPLETE"] * 6
    experiments = [t["attrs"]["experiment"] for t in trials]
    assert sorted(experiments) == ["one"] * 3 + ["two"] * 3
    links = [(t["attrs"]["experiment"], t["attrs"]["tune_trial_id"]) for t in trials]
    assert len(set(links)) == 6  # no Tune trial twice
    dirs = [t["attrs"]["tune_trial_dir"] for t in trials]
    assert len(set(dirs)) == 6 and all(Path(d).parent.name in ("one", "two") for d in dirs)
    for name in ("one", "two"):  # each experiment's Tune trials are exactly its study trials
        tune_dirs = {str(p) for p in (tmp_path / name).glob("split_*") if p.is_dir()}
        assert tune_dirs == {d for d in dirs if Path(d).parent.name == name}
    (ref,) = find_studies(tmp_path)
    assert len(ref.experiments) == 2
    md = MarkdownDoc(tmp_path)
    studies_section(md, tmp_path, tmp_path, tmp_path)
    text = md.text()
    assert text.count("### Study shared") == 1 and "fed by one (3), two (3)" in text


def test_nsga2_runs_through_the_same_path(ray_session: Any, tmp_path: Path) -> None:
    from tune_configs.sweeps import optuna_static

    tuner = optuna_static.build_tuner(
        budget="small",
        storage=tmp_path,
        name="ns",
        samples=5,
        episodes=3,
        sampler="nsga2",
        progress=False,
    )
    results = tuner.fit()
    assert len(results) == 5 and not results.errors
    trials = load_in_new_process(f"sqlite:///{tmp_path / 'ns' / 'optuna.db'}", "ns")
    assert [t["state"] for t in trials] == ["COMPLETE"] * 5
    assert all("NSGAIISampler:generation" in t["system"] for t in trials)
    study = json.loads((tmp_path / "ns" / "optuna_study.json").read_text())
    assert study["sampler"] == "nsga2"


def test_optuna_reward_report_places_the_searched_policies(
    ray_session: Any, tmp_path: Path
) -> None:
    from analysis.collect import collect, points
    from analysis.placement import claims_check
    from tune_configs.sweeps import optuna_reward

    tuner = optuna_reward.build_tuner(
        budget="small", storage=tmp_path, name="rw", samples=2, progress=False,
        start_from_grid=True, **TINY_PPO,
    )  # fmt: skip
    results = tuner.fit()
    assert len(results) == 2 and not results.errors
    # started from the paper's grid: its first two settings, enqueued in order
    rewards = {(r.config["delta"], r.config["penalty"]) for r in results}
    assert rewards == {(0.9, 0.0), (0.8, 0.0)}
    exp = tmp_path / "rw"
    out = optuna_reward.report(results, exp)
    assert out["complete"] == 2 and (exp / "static_front" / "summary.json").is_file()
    data = collect(exp)
    pts = points(data.episodes)
    assert set(pts["scenario"]) == {"paper"}
    assert (pts["role"] == "static").sum() == 121 and (pts["role"] == "trained").sum() == 2
    cc = claims_check(pts, data.episodes)
    trained = cc.loc[cc["role"] == "trained"]
    assert trained["point"].nunique() == 2  # both searched policies placed, in both planes
    assert set(trained["verdict"]) <= {"on front", "within noise", "dominated"}
    assert set(trained["plane"]) == {"sync_served", "sync_e2e"}
