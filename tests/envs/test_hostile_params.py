"""Hostile scenario parameters (hypothesis, in-process): every preset parameter, given any JSON
value, is either accepted or refused with a ``ValueError`` naming it; on the command line a refused
value is a usage error (exit status 2) and nothing is written."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from envs.core.params import ENV_FIELDS, REWARD_FIELDS, SCENARIO_FIELDS, EnvParams
from envs.core.presets import PRESETS, make_params
from tests.helpers.cli import run_launch_here
from tests.helpers.hostile import JSON, RAW, examples, nothing_written, parsed

FIELDS = sorted(SCENARIO_FIELDS | REWARD_FIELDS | ENV_FIELDS)


def _named(field: str, message: str) -> bool:
    return field in message


@examples(1500)
@given(st.sampled_from(sorted(PRESETS)), st.sampled_from(FIELDS), JSON)
def test_every_parameter_is_accepted_or_refused_naming_it(
    preset: str, field: str, value: Any
) -> None:
    try:
        params = make_params(preset, **{field: value})
    except ValueError as exc:
        assert _named(field, str(exc)), (field, value, str(exc))
    else:
        assert isinstance(params, EnvParams)
        assert EnvParams.from_dict(json.loads(json.dumps(params.to_dict()))) == params


def _refused(preset: str, field: str, value: Any) -> bool:
    try:
        make_params(preset, **{field: value})
    except ValueError:
        return True
    return False


@examples(150)
@given(st.sampled_from(["paper", "three_cell_hetero", "paper_dynamic"]), st.sampled_from(FIELDS),
       RAW)  # fmt: skip
def test_a_refused_parameter_is_a_usage_error_and_writes_nothing(
    tmp_path_factory: Any, preset: str, field: str, raw: str
) -> None:
    if not _refused(preset, field, parsed(raw)):
        return  # an accepted value would run the command
    out = tmp_path_factory.mktemp("out")
    r = run_launch_here("static", "--preset", preset, "--set", f"{field}={raw}",
                        "--episodes", "1", "--grid", "0.5", "--out", str(out / "set"))  # fmt: skip
    assert r.returncode == 2, (field, raw, r.stderr)
    assert "error:" in r.stderr and field in r.stderr, r.stderr
    assert "Traceback" not in r.stderr
    assert nothing_written(out)


def test_sizes_are_bounded() -> None:
    for field, value in (("n_ues", 10**9), ("n_sensors", 10**6), ("episode_steps", 10**12),
                         ("bs_positions", [[1.0, 1.0]] * 65)):  # fmt: skip
        try:
            make_params("paper", **{field: value})
        except ValueError as exc:
            assert field in str(exc)
        else:
            raise AssertionError(f"{field}={value!r} accepted")
