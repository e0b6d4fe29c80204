"""The shipped policies under models/paper/: small, unpickled, described, and every one accepted
by ``launch eval`` with the output keys of ``launch static``."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tune_configs.export import DESCRIPTION, FORMAT, WEIGHTS

ROOT = Path(__file__).resolve().parents[1]
MODELS = ROOT / "models" / "paper"
DIRS = sorted(p for p in MODELS.iterdir() if p.is_dir()) if MODELS.is_dir() else []
MANIFEST_KEYS = ("command", "seed", "env_steps", "train_wall_s", "git_commit", "selection")


def test_at_least_twelve_reward_settings_are_shipped() -> None:
    assert len(DIRS) >= 12, f"{MODELS}: {len(DIRS)} shipped policies"
    index = json.loads((MODELS / "index.json").read_text())
    assert {r["setting"] for r in index if r["shipped"]} == {d.name for d in DIRS}


@pytest.fixture(scope="module")
def static_keys() -> list[str]:
    import io
    from contextlib import redirect_stdout

    from launch.cli import main

    buf = io.StringIO()
    with redirect_stdout(buf):
        assert main(["static", "--split", "0.3,0.4", "--episodes", "2", "--json"]) == 0
    return list(json.loads(buf.getvalue()))


@pytest.mark.parametrize("model", DIRS, ids=lambda p: p.name)
def test_shipped_policy_evaluates_like_a_static_split(
    model: Path, static_keys: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    from launch.cli import main

    assert sorted(p.name for p in model.iterdir()) == sorted([DESCRIPTION, WEIGHTS])
    assert (model / WEIGHTS).stat().st_size < 100_000
    desc = json.loads((model / DESCRIPTION).read_text())
    assert desc["format"] == FORMAT and desc["controller"] == "single"
    for key in MANIFEST_KEYS:
        assert desc["manifest"].get(key) is not None, key
    cfg = desc["env_config"]
    assert model.name == f"d{cfg['delta']:g}_p{cfg['penalty']:g}"
    assert main(["eval", str(model), "--episodes", "3", "--seed", "7", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert list(out)[: len(static_keys)] == static_keys  # same keys, same order, then more
    assert out["delta"] == cfg["delta"] and out["penalty"] == cfg["penalty"]
    assert out["episodes"] == 3 and 0.0 <= out["served_pct"] <= 100.0
