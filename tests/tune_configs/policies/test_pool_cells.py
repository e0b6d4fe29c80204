"""A pool policy says on how many cells it can act (``cells_problem``), and ``launch
pool-compare`` refuses a policy that cannot act on the scenario before the rules' split
searches, not with a shape error after them."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tune_configs.policies.pool import PoolPolicyController

ROOT = Path(__file__).resolve().parents[3]


def per_cell(n_cells: int, **env_config: Any) -> PoolPolicyController:
    modules = {"shared": lambda obs: obs[:, :3] * 0.0}
    info = {"policies": "shared", "n_cells": n_cells, "env_config": env_config}
    return PoolPolicyController(Path("p"), modules, info)


def test_a_shared_policy_without_identity_or_base_splits_runs_on_any_cell_count() -> None:
    policy = per_cell(19, obs="trader", identity=False, action_mode="residual")
    assert [policy.cells_problem(n) for n in (3, 7, 19, 49)] == [None] * 4


@pytest.mark.parametrize(
    ("env_config", "why"),
    [
        ({"obs": "trader"}, "one-hot identity of its 19 training cells"),  # identity: default on
        (
            {
                "obs": "trader",
                "identity": False,
                "action_mode": "residual",
                "base_splits": [[0.5, 0.5]] * 19,
            },
            "19 per-cell base splits",
        ),
    ],
)
def test_what_ties_a_policy_to_its_cell_count_is_named(env_config: Any, why: str) -> None:
    policy = per_cell(19, **env_config)
    assert policy.cells_problem(19) is None
    problem = policy.cells_problem(7)
    assert problem is not None and why in problem, problem
    with pytest.raises(ValueError, match="cannot act on 7 cells"):
        from envs.core.pool.clearing import PoolParams
        from envs.core.pool.sim import PoolSimulator
        from envs.core.presets import make_params

        policy.reset(PoolSimulator(make_params("seven_cell_hetero"), PoolParams()))


def test_separate_networks_need_their_cell_count() -> None:
    modules = {f"cell_{i}": (lambda obs: obs) for i in range(3)}
    info = {"policies": "separate", "n_cells": 3, "env_config": {"identity": False}}
    policy = PoolPolicyController(Path("p"), modules, info)
    assert policy.cells_problem(3) is None
    assert "one network per cell, for 3 cells" in (policy.cells_problem(7) or "")


def test_pool_compare_refuses_a_policy_of_another_cell_count_before_searching() -> None:
    r = subprocess.run(
        [sys.executable, "-m", "launch", "pool-compare", "--scenario", "seven_cell_hetero",
         "--checkpoint", "models/pool/three_cell_hetero", "--episodes", "2"],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert r.returncode == 2, r.stderr
    assert "cannot act on seven_cell_hetero (7 cells)" in r.stderr, r.stderr
    assert "acts for all its 3 training cells at once" in r.stderr
    assert "noncoop splits" not in r.stderr and r.stdout == ""  # no search ran
