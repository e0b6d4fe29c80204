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
  ``seed`` and, for every metric ``M``, ``M`` (mean over episodes) and ``M_std`` (sample std).
"""

from __future__ import annotations

import csv
import datetime as dt
import json
import math
import shlex
import subprocess
import sys
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from envs.core.metrics import aggregate as aggregate_metrics
from envs.core.params import EnvParams

RUN_FILE, EPISODES_FILE, SUMMARY_FILE = "run.json", "episodes.csv", "summary.json"
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


def run_metadata(
    kind: str, params: EnvParams, preset: str = "paper", **extra: Any
) -> dict[str, Any]:
    """``run.json`` content: kind, command, git commit, time, preset, params, reward, extras."""
    return {
        "kind": kind,
        "command": command_line(),
        "git_commit": git_commit(),
        "created": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
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
    path.write_text(json.dumps(clean_json(obj), indent=2, allow_nan=False) + "\n")


def write_csv(path: Path, rows: Iterable[dict[str, Any]], columns: list[str]) -> None:
    """``rows`` as CSV with ``columns`` (other keys left out, None written empty)."""
    with path.open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=columns)
        writer.writeheader()
        for row in rows:
            writer.writerow({k: ("" if row.get(k) is None else row.get(k)) for k in columns})


def write_result_set(
    out_dir: str | Path,
    meta: dict[str, Any],
    episode_rows: list[dict[str, Any]],
    stats: Stats = aggregate_metrics,
) -> list[dict[str, Any]]:
    """Write run.json, episodes.csv and summary.json into ``out_dir``; returns the summaries."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    summaries = aggregate_rows(episode_rows, stats)
    columns = [*ID_COLUMNS, "seed", *metric_columns(episode_rows)]
    write_json(out / RUN_FILE, meta)
    write_csv(out / EPISODES_FILE, episode_rows, columns)
    write_json(out / SUMMARY_FILE, summaries)
    return summaries


def read_result_set(path: str | Path) -> tuple[dict[str, Any], Any, list[dict[str, Any]]]:
    """(run.json, episodes.csv as a pandas DataFrame, summary.json) of a result set."""
    import pandas as pd

    p = Path(path)
    missing = [f for f in (RUN_FILE, EPISODES_FILE, SUMMARY_FILE) if not (p / f).is_file()]
    if missing:
        raise FileNotFoundError(f"{p} is not a result set: missing {', '.join(missing)}")
    meta = json.loads((p / RUN_FILE).read_text())
    episodes = pd.read_csv(p / EPISODES_FILE)
    summaries = json.loads((p / SUMMARY_FILE).read_text())
    return meta, episodes, summaries
