"""Collect every result under a directory into tidy tables (stage one of the analysis).

Every producer of the platform (``launch static --out``, ``launch eval --out``, PPO Tune trials,
...) writes a RESULT SET: a directory with ``run.json`` (metadata), ``episodes.csv`` (one row per
policy and episode) and ``summary.json``, written last as its commit marker. :func:`collect` walks
a directory recursively, reads every committed result set (the others are skipped and named in
``skipped``), joins the run metadata onto each episode row and returns

* ``episodes``: one row per (policy, episode seed) with the identity of the evaluated policy
  (``point``, ``source``, ``policy``, ``kind``, ``role``, ``w_b``, ``w_c``, ``split``), the reward
  setting (``delta``, ``penalty``), the scenario (``preset``, ``scenario``), the run metadata
  (``run_kind``, ``budget``, ``timesteps``, ``trial_id``, ``checkpoint``, ...) and every metric;
* ``curves``: learning curves, one row per (trial, training iteration), read from ``result.json``
  (or ``progress.csv``) in any directory that has one (Tune trials, ``launch train`` outputs),
  with the trial's reward setting (from ``run.json``, ``train.json`` or Tune's ``params.json``),
  the env steps (``env_steps``), the ``env_runners/<name>`` metrics (e.g.
  ``env_runners/episode_return_mean``), the custom metrics ``env_runners/metalore/<name>`` and a
  few learner statistics (``learners/default_policy/entropy``, ...).

With ``write=True`` they are saved as ``DIR/results.csv`` and ``DIR/curves.csv`` (or ``.parquet``).
Plots and tables read only these tables (:func:`points` condenses ``episodes`` to one row per
evaluated policy with mean, std and count of every metric).

Roles: ``static`` (fixed splits), ``baseline`` (the heuristic and queue-aware rules), ``pool``
(rows of multi-cell pool comparisons, run kind ``pool...``; kept in the table, left out of the
single-cell planes), ``trained`` (everything else, e.g. PPO policies). Each trained point gets a
``tag`` (A, B, ...) ordered by scenario, |penalty| and decreasing delta, as in the paper's
lettering (its letters are not ours).

Run ``python -m analysis.collect DIR [--format parquet]``: writes the tables and prints how many
result sets, policies, episodes and learning-curve rows it found.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from analysis.resultset import EPISODES_FILE, RUN_FILE, commit_problem
from envs.core.metrics import LABELS, SUMMARY_KEYS
from envs.core.pool.civic import LABELS as CIVIC_LABELS
from envs.core.pool.civic import OVERALL_KEYS as CIVIC_KEYS
from envs.core.presets import PRESETS

RESULTS_NAME = "results"
CURVES_NAME = "curves"

# The metric columns: the single-cell episode metrics (every table has them) and the pool's CIVIC
# ones (where pool result sets exist); unknown numeric columns are collected as well.
METRICS: tuple[str, ...] = SUMMARY_KEYS
POOL_METRICS: tuple[str, ...] = tuple(k for k in CIVIC_KEYS if k not in SUMMARY_KEYS)
METRIC_LABELS: dict[str, str] = {**CIVIC_LABELS, **LABELS}

STATIC_KINDS = ("static",)
BASELINE_KINDS = ("heuristic", "queue_aware")

# run.json keys joined under their own name; other scalar keys become run_<key>.
_META_PLAIN = ("budget", "timesteps", "trial_id", "checkpoint", "created", "git_commit", "command")
_META_RENAMED = {"kind": "run_kind", "seed": "run_seed", "episodes": "run_episodes"}
_ROW_FROM_META = ("delta", "penalty", "preset")
_ID_COLUMNS = (
    "point",
    "source",
    "run_kind",
    "policy",
    "kind",
    "role",
    "tag",
    "setting",
    "label",
    "split",
    "w_b",
    "w_c",
    "delta",
    "penalty",
    "preset",
    "scenario",
    "seed",
)

# Never searched: VCS and caches, checkpoints (checkpoint, checkpoint_000010), TensorBoard logs.
_SKIP_DIRS = {".git", ".venv", "__pycache__", "node_modules", "checkpoint", "tb", "figures"}

# Learning curves: the columns kept besides env_runners/<name> scalars.
_CURVE_BASE = {
    "training_iteration": "iteration",
    "num_env_steps_sampled_lifetime": "env_steps",
    "time_total_s": "time_s",
    "trial_id": "trial_id",
}
# ``launch train`` writes its own progress.csv with the env steps as "timesteps".
_CURVE_STEPS_ALIASES = ("timesteps", "env_runners/num_env_steps_sampled_lifetime")
# Namespaces of custom metrics under env_runners/ (tune_configs.callbacks logs under "metalore").
CUSTOM_NAMESPACES = ("metalore",)
_CURVE_LEARNER_STATS = (
    "entropy",
    "total_loss",
    "policy_loss",
    "vf_loss",
    "mean_kl_loss",
    "vf_explained_var",
)
_CURVE_SKIP_WORDS = ("timer", "connector", "throughput", "weights_seq_no", "sample")


@dataclass
class Collected:
    """What :func:`collect` found under ``root``."""

    root: Path
    episodes: pd.DataFrame
    curves: pd.DataFrame
    sets: list[Path] = field(default_factory=list)
    skipped: list[tuple[Path, str]] = field(default_factory=list)
    files: dict[str, Path] = field(default_factory=dict)


# --- finding things -------------------------------------------------------------------------
def _walk(root: Path) -> Iterable[tuple[Path, list[str]]]:
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(
            d for d in dirnames if d not in _SKIP_DIRS and not d.startswith("checkpoint_")
        )
        yield Path(dirpath), filenames


def collect_for_cli(
    prog: str, doc: str | None, argv: Sequence[str] | None, extra: Any = None
) -> tuple[argparse.Namespace, Collected]:
    """The ``python -m analysis.<module> DIR`` entry: parse ``DIR`` (plus ``extra(parser)``'s
    arguments) and collect it. Exits with status 2 after printing the error when ``DIR``
    cannot be collected, as on a usage error."""
    parser = argparse.ArgumentParser(prog=prog, description=doc)
    parser.add_argument("dir", help="directory searched recursively for result sets")
    if extra is not None:
        extra(parser)
    args = parser.parse_args(argv)
    try:
        return args, collect(args.dir, write=False)
    except (FileNotFoundError, ValueError) as exc:
        parser.exit(2, f"error: {exc}\n")


def find_result_sets(root: str | Path) -> list[Path]:
    """Directories under ``root`` (itself included) that hold a ``run.json``, sorted."""
    return [d for d, files in _walk(Path(root)) if RUN_FILE in files]


def find_trial_dirs(root: str | Path) -> list[Path]:
    """Directories under ``root`` with a Tune ``result.json`` or ``progress.csv``, sorted."""
    return [
        d for d, files in _walk(Path(root)) if "result.json" in files or "progress.csv" in files
    ]


# --- result sets ----------------------------------------------------------------------------
def _scalar(v: Any) -> bool:
    return v is None or isinstance(v, (str, int, float, bool))


def _scenario_hash(meta: dict[str, Any]) -> str:
    params = meta.get("params")
    if not isinstance(params, dict) or not isinstance(params.get("scenario"), dict):
        return ""
    blob = json.dumps(params["scenario"], sort_keys=True, default=str)
    return hashlib.sha1(blob.encode()).hexdigest()[:6]


def _preset_scenario(preset: str) -> dict[str, Any] | None:
    """The scenario dict of a named preset (JSON types), None if unknown."""
    if preset not in PRESETS:
        return None
    out: dict[str, Any] = json.loads(json.dumps(PRESETS[preset].to_dict()["scenario"]))
    return out


def _fmt_value(v: Any) -> str:
    if isinstance(v, list):
        inner = ",".join(_fmt_value(x) for x in v)
        return f"[{inner}]"
    if isinstance(v, float):
        return f"{v:g}"
    return str(v)


def scenario_label(preset: str, meta: dict[str, Any]) -> str:
    """``preset`` when the run's scenario equals the preset's, else ``preset (n_ues=12, ...)``.

    Reward fields are not part of the scenario (they do not change the dynamics). Without the
    run's params, or for an unknown preset, the label is ``preset#<hash>`` when params exist.
    """
    params = meta.get("params")
    scen = params.get("scenario") if isinstance(params, dict) else None
    if not isinstance(scen, dict):
        return preset
    base = _preset_scenario(preset)
    if base is None:
        return f"{preset}#{_scenario_hash(meta)}"
    diffs = [f"{k}={_fmt_value(v)}" for k, v in sorted(scen.items()) if base.get(k) != v]
    return f"{preset} ({', '.join(diffs)})" if diffs else preset


def _source(path: Path, root: Path) -> str:
    rel = path.resolve().relative_to(root.resolve()) if path != root else Path(".")
    return rel.as_posix() or "."


def read_result_set(path: str | Path, root: str | Path | None = None) -> pd.DataFrame:
    """Episode rows of one result set with its run metadata joined on (see module docstring).

    Raises ``ValueError`` (with the path) when ``run.json`` or ``episodes.csv`` is missing or
    malformed, or when the set is not committed (:func:`analysis.resultset.commit_problem`: no
    ``summary.json``, or one that does not match the episodes).
    """
    d = Path(path)
    base = Path(root) if root is not None else d
    try:
        meta = json.loads((d / RUN_FILE).read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise ValueError(f"{d / RUN_FILE}: unreadable run metadata ({exc})") from exc
    if not isinstance(meta, dict):
        raise ValueError(f"{d / RUN_FILE}: expected a JSON object")
    ep_path = d / EPISODES_FILE
    if not ep_path.exists():
        raise ValueError(f"{ep_path}: missing (a run.json without episodes)")
    with ep_path.open("rb") as fh:  # a writer killed mid-row leaves no final newline
        fh.seek(max(fh.seek(0, os.SEEK_END) - 1, 0))
        if fh.read(1) not in (b"\n", b""):
            raise ValueError(f"{ep_path}: half-written (its last row is cut off)")
    problem = commit_problem(d)
    if problem is not None:
        raise ValueError(problem)
    try:
        df = pd.read_csv(ep_path)
    except (OSError, pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        raise ValueError(f"{ep_path}: unreadable ({exc})") from exc
    df = df.copy()  # consolidated: the columns added below would fragment read_csv's blocks
    if "policy" not in df.columns:
        raise ValueError(f"{ep_path}: no 'policy' column")
    for col in ("w_b", "w_c"):
        if col not in df.columns:
            df[col] = None
    df["source"] = _source(d, base)
    df["run_kind"] = str(meta.get("kind", "unknown"))
    for key in _ROW_FROM_META:
        if key not in df.columns:
            df[key] = meta.get(key)
        elif meta.get(key) is not None:
            df[key] = df[key].where(df[key].notna(), meta.get(key))
    for key, value in meta.items():
        if key in _META_RENAMED:
            df[_META_RENAMED[key]] = value
        elif key in _META_PLAIN:
            df[key] = value if _scalar(value) else json.dumps(value)
        elif key not in _ROW_FROM_META and key != "params" and _scalar(value):
            name = f"run_{key}"
            if name not in df.columns:
                df[name] = value
    if isinstance(meta.get("env_config"), dict):  # the run's env config, one comparable string
        df["run_env_config"] = json.dumps(meta["env_config"], sort_keys=True, default=str)
    for key in (*_META_PLAIN, "run_seed", "run_episodes"):
        if key not in df.columns:
            df[key] = None
    preset = meta.get("preset") or (
        df["preset"].dropna().iloc[0] if df["preset"].notna().any() else "?"
    )
    df["scenario"] = scenario_label(str(preset), meta)
    if "kind" not in df.columns:
        df["kind"] = "trained"
    if "seed" not in df.columns:
        raise ValueError(f"{ep_path}: no 'seed' column (the episode seed)")
    return df


def _role(kind: Any) -> str:
    k = str(kind)
    if k in STATIC_KINDS:
        return "static"
    if k in BASELINE_KINDS:
        return "baseline"
    return "trained"


def _fmt_share(v: Any) -> str:
    try:
        f = float(v)
    except (TypeError, ValueError):
        return ""
    return "" if math.isnan(f) else f"{f:g}"


def _finish(df: pd.DataFrame) -> pd.DataFrame:
    """Derived identity columns, numeric metrics, tags, labels and column order."""
    df = df.reset_index(drop=True)
    for col in ("w_b", "w_c", "delta", "penalty", *METRICS, *POOL_METRICS):
        if col in df.columns:
            df[col] = pd.to_numeric(df[col], errors="coerce")
    df["role"] = [
        "pool" if str(rk).startswith("pool") else _role(k)
        for k, rk in zip(df["kind"], df["run_kind"], strict=True)
    ]
    df["split"] = [
        f"({_fmt_share(b)}, {_fmt_share(c)})" if _fmt_share(b) and _fmt_share(c) else ""
        for b, c in zip(df["w_b"], df["w_c"], strict=True)
    ]
    df["point"] = df["source"].astype(str) + "::" + df["policy"].astype(str)
    df["preset"] = df["preset"].fillna("?").astype(str)
    df = _assign_tags(df)
    ordered = [c for c in _ID_COLUMNS if c in df.columns]
    metrics = [c for c in METRICS if c in df.columns]
    rest = [c for c in df.columns if c not in ordered and c not in metrics]
    return df[ordered + metrics + rest]


def _assign_tags(df: pd.DataFrame) -> pd.DataFrame:
    """Tag trained points and give every row a short plot label.

    One letter per reward setting (scenario, delta, penalty): A, B, ... ordered by scenario,
    |penalty| and decreasing delta (column ``setting``). A setting trained several times (e.g.
    several training seeds) numbers its points A1, A2, ... by training seed, then directory
    (column ``tag``); a setting with one point is just A.
    """
    cols = ["point", "scenario", "delta", "penalty", "source"]
    seed_col = "run_train_seed" if "run_train_seed" in df.columns else None
    trained = df.loc[df["role"] == "trained", cols + ([seed_col] if seed_col else [])]
    trained = trained.drop_duplicates("point").copy()
    trained["_seed"] = pd.to_numeric(trained[seed_col], errors="coerce") if seed_col else 0.0
    trained["_absp"] = trained["penalty"].abs().fillna(0.0)
    trained["_negd"] = -trained["delta"].fillna(0.0)
    trained["_key"] = [
        f"{sc}|{_fmt_share(d)}|{_fmt_share(p)}"
        for sc, d, p in zip(trained["scenario"], trained["delta"], trained["penalty"], strict=True)
    ]
    trained = trained.sort_values(
        ["scenario", "_absp", "_negd", "_seed", "source", "point"], kind="stable"
    )
    letters: dict[str, str] = {}
    for key in trained["_key"]:
        letters.setdefault(key, _letters(len(letters)))
    tags: dict[str, str] = {}
    settings: dict[str, str] = {}
    for key, group in trained.groupby("_key", sort=False):
        for k, point in enumerate(group["point"]):
            settings[point] = letters[str(key)]
            tags[point] = letters[str(key)] + (str(k + 1) if len(group) > 1 else "")
    df["tag"] = [tags.get(p, "") for p in df["point"]]
    df["setting"] = [settings.get(p, "") for p in df["point"]]
    labels = []
    for role, tag, pol, split, delta, pen in zip(
        df["role"], df["tag"], df["policy"], df["split"], df["delta"], df["penalty"], strict=True
    ):
        if role == "trained":
            labels.append(f"{tag}: δ={_fmt_share(delta)}, p={_fmt_share(pen)}")
        elif role == "static":
            labels.append(split or str(pol))
        else:
            labels.append(str(pol))
    df["label"] = labels
    return df


def _letters(i: int) -> str:
    s = ""
    i += 1
    while i > 0:
        i, r = divmod(i - 1, 26)
        s = chr(65 + r) + s
    return s


# --- learning curves ------------------------------------------------------------------------
def _flatten(d: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict):
            out.update(_flatten(v, key + "/"))
        else:
            out[key] = v
    return out


def _keep_curve_column(name: str) -> bool:
    if name in _CURVE_BASE:
        return True
    if name in _CURVE_STEPS_ALIASES:
        return True
    parts = name.split("/")
    if parts[0] == "env_runners" and len(parts) == 2:
        return not any(w in parts[1] for w in _CURVE_SKIP_WORDS)
    if parts[0] == "env_runners" and len(parts) == 3:
        return parts[1] in CUSTOM_NAMESPACES
    return parts[0] == "learners" and len(parts) == 3 and parts[2] in _CURVE_LEARNER_STATS


def _read_progress(d: Path) -> pd.DataFrame:
    """Rows of a trial's ``result.json`` (JSON lines) or, failing that, ``progress.csv``."""
    rows: list[dict[str, Any]] = []
    rj = d / "result.json"
    if rj.exists():
        with rj.open() as fh:
            for line in fh:
                line = line.strip()
                if not line:
                    continue
                try:
                    rec = json.loads(line)
                except json.JSONDecodeError:
                    continue  # a line being written while we read
                rec.pop("config", None)
                rows.append(_flatten(rec))
        if rows:
            return pd.DataFrame(rows)
    pc = d / "progress.csv"
    if pc.exists():
        try:
            return pd.read_csv(pc)
        except (pd.errors.ParserError, pd.errors.EmptyDataError):
            return pd.DataFrame()
    return pd.DataFrame()


