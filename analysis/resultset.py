"""Result sets: the files every producer writes and the analysis collects.

A result set is a directory holding

* ``run.json``: what ran: ``kind`` (static, eval, ppo-trial, ...), ``command``, ``git_commit``,
  ``created``, ``preset``, ``params`` (``EnvParams.to_dict()``), ``delta``, ``penalty``, ``seed``,
  ``episodes`` and kind-specific keys (checkpoint, timesteps, budget, trial_id, ...);
* ``episodes.csv``: one row per (policy, episode): ``policy``, ``kind``, ``w_b``, ``w_c`` (empty
  for dynamic policies), ``delta``, ``penalty``, ``preset``, ``seed`` (the episode seed), then every
  metric: the single-cell ones of :data:`envs.core.metrics.SUMMARY_KEYS`, or for the credit pool
  the flat CIVIC row of :func:`envs.core.pool.civic.flat_row` (overall, ``cell<i>_<name>``,
  ``<phase>_<name>``);
* ``summary.json``: a list with one object per policy: the identity columns, ``episodes``,
  ``seed`` and, for every metric ``M``, ``M`` (mean over episodes) and ``M_std`` (sample std);
  in the file each object also carries :data:`DIGEST_KEY`, the SHA-256 of the ``episodes.csv``
  it summarises.

``summary.json`` is the result set's commit marker. :func:`write_result_set` first removes an
old one, writes ``run.json`` and ``episodes.csv`` (each to a temporary file, flushed to disk,
then renamed into place), and writes ``summary.json`` the same way last. A result set counts
only when :func:`commit_problem` finds nothing wrong: ``summary.json`` exists, its digest is
that of ``episodes.csv`` as it is on disk, and its per-policy episode counts and first seeds
are those of the CSV's rows (so a CSV cut at a row boundary, or rows of another run, do not
count; result sets written before the digest existed are checked by the counts alone). A writer
stopped at any point (killed, or out of disk space) therefore leaves either the previous
committed set or none, never a half-counted one.
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import io
import json
import math
import os
import shlex
import subprocess
import sys
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from envs.core.metrics import aggregate as aggregate_metrics
from envs.core.params import EnvParams

RUN_FILE, EPISODES_FILE, SUMMARY_FILE = "run.json", "episodes.csv", "summary.json"
DIGEST_KEY = "episodes_sha256"  # in every summary.json object: SHA-256 of episodes.csv
ID_COLUMNS = ("policy", "kind", "w_b", "w_c", "delta", "penalty", "preset")
REPO_ROOT = Path(__file__).resolve().parent.parent


def git_commit() -> str | None:
    """The checkout's commit (with ``-dirty`` if it has local changes), None outside git."""
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=REPO_ROOT, capture_output=True, text=True,
            timeout=10, check=True,
        ).stdout.strip()  # fmt: skip
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"], cwd=REPO_ROOT,
            capture_output=True, text=True, timeout=10, check=True,
        ).stdout.strip()  # fmt: skip
    except (OSError, subprocess.SubprocessError):
        return None
    return f"{commit}-dirty" if dirty else commit


def command_line() -> str:
    """The command as typed (``python -m launch ...`` keeps its ``-m``)."""
    argv = list(getattr(sys, "orig_argv", [sys.executable, *sys.argv]))
    argv[0] = Path(argv[0]).name
    return " ".join(shlex.quote(a) for a in argv)


# what a result depends on besides the code and its inputs (run.json's "versions")
VERSIONED = ("numpy", "numba", "torch", "ray", "gymnasium")


def package_versions() -> dict[str, str | None]:
    """Python's and the numeric packages' versions (None: not installed), without importing
    them."""
    import platform
    from importlib.metadata import PackageNotFoundError, version

    out: dict[str, str | None] = {"python": platform.python_version()}
    for name in VERSIONED:
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            out[name] = None
    return out


