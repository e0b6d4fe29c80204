"""The determinism canaries (:mod:`tests.canaries`) give their golden fingerprints, and a change
fails with a message naming what changed."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from tests.canaries import CASES, GOLDEN, check, episode_metalore


@pytest.fixture(scope="module")
def golden() -> dict[str, Any]:
    return json.loads(GOLDEN.read_text())  # type: ignore[no-any-return]


@pytest.mark.parametrize(
    "name", [pytest.param(n, marks=[pytest.mark.ray] if c.ray else []) for n, c in CASES.items()]
)
def test_canary_keeps_its_fingerprint(name: str, golden: dict[str, Any]) -> None:
    diff = check(name, golden, CASES[name].run())
    assert not diff, "\n".join(diff)


@pytest.fixture(scope="module")
def episode() -> Any:
    return episode_metalore()


def test_a_perturbed_input_fails_naming_the_canary_and_what_moved(golden: dict[str, Any]) -> None:
    diff = check("episode_MetaLore-v0", golden, episode_metalore(ue_job_prob=0.71))
    assert diff[0].startswith("canary episode_MetaLore-v0: fingerprint changed"), diff
    changed = diff[1].split("changed: ", 1)[1].split(" (", 1)[0].split(", ")
    assert {"reward", "obs", "sync_delay"} <= set(changed), diff
    assert any("episode_return" in line and "->" in line for line in diff), diff
    assert "python -m tests.canaries --update episode_MetaLore-v0" in diff[-1]


def test_a_changed_reward_is_named_and_nothing_else(golden: dict[str, Any], episode: Any) -> None:
    assert check("episode_MetaLore-v0", golden, episode) == []
    out = copy.deepcopy(episode)
    out["steps"][37]["reward"] += 0.5
    diff = check("episode_MetaLore-v0", golden, out)
    assert diff[1].startswith("    changed: reward ("), diff


def test_float_noise_below_the_rounding_keeps_the_fingerprint(
    golden: dict[str, Any], episode: Any
) -> None:
    out = copy.deepcopy(episode)
    for step in out["steps"]:
        step["reward"] = float(step["reward"]) * (1 + 1e-11)  # another CPU's last bits
    assert check("episode_MetaLore-v0", golden, out) == []