def _find_key(obj: Any, key: str, depth: int = 4) -> Any:
    """First value of ``key`` in nested dicts (breadth first, limited depth)."""
    level = [obj]
    for _ in range(depth):
        nxt: list[Any] = []
        for o in level:
            if isinstance(o, dict):
                if key in o and _scalar(o[key]):
                    return o[key]
                nxt.extend(v for v in o.values() if isinstance(v, dict))
        level = nxt
    return None


def _trial_meta(d: Path) -> dict[str, Any]:
    meta: dict[str, Any] = {}
    for name in (RUN_FILE, "train.json"):  # a result set, or ``launch train``'s metadata
        if not (d / name).exists():
            continue
        try:
            run = json.loads((d / name).read_text())
        except (OSError, json.JSONDecodeError):
            continue
        if isinstance(run, dict):
            for k in ("delta", "penalty", "preset", "trial_id"):
                if meta.get(k) is None:
                    meta[k] = run.get(k)
    if any(meta.get(k) is None for k in ("delta", "penalty", "preset")):
        params: Any = None
        try:
            params = json.loads((d / "params.json").read_text())
        except (OSError, json.JSONDecodeError):
            params = None
        env_cfg = params.get("env_config") if isinstance(params, dict) else None
        for k in ("delta", "penalty", "preset"):
            if meta.get(k) is None and env_cfg is not None:
                meta[k] = _find_key(env_cfg, k)
    return meta


