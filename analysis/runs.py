"""Claims over training runs: interval estimates over training seeds, computed by ``rliable``.

Whether *PPO with a reward setting* reaches the static front is a statement about the training
procedure, so its uncertainty is over training seeds, not over evaluation episodes. This module
turns the tidy episode table (:func:`analysis.collect.collect`) into one score per training run
and states every claim with an interval over runs. All estimators (interquartile mean, mean,
optimality gap, probability of improvement, stratified bootstrap intervals, performance profiles)
are ``rliable``'s; nothing here re-implements them.

Definitions (the report states them too):

* **run**: one trained policy (a training seed of a reward setting), evaluated on the scenario's
  evaluation episodes; a **setting** is (scenario, delta, penalty, controller).
* **per-run score**: the mean over the run's evaluation episodes of its episode return under the
  setting's own reward, normalised between the worst and the best static split of the 0.1 grid for
  that return on the same episodes: ``(R - R_worst) / (R_best - R_worst)``; 0 = the worst split,
  1 = the best split, above 1 = more return than every static split.
* **margin**: the run's signed distance to the static front in the (sync delay, served %) plane,
  in noise units of 1 step and 1 pp (:attr:`analysis.placement.Placement.score`: the lead over a
  front split if it dominates one by mean, minus the gap if a split dominates it, else 0).
* **intervals**: 95 % stratified bootstrap confidence intervals over runs (percentile method,
  :data:`REPS` replications, :data:`POI_REPS` for the probability of improvement, a fixed
  bootstrap seed, so they are reproducible).
* **front verdict over runs** from the interval ``[lo, hi]`` of the mean margin and the practical
  threshold of 1 noise unit: ``beyond`` if ``lo > 1``; ``behind`` if ``hi < -1``; ``on`` if
  ``lo >= -1`` (the behind-bound within the threshold); ``inconclusive`` otherwise (a noisy
  setting does not pass for "on").
* **probability of improvement** ``P(X > Y)`` of a setting's runs over a baseline that has no
  training seeds (the best static split for the setting's return, the queue-aware rule): the
  baseline's score is resampled over blocks of :data:`BLOCK` consecutive evaluation episodes
  (a block bootstrap of its per-episode normalised return, :data:`PSEUDO_RUNS` pseudo-runs of as
  many episodes as the runs were evaluated on), and ``rliable`` compares the runs with these
  pseudo-runs, with its bootstrap interval.

:func:`run_scores` gives the per-run table (written next to the report as ``run_scores.csv``, so
every interval can be recomputed); :func:`setting_stats` the per-setting intervals and verdicts;
:func:`aggregate` the intervals over all settings; :func:`profiles` the performance profiles.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from analysis.placement import Noise, StaticGrid, place

REPS = 2000  # bootstrap replications
POI_REPS = 1000  # for the probability of improvement (a rank test per replication: slower)
BOOTSTRAP_SEED = 0
CONFIDENCE = 0.95
THRESHOLD = 1.0  # noise units (1 step of sync delay, 1 pp of served)
BLOCK = 10  # episodes per block of the baselines' block bootstrap
PSEUDO_RUNS = 20  # pseudo-runs of a baseline without training seeds
BEYOND, ON, BEHIND, INCONCLUSIVE = "beyond", "on", "behind", "inconclusive"
SETTING_KEYS = ("scenario", "delta", "penalty", "controller")
SCORE_COLUMNS = (
    *SETTING_KEYS, "seed", "point", "episodes", "episode_return", "sync_delay", "e2e_delay",
    "served_pct", "score", "margin", "placement", "best_split", "best_split_return",
    "worst_split", "worst_split_return", "queue_aware_return",
)  # fmt: skip


def _rliable() -> tuple[Any, Any]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from rliable import library, metrics
    return library, metrics


def _random_state(seed: int = BOOTSTRAP_SEED) -> np.random.RandomState:
    return np.random.RandomState(seed)


# --- per-run scores ---------------------------------------------------------------------------
def _wide(
    rows: pd.DataFrame, metric: str, labels: Sequence[str], seeds: Sequence[int]
) -> NDArray[np.float64]:
    """``(policies, episodes)`` values of ``metric`` aligned on ``labels`` and ``seeds``."""
    table = rows.pivot(index="policy", columns="seed", values=metric)
    return np.asarray(table.reindex(index=list(labels), columns=list(seeds)), dtype=np.float64)


def _grid(static: pd.DataFrame, seeds: Sequence[int]) -> StaticGrid:
    labels = sorted(static["policy"].unique())
    return StaticGrid(
        labels, *(_wide(static, m, labels, seeds) for m in ("sync_delay", "served_pct",
                                                             "episode_return"))
    )  # fmt: skip


def _reference(episodes: pd.DataFrame, scenario: Any, delta: float, penalty: float) -> Any:
    """The static splits and the queue-aware rule of a scenario under one reward setting."""
    e = episodes.loc[(episodes["scenario"] == scenario) & np.isclose(episodes["delta"], delta)
                     & np.isclose(episodes["penalty"], penalty)]  # fmt: skip
    static = e.loc[e["role"] == "static"]
    rule = e.loc[(e["role"] == "baseline") & (e["kind"] == "queue_aware")]
    # a split or rule evaluated in several result sets: keep the first occurrence per seed
    return (static.drop_duplicates(["policy", "seed"]), rule.drop_duplicates(["policy", "seed"]))


def run_scores(episodes: pd.DataFrame, noise: Noise | None = None) -> pd.DataFrame:
    """One row per trained run (see the module docstring): :data:`SCORE_COLUMNS`.

    Runs whose scenario has no static grid under their reward setting (on common episode seeds)
    are left out.
    """
    noise = noise or Noise()
    if episodes.empty or "role" not in episodes:
        return pd.DataFrame(columns=list(SCORE_COLUMNS))
    trained = episodes.loc[(episodes["role"] == "trained") & episodes["delta"].notna()]
    if "run_study" in trained:  # a study's evaluations (e.g. adaptivity variants) are not runs
        trained = trained.loc[trained["run_study"].isna()]
    rows: list[dict[str, Any]] = []
    cache: dict[tuple[Any, float, float], Any] = {}
    for point, run in trained.groupby("point", sort=False):
        first = run.iloc[0]
        key = (first["scenario"], float(first["delta"]), float(first["penalty"]))
        if key not in cache:
            cache[key] = _reference(episodes, *key)
        static, rule = cache[key]
        seeds = sorted(set(run["seed"]) & set(static["seed"]))
        if len(seeds) < 2 or static["policy"].nunique() < 2:
            continue
        grid = _grid(static.loc[static["seed"].isin(seeds)], seeds)
        r = run.drop_duplicates("seed").set_index("seed").loc[seeds]
        means = np.nanmean(grid.ret, axis=1)
        best, worst = int(np.nanargmax(means)), int(np.nanargmin(means))
        spread = means[best] - means[worst]
        ret = float(r["episode_return"].mean())
        p = place(grid, r["sync_delay"], r["served_pct"], r["episode_return"], noise)
        qa = rule.loc[rule["seed"].isin(seeds), "episode_return"]
        rows.append({
            "scenario": key[0], "delta": key[1], "penalty": key[2],
            "controller": str(first.get("run_controller") or "single"),
            "seed": _seed_of(first), "point": point, "episodes": len(seeds),
            "episode_return": ret, "sync_delay": float(r["sync_delay"].mean()),
            "e2e_delay": float(r["e2e_delay"].mean()), "served_pct": float(r["served_pct"].mean()),
            "score": (ret - means[worst]) / spread if spread > 0 else math.nan,
            "margin": p.score, "placement": p.verdict,
            "best_split": grid.labels[best], "best_split_return": float(means[best]),
            "worst_split": grid.labels[worst], "worst_split_return": float(means[worst]),
            "queue_aware_return": float(qa.mean()) if len(qa) else math.nan,
        })  # fmt: skip
    out = pd.DataFrame(rows, columns=list(SCORE_COLUMNS))
    return out.sort_values([*SETTING_KEYS, "seed"], key=_order).reset_index(drop=True)


def _seed_of(row: Mapping[str, Any]) -> int:
    for key in ("run_train_seed", "run_seed"):
        v = row.get(key)
        if v is not None and not (isinstance(v, float) and math.isnan(v)):
            return int(v)
    return -1


def _order(col: pd.Series) -> pd.Series:
    """Settings in the paper's order: penalty 0 first, then decreasing delta."""
    if col.name == "penalty":
        return -col
    if col.name == "delta":
        return -col
    return col


