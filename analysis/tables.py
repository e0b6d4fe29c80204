"""Table I of the paper from our results, the paper's own numbers, and Markdown/CSV writers.

* :func:`table_one`: the static picks (the best static split for each objective, the paper's
  exhaustive-search picks (0.3, 0.3) and (0.3, 0.4) when the grid has them), the heuristic and
  queue-aware rules and every trained point, with mean and std over episodes of sync delay, E2E
  delay and traffic served (one scenario at a time).
* :data:`PAPER_STATIC`, :data:`PAPER_RERUN`, :data:`PAPER_DRL`: the reference numbers
  (``docs/model/cell.md#what-is-reproduced``; the paper printed the (0.4, 0.4) delays swapped,
  the re-run of the authors' paper-era code has them the right way round).
* :func:`paper_comparison`: our value for each split the paper reports, beside the paper's and
  the re-run's.
* :func:`markdown`: a DataFrame as a GitHub Markdown table (no extra dependency).

Every table comes as a DataFrame with numeric ``M`` and ``M_std`` columns (for CSV) and is turned
into ``mean ± std`` text for Markdown by :func:`display_table`.

Run ``python -m analysis.tables DIR`` to print Table I of the results under DIR and the paper's
reference numbers as Markdown.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from envs.core.pool.civic import HEADLINE_KEYS as CIVIC_HEADLINE
from envs.core.pool.civic import civic_range_text

KEY_METRICS: tuple[str, ...] = ("sync_delay", "e2e_delay", "served_pct")
KEY_HEADERS: dict[str, str] = {
    "sync_delay": "sync delay [steps]",
    "e2e_delay": "E2E delay [steps]",
    "served_pct": "served [%]",
}

# Paper Table I (docs/model/cell.md#what-is-reproduced; static, 100 episodes; the (0.4, 0.4)
# delays printed swapped, corrected here and flagged in the note column).
PAPER_STATIC: tuple[dict[str, Any], ...] = (
    {"split": "(0.3, 0.3)", "sync_delay": 7.93, "e2e_delay": 9.77, "served_pct": 82.61, "note": ""},
    {
        "split": "(0.3, 0.4)",
        "sync_delay": 14.63,
        "e2e_delay": 6.94,
        "served_pct": 88.35,
        "note": "",
    },
    {
        "split": "(0.4, 0.4)",
        "sync_delay": 19.84,
        "e2e_delay": 1.98,
        "served_pct": 97.76,
        "note": "paper printed sync 1.98 / E2E 19.84 (swapped)",
    },
)
# The authors' paper-era code re-run, 20 episodes, mean and std over episodes
# (docs/model/cell.md#what-is-reproduced).
PAPER_RERUN: tuple[dict[str, Any], ...] = (
    {
        "split": "(0.3, 0.3)",
        "sync_delay": 7.64,
        "sync_delay_std": 1.30,
        "e2e_delay": 9.68,
        "e2e_delay_std": 1.06,
        "served_pct": 83.03,
        "served_pct_std": 2.17,
    },
    {
        "split": "(0.3, 0.4)",
        "sync_delay": 14.49,
        "sync_delay_std": 1.32,
        "e2e_delay": 6.69,
        "e2e_delay_std": 1.29,
        "served_pct": 88.89,
        "served_pct_std": 3.00,
    },
    {
        "split": "(0.4, 0.3)",
        "sync_delay": 10.18,
        "sync_delay_std": 1.48,
        "e2e_delay": 9.83,
        "e2e_delay_std": 1.14,
        "served_pct": 83.25,
        "served_pct_std": 2.30,
    },
    {
        "split": "(0.4, 0.4)",
        "sync_delay": 19.39,
        "sync_delay_std": 1.30,
        "e2e_delay": 2.09,
        "e2e_delay_std": 0.56,
        "served_pct": 97.70,
        "served_pct_std": 1.20,
    },
)
# The paper's PPO points (docs/model/cell.md#what-is-reproduced; 100 deterministic episodes;
# served has no std).
PAPER_DRL: tuple[dict[str, Any], ...] = (
    {
        "point": "A",
        "setting": "delta 0.9, no penalty",
        "sync_delay": 15.81,
        "sync_delay_std": 2.71,
        "e2e_delay": 7.07,
        "e2e_delay_std": 1.46,
        "served_pct": 91.57,
    },
    {
        "point": "B",
        "setting": "delta 0.8, no penalty",
        "sync_delay": 13.39,
        "sync_delay_std": 1.42,
        "e2e_delay": 7.04,
        "e2e_delay_std": 0.92,
        "served_pct": 89.60,
    },
    {
        "point": "E",
        "setting": "delta 0.5, no penalty",
        "sync_delay": 7.40,
        "sync_delay_std": 1.40,
        "e2e_delay": 12.42,
        "e2e_delay_std": 1.94,
        "served_pct": 78.88,
    },
    {
        "point": "G",
        "setting": "(lost)",
        "sync_delay": 14.87,
        "sync_delay_std": 2.11,
        "e2e_delay": 6.39,
        "e2e_delay_std": 1.83,
        "served_pct": 85.42,
    },
    {
        "point": "K",
        "setting": "a nonzero penalty",
        "sync_delay": 17.70,
        "sync_delay_std": 1.90,
        "e2e_delay": 4.64,
        "e2e_delay_std": 1.23,
        "served_pct": 82.76,
    },
)
PAPER_PICKS = ((0.3, 0.3), (0.3, 0.4))


# --- formatting -----------------------------------------------------------------------------
def _num(v: Any) -> float:
    try:
        f = float(v)
    except (TypeError, ValueError):
        return math.nan
    return f


def fmt_pm(mean: Any, std: Any = None, digits: int = 2) -> str:
    """``"7.64 ± 1.30"``; ``"7.64"`` without a std; ``"n/a"`` when the mean is undefined."""
    m, s = _num(mean), _num(std)
    if math.isnan(m):
        return "n/a"
    if math.isnan(s):
        return f"{m:.{digits}f}"
    return f"{m:.{digits}f} ± {s:.{digits}f}"


def fmt_num(v: Any, digits: int = 2) -> str:
    """A number with at most ``digits`` decimals (0.9, 0.25, 3), empty for missing values."""
    if isinstance(v, str):
        return v
    f = _num(v)
    if math.isnan(f):
        return ""
    if float(f).is_integer() and abs(f) < 1e15:
        return str(int(f))
    return f"{f:.{digits}f}".rstrip("0").rstrip(".")


def markdown(df: pd.DataFrame, align: Sequence[str] | None = None) -> str:
    """GitHub Markdown table of ``df`` as it is (format the cells first). ``|`` is escaped."""
    if df.empty:
        return "_(no rows)_"
    cols = [str(c) for c in df.columns]
    align = list(align) if align is not None else ["l"] * len(cols)
    sep = {"l": ":---", "r": "---:", "c": ":---:"}

    def cell(v: Any) -> str:
        return ("" if v is None else str(v)).replace("|", "\\|").replace("\n", " ")

    lines = ["| " + " | ".join(cell(c) for c in cols) + " |"]
    lines.append("| " + " | ".join(sep.get(a, ":---") for a in align) + " |")
    for row in df.itertuples(index=False):
        lines.append("| " + " | ".join(cell(v) for v in row) + " |")
    return "\n".join(lines)


def display_table(
    df: pd.DataFrame,
    id_columns: Sequence[str],
    metrics: Sequence[str] = KEY_METRICS,
    headers: dict[str, str] | None = None,
    digits: int = 2,
) -> pd.DataFrame:
    """Text version of a table: identity columns as they are, metrics as ``mean ± std``."""
    heads = {**KEY_HEADERS, **(headers or {})}
    out = pd.DataFrame({heads.get(c, c): [fmt_num(v) for v in df[c]] for c in id_columns})
    for m in metrics:
        std = df[f"{m}_std"] if f"{m}_std" in df.columns else [None] * len(df)
        out[heads.get(m, m)] = [fmt_pm(a, b, digits) for a, b in zip(df[m], std, strict=True)]
    return out


# --- Table I --------------------------------------------------------------------------------
def _pick(static: pd.DataFrame, metric: str, maximise: bool) -> pd.Series | None:
    ok = static.loc[static[metric].notna()]
    if ok.empty:
        return None
    idx = ok[metric].idxmax() if maximise else ok[metric].idxmin()
    return ok.loc[idx]


def _static_at(static: pd.DataFrame, w_b: float, w_c: float) -> pd.Series | None:
    hit = static.loc[((static["w_b"] - w_b).abs() < 1e-9) & ((static["w_c"] - w_c).abs() < 1e-9)]
    return None if hit.empty else hit.iloc[0]


TABLE_ONE_COLUMNS: tuple[str, ...] = (
    "row",
    "policy",
    "split",
    "delta",
    "penalty",
    "episodes",
    "sync_delay",
    "sync_delay_std",
    "e2e_delay",
    "e2e_delay_std",
    "served_pct",
    "served_pct_std",
    "source",
)


def table_one(points: pd.DataFrame) -> pd.DataFrame:
    """Table I for one scenario: static picks, baselines and trained points (mean and std).

    Rows, in this order (a row appears only when its data exist): the static picks ``best sync
    delay``, ``best E2E delay``, ``best served`` (the split with the lowest sync delay, lowest E2E
    delay, highest served % among the splits where the metric is defined; single-objective picks
    sit at the ends of the front), ``paper pick (x, y)`` for the paper's exhaustive-search picks,
    ``knee, ...`` (the front split nearest the ideal point of each plane, see
    :func:`analysis.pareto.compromise`); a split chosen by several picks is one row naming them
    all. Then ``heuristic``, ``queue-aware``, and one row per trained point (``trained A``, ...).
    ``points`` must hold one scenario and no superseded rows.
    """
    from analysis.pareto import compromise

    static = points.loc[points["role"] == "static"]
    picks: list[tuple[str, pd.Series | None]] = [
        ("best sync delay", _pick(static, "sync_delay", False)),
        ("best E2E delay", _pick(static, "e2e_delay", False)),
        ("best served", _pick(static, "served_pct", True)),
        *(
            (f"paper pick ({w_b:g}, {w_c:g})", _static_at(static, w_b, w_c))
            for w_b, w_c in PAPER_PICKS
        ),
        ("knee, sync vs served", compromise(points, "sync_served")),
        ("knee, sync vs E2E", compromise(points, "sync_e2e")),
    ]
    names: dict[str, list[str]] = {}
    chosen: dict[str, pd.Series] = {}
    for name, s in picks:
        if s is None:
            continue
        names.setdefault(s["point"], []).append(name)
        chosen.setdefault(s["point"], s)
    rows: list[tuple[str, pd.Series]] = [
        ("static: " + "; ".join(names[p]), s) for p, s in chosen.items()
    ]
    base = points.loc[points["role"] == "baseline"]
    for _, b in base.sort_values("kind", kind="stable").iterrows():
        rows.append((str(b["kind"]).replace("_", "-"), b))
    trained = points.loc[points["role"] == "trained"].sort_values("tag", key=_tag_key)
    setting = trained["setting"] if "setting" in trained.columns else trained["tag"]
    pooled_done: set[str] = set()
    for _, t in trained.iterrows():
        key = str(setting.loc[t.name])
        group = trained.loc[setting == key]
        if key and len(group) > 1 and key not in pooled_done:
            pooled_done.add(key)
            rows.append((f"trained {key} ({len(group)} runs pooled)", pool_points(group)))
        rows.append((f"trained {t['tag']}", t))
    out = []
    for name, r in rows:
        rec: dict[str, Any] = {"row": name}
        rec.update({c: r.get(c) for c in TABLE_ONE_COLUMNS[1:]})
        if r.get("role") != "trained":
            rec["delta"] = None
            rec["penalty"] = None
        out.append(rec)
    return pd.DataFrame(out, columns=list(TABLE_ONE_COLUMNS))


def pool_points(group: pd.DataFrame, metrics: Sequence[str] = KEY_METRICS) -> pd.Series:
    """One row for several evaluated policies pooled: mean and std over all their episodes.

    Uses each point's ``M``, ``M_std``, ``M_n``: the pooled mean is the episode-weighted mean and
    the pooled variance ``(sum (n_i - 1) s_i^2 + sum n_i (m_i - m)^2) / (N - 1)``.
    """
    first = group.iloc[0]
    out = {c: first.get(c) for c in ("role", "delta", "penalty", "setting", "scenario")}
    out["policy"] = f"{len(group)} runs"
    out["split"] = ""
    out["episodes"] = int(group["episodes"].sum())
    out["source"] = ", ".join(str(x) for x in group["source"])
    for m in metrics:
        n = group[f"{m}_n"].to_numpy(dtype=float)
        mean = group[m].to_numpy(dtype=float)
        std = group[f"{m}_std"].to_numpy(dtype=float)
        ok = (n > 0) & np.isfinite(mean)
        n, mean, std = n[ok], mean[ok], np.nan_to_num(std[ok])
        total = n.sum()
        if total == 0:
            out[m], out[f"{m}_std"] = math.nan, math.nan
            continue
        grand = float((n * mean).sum() / total)
        ss = float(((n - 1) * std**2).sum() + (n * (mean - grand) ** 2).sum())
        out[m] = grand
        out[f"{m}_std"] = math.sqrt(ss / (total - 1)) if total > 1 else 0.0
    return pd.Series(out)


POOL_TABLE_METRICS: tuple[str, ...] = (*CIVIC_HEADLINE, "units_borrowed")


def pool_policy_table(episodes: pd.DataFrame) -> pd.DataFrame:
    """One row per evaluated pool policy (rules and learned), mean and std over its episodes.

    Rows come from the pool result sets of the tidy table (role ``pool``: ``pool-rules``,
    ``pool-ppo-trial``, ``pool-eval`` and ``pool-compare`` runs). ``vs noncoop`` is the relative
    fulfilment gain over the non-cooperative cells evaluated on the same scenario and episode
    seeds, where such a run exists.
    """
    if episodes.empty or "role" not in episodes:
        return pd.DataFrame()
    pool = episodes.loc[episodes["role"] == "pool"]
    metrics = [m for m in POOL_TABLE_METRICS if m in pool.columns]
    if pool.empty or not metrics:
        return pd.DataFrame()
    keys = ["preset", "source", "run_kind", "policy"]
    stats = pool.groupby(keys, sort=True)[metrics].agg(["mean", "std"])
    counts = pool.groupby(keys, sort=True)["seed"].agg(["count", "min", "max"])
    base = pool.loc[pool["policy"] == "noncoop"]
    rows = []
    for key, row in stats.iterrows():
        preset, source, run_kind, policy = key
        n, lo, hi = counts.loc[key]
        rec: dict[str, Any] = {
            "scenario": preset,
            "policy": policy,
            "source": source,
            "run": run_kind,
            "episodes": int(n),
            "seeds": f"{lo}-{hi}",
        }
        for m in metrics:
            rec[m] = row[(m, "mean")]
            rec[f"{m}_std"] = row[(m, "std")]
        ref = base.loc[(base["preset"] == preset) & base["seed"].between(lo, hi)]
        same = len(ref) == n and "fulfillment_pct" in ref
        ref_f = ref["fulfillment_pct"].mean() if same else math.nan
        rec["gain_vs_noncoop_pct"] = (
            100.0 * (rec["fulfillment_pct"] - ref_f) / abs(ref_f)
            if "fulfillment_pct" in rec and ref_f and math.isfinite(ref_f)
            else math.nan
        )
        rows.append(rec)
    return pd.DataFrame(rows)


def pool_policy_markdown(table: pd.DataFrame) -> str:
    """The pool policy table as Markdown (metrics as mean ± std)."""
    if table.empty:
        return "_(no pool policies)_"
    metrics = [m for m in POOL_TABLE_METRICS if m in table.columns]
    out = table[["scenario", "policy", "source", "episodes"]].copy()
    for m in metrics:
        out[m] = [fmt_pm(a, b) for a, b in zip(table[m], table[f"{m}_std"], strict=True)]
    gains = table["gain_vs_noncoop_pct"]
    out["fulfilment vs noncoop"] = ["" if not math.isfinite(g) else f"{g:+.1f} %" for g in gains]
    civic = civic_range_text("fulfillment_pct")
    out["CIVIC (reported)"] = [civic if math.isfinite(g) else "" for g in gains]
    return markdown(out, ["l", "l", "l", "r"] + ["r"] * (len(metrics) + 2))


def _tag_key(s: pd.Series) -> pd.Series:
    return s.map(lambda t: (len(str(t)), str(t)))


def table_one_markdown(table: pd.DataFrame) -> str:
    """Markdown of :func:`table_one`: identity columns, then ``mean ± std`` metrics."""
    if table.empty:
        return "_(no rows)_"
    disp = display_table(table, ["row", "split", "delta", "penalty", "episodes"])
    disp["split"] = [
        s or p for s, p in zip(disp["split"], table["policy"].astype(str), strict=True)
    ]
    disp = disp.rename(
        columns={"row": "point", "split": "(w_b, w_c) / policy", "delta": "δ", "penalty": "penalty"}
    )
    return markdown(disp, ["l", "l", "r", "r", "r", "r", "r", "r"])


# --- the paper's numbers --------------------------------------------------------------------
def paper_reference() -> dict[str, pd.DataFrame]:
    """The reference tables as DataFrames: ``static``, ``rerun``, ``drl``.

    Source: ``docs/model/cell.md#what-is-reproduced``.
    """
    return {
        "static": pd.DataFrame(list(PAPER_STATIC)),
        "rerun": pd.DataFrame(list(PAPER_RERUN)),
        "drl": pd.DataFrame(list(PAPER_DRL)),
    }


def paper_reference_markdown() -> str:
    """The three reference tables as Markdown, with their captions.

    Source: ``docs/model/cell.md#what-is-reproduced``.
    """
    ref = paper_reference()
    parts = [
        "Paper Table I, static splits (100 episodes; the paper printed the (0.4, 0.4) delays "
        "swapped, shown corrected):",
        "",
        markdown(
            display_table(ref["static"], ["split", "note"]).rename(columns={"split": "(w_b, w_c)"}),
            ["l", "l", "r", "r", "r"],
        ),
        "",
        "The authors' paper-era code re-run (20 episodes, mean ± std over episodes):",
        "",
        markdown(
            display_table(ref["rerun"], ["split"]).rename(columns={"split": "(w_b, w_c)"}),
            ["l", "r", "r", "r"],
        ),
        "",
        "The paper's PPO points (100 deterministic episodes; letters are the paper's):",
        "",
        markdown(display_table(ref["drl"], ["point", "setting"]), ["l", "l", "r", "r", "r"]),
    ]
    return "\n".join(parts)


def paper_comparison(points: pd.DataFrame) -> pd.DataFrame:
    """For each split the paper reports: ours (mean ± std), the paper's, the re-run's.

    ``points`` must hold one scenario (normally ``paper``) and no superseded rows. Rows only for
    splits present in ``points``. Columns: split, source (``ours``/``paper``/``re-run``),
    episodes, the key metrics with ``_std``.
    """
    static = points.loc[points["role"] == "static"]
    paper = {r["split"]: r for r in PAPER_STATIC}
    rerun = {r["split"]: r for r in PAPER_RERUN}
    rows: list[dict[str, Any]] = []
    for split in sorted(set(paper) | set(rerun)):
        w_b, w_c = (float(x) for x in split.strip("()").split(","))
        ours = _static_at(static, w_b, w_c)
        if ours is None:
            continue
        rec: dict[str, Any] = {"split": split, "source": "ours", "episodes": ours["episodes"]}
        rec.update({k: ours.get(k) for m in KEY_METRICS for k in (m, f"{m}_std")})
        rows.append(rec)
        if split in rerun:
            rows.append(
                {
                    "split": split,
                    "source": "authors' code, re-run",
                    "episodes": 20,
                    **{k: v for k, v in rerun[split].items() if k != "split"},
                }
            )
        if split in paper:
            rows.append(
                {
                    "split": split,
                    "source": "paper Table I",
                    "episodes": 100,
                    **{k: v for k, v in paper[split].items() if k not in ("split", "note")},
                }
            )
    cols = ["split", "source", "episodes"] + [k for m in KEY_METRICS for k in (m, f"{m}_std")]
    return pd.DataFrame(rows, columns=cols)


def paper_comparison_markdown(table: pd.DataFrame) -> str:
    if table.empty:
        return "_(no rows)_"
    disp = display_table(table, ["split", "source", "episodes"])
    disp = disp.rename(columns={"split": "(w_b, w_c)"})
    return markdown(disp, ["l", "l", "r", "r", "r", "r"])


def main(argv: Sequence[str] | None = None) -> int:
    from analysis.collect import collect_for_cli, points

    _, data = collect_for_cli("python -m analysis.tables", __doc__, argv)
    pts = points(data.episodes)
    if not pts.empty:
        pts = pts.loc[~pts["superseded"] & (pts["role"] != "pool")]
    for scenario, sub in pts.groupby("scenario", sort=True):
        print(f"## Table I, scenario {scenario}\n")
        print(table_one_markdown(table_one(sub)))
        print()
    print(paper_reference_markdown())
    return 0


if __name__ == "__main__":
    sys.exit(main())
