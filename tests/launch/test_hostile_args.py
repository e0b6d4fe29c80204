"""Hostile command-line arguments (in-process): every option of every command, given a value its
own type or choices refuse (hypothesis), and a curated set of values that pass the types but not
the commands' own checks, are usage errors: exit status 2, a message naming what is wrong, no
traceback, nothing written."""

from __future__ import annotations

import argparse
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from launch.cli import COMMANDS, build_parser
from tests.helpers.cli import run_launch_here
from tests.helpers.hostile import examples, nothing_written

ROOT = Path(__file__).resolve().parents[2]
MODEL = str(ROOT / "models" / "paper" / "d0.9_p0")
NASTY = [
    "", " ", "-1", "0", "-0", "1.5", "1e3", "1e309", "nan", "NaN", "inf", "-inf", "9" * 40,
    "0x10", "1,2", "1,2,3", "[1]", "{}", "null", "true", "abc", "../../etc", "\x00", "💥",
    "0.3,", ",0.4", "2,0.5", "0.5,-0.1", "nan,0.5", "=", "a=", "=1", "10**9", "1_000",
]  # fmt: skip


def _leaves() -> Iterator[tuple[tuple[str, ...], argparse.ArgumentParser]]:
    for cmd in COMMANDS:
        parser = build_parser(cmd)[1][cmd]
        subs = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
        if subs:
            for name, sub in subs[0].choices.items():
                yield (cmd, name), sub
        else:
            yield (cmd,), parser


def _filler(parser: argparse.ArgumentParser, tmp: Path, skip: argparse.Action) -> list[str]:
    """Valid values for the required arguments, so that only the option under test is wrong."""
    argv: list[str] = []
    for a in parser._actions:
        if a is skip or isinstance(a, argparse._SubParsersAction):
            continue
        if not a.option_strings:  # a positional
            argv.append(sorted(a.choices)[0] if a.choices else MODEL)
        elif a.required:
            argv += [a.option_strings[0], str(tmp / "out")]
    return argv


OPTIONS = [
    (prefix, a.option_strings[0])
    for prefix, parser in _leaves()
    for a in parser._actions
    if a.option_strings and a.nargs != 0 and (a.type is not None or a.choices is not None)
]


def _action(prefix: tuple[str, ...], option: str) -> tuple[argparse.ArgumentParser, Any]:
    parser = dict(_leaves())[prefix]
    return parser, next(a for a in parser._actions if option in a.option_strings)


def _refused_by_type(action: Any, text: str) -> bool:
    try:
        value = action.type(text) if action.type is not None else text
    except (argparse.ArgumentTypeError, TypeError, ValueError):
        return True
    return action.choices is not None and value not in action.choices


def test_every_command_has_options_under_test() -> None:
    commands = {prefix[0] for prefix, _ in OPTIONS}
    assert commands >= set(COMMANDS) - {"report"}, sorted(set(COMMANDS) - commands)
    assert len(OPTIONS) >= 60, len(OPTIONS)


@examples(250)
@given(st.sampled_from(OPTIONS), st.sampled_from(NASTY) | st.text(max_size=12))
def test_an_option_value_its_type_refuses_is_a_usage_error(
    tmp_path_factory: Any, option: tuple[tuple[str, ...], str], text: str
) -> None:
    prefix, name = option
    parser, action = _action(prefix, name)
    assume(_refused_by_type(action, text))
    tmp = tmp_path_factory.mktemp("args")
    argv = [*prefix, *_filler(parser, tmp, action), f"{name}={text}"]
    r = run_launch_here(*argv)
    assert r.returncode == 2, (argv, r.stderr)
    assert f"argument {name}" in r.stderr or name in r.stderr, r.stderr
    assert "Traceback" not in r.stderr
    assert nothing_written(tmp)


def _junk_policy(tmp: Path) -> str:
    d = tmp / "junk"
    d.mkdir()
    (d / "policy.json").write_text("{not json")
    (d / "policy.safetensors").write_bytes(b"\x00" * 16)
    return str(d)