def read_curves(d: str | Path, root: str | Path | None = None) -> pd.DataFrame:
    """Learning-curve rows of one Tune trial directory (empty frame when there are none)."""
    d = Path(d)
    raw = _read_progress(d)
    if raw.empty or "training_iteration" not in raw.columns:
        return pd.DataFrame()
    keep = [c for c in raw.columns if _keep_curve_column(c)]
    if not any(c.startswith(("env_runners/", "learners/")) for c in keep):
        return pd.DataFrame()  # a Tune trial that trains nothing (e.g. a static-grid block)
    df = raw[keep].rename(columns=_CURVE_BASE).copy()
    meta = _trial_meta(d)
    df["source"] = _source(d, Path(root) if root is not None else d)
    if "trial_id" not in df.columns or df["trial_id"].isna().all():
        df["trial_id"] = meta.get("trial_id") or d.name
    for k in ("delta", "penalty", "preset"):
        df[k] = meta.get(k)
    for alias in _CURVE_STEPS_ALIASES:
        if alias in df.columns:
            if "env_steps" not in df.columns:
                df["env_steps"] = df[alias]
            df = df.drop(columns=[alias])
    for c in df.columns:
        if c not in ("source", "trial_id", "preset"):
            df[c] = pd.to_numeric(df[c], errors="coerce")
    front = ["source", "trial_id", "delta", "penalty", "preset", "iteration", "env_steps", "time_s"]
    front = [c for c in front if c in df.columns]
    return df[front + sorted(c for c in df.columns if c not in front)]


