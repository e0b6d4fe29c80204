"""Hostile sweep settings (hypothesis, in-process): every ``--set`` key of every sweep, given any
value a user can type, is accepted or refused with an error naming what is wrong; a refused one
makes ``launch sweep`` and ``launch submit`` exit with status 2 before Ray starts or a cluster is
contacted, writing nothing. Accepted values are resolved as each trial would resolve them
(controller, env config and scenario, hyper-parameters, resources), so what passes here does not
fail later in a trial for the same reason. Imports Ray (the controllers), starts none."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from launch.cli import UsageError
from launch.sweep import check_sweep_settings
from tests.helpers.cli import run_launch_here
from tests.helpers.hostile import JSON, RAW, examples, nothing_written, parsed
from tune_configs.sweeps import SWEEPS, sweep_module

pytestmark = pytest.mark.ray

KEYS = [(sweep, s.name) for sweep in SWEEPS for s in sweep_module(sweep).SETTINGS]
# hostile values of the nested settings, next to any JSON
NESTED = {
    "hparams": st.dictionaries(st.sampled_from(["lr", "gamma", "train_batch_size",
                                                "fcnet_hiddens", "fcnet_activation", "bogus",
                                                "num_epochs", "minibatch_size"]), JSON,
                               max_size=2),
    "env": st.dictionaries(st.sampled_from(["n_ues", "reward_scale", "obs_mode", "bogus",
                                            "episode_steps", "bs_positions"]), JSON, max_size=2),
    "resources": st.dictionaries(st.sampled_from(["num_env_runners", "num_envs_per_env_runner",
                                                  "vector_env", "num_gpus"]), JSON, max_size=2),
}  # fmt: skip


def _error(sweep: str, key: str, value: Any) -> str | None:
    try:
        check_sweep_settings(sweep, {key: value}, "small")
    except UsageError as exc:
        return str(exc)
    return None


def _check_refused(tmp: Path, sweep: str, key: str, raw: str, message: str) -> None:
    assert key in message or (isinstance(parsed(raw), dict) and any(
        str(k) in message for k in parsed(raw))), message  # fmt: skip
    storage = tmp / "results"
    storage.mkdir()
    r = run_launch_here("sweep", sweep, "--set", f"{key}={raw}", "--storage", str(storage))
    assert r.returncode == 2, (sweep, key, raw, r.stdout, r.stderr)
    assert "error:" in r.stderr and "Traceback" not in r.stderr
    assert nothing_written(storage)
    r = run_launch_here("submit", sweep, "--set", f"{key}={raw}", "--address",
                        "http://127.0.0.1:9", "--cluster-dir", str(tmp / "no-cluster"),
                        "--storage", str(storage), "--no-wait")  # fmt: skip
    assert r.returncode == 2, (sweep, key, raw, r.stdout, r.stderr)
    assert nothing_written(storage) and not (tmp / "no-cluster").exists()


@examples(250)
@given(st.sampled_from(KEYS), RAW)
def test_every_sweep_setting_is_accepted_or_a_usage_error(
    tmp_path_factory: Any, key: tuple[str, str], raw: str
) -> None:
    sweep, name = key
    message = _error(sweep, name, parsed(raw))
    if message is not None:
        _check_refused(tmp_path_factory.mktemp("s"), sweep, name, raw, message)


@examples(150)
@given(st.sampled_from(sorted(NESTED)).flatmap(lambda k: st.tuples(st.just(k), NESTED[k])),
       st.sampled_from(["paper-grid", "quickstart", "optuna-reward"]))  # fmt: skip
def test_nested_settings_are_checked_before_ray(
    tmp_path_factory: Any, item: tuple[str, Any], sweep: str
) -> None:
    import json

    name, value = item
    message = _error(sweep, name, value)
    if message is not None:
        _check_refused(tmp_path_factory.mktemp("s"), sweep, name, json.dumps(value), message)


@pytest.mark.parametrize(
    ("key", "raw", "says"),
    [
        ("hparams", '{"lr": "fast"}', "lr"),
        ("hparams", '{"fcnet_hiddens": [64, 0]}', "fcnet_hiddens"),
        ("hparams", '{"minibatch_size": 9000}', "minibatch_size"),
        ("env", '{"n_ues": 1e9}', "n_ues"),
        ("env", '{"nues": 3}', "did you mean 'n_ues'"),
        ("resources", '{"num_gpus": 1}', "num_gpus"),
        ("controller", "os:system", "controller"),
        ("seeds", "[]", "seeds"),
        ("deltas", "[0.9, NaN]", "deltas"),
    ],
)
def test_known_bad_values_are_named(tmp_path: Path, key: str, raw: str, says: str) -> None:
    message = _error("paper-grid", key, parsed(raw))
    assert message is not None and says in message, message
    _check_refused(tmp_path, "paper-grid", key, raw, message)


def test_results_table_skips_trials_that_never_started() -> None:
    """After Ctrl-C, Tune's results hold trials without a config: the summary skips them."""
    from types import SimpleNamespace

    from tune_configs.sweeps.common import results_table

    done = SimpleNamespace(
        metrics={"eval/served_pct": 90.0}, error=None, path="/x/static_1",
        config={"kind": "split", "w_b": 0.3, "w_c": 0.4, "preset": "paper"},
    )  # fmt: skip
    never = SimpleNamespace(metrics={}, error=None, path="/x/ppo_2", config=None)
    rows = results_table([done, never])
    assert [r["trial"] for r in rows] == ["static_1"] and rows[0]["eval/served_pct"] == 90.0
