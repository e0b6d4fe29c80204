"""Sweep ``paper-grid``: PPO over the paper's reward settings x seeds, trials in parallel.

Run::

    python -m launch sweep paper-grid --budget small   # 21 static + 21 PPO trials x 40k steps
    python -m launch sweep paper-grid --budget paper   # 21 static + 63 PPO x 60k, 3 seeds
    python -m launch report results/paper-grid-paper   # figures, Table I, claims check

The grid is delta in {0.9, 0.8, 0.7, 0.6, 0.5, 0.3, 0.1} x penalty in {0, -1, -5} x seeds. First
come the static baselines, one trial per reward setting (the exhaustive 0.1 grid plus the heuristic
and queue-aware rules, batched, a few seconds each; ``--set with_static=false`` leaves them out,
e.g. when ``static-grid`` runs separately). Each PPO trial trains PPO (``tune_configs.ppo``, log1p
observations, one CPU), reports the training metrics every iteration (TensorBoard:
``ray/tune/env_runners/metalore/*``), and ends with a deterministic evaluation over 100 episodes
(seeds 0..99, the episodes of the static baselines) whose metrics are its final result
(``eval/served_pct``, ``eval/sync_delay``, ``eval/e2e_delay``, ...) and a result set (kind
``ppo-trial``) in its trial directory, next to its final ``checkpoint/``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tune_configs.settings import Setting, pick
from tune_configs.sweeps import (
    OBJECTIVE_MODES,
    OBJECTIVES,
    PAPER_DELTAS,
    PAPER_PENALTIES,
    check_budget,
    grid_sweep,
)

NAME = "paper-grid"
DESCRIPTION = "PPO over delta x penalty x seeds (the paper's reward settings), 100-episode eval"
DELTAS: tuple[float, ...] = PAPER_DELTAS
PENALTIES: tuple[float, ...] = PAPER_PENALTIES
METRICS: tuple[str, ...] = OBJECTIVES
MODES: tuple[str, ...] = OBJECTIVE_MODES
# Env steps per PPO trial with the fast defaults (tune_configs.ppo: native vector env, 64 envs,
# batch 4000, minibatch 1000, 5 epochs): a policy reaches the static front within about 20k steps
# and improves along it afterwards; the paper budget fits 63 trials into a few minutes on 2 cores.
BUDGETS: dict[str, dict[str, Any]] = {
    "small": {"timesteps": 40_000, "seeds": (0,), "eval_episodes": 100},
    "paper": {"timesteps": 60_000, "seeds": (0, 1, 2), "eval_episodes": 100},
}
# the settings of every PPO trial (see ppo_constants)
PPO_SETTINGS: tuple[Setting, ...] = pick(
    "preset",
    "obs_mode",
    "timesteps",
    "eval_episodes",
    "eval_seed",
    "hparams",
    "resources",
    "checkpoint_every",
)
SETTINGS: tuple[Setting, ...] = (
    *PPO_SETTINGS,
    *pick("seeds", "deltas", "penalties", "episodes", "grid_step", "with_static"),
)


def ppo_constants(budget: str, **overrides: Any) -> dict[str, Any]:
    """Non-searched keys of a PPO trial config for a budget (see tune_configs.trials)."""
    b = {**BUDGETS[check_budget(budget)], **overrides}
    return {
        "kind": "ppo",
        "budget": budget,
        "preset": b.get("preset", "paper"),
        "obs_mode": b.get("obs_mode", "log1p"),
        "timesteps": int(b["timesteps"]),
        "eval_episodes": int(b["eval_episodes"]),
        "eval_seed": int(b.get("eval_seed", 0)),
        "hparams": dict(b.get("hparams", {})),
        "resources": dict(b.get("resources", {})),
        "checkpoint_every": int(b.get("checkpoint_every", 10)),
    }


def reward_jobs(
    rewards: list[tuple[float, float]],
    seeds: list[int],
    with_static: bool = True,
    grid_step: float | None = None,
) -> list[dict[str, Any]]:
    """Trial specs: (optionally) one static-grid trial per reward, then PPO per reward x seed.

    The static trials come first so that, with trials in parallel, the baseline is done before
    (or while) the PPO trials run. Each evaluates the whole 0.1 grid plus the heuristic and
    queue-aware rules under that reward (delays and served % are reward-independent; the return
    is not).
    """
    from tune_configs.static_grid import GRID_STEP, split_blocks

    jobs: list[dict[str, Any]] = []
    if with_static:
        splits = split_blocks(GRID_STEP if grid_step is None else float(grid_step), 1)[0]
        jobs += [
            {"kind": "static", "block": 0, "splits": splits, "baselines": True, "delta": d,
             "penalty": p}
            for d, p in rewards
        ]  # fmt: skip
    jobs += [
        {"kind": "ppo", "delta": d, "penalty": p, "seed": int(s)} for d, p in rewards for s in seeds
    ]
    return jobs


def param_space(budget: str = "paper", **overrides: Any) -> dict[str, Any]:
    """Tune param space: shared constants plus a grid over :func:`reward_jobs` (delta x penalty
    static trials unless ``with_static=False``, then delta x penalty x seed PPO trials)."""
    b = {**BUDGETS[check_budget(budget)], **overrides}
    rewards = [
        (float(d), float(p)) for d in b.get("deltas", DELTAS) for p in b.get("penalties", PENALTIES)
    ]
    constants = ppo_constants(budget, **overrides)
    constants.pop("kind")
    return {
        **constants,
        "episodes": int(b.get("episodes", 100)),
        "grid_step": float(b.get("grid_step", 0.1)),
        "job": {
            "grid_search": reward_jobs(
                rewards, list(b["seeds"]), bool(b.get("with_static", True)), b.get("grid_step")
            )
        },
    }


def stop(budget: str = "paper", **overrides: Any) -> dict[str, Any]:
    """A trial ends after its env-step budget (it evaluates itself first, then reports)."""
    return {"timesteps": int({**BUDGETS[check_budget(budget)], **overrides}["timesteps"])}


SPACE = param_space("paper")
STOP = stop("paper")
# Trials reuse their Ray actors: a PPO trial then pays torch and RLlib's imports once per actor.
total_trials, build_tuner = grid_sweep(NAME, param_space, stop, reuse_actors=True)


# --- the study's documentation (docs/results) ----------------------------------------------------
PENALTY_FIGURES = (0.0, -1.0, -5.0)


def _fmt_pm(mean: Any, std: Any, digits: int = 2) -> str:
    import math

    if mean is None or not math.isfinite(float(mean)):
        return "n/a"
    if std is None or not math.isfinite(float(std)):
        return f"{float(mean):.{digits}f}"
    return f"{float(mean):.{digits}f} ± {float(std):.{digits}f}"


def write_docs(
    exp_dir: str | Path,
    out_dir: str | Path,
    models: str | Path | None = None,
    timing: str | None = None,
) -> Path:
    """Figures (Fig. 4 and 5 per penalty), Table I, the claims check and the shipped policies of
    a finished ``paper-grid`` study as ``out_dir/README.md`` plus PNGs; returns the Markdown.

    ``exp_dir``: the sweep's experiment directory (after ``launch report``, or not); ``models``:
    the directory ``launch export --sweep`` shipped to (its ``index.json``); ``timing``: a
    sentence on how long the study took, quoted as given.
    """
    import json

    from analysis import figures, placement, plot_style, tables
    from analysis.collect import collect, points

    exp, out = Path(exp_dir).resolve(), Path(out_dir).resolve()
    out.mkdir(parents=True, exist_ok=True)
    data = collect(exp, write=False)
    allp = points(data.episodes)
    pts = allp.loc[~allp["superseded"] & (allp["scenario"] == "paper") & (allp["role"] != "pool")]
    trained = pts.loc[pts["role"] == "trained"]
    seeds = trained.groupby(["delta", "penalty"]).size()
    lo, hi = int(seeds.min()), int(seeds.max())
    n_seeds = str(lo) if lo == hi else f"{lo}-{hi}"
    lines = [
        "# Results: the paper study",
        "",
        "Everything here comes from one run of the paper's reward grid (δ in "
        f"{{{', '.join(f'{d:g}' for d in DELTAS)}}} x penalty in "
        f"{{{', '.join(f'{p:g}' for p in PENALTIES)}}}, {n_seeds} training seeds each, "
        f"{int(trained['timesteps'].max()):,} env steps per seed with the "
        "default PPO settings), evaluated deterministically on the 100 episodes of the static "
        "baselines (seeds 0..99), and its report:",
        "",
        "```bash",
        "python -m launch sweep paper-grid --budget paper          # -> results/paper-grid-paper",
        "python -m launch report results/paper-grid-paper          # report.md, figures, tables",
        "python -m launch export --sweep results/paper-grid-paper --out models/paper",
        "```",
        "",
    ]
    if timing:
        lines += [timing, ""]
    lines += [
        "Figures: per penalty, the exhaustive static grid (grey, its Pareto front black) with "
        "every trained policy (one point per training seed, tags as in Table I; bars ±1 std "
        "over episodes). The report draws all 63 policies in one plane; split by penalty they "
        "can be told apart.",
        "",
    ]
    for p in PENALTY_FIGURES:
        sub = pts.loc[(pts["role"] != "trained") | (pts["penalty"] == p)]
        if not (sub["role"] == "trained").any():
            continue
        for key, plane, what in (
            ("fig4", "sync_served", "sync delay vs traffic served"),
            ("fig5", "sync_e2e", "sync delay vs end-to-end delay"),
        ):
            name = f"{key}_penalty{p:g}.png"
            title = f"Fig. {key[-1]} ({what}): PPO with delay penalty {p:g}, δ 0.9 ... 0.1"
            if figures.plane_figure(sub, plane, out / name, title=title) is not None:
                lines += [f"![{title}]({name})", ""]
    idle = trained.loc[trained["served_pct"] < 10.0].sort_values("tag", key=plot_style.tag_order)
    if not idle.empty:
        lines += [
            "Reading them: "
            + ", ".join(str(t) for t in idle["tag"])
            + " serve under 10 % of the UE jobs: with a small δ the sync reward is tiny, so "
            "not serving at all avoids the delay penalty (the reward is maximised, not the "
            "paper's objectives). Their delays average over the few jobs they complete, hence "
            "the wide bars at the far left.",
            "",
        ]
    t1 = tables.table_one(pts)
    lines += [
        "## Table I: static picks, rule-based baselines, trained policies",
        "",
        "Mean ± std over the 100 evaluation episodes (pooled rows: over all seeds' episodes). "
        "Tags: A-G penalty 0, H-N penalty -1, O-U penalty -5, δ from 0.9 down to 0.1 within "
        "each; the digit is the training seed + 1.",
        "",
        tables.table_one_markdown(t1),
        "",
    ]
    pooled = t1.loc[~t1["row"].astype(str).str.match(r"trained [A-Z]+\d+$")]
    (out / "table_one_pooled.md").write_text(tables.table_one_markdown(pooled) + "\n")
    cc = placement.claims_check(pts, data.episodes)
    if not cc.empty:
        verdicts = cc.pivot_table(
            index=["tag", "label"], columns="plane", values="verdict", aggfunc="first"
        ).reset_index()
        ours = cc.loc[cc["role"] == "trained"]
        counts = {
            plane: ours.loc[ours["plane"] == plane, "verdict"].value_counts().to_dict()
            for plane in ours["plane"].unique()
        }
        lines += [
            "## Claims check: is a static split better beyond the noise?",
            "",
            "Paired over the common episode seeds, z = 1.96 per objective "
            "(`analysis.placement.claims_check`). Counts over the trained policies: "
            + "; ".join(
                f"{plane}: " + ", ".join(f"{n} {v}" for v, n in sorted(c.items()))
                for plane, c in counts.items()
            )
            + ".",
            "",
            "| policy | sync vs served | sync vs E2E |",
            "| :--- | :--- | :--- |",
        ]
        for _, r in verdicts.loc[verdicts["tag"].astype(str) != ""].iterrows():
            lines.append(f"| {r['label']} | {r.get('sync_served', '')} | {r.get('sync_e2e', '')} |")
        lines.append("")
    if models is not None and (Path(models) / "index.json").is_file():
        index = json.loads((Path(models) / "index.json").read_text())
        rel = Path(models).resolve()
        lines += [
            "## Shipped policies",
            "",
            f"One policy per reward setting in `{rel.name}/<setting>/` of `models/` "
            "(`policy.safetensors` + `policy.json`, no pickle): the training seed with the "
            "highest mean return on 100 tuning episodes (seeds 1,000,000..1,000,099, never "
            "used for evaluation) is shipped. Try one: `python -m launch eval "
            "models/paper/d0.9_p0`. Every seed (evaluation on seeds 0..99):",
            "",
            "| setting | seed | tuning return | shipped | sync delay | E2E delay | served % "
            "| return |",
            "| :--- | ---: | ---: | :---: | ---: | ---: | ---: | ---: |",
        ]
        for r in index:
            ev = r.get("eval", {})
            lines.append(
                f"| {r['setting']} | {r['seed']} | {r['tuning_return']:.1f} | "
                f"{'yes' if r['shipped'] else ''} | "
                f"{_fmt_pm(ev.get('sync_delay'), ev.get('sync_delay_std'))} | "
                f"{_fmt_pm(ev.get('e2e_delay'), ev.get('e2e_delay_std'))} | "
                f"{_fmt_pm(ev.get('served_pct'), ev.get('served_pct_std'))} | "
                f"{_fmt_pm(ev.get('episode_return'), ev.get('episode_return_std'), 0)} |"
            )
        lines.append("")
    md = out / "README.md"
    md.write_text("\n".join(lines))
    return md


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser(
        prog="python -m tune_configs.paper_grid",
        description="write docs/results from a finished paper-grid study",
    )
    parser.add_argument("exp_dir", help="the sweep's experiment directory")
    parser.add_argument("out_dir", help="where to write README.md and the figures")
    parser.add_argument("--models", default=None, help="shipped policies (launch export --sweep)")
    parser.add_argument("--timing", default=None, help="a sentence on the study's wall time")
    a = parser.parse_args()
    print(write_docs(a.exp_dir, a.out_dir, a.models, a.timing))