# --- intervals over runs ---------------------------------------------------------------------
def interval(
    values: Sequence[float] | NDArray[np.float64],
    stat: str = "mean",
    reps: int = REPS,
    seed: int = BOOTSTRAP_SEED,
) -> tuple[float, float, float]:
    """``(point, lo, hi)`` of ``stat`` (``mean`` or ``iqm``) over runs with rliable's stratified
    bootstrap (95 %, percentile)."""
    library, metrics = _rliable()
    x = np.asarray(values, dtype=np.float64).reshape(-1, 1)
    x = x[np.isfinite(x[:, 0])]
    if len(x) == 0:
        return math.nan, math.nan, math.nan
    fn = {"mean": metrics.aggregate_mean, "iqm": metrics.aggregate_iqm}[stat]
    func: Callable[[NDArray[np.float64]], NDArray[np.float64]] = lambda s: np.array([fn(s)])  # noqa: E731
    point, ci = _estimate(library, {"x": x}, func, reps, seed)
    return float(point["x"][0]), float(ci["x"][0, 0]), float(ci["x"][1, 0])


def _estimate(library: Any, scores: Any, func: Any, reps: int, seed: int) -> Any:
    """rliable's interval estimates with a fixed bootstrap seed. rliable's stratified bootstrap
    draws its resamples from NumPy's global generator (``np.random.choice``), so it is seeded
    here and restored afterwards; the independent-samples bootstrap takes ``random_state``."""
    state = np.random.get_state()  # noqa: NPY002 (rliable resamples with np.random)
    np.random.seed(seed)  # noqa: NPY002
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # arch: "random_state is deprecated"
            return library.get_interval_estimates(
                scores, func, reps=reps, confidence_interval_size=CONFIDENCE,
                random_state=_random_state(seed),
            )  # fmt: skip
    finally:
        np.random.set_state(state)  # noqa: NPY002


