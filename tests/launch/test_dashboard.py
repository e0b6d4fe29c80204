"""``launch dashboard``: optuna-dashboard on 127.0.0.1 for an experiment's stored study, seen in a
real headless browser (the shared ``browser`` fixture, Debian's Chromium), and its usage errors.

The study is stored as an Optuna sweep leaves it (``optuna.db`` and ``optuna_study.json`` in the
experiment, written by :func:`tune_configs.sweeps.study.write_study_file`), filled by Optuna's
ask/tell without Ray.
"""

from __future__ import annotations

import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import optuna
import pytest

from tests.helpers.cli import ROOT, launch_env, run_launch_here
from tune_configs.sweeps.common import OBJECTIVE_MODES, OBJECTIVES
from tune_configs.sweeps.study import make_storage, study_spec, write_study_file

# (delta, penalty) -> (served %, sync delay, E2E delay); the last is dominated by the first
TRIALS = {
    (0.9, 0.0): (95.0, 14.0, 4.0),
    (0.5, -1.0): (99.0, 30.0, 1.0),
    (0.3, -5.0): (90.0, 8.0, 9.0),
    (0.7, -2.0): (94.0, 15.0, 5.0),
}
SPACE = {
    "delta": optuna.distributions.FloatDistribution(0.1, 1.0),
    "penalty": optuna.distributions.FloatDistribution(-5.0, 0.0),
}


def stored_study(exp: Path, name: str) -> None:
    spec = study_spec({}, exp, name, startup=4)
    write_study_file(spec, "optuna-reward", OBJECTIVES, OBJECTIVE_MODES, {"preset": "paper"})
    study = optuna.create_study(
        storage=make_storage(spec.url),
        study_name=name,
        directions=["maximize", "minimize", "minimize"],
    )
    study.set_metric_names(list(OBJECTIVES))
    for (delta, penalty), values in TRIALS.items():
        study.enqueue_trial({"delta": delta, "penalty": penalty})
        trial = study.ask(SPACE)
        trial.set_user_attr("tune_trial_dir", str(exp / f"ppo_d{delta}_p{penalty}"))
        study.tell(trial, list(values))


@pytest.fixture
def dashboard(tmp_path: Path) -> Iterator[tuple[str, subprocess.Popen[str]]]:
    """``launch dashboard EXP`` running on a free port: (its URL, the process)."""
    exp = tmp_path / "results" / "searched"
    stored_study(exp, "searched")
    proc = subprocess.Popen(
        [sys.executable, "-m", "launch", "dashboard", str(tmp_path / "results")],
        cwd=ROOT,
        env=launch_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        m = re.search(r"optuna-dashboard: (http://127\.0\.0\.1:(\d+))", line)
        assert m, line + proc.stdout.read() if proc.poll() is not None else line
        assert "(studies: searched)" in line
        yield m.group(1), proc
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=30)


def wait_listening(url: str, proc: subprocess.Popen[str], timeout: float = 120) -> None:
    import urllib.request

    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(f"{url}/api/studies", timeout=5) as r:
                if r.status == 200:
                    return
        except OSError:
            pass
        assert proc.poll() is None, "the dashboard exited"
        assert time.monotonic() < deadline, "the dashboard never answered"
        time.sleep(0.2)


@pytest.mark.filterwarnings("ignore::optuna.exceptions.ExperimentalWarning")
def test_dashboard_shows_the_study_its_trials_and_the_pareto_front(
    dashboard: tuple[str, subprocess.Popen[str]], browser: Any, tmp_path: Path
) -> None:
    url, proc = dashboard
    wait_listening(url, proc)
    # loopback only: the server is bound to 127.0.0.1, not to every interface
    listening = subprocess.run(["ss", "-ltnH"], capture_output=True, text=True)
    if listening.returncode == 0:
        port = url.rsplit(":", 1)[1]
        binds = [
            ln.split()[3]
            for ln in listening.stdout.splitlines()
            if ln.split()[3].endswith(f":{port}")
        ]
        assert binds == [f"127.0.0.1:{port}"], binds
    page = browser.open(f"{url}/dashboard/", wait_for_text="searched")
    assert "Direction: MAXIMIZE, MINIMIZE, MINIMIZE" in page.inner_text("body")
    page = browser.open(f"{url}/dashboard/studies/1", wait_for_text="Pareto Front")
    browser.wait_for_text(page, "Best Trials")
    plot = page.locator(".js-plotly-plot").first
    plot.locator("path.point").first.wait_for(state="attached")
    points = plot.locator("path.point").count()
    assert points == len(TRIALS), points  # every complete trial drawn in the Pareto-front plot
    browser.screenshot(page, tmp_path / "study.png")
    text = page.inner_text("body")
    assert "eval/served_pct" in text and "eval/sync_delay" in text  # the objectives' names
    for number in range(len(TRIALS)):  # the Pareto trials (the fourth is dominated)
        assert (f"Trial {number}" in text) == (number != 3), number
    page = browser.open(f"{url}/dashboard/studies/1/trials", wait_for_text="Trial 3")
    text = page.inner_text("body")
    assert all(f"Trial {n}" in text for n in range(len(TRIALS)))
    assert "tune_trial_dir" in text  # the link to the Tune trial, a user attribute


@pytest.mark.filterwarnings("ignore::optuna.exceptions.ExperimentalWarning")
def test_dashboard_usage_errors(tmp_path: Path) -> None:
    r = run_launch_here("dashboard", str(tmp_path / "missing"))
    assert r.returncode == 2 and "not a directory" in r.stderr
    r = run_launch_here("dashboard", str(tmp_path))
    assert r.returncode == 2 and "no Optuna study" in r.stderr and "--storage" in r.stderr
    for name in ("a", "b"):  # two experiments, each with its own database
        stored_study(tmp_path / name, name)
    r = run_launch_here("dashboard", str(tmp_path))
    assert r.returncode == 2 and "several study databases" in r.stderr
    assert "a/optuna.db" in r.stderr and "b/optuna.db" in r.stderr
