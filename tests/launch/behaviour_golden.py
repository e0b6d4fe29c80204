"""Behaviour golden: the metric values of the platform's key commands on fixed seeds.

The cases run the commands a user runs (``launch static``, ``launch eval`` of shipped paper
policies, ``launch eval`` of the adaptive policy on its training traffic, ``launch pool-compare``
with both shipped pool policies) in-process and reduce each JSON output to its numeric values
(run metadata left out). A case's fingerprint is a SHA-256 over those values rounded to 9
significant digits; a few headline values are kept in clear so that a failure says what moved
(:mod:`tests.helpers.fingerprint`, shared with the determinism canaries of :mod:`tests.canaries`).

A change that moves a number on purpose updates the golden file with one command and says why in
its commit::

    python -m tests.launch.behaviour_golden --update [CASE ...]
"""

from __future__ import annotations

import contextlib
import io
import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from tests.helpers import fingerprint

GOLDEN = Path(__file__).with_name("golden") / "behaviour.json"
POOL_ARGS = ["--episodes", "10", "--tune-episodes", "3", "--seed", "7000", "--json"]
CASES: dict[str, list[str]] = {
    "static_grid": ["static", "--grid", "0.1", "--episodes", "20", "--json"],
    "eval_d0.9_p0": ["eval", "models/paper/d0.9_p0", "--episodes", "20", "--json"],
    "eval_d0.5_p0": ["eval", "models/paper/d0.5_p0", "--episodes", "20", "--json"],
    "eval_d0.9_p-5": ["eval", "models/paper/d0.9_p-5", "--episodes", "20", "--json"],
    # The adaptive policy's training traffic, named explicitly: the paper cell (10 UE slots) with
    # traffic_randomize; preset paper_random has 20 slots and other ranges, so it is not that.
    "eval_adaptive_training_traffic": [
        "eval", "models/paper/adaptive", "--preset", "paper", "--set", "traffic_randomize=true",
        "--episodes", "20", "--json",
    ],
    "pool_three_cell_hetero": [
        "pool-compare", "--scenario", "three_cell_hetero",
        "--checkpoint", "models/pool/three_cell_hetero", *POOL_ARGS,
    ],
    "pool_surge": [
        "pool-compare", "--scenario", "surge", "--checkpoint", "models/pool/surge", *POOL_ARGS,
    ],
}  # fmt: skip


def digest(output: Any, keys: Iterable[str] | None = None) -> dict[str, Any]:
    """Fingerprint of one command's JSON output (9 significant digits,
    :func:`tests.helpers.fingerprint.digest`)."""
    return fingerprint.digest(output, keys, digits=9)


def run_case(argv: list[str]) -> Any:
    """The JSON a ``python -m launch`` command prints, run in this process."""
    from launch.cli import main

    buf = io.StringIO()
    with contextlib.redirect_stdout(buf), contextlib.redirect_stderr(io.StringIO()):
        code = main(argv)
    if code != 0:
        raise RuntimeError(f"launch {' '.join(argv)} exited {code}")
    return json.loads(buf.getvalue())


def measure() -> dict[str, Any]:
    return {name: digest(run_case(argv)) for name, argv in CASES.items()}


def differences(expected: dict[str, Any], got: dict[str, Any]) -> list[str]:
    """Human-readable differences: which case, which parts and headline values moved."""
    names = [n for n in CASES if n in expected and n in got]
    return fingerprint.differences(
        {n: expected[n] for n in names}, {n: got[n] for n in names},
        lambda n: f"{n} ({' '.join(CASES[n])})",
    )  # fmt: skip


if __name__ == "__main__":
    fingerprint.update_main(
        GOLDEN, list(CASES), lambda n: digest(run_case(CASES[n])), "tests.launch.behaviour_golden"
    )