def verdict(lo: float, hi: float, threshold: float = THRESHOLD) -> str:
    """The front verdict of an interval of the mean margin (see the module docstring)."""
    if not (math.isfinite(lo) and math.isfinite(hi)):
        return INCONCLUSIVE
    if lo > threshold:
        return BEYOND
    if hi < -threshold:
        return BEHIND
    if lo >= -threshold:
        return ON
    return INCONCLUSIVE


def baseline_pseudo_runs(
    per_episode: Sequence[float] | NDArray[np.float64],
    n: int = PSEUDO_RUNS,
    block: int = BLOCK,
    seed: int = BOOTSTRAP_SEED,
) -> NDArray[np.float64]:
    """``n`` pseudo-runs of a baseline without training seeds: means of its per-episode values
    resampled in blocks of ``block`` consecutive episodes (as many episodes as it has)."""
    x = np.asarray(per_episode, dtype=np.float64)
    x = x[np.isfinite(x)]
    if len(x) == 0:
        return np.full(n, math.nan)
    blocks = [x[i : i + block] for i in range(0, len(x), block)]
    rng = np.random.default_rng(seed)
    out = np.empty(n)
    for k in range(n):
        picks = rng.integers(0, len(blocks), len(blocks))
        out[k] = float(np.concatenate([blocks[i] for i in picks]).mean())
    return out


def probability_of_improvement(
    runs: Sequence[float] | NDArray[np.float64],
    baseline: Sequence[float] | NDArray[np.float64],
    reps: int = REPS,
    seed: int = BOOTSTRAP_SEED,
) -> tuple[float, float, float]:
    """``(P(run > baseline), lo, hi)`` with rliable's stratified bootstrap over both samples."""
    library, metrics = _rliable()
    x = np.asarray(runs, dtype=np.float64).reshape(-1, 1)
    y = np.asarray(baseline, dtype=np.float64).reshape(-1, 1)
    x, y = x[np.isfinite(x[:, 0])], y[np.isfinite(y[:, 0])]
    if len(x) == 0 or len(y) == 0:
        return math.nan, math.nan, math.nan

    def func(a: NDArray[np.float64], b: NDArray[np.float64]) -> NDArray[np.float64]:
        return np.array([metrics.probability_of_improvement(a, b)])

    point, ci = _estimate(library, {"poi": [x, y]}, func, reps, seed)
    return float(point["poi"][0]), float(ci["poi"][0, 0]), float(ci["poi"][1, 0])


def _baseline_scores(
    episodes: pd.DataFrame, row: Mapping[str, Any], policy: str | None, kind: str
) -> NDArray[np.float64]:
    """Per-episode normalised return of a baseline (a split by label, or a rule by kind) on the
    episodes the setting's runs were scored on."""
    static, rule = _reference(episodes, row["scenario"], row["delta"], row["penalty"])
    src = static.loc[static["policy"] == policy] if kind == "static" else rule
    r = src.sort_values("seed")["episode_return"].to_numpy(dtype=np.float64)
    spread = row["best_split_return"] - row["worst_split_return"]
    return (r - row["worst_split_return"]) / spread if spread > 0 else np.full(len(r), math.nan)