# --- the collector --------------------------------------------------------------------------
def _write(df: pd.DataFrame, path_stem: Path, fmt: str) -> Path:
    if fmt == "parquet":
        out = path_stem.with_suffix(".parquet")
        df.to_parquet(out, index=False)
    else:
        out = path_stem.with_suffix(".csv")
        df.to_csv(out, index=False)
    return out


def collect(
    root: str | Path, write: bool = True, fmt: str = "csv", verbose: bool = False
) -> Collected:
    """Read every result set and learning curve under ``root`` (see the module docstring).

    Unreadable result sets are listed in ``skipped`` rather than aborting the collection.
    Raises ``FileNotFoundError`` when ``root`` is not a directory, ``ValueError`` for a bad
    ``fmt``.
    """
    base = Path(root)
    if not base.is_dir():
        raise FileNotFoundError(f"not a directory: {base}")
    if fmt not in ("csv", "parquet"):
        raise ValueError(f"unknown format {fmt!r}: use csv or parquet")
    sets = find_result_sets(base)
    frames: list[pd.DataFrame] = []
    skipped: list[tuple[Path, str]] = []
    for i, d in enumerate(sets):
        try:
            frames.append(read_result_set(d, base))
        except ValueError as exc:
            skipped.append((d, str(exc)))
        if verbose and (i + 1) % 50 == 0:
            print(f"  read {i + 1}/{len(sets)} result sets", file=sys.stderr)
    frames = [f for f in frames if not f.empty]
    if frames:
        episodes = _finish(pd.concat(frames, ignore_index=True, sort=False))
    else:
        episodes = pd.DataFrame(columns=[*_ID_COLUMNS, *METRICS])
    curve_frames = [read_curves(d, base) for d in find_trial_dirs(base)]
    curve_frames = [c for c in curve_frames if not c.empty]
    curves = (
        pd.concat(curve_frames, ignore_index=True, sort=False) if curve_frames else pd.DataFrame()
    )
    out = Collected(base, episodes, curves, list(sets), skipped)
    if write:
        write_tables(out, fmt)
    return out


