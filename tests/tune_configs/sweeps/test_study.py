"""The Optuna sweeps' stored study: settings, storage URLs, samplers, the experiment's record.

Core tests (no Ray). The sweeps on a real study (SQLite, two drivers, NSGA-II, the static front of
optuna-reward) are in test_optuna_storage.py; the killed driver in
tests/tune_configs/ops/test_fault_drills.py; PostgreSQL in test_optuna_postgres.py.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import optuna
import pytest

from analysis.optuna_studies import STUDY_FILE, find_studies, read_study_file
from tune_configs.sweeps import optuna_reward, optuna_static
from tune_configs.sweeps.common import OBJECTIVE_MODES, OBJECTIVES, check_settings
from tune_configs.sweeps.study import (
    StudySpec,
    default_url,
    make_sampler,
    make_storage,
    public_url,
    study_spec,
    write_study_file,
)


def test_default_study_is_sqlite_in_the_experiment_named_after_it(tmp_path: Path) -> None:
    spec = study_spec({}, tmp_path / "exp", "exp", startup=4)
    assert spec.url == f"sqlite:///{(tmp_path / 'exp').resolve()}/optuna.db"
    assert spec.study == "exp" and spec.sampler == "tpe" and spec.sampler_seed == 0
    assert spec.default_storage
    other = study_spec(
        {
            "optuna_storage": "postgresql+psycopg://u:secret@127.0.0.1:5432/db",
            "study": "shared",
            "sampler": "nsga2",
            "sampler_seed": 3,
        },
        tmp_path / "exp",
        "exp",
        startup=4,
    )
    assert other.study == "shared" and other.sampler == "nsga2" and other.sampler_seed == 3
    assert not other.default_storage
    # optuna-static seeds its sampler with `seed`
    assert study_spec({"seed": 7}, tmp_path, "e", 10, seed_key="seed").sampler_seed == 7


def test_spec_rejects_unknown_sampler_and_empty_study(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="sampler"):
        StudySpec(
            url=default_url(tmp_path),
            study="s",
            experiment="s",
            exp_dir=str(tmp_path),
            sampler="random",
        )
    with pytest.raises(ValueError, match="study"):
        StudySpec(url=default_url(tmp_path), study="", experiment="s", exp_dir=str(tmp_path))


def test_study_settings_are_typed_in_both_optuna_sweeps() -> None:
    for module in (optuna_reward, optuna_static):
        ok = check_settings(
            module, {"sampler": "nsga2", "study": "s", "optuna_storage": "sqlite:///x.db"}
        )
        assert ok["sampler"] == "nsga2"
        with pytest.raises(ValueError, match="sampler"):
            check_settings(module, {"sampler": "random"})
        with pytest.raises(ValueError, match="did you mean 'study'"):
            check_settings(module, {"studdy": "s"})
    assert check_settings(optuna_reward, {"start_from_grid": True, "sampler_seed": 2})
    with pytest.raises(ValueError, match="start_from_grid"):
        check_settings(optuna_reward, {"start_from_grid": "yes"})


def test_start_from_grid_enqueues_the_21_paper_settings() -> None:
    assert optuna_reward.start_points() == [{"delta": 0.9, "penalty": 0.0}]
    points = optuna_reward.start_points(start_from_grid=True)
    assert len(points) == 21 and len({(p["delta"], p["penalty"]) for p in points}) == 21
    assert points[0] == {"delta": 0.9, "penalty": 0.0}
    space = optuna_reward.SEARCH_SPACE
    for p in points:  # inside the search space, so Optuna accepts them as fixed parameters
        assert space["delta"].low <= p["delta"] <= space["delta"].high
        assert space["penalty"].low <= p["penalty"] <= space["penalty"].high


def test_samplers() -> None:
    tpe = make_sampler("tpe", 1, 5)
    assert isinstance(tpe, optuna.samplers.TPESampler) and tpe._n_startup_trials == 5
    nsga = make_sampler("nsga2", 1, 2)
    assert isinstance(nsga, optuna.samplers.NSGAIISampler) and nsga._population_size == 4
    with pytest.raises(ValueError, match="sampler"):
        make_sampler("cmaes", 0, 1)


def test_public_url_hides_the_password() -> None:
    url = "postgresql+psycopg://optuna:s3cret@127.0.0.1:5432/studies"
    shown = public_url(url)
    assert "s3cret" not in shown and shown.startswith("postgresql+psycopg://optuna:***@127.0.0.1")


def test_study_file_names_storage_without_password_and_the_report_finds_it(tmp_path: Path) -> None:
    exp = tmp_path / "results" / "one"
    spec = study_spec({}, exp, "one", startup=4)
    write_study_file(
        spec,
        "optuna-reward",
        OBJECTIVES,
        OBJECTIVE_MODES,
        {"preset": "paper", "timesteps": 60000, "driver_command": "python -m x"},
    )
    data = json.loads((exp / STUDY_FILE).read_text())
    assert data["storage"] == "optuna.db"  # beside the file: the experiment can be moved
    assert data["directions"] == ["maximize", "minimize", "minimize"]
    assert "driver_command" not in data["constants"]
    ref = read_study_file(exp / STUDY_FILE)
    assert ref.storage == spec.url and ref.study == "one"
    # a second experiment on a shared PostgreSQL study: recorded without its password
    exp2 = tmp_path / "results" / "two"
    url = "postgresql+psycopg://optuna:s3cret@127.0.0.1:5432/studies"
    spec2 = study_spec({"optuna_storage": url, "study": "one"}, exp2, "two", startup=4)
    write_study_file(spec2, "optuna-reward", OBJECTIVES, OBJECTIVE_MODES, {})
    assert "s3cret" not in (exp2 / STUDY_FILE).read_text()
    # two experiments of one study (same storage URL and name) are one study for the report
    exp3 = tmp_path / "results" / "three"
    spec3 = study_spec({"optuna_storage": spec.url, "study": "one"}, exp3, "three", startup=4)
    write_study_file(spec3, "optuna-reward", OBJECTIVES, OBJECTIVE_MODES, {})
    refs = find_studies(tmp_path / "results")
    shared = [r for r in refs if r.storage == spec.url]
    assert len(shared) == 1 and len(shared[0].experiments) == 2
    assert len(refs) == 2


def test_sqlite_storage_is_created_and_shared_by_name(tmp_path: Path) -> None:
    url = default_url(tmp_path / "new" / "exp")
    s1 = optuna.create_study(
        storage=make_storage(url), study_name="s", directions=["maximize", "minimize", "minimize"]
    )
    s1.enqueue_trial({"x": 0.5}, skip_if_exists=True)
    s2 = optuna.load_study(study_name="s", storage=make_storage(url))
    s2.enqueue_trial({"x": 0.5}, skip_if_exists=True)  # a second driver: not enqueued again
    assert len(s2.get_trials(deepcopy=False)) == 1


def test_a_driver_that_loses_the_schema_race_opens_the_storage_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two drivers at once on a new database: the one whose schema stamp collides retries; a
    storage that keeps failing still raises."""
    from sqlalchemy.exc import IntegrityError

    from tune_configs.sweeps import study

    real = optuna.storages.RDBStorage
    calls: list[int] = []

    def collides(times: int) -> Any:
        def open_storage(url: str, **kwargs: Any) -> Any:
            calls.append(1)
            if len(calls) <= times:
                raise IntegrityError("INSERT INTO alembic_version", {}, Exception("UNIQUE"))
            return real(url, **kwargs)

        return open_storage

    monkeypatch.setattr(study.time, "sleep", lambda _s: None)
    url = f"sqlite:///{tmp_path / 'race.db'}"
    monkeypatch.setattr(optuna.storages, "RDBStorage", collides(1))
    assert isinstance(study.make_storage(url), real) and len(calls) == 2
    calls.clear()
    monkeypatch.setattr(optuna.storages, "RDBStorage", collides(study.SCHEMA_ATTEMPTS))
    with pytest.raises(IntegrityError):
        study.make_storage(url)
    assert len(calls) == study.SCHEMA_ATTEMPTS
