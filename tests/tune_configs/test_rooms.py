"""The rooms of tune_configs keep their promises at import time (the import-linter contracts in
pyproject.toml check the static graph; this checks what a fresh interpreter actually loads)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _loaded_after(code: str) -> set[str]:
    probe = (
        code
        + "\nimport json, sys\nprint(json.dumps(sorted({m.split('.')[0] for m in sys.modules})))"
    )
    out = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True,
                         timeout=120, check=True)  # fmt: skip
    return set(json.loads(out.stdout.strip().splitlines()[-1]))


def test_policies_and_their_evaluation_need_neither_ray_nor_torch() -> None:
    loaded = _loaded_after(
        "import tune_configs.policies.shipped, tune_configs.policies.single, "
        "tune_configs.policies.pool, tune_configs.policies.interface, "
        "tune_configs.policies.checkpoint\n"
        "from tune_configs.policies.single import load_policy, evaluate_policy\n"
        "evaluate_policy(load_policy('models/paper/d0.9_p0'), 2, 0)"
    )
    assert not loaded & {"ray", "torch"}, loaded & {"ray", "torch"}


def test_the_sweep_registry_and_controller_registry_import_lightly() -> None:
    loaded = _loaded_after("import tune_configs.sweeps, tune_configs.controllers")
    assert not loaded & {"ray", "torch", "optuna"}