def setting_stats(
    scores: pd.DataFrame, episodes: pd.DataFrame, reps: int = REPS, seed: int = BOOTSTRAP_SEED
) -> pd.DataFrame:
    """Per setting: runs, IQM and mean of the normalised score with intervals, the mean margin
    with its interval and the front verdict, and the probability of improvement over the best
    static split and over the queue-aware rule, with intervals."""
    rows = []
    for key, g in scores.groupby(list(SETTING_KEYS), sort=False):
        first = g.iloc[0]
        iqm = interval(g["score"], "iqm", reps, seed)
        mean = interval(g["score"], "mean", reps, seed)
        m = interval(g["margin"], "mean", reps, seed)
        best = baseline_pseudo_runs(_baseline_scores(episodes, first, first["best_split"],
                                                     "static"), seed=seed)  # fmt: skip
        qa = baseline_pseudo_runs(_baseline_scores(episodes, first, None, "rule"), seed=seed)
        poi_reps = min(reps, POI_REPS)
        poi_best = probability_of_improvement(g["score"], best, poi_reps, seed)
        poi_qa = probability_of_improvement(g["score"], qa, poi_reps, seed)
        rows.append({
            **dict(zip(SETTING_KEYS, key, strict=True)), "runs": len(g),
            "seeds": " ".join(str(s) for s in g["seed"]),
            "score_iqm": iqm[0], "score_iqm_lo": iqm[1], "score_iqm_hi": iqm[2],
            "score_mean": mean[0], "score_mean_lo": mean[1], "score_mean_hi": mean[2],
            "margin_mean": m[0], "margin_lo": m[1], "margin_hi": m[2],
            "verdict": verdict(m[1], m[2]),
            "poi_best_split": poi_best[0], "poi_best_split_lo": poi_best[1],
            "poi_best_split_hi": poi_best[2],
            "poi_queue_aware": poi_qa[0], "poi_queue_aware_lo": poi_qa[1],
            "poi_queue_aware_hi": poi_qa[2],
            "sync_delay": float(g["sync_delay"].mean()),
            "served_pct": float(g["served_pct"].mean()), "e2e_delay": float(g["e2e_delay"].mean()),
        })  # fmt: skip
    return pd.DataFrame(rows)


def score_matrix(scores: pd.DataFrame) -> tuple[NDArray[np.float64], list[str]]:
    """``(runs, settings)`` normalised scores of the settings with the most runs (rliable's
    layout: runs x tasks), and the settings' names."""
    if scores.empty:
        return np.empty((0, 0)), []
    sizes = scores.groupby(list(SETTING_KEYS), sort=False).size()
    n = int(sizes.max())
    cols, names = [], []
    for key, g in scores.groupby(list(SETTING_KEYS), sort=False):
        if len(g) == n:
            cols.append(g["score"].to_numpy(dtype=np.float64))
            names.append(setting_name(dict(zip(SETTING_KEYS, key, strict=True))))
    return np.column_stack(cols), names


def setting_name(row: Mapping[str, Any]) -> str:
    ctl = "" if row.get("controller") in (None, "single") else f" {row['controller']}"
    return f"δ {float(row['delta']):g}, penalty {float(row['penalty']):g}{ctl}"


def aggregate(
    matrix: NDArray[np.float64], reps: int = REPS, seed: int = BOOTSTRAP_SEED
) -> dict[str, tuple[float, float, float]]:
    """IQM, mean and optimality gap (to 1 = the best static split) over all runs and settings,
    each ``(point, lo, hi)``."""
    library, metrics = _rliable()
    if matrix.size == 0:
        return {}

    def func(x: NDArray[np.float64]) -> NDArray[np.float64]:
        return np.array([metrics.aggregate_iqm(x), metrics.aggregate_mean(x),
                         metrics.aggregate_optimality_gap(x, 1.0)])  # fmt: skip

    point, ci = _estimate(library, {"all": matrix}, func, reps, seed)
    names = ("iqm", "mean", "optimality_gap")
    return {n: (float(point["all"][i]), float(ci["all"][0, i]), float(ci["all"][1, i]))
            for i, n in enumerate(names)}  # fmt: skip