# (argv with {tmp} for a fresh directory, a word the error must contain); none starts Ray
CURATED: list[tuple[list[str], str]] = [
    (["eval", "{tmp}/nope"], "does not exist"),
    (["eval", "{tmp}"], "not an RLlib PPO checkpoint"),
    (["eval", "{file}"], "not a directory"),
    (["eval", "{junk}"], "policy.json"),
    (["eval", MODEL, "--preset", "paper", "--set", "n_ues=-4"], "n_ues"),
    (["eval", MODEL, "--set", "obs_mode=raw"], "obs_mode"),
    (["static", "--split", "0.3,0.4", "--set", "bs_positions=[[1]]"], "bs_positions"),
    (["static", "--split", "0.3,0.4", "--set", "episode_steps=1e12"], "episode_steps"),
    (["static", "--split", "0.3,0.4", "--out", "{file}"], "{file}"),
    (["report", "{tmp}/nope"], "not a directory"),
    (["report", "{tmp}"], "no result sets"),
    (["sweep", "static-grid", "--name", "../../escape", "--storage", "{tmp}"], "--name"),
    (["sweep", "static-grid", "--resume", "--storage", "{tmp}"], "nothing to resume"),
    (["sweep", "static-grid", "--set", "nope=1", "--storage", "{tmp}"], "nope"),
    (["submit", "static-grid", "--storage", "relative/dir", "--address", "http://127.0.0.1:9"],
     "--storage"),
    (["submit", "static-grid", "--name", "a/b", "--address", "http://127.0.0.1:9"], "--name"),
    (["submit", "static-grid", "--job-id", "$(reboot)", "--address", "http://127.0.0.1:9"],
     "--job-id"),
    (["submit", "static-grid", "--address", "127.0.0.1:8265"], "--address"),
    (["submit", "static-grid", "--address", "http://127.0.0.1:99999"], "port"),
    (["jobs", "list", "--address", "ftp://x"], "--address"),
    (["cluster", "up", "--workers", "1", "--port", "7000", "--dashboard-port", "7000",
      "--dir", "{tmp}/c"], "must differ"),
    (["pool-compare", "--scenario", "paper"], "scenario"),
    (["pool-compare", "--scenario", "three_cell", "--checkpoint", "{tmp}/nope"], "nope"),
    (["export", "{tmp}/nope", "--out", "{tmp}/x"], "nope"),
    (["export", MODEL, "--out", "{tmp}/x", "--manifest", "[1]"], "--manifest"),
]  # fmt: skip


@pytest.mark.parametrize(("argv", "says"), CURATED, ids=lambda v: " ".join(v)[:60])
def test_values_the_types_accept_but_the_commands_refuse(
    tmp_path: Path, argv: list[str], says: str
) -> None:
    work = tmp_path / "work"
    work.mkdir()
    file = tmp_path / "a-file"
    file.write_text("x")
    junk = _junk_policy(tmp_path)
    subst = {"{tmp}": str(work), "{file}": str(file), "{junk}": junk}

    def fill(text: str) -> str:
        for k, v in subst.items():
            text = text.replace(k, v)
        return text

    cwd = os.getcwd()
    os.chdir(work)  # relative paths a command might write land here
    try:
        r = run_launch_here(*[fill(a) for a in argv])
    finally:
        os.chdir(cwd)
    assert r.returncode == 2, (argv, r.stdout, r.stderr)
    assert fill(says) in r.stderr, r.stderr
    assert "Traceback" not in r.stderr
    assert nothing_written(work), sorted(p.name for p in work.iterdir())
    assert file.read_text() == "x"
    assert json.dumps(argv)  # the case list stays plain data


@pytest.mark.ray  # resolving a training run imports RLlib (no Ray node is started)
@pytest.mark.parametrize(
    ("extra", "says"),
    [
        (["--hp", "bogus=1"], "bogus"),
        (["--hp", "lr=-1"], "lr"),
        (["--hp", "fcnet_hiddens=[100000]"], "fcnet_hiddens"),
        (["--hp", "num_epochs=1.5"], "num_epochs"),
        (["--set", "n_ues=-1"], "n_ues"),
        (["--set", "bs_positions=7"], "bs_positions"),
        (["--controller", "os:system"], "os:system"),
        (["--controller", "nope"], "nope"),
    ],
)
def test_train_refuses_bad_settings_before_training(
    tmp_path: Path, extra: list[str], says: str
) -> None:
    out = tmp_path / "out"
    r = run_launch_here("train", "--timesteps", "1000", "--out", str(out), *extra)
    assert r.returncode == 2, (extra, r.stdout, r.stderr)
    assert says in r.stderr and "Traceback" not in r.stderr, r.stderr
    assert not out.exists()
