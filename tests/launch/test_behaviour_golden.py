"""The platform's key commands give the golden metric values (see :mod:`.behaviour_golden`)."""

from __future__ import annotations

import json
import os

import pytest

from tests.launch.behaviour_golden import CASES, GOLDEN, differences, digest, run_case


@pytest.mark.parametrize("name", sorted(CASES))
def test_command_gives_the_golden_values(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(os.path.dirname(os.path.dirname(os.path.dirname(__file__))))
    expected = json.loads(GOLDEN.read_text())
    got = {name: digest(run_case(CASES[name]), expected[name]["keys"])}
    diff = differences({name: expected[name]}, got)
    assert not diff, (
        "metric values changed:\n" + "\n".join(diff) + "\nIf on purpose: python -m "
        "tests.launch.behaviour_golden --update, and say why in the commit."
    )