def profiles(
    matrix: NDArray[np.float64],
    taus: NDArray[np.float64],
    reps: int = REPS,
    seed: int = BOOTSTRAP_SEED,
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """rliable's run-score performance profile (the fraction of runs with a score above each
    tau, :func:`rliable.library.score_distributions`) and its 95 % band ``(2, len(taus))``."""
    library, _ = _rliable()

    def func(s: NDArray[np.float64]) -> NDArray[np.float64]:
        return np.asarray(library.score_distributions(s, taus), dtype=np.float64)

    point, ci = _estimate(library, {"ppo": matrix}, func, reps, seed)
    return np.asarray(point["ppo"]), np.asarray(ci["ppo"])


# --- the credit pool and the adaptivity study ------------------------------------------------
POOL_RULES = ("greedy", "noncoop")
# result sets of a learned pool controller: a sweep trial's evaluation, launch eval --out
LEARNED_KINDS = ("pool-ppo-trial", "pool-eval")


def pool_stats(
    episodes: pd.DataFrame,
    metric: str = "fulfillment_pct",
    reps: int = REPS,
    seed: int = BOOTSTRAP_SEED,
) -> pd.DataFrame:
    """Per (scenario, learned pool controller): its training runs' mean ``metric`` (one score
    per run: the mean over its evaluation episodes, pool on), IQM and mean with intervals over
    runs, and the probability of improvement over each rule of :data:`POOL_RULES` evaluated on
    the same episodes (block-bootstrap pseudo-runs, as for the static splits)."""
    if episodes.empty or "run_kind" not in episodes or metric not in episodes:
        return pd.DataFrame()
    pool = episodes.loc[episodes["run_kind"].astype(str).str.startswith("pool")]
    learned = pool.loc[(pool["kind"] == "ppo") & pool["run_kind"].isin(LEARNED_KINDS)]
    if "run_env_config" not in learned:
        learned = learned.assign(run_env_config="{}")
    keys = ["scenario", "run_controller", "run_env_config"]
    labels = _setting_labels(learned.drop_duplicates(keys)[keys].fillna("{}"))
    rows = []
    for (scenario, controller, env), g in learned.fillna({"run_env_config": "{}"}).groupby(
        keys, sort=False
    ):
        per_run = g.groupby("point", sort=False)[metric].mean()
        seeds = sorted(set(g["seed"]))
        iqm, mean = interval(per_run, "iqm", reps, seed), interval(per_run, "mean", reps, seed)
        row: dict[str, Any] = {
            "scenario": scenario, "controller": controller,
            "setting": labels.get((scenario, controller, env), ""), "runs": len(per_run),
            "iqm": iqm[0], "iqm_lo": iqm[1], "iqm_hi": iqm[2],
            "mean": mean[0], "mean_lo": mean[1], "mean_hi": mean[2],
        }  # fmt: skip
        for rule in POOL_RULES:
            r = pool.loc[(pool["scenario"] == scenario) & (pool["policy"] == rule)
                         & pool["seed"].isin(seeds)].drop_duplicates("seed")  # fmt: skip
            base = baseline_pseudo_runs(r.sort_values("seed")[metric], seed=seed)
            poi = probability_of_improvement(per_run, base, min(reps, POI_REPS), seed)
            row.update({f"rule_{rule}": float(r[metric].mean()) if len(r) else math.nan,
                        f"poi_{rule}": poi[0], f"poi_{rule}_lo": poi[1],
                        f"poi_{rule}_hi": poi[2]})  # fmt: skip
        rows.append(row)
    return pd.DataFrame(rows)


def _setting_labels(groups: pd.DataFrame) -> dict[tuple[Any, Any, str], str]:
    """A short name per (scenario, controller, env config): the env options in which the
    configs of one scenario and controller differ (e.g. ``scope=team``)."""
    import json

    out: dict[tuple[Any, Any, str], str] = {}
    for (scenario, controller), g in groups.groupby(["scenario", "run_controller"], sort=False):
        configs = {env: json.loads(env) for env in g["run_env_config"]}
        keys = sorted({k for c in configs.values() for k in c})
        differ = [k for k in keys if len({json.dumps(c.get(k)) for c in configs.values()}) > 1]
        for env, c in configs.items():
            out[(scenario, controller, env)] = ", ".join(f"{k}={c.get(k)}" for k in differ)
    return out


def margin_stats(
    table: pd.DataFrame, by: str, reps: int = REPS, seed: int = BOOTSTRAP_SEED
) -> pd.DataFrame:
    """Per value of ``by``: the runs' margins to the front (column ``score``, noise units), their
    mean with its interval over runs and the front verdict (the adaptivity study, one row per
    variant, over the training seeds of one recipe)."""
    rows = []
    for key, g in table.groupby(by, sort=False):
        m = interval(g["score"], "mean", reps, seed)
        rows.append({by: key, "runs": len(g), "margins": " ".join(f"{x:+.1f}" for x in g["score"]),
                     "margin_mean": m[0], "margin_lo": m[1], "margin_hi": m[2],
                     "verdict": verdict(m[1], m[2])})  # fmt: skip
    return pd.DataFrame(rows)
