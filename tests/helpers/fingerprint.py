"""Fingerprints of numbers: the shared machinery of the golden files (:mod:`tests.canaries`,
:mod:`tests.launch.behaviour_golden`).

A case's output (any JSON-like value) is reduced to its numeric leaves with their paths
(:func:`numbers`), each rounded to a number of significant digits (:func:`rounded`), so that a
CPU with another floating-point path (another SIMD width, fused multiply-adds, another BLAS
kernel) gives the same text; :func:`digest` hashes that text (SHA-256) and keeps, beside the
hash, a short hash per metric name (``parts``: the leaf name of every path, e.g. ``reward`` for
``/steps[3]/reward``) and a few headline values in clear. :func:`differences` compares a golden
record with a new one and says what changed: which case, which parts (and which were left
alone), which headline values moved.

:func:`update_main` is the ``--update`` command of a golden file: it measures every case (or the
named ones) and rewrites the file.
"""

from __future__ import annotations

import hashlib
import json
import math
import sys
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

# Keys that describe a run rather than measure it.
RUN_KEYS = frozenset({
    "meta", "created", "command", "git_commit", "checkpoint", "elapsed_s", "source_checkpoint",
    "scenario_note", "evaluated_on",
})  # fmt: skip
HEADLINES = ("sync_delay", "e2e_delay", "served_pct", "episode_return", "fulfillment_pct")


def numbers(x: Any, path: str = "") -> Iterator[tuple[str, float]]:
    """Every numeric leaf of a JSON value with its path (booleans and run metadata left out)."""
    if isinstance(x, Mapping):
        for k in sorted(x):
            if k not in RUN_KEYS:
                yield from numbers(x[k], f"{path}/{k}")
    elif isinstance(x, list | tuple):
        for i, v in enumerate(x):
            yield from numbers(v, f"{path}[{i}]")
    elif isinstance(x, int | float) and not isinstance(x, bool):
        yield path, float(x)
    elif hasattr(x, "tolist"):  # numpy arrays and scalars
        yield from numbers(x.tolist(), path)


def rounded(v: float, digits: int = 9) -> str:
    """``v`` to ``digits`` significant digits (``-0`` written ``0``; inf and nan as words)."""
    if not math.isfinite(v):
        return str(v)
    text = f"{v:.{digits}g}"
    return "0" if float(text) == 0.0 else text


def leaf(path: str) -> str:
    """The metric name of a value's path (``/comparison[2]/greedy`` -> ``greedy``)."""
    return path.rsplit("/", 1)[-1].split("[", 1)[0] or "value"


def _sha(lines: Iterable[str]) -> str:
    return hashlib.sha256("\n".join(lines).encode()).hexdigest()


def digest(
    output: Any,
    keys: Iterable[str] | None = None,
    digits: int = 9,
    headlines: Sequence[str] = HEADLINES,
) -> dict[str, Any]:
    """Fingerprint, per-part hashes and headline values of one output, over the metrics named
    in ``keys`` (default: all), so that an output which gains fields keeps its fingerprint."""
    values = list(numbers(output))
    if keys is not None:
        wanted = set(keys)
        values = [(p, v) for p, v in values if leaf(p) in wanted]
    lines = [f"{p}={rounded(v, digits)}" for p, v in values]
    by_part: dict[str, list[str]] = {}
    for (p, _), line in zip(values, lines, strict=True):
        by_part.setdefault(leaf(p), []).append(line)
    heads = {p: float(rounded(v, digits)) for p, v in values if leaf(p) in headlines}
    return {
        "sha256": _sha(lines),
        "values": len(values),
        "digits": digits,
        "keys": sorted(by_part),
        "parts": {k: _sha(v)[:16] for k, v in sorted(by_part.items())},
        "headlines": dict(list(heads.items())[:40]),
    }


def differences(
    expected: Mapping[str, Any], got: Mapping[str, Any], describe: Callable[[str], str] = str
) -> list[str]:
    """Human-readable differences per case: the parts that changed (and how many did not), the
    headline values that moved, the number of values."""
    out = []
    for name in sorted(set(expected) | set(got)):
        e, g = expected.get(name), got.get(name)
        if e is None or g is None:
            out.append(f"{describe(name)}: {'no golden record' if e is None else 'not measured'}")
            continue
        if e["sha256"] == g["sha256"]:
            continue
        out.append(f"{describe(name)}: fingerprint changed ({e['values']} -> {g['values']} values)")
        ep, gp = e.get("parts"), g.get("parts")
        if ep is not None and gp is not None:
            changed = sorted(k for k in set(ep) | set(gp) if ep.get(k) != gp.get(k))
            same = len([k for k in ep if ep.get(k) == gp.get(k)])
            out.append(f"    changed: {', '.join(changed)} ({same} other parts unchanged)")
        moved = [
            f"    {k}: {v} -> {g['headlines'].get(k)}"
            for k, v in e["headlines"].items()
            if g["headlines"].get(k) != v
        ]
        out.extend(moved or ["    (headline values equal; other values moved)"])
    return out


def update_main(
    golden: Path, cases: Sequence[str], measure: Callable[[str], dict[str, Any]], prog: str
) -> None:
    """``python -m PROG --update [CASE ...]``: measure the cases (all by default) and write them
    into ``golden`` (the other cases' records are kept)."""
    args = sys.argv[1:]
    if not args or args[0] != "--update" or any(a not in cases for a in args[1:]):
        sys.exit(f"usage: python -m {prog} --update [CASE ...]; cases: {', '.join(cases)}")
    names = args[1:] or list(cases)
    records = json.loads(golden.read_text()) if golden.is_file() and args[1:] else {}
    for name in names:
        print(f"measuring {name} ...", flush=True)
        records[name] = measure(name)
    golden.parent.mkdir(parents=True, exist_ok=True)
    golden.write_text(json.dumps(records, indent=1, sort_keys=True) + "\n")
    print(f"wrote {golden} ({', '.join(names)})")