def run_metadata(
    kind: str, params: EnvParams, preset: str = "paper", **extra: Any
) -> dict[str, Any]:
    """``run.json`` content: kind, command, git commit, time, the process's hash seed (a
    multi-agent training repeats only under a fixed one: docs/conventions.md#randomness), the
    package versions, preset, params, reward, extras."""
    return {
        "kind": kind,
        "command": command_line(),
        "git_commit": git_commit(),
        "created": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "python_hash_seed": os.environ.get("PYTHONHASHSEED"),
        "versions": package_versions(),
        "preset": preset,
        "delta": params.reward.delta,
        "penalty": params.reward.penalty,
        **extra,
        "params": params.to_dict(),
    }


def clean_json(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: clean_json(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [clean_json(v) for v in value]
    return value


def metric_columns(episode_rows: Iterable[dict[str, Any]]) -> list[str]:
    """The metric columns of episode rows: every key but the identity ones, first-seen order."""
    names: dict[str, None] = {}
    for row in episode_rows:
        names.update((k, None) for k in row if k not in ID_COLUMNS and k != "seed")
    return list(names)


Stats = Callable[[dict[str, list[Any]]], dict[str, float | None]]


def aggregate_rows(
    episode_rows: Iterable[dict[str, Any]], stats: Stats = aggregate_metrics
) -> list[dict[str, Any]]:
    """Summary objects (one per policy, first-seen order) from episode rows; ``stats`` maps each
    metric's per-episode values to ``{M: mean, M_std: std}``."""
    groups: dict[str, list[dict[str, Any]]] = {}
    for row in episode_rows:
        groups.setdefault(str(row["policy"]), []).append(row)
    out = []
    for rows in groups.values():
        first = rows[0]
        summary = {k: first.get(k) for k in ID_COLUMNS}
        summary["episodes"] = len(rows)
        summary["seed"] = min(int(r["seed"]) for r in rows)
        keys = metric_columns(rows)
        summary.update(stats({k: [r.get(k) for r in rows] for k in keys}))
        out.append(summary)
    return out


def write_json(path: Path, obj: Any) -> None:
    _write_atomic(path, (json.dumps(clean_json(obj), indent=2, allow_nan=False) + "\n").encode())


def csv_bytes(rows: Iterable[dict[str, Any]], columns: list[str]) -> bytes:
    """``rows`` as CSV with ``columns`` (other keys left out, None written empty)."""
    buf = io.StringIO(newline="")
    writer = csv.DictWriter(buf, fieldnames=columns, lineterminator="\r\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: ("" if row.get(k) is None else row.get(k)) for k in columns})
    return buf.getvalue().encode()


def write_csv(path: Path, rows: Iterable[dict[str, Any]], columns: list[str]) -> None:
    """``rows`` as CSV with ``columns`` (other keys left out, None written empty)."""
    _write_atomic(path, csv_bytes(rows, columns))


def _write_atomic(path: Path, data: bytes) -> None:
    """``data`` into ``path`` or nothing: a temporary file beside it, flushed to disk, renamed.

    An ``OSError`` (a full disk: ``ENOSPC``) removes the temporary file and propagates with the
    path in its message.
    """
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with tmp.open("wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        if exc.filename is None:
            raise OSError(exc.errno, f"{exc.strerror or exc}: writing {path}", str(path)) from exc
        raise


def write_result_set(
    out_dir: str | Path,
    meta: dict[str, Any],
    episode_rows: list[dict[str, Any]],
    stats: Stats = aggregate_metrics,
) -> list[dict[str, Any]]:
    """Write run.json, episodes.csv and, last, summary.json (the commit marker) into
    ``out_dir``; returns the summaries (without the digest the file adds)."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / SUMMARY_FILE).unlink(missing_ok=True)  # the old marker never stands for new rows
    summaries = aggregate_rows(episode_rows, stats)
    columns = [*ID_COLUMNS, "seed", *metric_columns(episode_rows)]
    episodes = csv_bytes(episode_rows, columns)
    digest = hashlib.sha256(episodes).hexdigest()
    write_json(out / RUN_FILE, meta)
    _write_atomic(out / EPISODES_FILE, episodes)
    write_json(out / SUMMARY_FILE, [{**s, DIGEST_KEY: digest} for s in summaries])
    return summaries


class UncommittedResultSet(ValueError):
    """A result set that does not count: no ``summary.json``, or one that does not match."""


def commit_problem(path: str | Path) -> str | None:
    """Why the result set in ``path`` does not count (None: it is committed).

    See the module docstring: ``summary.json`` must exist, be a list of per-policy objects whose
    digest (when present) is that of ``episodes.csv``, and whose policies, episode counts and
    first seeds are those of the CSV's rows.
    """
    p = Path(path)
    summary_path, ep_path = p / SUMMARY_FILE, p / EPISODES_FILE
    if not ep_path.is_file():
        return f"{ep_path}: missing"
    if not summary_path.is_file():
        return f"{summary_path}: missing (not committed: its writer stopped before the end)"
    try:
        summaries = json.loads(summary_path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        return f"{summary_path}: unreadable ({exc})"
    if not isinstance(summaries, list) or not all(isinstance(s, dict) for s in summaries):
        return f"{summary_path}: expected a list of per-policy objects"
    data = ep_path.read_bytes()
    digests = {s.get(DIGEST_KEY) for s in summaries}
    if digests != {None}:
        got = hashlib.sha256(data).hexdigest()
        if digests != {got}:
            return (
                f"{ep_path} does not match {SUMMARY_FILE} (sha256 {got[:12]}, summarised "
                f"{', '.join(sorted(str(d)[:12] for d in digests))}): cut off or rewritten"
            )
    counts: dict[str, int] = {}
    first: dict[str, int] = {}
    try:
        reader = csv.DictReader(io.StringIO(data.decode()))
        for row in reader:
            pol = str(row["policy"])
            counts[pol] = counts.get(pol, 0) + 1
            seed = int(float(row["seed"]))
            first[pol] = min(first.get(pol, seed), seed)
    except (UnicodeDecodeError, KeyError, TypeError, ValueError, csv.Error) as exc:
        return f"{ep_path}: unreadable rows ({type(exc).__name__}: {exc})"
    want = {str(s.get("policy")): s.get("episodes") for s in summaries}
    if want != counts:
        diff = sorted(
            f"{pol}: {counts.get(pol, 0)} rows, summarised {want.get(pol, 0)}"
            for pol in set(want) | set(counts)
            if counts.get(pol, 0) != want.get(pol, 0)
        )
        return f"{ep_path} does not match {SUMMARY_FILE} ({'; '.join(diff[:3])})"
    seeds = {str(s.get("policy")): s.get("seed") for s in summaries}
    if any(seeds[pol] is not None and seeds[pol] != first[pol] for pol in first):
        return f"{ep_path} does not match {SUMMARY_FILE} (other episode seeds)"
    return None


def read_result_set(path: str | Path) -> tuple[dict[str, Any], Any, list[dict[str, Any]]]:
    """(run.json, episodes.csv as a pandas DataFrame, summary.json) of a result set."""
    import pandas as pd

    p = Path(path)
    missing = [f for f in (RUN_FILE, EPISODES_FILE, SUMMARY_FILE) if not (p / f).is_file()]
    if missing:
        raise FileNotFoundError(f"{p} is not a result set: missing {', '.join(missing)}")
    problem = commit_problem(p)
    if problem is not None:
        raise UncommittedResultSet(problem)
    meta = json.loads((p / RUN_FILE).read_text())
    episodes = pd.read_csv(p / EPISODES_FILE)
    summaries = json.loads((p / SUMMARY_FILE).read_text())
    return meta, episodes, summaries