def write_tables(c: Collected, fmt: str = "csv") -> None:
    """Write ``results`` (and ``curves`` if any) of a collection into its root (``c.files``)."""
    c.files["results"] = _write(c.episodes, c.root / RESULTS_NAME, fmt)
    if not c.curves.empty:
        c.files["curves"] = _write(c.curves, c.root / CURVES_NAME, fmt)


# --- one row per evaluated policy -----------------------------------------------------------
def points(episodes: pd.DataFrame, metrics: Sequence[str] | None = None) -> pd.DataFrame:
    """One row per evaluated policy (``point``) with ``M``, ``M_std``, ``M_n`` for each metric.

    ``M`` is the mean over the episodes where it is defined, ``M_std`` the sample standard
    deviation (ddof = 1; 0 for one episode), ``M_n`` the number of such episodes; ``episodes``
    counts all rows. The same static split or baseline evaluated in several result sets of one
    scenario is kept once, from the set with the most episodes (then the newest): the others are
    flagged ``superseded`` (use ``points[~points.superseded]``).
    """
    if episodes.empty:
        cols = [*_ID_COLUMNS, "episodes", "superseded"]
        return pd.DataFrame(columns=[c for c in cols if c != "seed"])
    metrics = [m for m in (metrics or METRICS) if m in episodes.columns]
    ident = [c for c in _ID_COLUMNS if c in episodes.columns and c not in ("point", "seed")]
    extra = [
        c for c in ("budget", "timesteps", "trial_id", "checkpoint", "created") if c in episodes
    ]
    grouped = episodes.groupby("point", sort=False)
    first = grouped[[*ident, *extra]].first()
    stats: dict[str, Any] = {"episodes": grouped.size()}
    for m in metrics:
        g = grouped[m]
        stats[m] = g.mean()
        stats[f"{m}_std"] = g.std(ddof=1).fillna(0.0).where(g.count() > 0)
        stats[f"{m}_n"] = g.count()
    out = pd.concat([first, pd.DataFrame(stats)], axis=1).reset_index()
    out["superseded"] = False
    fixed = out["role"].isin(["static", "baseline"])
    if fixed.any():
        sub = out.loc[fixed].copy()
        sub["_created"] = sub["created"].astype(str) if "created" in sub else ""
        sub = sub.sort_values(["episodes", "_created"], ascending=False, kind="stable")
        dup = sub.duplicated(["scenario", "policy"], keep="first")
        out.loc[dup[dup].index, "superseded"] = True
    return out


