"""An Optuna sweep on a real PostgreSQL (slow): the cluster option of ``--set optuna_storage``.

The test starts a throw-away PostgreSQL from Debian's packages on 127.0.0.1
(:mod:`tests.helpers.postgres`), runs a small ``optuna-static`` sweep against it, kills the
driver while a trial waits at its start, resumes it, and checks the study in the database: with
Optuna, and with plain SQL on Optuna's tables (the study really lives in PostgreSQL, nothing in
the experiment's SQLite file). ``pytest -m slow tests/tune_configs/sweeps/test_optuna_postgres.py``.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.helpers.drills import check_study_after_resume, kill_optuna_driver_and_resume
from tests.helpers.postgres import postgres_server

pytestmark = [pytest.mark.slow, pytest.mark.ray]


def test_optuna_sweep_on_postgresql_survives_a_killed_driver(tmp_path: Path) -> None:
    with postgres_server() as url:
        killed = kill_optuna_driver_and_resume(tmp_path, url=url, study="pg-study")
        check_study_after_resume(killed, n_trials=4)
        import psycopg

        with psycopg.connect(url.replace("postgresql+psycopg://", "postgresql://")) as conn:
            rows = conn.execute(
                "SELECT t.state, count(*) FROM trials t JOIN studies s USING (study_id) "
                "WHERE s.study_name = %s GROUP BY t.state",
                ("pg-study",),
            ).fetchall()
            links = conn.execute(
                "SELECT count(DISTINCT a.value_json) FROM trial_user_attributes a "
                "JOIN trials t USING (trial_id) JOIN studies s USING (study_id) "
                "WHERE s.study_name = %s AND a.key = 'tune_trial_dir' AND t.state = 'COMPLETE'",
                ("pg-study",),
            ).fetchone()
    states = {str(state).split(".")[-1]: n for state, n in rows}
    assert states.get("COMPLETE") == 4 and "RUNNING" not in states, states
    assert links is not None and links[0] == 4
    exp = killed.exp
    assert not (exp / "optuna.db").exists()  # the study is in PostgreSQL only
    record = json.loads((exp / "optuna_study.json").read_text())
    assert record["storage"] == url and record["study"] == "pg-study"
