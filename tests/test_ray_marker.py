"""The ``ray`` marker's session switch (:mod:`tests.helpers.ray_tests`): which ``-m`` expressions
can select a ray test (the others get no Ray environment and must not import Ray), and which
modules are ray as a whole (not even imported by a ray-free session)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.helpers.ray_tests import declares_ray, ray_selectable

TESTS = Path(__file__).resolve().parent


@pytest.mark.parametrize(
    ("markexpr", "selectable"),
    [
        (None, True),
        ("", True),
        ("not slow", True),  # the default (addopts)
        ("slow", True),
        ("ray", True),
        ("ray and not slow", True),
        ("not ray or slow", True),
        ("not ray and not slow", False),  # the core
        ("not ray", False),
        ("not (ray or slow)", False),
        ("slow and not ray", False),
    ],
)
def test_which_expressions_can_select_a_ray_test(markexpr: str | None, selectable: bool) -> None:
    assert ray_selectable(markexpr) is selectable


def test_a_module_is_ray_by_its_module_level_pytestmark(tmp_path: Path) -> None:
    cases = {
        "pytestmark = pytest.mark.ray\n": True,
        "pytestmark = [pytest.mark.slow, pytest.mark.ray]\n": True,
        "import pytest\npytestmark: object = (pytest.mark.ray,)\n": True,
        "pytestmark = pytest.mark.slow\n": False,
        "@pytest.mark.ray\ndef test_x():\n    pass\n": False,  # one test only
        "def f():\n    pytestmark = pytest.mark.ray\n": False,  # not module level
        "pytestmark = (\n": False,  # unparsable: left to pytest
    }
    for i, (source, ray) in enumerate(cases.items()):
        path = tmp_path / f"test_{i}.py"
        path.write_text(source)
        assert declares_ray(path) is ray, source


def test_the_suites_all_ray_modules_are_recognised() -> None:
    assert declares_ray(TESTS / "tune_configs" / "controllers" / "test_pool_critic.py")
    assert declares_ray(TESTS / "tune_configs" / "ops" / "test_fault_drills.py")
    assert not declares_ray(TESTS / "tune_configs" / "test_export.py")  # ray test by test
