"""The shipped pool policies (models/pool/<scenario>): complete manifest, two files only, load and
act with numpy alone (no Ray, no torch), chosen on tuning seeds, and replay a short episode."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from envs.core.pool.clearing import PoolParams
from envs.core.pool.rules import evaluate_controller
from envs.core.presets import make_params
from tune_configs.controllers import load_any_pool_controller
from tune_configs.policies.shipped import DESCRIPTION, WEIGHTS, load_shipped
from tune_configs.selection import SELECTION_SEED

ROOT = Path(__file__).resolve().parents[3]
SHIPPED = ("three_cell_hetero", "surge", "city_19", "city_49")
CITY_LAYOUTS = ("three_cell_hetero", "seven_cell_hetero", "city_19", "city_49")


@pytest.mark.parametrize("scenario", SHIPPED)
def test_shipped_pool_policy(scenario: str) -> None:
    d = ROOT / "models" / "pool" / scenario
    assert sorted(p.name for p in d.iterdir()) == sorted([DESCRIPTION, WEIGHTS])
    assert sum(p.stat().st_size for p in d.iterdir()) < 200_000  # small
    desc = json.loads((d / DESCRIPTION).read_text())
    assert desc["controller"] in ("central", "per-cell", "city")
    assert load_shipped(d).env_config["preset"] in (scenario, "city_19")  # city_49's: trained on 19
    m = desc["manifest"]
    for key in ("command", "seed", "env_steps", "train_wall_s", "git_commit"):
        assert m.get(key) not in (None, ""), key
    assert "launch train" in m["command"] and m["env_steps"] > 0
    sel = m["selection"]
    assert sel["selection_seeds"][0] == SELECTION_SEED  # chosen on tuning seeds
    assert sel["chosen"]["score"] == max(c["score"] for c in sel["candidates"])
    ctrl = load_any_pool_controller(d)
    params = make_params(scenario, episode_steps=20)
    metrics = evaluate_controller(params, PoolParams(endowment=1000.0), ctrl, 1, seed=11)[0]
    assert metrics["ue_generated"] > 0 and metrics["units_borrowed"] > 0


@pytest.mark.parametrize("scenario", ["city_19", "city_49"])
def test_shipped_city_policy_runs_on_every_cell_count(scenario: str) -> None:
    """One file, any layout: the city policies carry no cell identity and no per-cell splits,
    and were chosen on their own city's tuning episodes (docs/studies/city-controller.md)."""
    d = ROOT / "models" / "pool" / scenario
    desc = json.loads((d / DESCRIPTION).read_text())
    assert desc["controller"] == "city" and desc["policies"] == "shared"
    assert desc["interface"]["identity"] is False and "base_splits" not in desc["interface"]
    assert desc["manifest"]["selection"]["scenario"] == scenario
    ctrl = load_any_pool_controller(d)
    for layout in CITY_LAYOUTS:
        params = make_params(layout, episode_steps=10)
        assert ctrl.cells_problem(params.scenario.n_cells) is None
        m = evaluate_controller(params, PoolParams(endowment=1000.0), ctrl, 1, seed=11)[0]
        assert m["ue_generated"] > 0 and m["units_borrowed"] > 0, layout


def test_shipped_pool_policy_needs_neither_ray_nor_torch() -> None:
    code = (
        "import sys; from tune_configs.controllers import load_any_pool_controller\n"
        "from envs.core.pool.rules import evaluate_controller\n"
        "from envs.core.presets import make_params\n"
        "from envs.core.pool.clearing import PoolParams\n"
        "c = load_any_pool_controller('models/pool/three_cell_hetero')\n"
        "evaluate_controller(make_params('three_cell_hetero', episode_steps=5), PoolParams(),"
        " c, 1, 0)\n"
        "print(sorted(m for m in ('ray', 'torch') if m in sys.modules))\n"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True,
                         text=True, timeout=300)  # fmt: skip
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"
