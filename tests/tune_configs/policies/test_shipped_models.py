"""The shipped policies under models/paper/: small, unpickled, described, and every one accepted
by ``launch eval`` with the output keys of ``launch static``. The reward-grid policies are the
ones ``models/paper/index.json`` lists (``launch export --sweep``); other directories (e.g. an
adaptive policy) are checked for the format and ``launch eval`` too."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tune_configs.policies.shipped import DESCRIPTION, FORMAT, WEIGHTS

ROOT = Path(__file__).resolve().parents[3]
MODELS = ROOT / "models" / "paper"
DIRS = sorted(p for p in MODELS.iterdir() if p.is_dir()) if MODELS.is_dir() else []
MANIFEST_KEYS = ("command", "seed", "env_steps", "train_wall_s", "git_commit")
INDEX = json.loads((MODELS / "index.json").read_text()) if (MODELS / "index.json").is_file() else []
SETTINGS = {r["setting"] for r in INDEX if r["shipped"]}


def test_at_least_twelve_reward_settings_are_shipped() -> None:
    assert len(SETTINGS) >= 12, f"{MODELS}/index.json: {len(SETTINGS)} shipped settings"
    assert {d.name for d in DIRS} >= SETTINGS
    for setting in SETTINGS:  # every setting lists all its training seeds, one of them shipped
        seeds = [r for r in INDEX if r["setting"] == setting]
        assert len(seeds) >= 3 and sum(r["shipped"] for r in seeds) == 1


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
    if model.name in SETTINGS:
        assert model.name == f"d{cfg['delta']:g}_p{cfg['penalty']:g}"
        assert "selection" in desc["manifest"]
    assert main(["eval", str(model), "--episodes", "3", "--seed", "7", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert list(out)[: len(static_keys)] == static_keys  # same keys, same order, then more
    assert out["delta"] == cfg["delta"] and out["penalty"] == cfg["penalty"]
    assert out["episodes"] == 3 and 0.0 <= out["served_pct"] <= 100.0