def _summary_line(c: Collected) -> str:
    e = c.episodes
    n_points = e["point"].nunique() if not e.empty else 0
    by_role = e.drop_duplicates("point")["role"].value_counts().to_dict() if not e.empty else {}
    roles = ", ".join(f"{v} {k}" for k, v in sorted(by_role.items()))
    return (
        f"{len(c.sets)} result sets ({len(c.skipped)} skipped), {n_points} policies"
        f"{' (' + roles + ')' if roles else ''}, {len(e)} episode rows, "
        f"{len(c.curves)} learning-curve rows"
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m analysis.collect",
        description="Collect result sets and Tune learning curves under DIR into tidy tables.",
    )
    parser.add_argument("dir", help="directory searched recursively")
    parser.add_argument("--format", choices=("csv", "parquet"), default="csv")
    args = parser.parse_args(argv)
    try:
        c = collect(args.dir, write=True, fmt=args.format, verbose=True)
    except (FileNotFoundError, ValueError) as exc:
        parser.print_usage(sys.stderr)
        print(f"{parser.prog}: error: {exc}", file=sys.stderr)
        return 2
    for path, why in c.skipped:
        print(f"skipped {path}: {why}", file=sys.stderr)
    print(_summary_line(c))
    for name, path in c.files.items():
        print(f"{name}: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
