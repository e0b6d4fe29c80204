"""Behaviour golden: the metric values of the platform's key commands on fixed seeds.

The cases run the commands a user runs (``launch static``, ``launch eval`` of shipped paper
policies, ``launch eval`` of the adaptive policy on its training traffic, ``launch pool-compare``
with both shipped pool policies) in-process and reduce each JSON output to its numeric values
(run metadata left out). A case's fingerprint is a SHA-256 over those values rounded to 9
significant digits; a few headline values are kept in clear so that a failure says what moved.

A change that moves a number on purpose updates the golden file with one command and says why in
its commit::

    python -m tests.launch.behaviour_golden --update
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import math
import sys
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

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
# Keys that describe a run rather than measure it.
RUN_KEYS = frozenset({
    "meta", "created", "command", "git_commit", "checkpoint", "elapsed_s", "source_checkpoint",
    "scenario_note", "evaluated_on",
})  # fmt: skip
HEADLINES = ("sync_delay", "e2e_delay", "served_pct", "episode_return", "fulfillment_pct")


def numbers(x: Any, path: str = "") -> Iterator[tuple[str, float]]:
    """Every numeric leaf of a JSON value with its path (booleans and run metadata left out)."""
    if isinstance(x, dict):
        for k in sorted(x):
            if k not in RUN_KEYS:
                yield from numbers(x[k], f"{path}/{k}")
    elif isinstance(x, list):
        for i, v in enumerate(x):
            yield from numbers(v, f"{path}[{i}]")
    elif isinstance(x, int | float) and not isinstance(x, bool):
        yield path, float(x)


def _rounded(v: float) -> str:
    return f"{v:.9g}" if math.isfinite(v) else str(v)


def leaf(path: str) -> str:
    """The metric name of a value's path (``/comparison[2]/greedy`` -> ``greedy``)."""
    return path.rsplit("/", 1)[-1].split("[", 1)[0]


def digest(output: Any, keys: Iterable[str] | None = None) -> dict[str, Any]:
    """Fingerprint and headline values of one command's JSON output, over the metrics named in
    ``keys`` (default: all), so that an output which gains fields keeps its fingerprint."""
    values = list(numbers(output))
    if keys is not None:
        wanted = set(keys)
        values = [(p, v) for p, v in values if leaf(p) in wanted]
    h = hashlib.sha256("\n".join(f"{p}={_rounded(v)}" for p, v in values).encode()).hexdigest()
    heads = {p: float(_rounded(v)) for p, v in values if leaf(p) in HEADLINES}
    return {
        "sha256": h,
        "values": len(values),
        "keys": sorted({leaf(p) for p, _ in values}),
        "headlines": dict(list(heads.items())[:40]),
    }


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
    """Human-readable differences: which case, which headline values moved."""
    out = []
    for name in CASES:
        e, g = expected.get(name), got.get(name)
        if e is None or g is None or e["sha256"] == g["sha256"]:
            continue
        moved = [
            f"    {k}: {v} -> {g['headlines'].get(k)}"
            for k, v in e["headlines"].items()
            if g["headlines"].get(k) != v
        ]
        out.append(f"{name} ({' '.join(CASES[name])}): {e['values']} -> {g['values']} values")
        out.extend(moved or ["    (headlines equal; other values moved)"])
    return out


if __name__ == "__main__":
    if sys.argv[1:] != ["--update"]:
        sys.exit("usage: python -m tests.launch.behaviour_golden --update")
    GOLDEN.parent.mkdir(parents=True, exist_ok=True)
    GOLDEN.write_text(json.dumps(measure(), indent=1, sort_keys=True) + "\n")
    print(f"wrote {GOLDEN}")
