"""``launch eval``: a policy carries its interface, not its training traffic.

A shipped policy records what it needs to act (observation transform, action mapping, residual
rule) apart from the scenario it was trained on; ``--preset P --set K=V`` evaluates exactly P
with K=V, no preset the training scenario without its training-only randomisation.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.launch.behaviour_golden import run_case
from tune_configs.controllers import evaluate_checkpoint
from tune_configs.policies.interface import interface_keys
from tune_configs.policies.shipped import VERSION, load_shipped, write_shipped

ROOT = Path(__file__).resolve().parents[2]
ADAPTIVE = ROOT / "models" / "paper" / "adaptive"
HEADLINES = ("sync_delay", "e2e_delay", "served_pct", "episode_return")


def _heads(summary: dict) -> dict:
    return {k: summary[k] for k in HEADLINES}


def test_eval_on_a_preset_equals_the_adaptivity_study() -> None:
    from tune_configs.studies.adaptivity import VARIANTS, StudySettings, variant_overrides

    settings = StudySettings(episodes=20, seed=20000)
    study = evaluate_checkpoint(
        ADAPTIVE, 20, 20000, **variant_overrides(VARIANTS["paper_dynamic"], settings)
    )
    got = run_case(["eval", str(ADAPTIVE), "--preset", "paper_dynamic", "--episodes", "20",
                    "--seed", "20000", "--json"])  # fmt: skip
    assert _heads(got) == _heads(study)
    assert got["evaluated_on"]["source"] == "preset"
    assert got["evaluated_on"]["description"] == "preset paper_dynamic"


def test_set_without_preset_is_the_training_scenario_without_randomisation() -> None:
    args = ["--episodes", "10", "--json"]
    got = run_case(["eval", str(ADAPTIVE), "--set", "n_ues=14", *args])
    on = got["evaluated_on"]
    assert on["source"] == "training" and on["reset_training_only"] == ["traffic_randomize"]
    assert "without traffic_randomize" in on["description"] and "n_ues=14" in on["description"]
    # the same as naming the paper cell with 14 UEs explicitly ...
    explicit = run_case(["eval", str(ADAPTIVE), "--preset", "paper", "--set", "n_ues=14", *args])
    assert _heads(got) == _heads(explicit)
    # ... and not the randomised training traffic
    randomised = run_case(["eval", str(ADAPTIVE), "--preset", "paper", "--set", "n_ues=14",
                           "--set", "traffic_randomize=true", *args])  # fmt: skip
    assert _heads(got) != _heads(randomised)


def test_interface_cannot_be_overridden(capsys: pytest.CaptureFixture[str]) -> None:
    from launch.cli import main

    assert main(["eval", str(ADAPTIVE), "--set", "obs_mode=raw", "--episodes", "2"]) == 2
    assert "obs_mode cannot differ" in capsys.readouterr().err


@pytest.mark.parametrize("path", ["models/paper/d0.9_p0", "models/pool/three_cell_hetero"])
def test_version_1_and_2_files_evaluate_alike(path: str, tmp_path: Path) -> None:
    old = load_shipped(ROOT / path)
    assert old.description["version"] == 1 and "env_config" in old.description
    d = old.description
    extra = {k: d[k] for k in ("n_cells", "policies", "params") if k in d}
    new_dir = write_shipped(
        tmp_path / "v2", old.actors, controller=old.controller, env_config=old.env_config,
        interface=interface_keys(old.controller), action=d["action"], manifest=d["manifest"],
        extra=extra,
    )  # fmt: skip
    desc = json.loads((new_dir / "policy.json").read_text())
    assert desc["version"] == VERSION == 2 and "env_config" not in desc
    assert "obs_mode" in desc["interface"] and "preset" in desc["trained_on"]
    assert "preset" not in desc["interface"]
    assert load_shipped(new_dir).env_config == old.env_config
    a = evaluate_checkpoint(ROOT / path, 5, 0)
    b = evaluate_checkpoint(new_dir, 5, 0)
    a.pop("evaluated_on"), b.pop("evaluated_on")
    assert a == b
