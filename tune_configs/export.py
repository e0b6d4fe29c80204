"""Export trained policies as shipped policies (:mod:`tune_configs.policies.shipped`: safetensors
weights plus ``policy.json``, loadable with numpy alone).

* :func:`export_checkpoint`: a checkpoint of the ``single`` controller -> a shipped directory,
  its manifest taken from the checkpoint's sidecar and the run record next to it
  (``python -m launch export CKPT --out DIR``);
* :func:`ship_sweep`: one shipped policy per reward setting of a sweep's PPO trials, the training
  seed picked on tuning episodes (``python -m launch export --sweep EXP --out DIR``);
* :func:`describe`: one line about a shipped policy.

The format, its reader and writer and the numpy actor live in :mod:`tune_configs.policies.shipped`.
Credit-pool checkpoints (``central``, ``per-cell``) ship the same way
(:func:`export_pool_policy`,
:func:`ship_training`).

Run ``python -m launch export results/train-a/checkpoint --out models/mine`` and then
``python -m launch eval models/mine``; the directory weighs about 25 kB for a [64, 64] actor.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from envs.core.seeds import RULE_SEARCH
from tune_configs.policies.interface import POOL_INTERFACE, SINGLE_INTERFACE
from tune_configs.policies.pool import CENTRAL_ACTOR, POOL_CONTROLLERS
from tune_configs.policies.shipped import (
    SINGLE_ACTOR,
    ShippedPolicy,
    actor_of_rl_module,
    write_shipped,
)


# --- the single-cell controller ----------------------------------------------------------------
def _training_record(checkpoint: Path) -> dict[str, Any]:
    """What the run that wrote ``checkpoint`` recorded (``launch train``'s train.json or a
    trial's run.json), best effort."""
    for candidate in (checkpoint.parent / "train.json", checkpoint.parent / "run.json"):
        try:
            record = json.loads(candidate.read_text())
        except (OSError, json.JSONDecodeError):
            continue
        if isinstance(record, dict):
            return record
    return {}


def export_checkpoint(
    checkpoint: str | Path, out_dir: str | Path, manifest: Mapping[str, Any] | None = None
) -> Path:
    """Ship the actor of a ``single``-controller checkpoint (see the module docstring).

    The manifest takes the training command, seed, env steps and wall time from the checkpoint's
    sidecar and the run record next to it (``train.json`` of ``launch train``, ``run.json`` of a
    sweep trial); ``manifest`` adds or overrides keys.
    """
    from analysis.resultset import git_commit
    from tune_configs.policies.checkpoint import SIDECAR
    from tune_configs.policies.single import load_policy, read_checkpoint_info

    ckpt = Path(checkpoint).expanduser().resolve()
    info = read_checkpoint_info(ckpt)
    policy = load_policy(ckpt)
    actor = policy.actor if policy.actor is not None else actor_of_rl_module(policy.module)
    record = _training_record(ckpt)
    seed = info.get("seed", record.get("seed", record.get("train_seed")))
    steps = info.get("timesteps", record.get("timesteps"))
    wall = record.get("train_s", record.get("elapsed_s"))
    body = {
        "command": record.get("command"),
        "seed": seed,
        "env_steps": steps,
        "train_wall_s": wall,
        "git_commit": record.get("git_commit") or git_commit(),
        "hparams": info.get("hparams", record.get("hparams")),
        "source_checkpoint": str(ckpt),
        "exported_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        **dict(manifest or {}),
    }
    shape = list(policy.action_shape)
    action = {
        "normalize": policy.normalize_actions,
        "low": policy.action_low,
        "high": 1.0,
        "shape": shape,
    }
    return write_shipped(
        out_dir,
        {SINGLE_ACTOR: actor},
        controller=str(info.get("controller", "single")),
        env_config=policy.env_config,
        interface=SINGLE_INTERFACE,
        action=action,
        manifest={k: v for k, v in body.items() if not _is_nan(v)},
        extra={"params": policy.params.to_dict(), "sidecar": SIDECAR},
    )


def _is_nan(v: Any) -> bool:
    return isinstance(v, float) and math.isnan(v)


def describe(policy: ShippedPolicy) -> str:
    """One line: controller, reward, actors and sizes, env steps and seed."""
    d = policy.description
    m = d.get("manifest", {})
    sizes = ", ".join(
        f"{n}: {'-'.join(str(lyr['out']) for lyr in s['layers'])}" for n, s in d["actors"].items()
    )
    cfg = policy.env_config
    reward = (
        f"delta={cfg.get('delta')}, penalty={cfg.get('penalty')}"
        if "delta" in cfg
        else f"preset {cfg.get('preset')}"
    )
    return (
        f"{d['controller']} policy ({reward}; "
        f"actors {sizes}; {m.get('env_steps')} env steps, seed {m.get('seed')})"
    )


# --- one shipped policy per reward setting of a sweep --------------------------------------------
TUNING_SEED = RULE_SEARCH  # first episode seed of the selection episodes (envs.core.seeds)


def setting_name(preset: str, delta: float, penalty: float) -> str:
    """Directory name of a reward setting: ``d0.9_p0`` (``<preset>_d.._p..`` off the paper)."""
    name = f"d{float(delta):g}_p{float(penalty):g}"
    return name if preset == "paper" else f"{preset}_{name}"


def ship_sweep(
    exp_dir: str | Path,
    out_root: str | Path,
    tuning_seed: int = TUNING_SEED,
    tuning_episodes: int = 100,
    log: Callable[[str], None] | None = None,
) -> list[dict[str, Any]]:
    """Ship one single-cell policy per reward setting of a sweep's PPO trials.

    Each trial's final checkpoint is evaluated on ``tuning_episodes`` episodes from
    ``tuning_seed`` (disjoint from the sweep's evaluation seeds); the seed with the highest mean
    episode return under its own reward is shipped to ``out_root/<setting>/``, its manifest
    recording the selection (every candidate's tuning return and its evaluation in the sweep).
    Writes ``out_root/index.json`` and returns its rows (one per setting and seed).
    """
    from analysis.resultset import RUN_FILE, SUMMARY_FILE, commit_problem
    from tune_configs.policies.single import evaluate_policy, load_policy

    say = log or print
    exp, out = Path(exp_dir).expanduser().resolve(), Path(out_root).expanduser().resolve()
    groups: dict[tuple[str, float, float], list[dict[str, Any]]] = {}
    for run_file in sorted(exp.rglob(RUN_FILE)):
        run = json.loads(run_file.read_text())
        ckpt = run_file.parent / "checkpoint"
        if run.get("kind") != "ppo-trial" or run.get("controller", "single") != "single":
            continue
        if not ckpt.is_dir():
            continue
        problem = commit_problem(run_file.parent)
        if problem is not None:
            say(f"skipped {run_file.parent}: {problem}")
            continue
        summary = json.loads((run_file.parent / SUMMARY_FILE).read_text())[0]
        key = (str(run["preset"]), float(run["delta"]), float(run["penalty"]))
        groups.setdefault(key, []).append({"run": run, "checkpoint": ckpt, "summary": summary})
    if not groups:
        raise ValueError(f"{exp}: no single-cell PPO trials (result sets of kind ppo-trial)")
    rows: list[dict[str, Any]] = []
    for (preset, delta, penalty), trials in sorted(groups.items(), key=lambda kv: kv[0]):
        name = setting_name(preset, delta, penalty)
        for t in trials:
            pol = load_policy(t["checkpoint"])
            ep = evaluate_policy(pol, tuning_episodes, tuning_seed)
            t["tuning_return"] = float(np.mean([r["episode_return"] for r in ep]))
        best = max(trials, key=lambda t: t["tuning_return"])
        candidates = [
            {
                "seed": t["run"].get("train_seed"),
                "trial": t["run"].get("trial_name"),
                "tuning_return": round(t["tuning_return"], 3),
                "eval": {k: t["summary"].get(k) for k in _EVAL_KEYS},
            }
            for t in sorted(trials, key=lambda t: int(t["run"].get("train_seed") or 0))
        ]
        manifest = {
            "selection": (
                f"highest mean episode return over {tuning_episodes} tuning episodes (seeds "
                f"{tuning_seed}..{tuning_seed + tuning_episodes - 1}) among "
                f"{len(trials)} training seeds"
            ),
            "candidates": candidates,
            "evaluation": {
                "episodes": best["summary"].get("episodes"),
                "first_seed": best["summary"].get("seed"),
                **{k: best["summary"].get(k) for k in _EVAL_KEYS},
            },
            "sweep": str(exp),
        }
        export_checkpoint(best["checkpoint"], out / name, manifest=manifest)
        returns = ", ".join(f"{c['tuning_return']:.1f}" for c in candidates)
        say(f"{name}: shipped seed {best['run'].get('train_seed')} (tuning returns of the "
            f"seeds: {returns})")  # fmt: skip
        for c in candidates:
            rows.append({"setting": name, "preset": preset, "delta": delta, "penalty": penalty,
                         **c, "shipped": c["trial"] == best["run"].get("trial_name")})  # fmt: skip
    (out / "index.json").write_text(json.dumps(rows, indent=2, default=str) + "\n")
    return rows


_EVAL_KEYS = (
    "sync_delay", "sync_delay_std", "e2e_delay", "e2e_delay_std", "served_pct", "served_pct_std",
    "episode_return", "episode_return_std",
)  # fmt: skip


# --- the credit pool's controllers -----------------------------------------------------------
def export_pool_policy(
    checkpoint: str | Path, out_dir: str | Path, manifest: Mapping[str, Any] | None = None
) -> Path:
    """Ship a central or per-cell pool checkpoint to ``out_dir`` (see the module docstring)."""
    from ray.rllib.core.rl_module.rl_module import RLModule

    from tune_configs.policies.checkpoint import DEFAULT_MODULE, MODULE_DIR, read_sidecar

    ckpt = Path(checkpoint).expanduser().resolve()
    info = read_sidecar(ckpt)
    if info is None or info["controller"] not in POOL_CONTROLLERS:
        raise ValueError(f"{ckpt}: not a pool controller's checkpoint (no pool sidecar)")
    controller = str(info["controller"])
    if controller == "central":
        modules = {DEFAULT_MODULE: CENTRAL_ACTOR}
        policies = "central"
        shape = [int(info["n_cells"]), 3]
    else:
        modules = {m: m for m in info["modules"]}
        policies = str(info.get("policies", "shared"))
        shape = [3]
    actors = {
        name: actor_of_rl_module(RLModule.from_checkpoint(str(ckpt / MODULE_DIR / mid)))
        for mid, name in modules.items()
    }
    env_config = dict(info["env_config"])
    normalize = bool(info.get("normalize_actions", True))
    action = {
        "normalize": normalize,
        "mode": env_config.get("action_mode", "direct"),
        "shape": shape,
        **({"low": [0.0, 0.0, -1.0], "high": [1.0, 1.0, 1.0]} if normalize else {}),
    }
    body = {
        "source_checkpoint": str(ckpt),
        "exported_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        **dict(manifest or {}),
    }
    return write_shipped(
        out_dir, actors, controller=controller, env_config=env_config, interface=POOL_INTERFACE,
        action=action,
        manifest=body, extra={"n_cells": info.get("n_cells"), "policies": policies},
    )  # fmt: skip


MANIFEST_KEYS = ("command", "git_commit", "created", "seed", "hparams", "resources")


def manifest_of_training(train_dir: str | Path) -> dict[str, Any]:
    """The manifest of a ``launch train`` run: command, git commit, seed, env steps, wall time."""
    d = Path(train_dir).expanduser().resolve()
    try:
        run = json.loads((d / "train.json").read_text())
    except (OSError, ValueError) as exc:
        raise ValueError(f"{d / 'train.json'}: unreadable ({exc})") from None
    final = run.get("final_metrics") or {}
    out = {k: run.get(k) for k in MANIFEST_KEYS}
    out.update(
        env_steps=int(final.get("timesteps", 0)),
        timesteps_budget=run.get("timesteps"),
        train_wall_s=run.get("elapsed_s"),
        status=run.get("status"),
    )
    return out


def ship_training(
    train_dir: str | Path,
    out_dir: str | Path,
    extra: Mapping[str, Any] | None = None,
    checkpoint: str | Path | None = None,
) -> Path:
    """Ship ``TRAIN_DIR/checkpoint`` (or ``checkpoint`` of that run, e.g. an intermediate one)
    with the training run's manifest plus ``extra`` (e.g. how the policy was selected)."""
    manifest = manifest_of_training(train_dir)
    ckpt = Path(checkpoint) if checkpoint is not None else Path(train_dir) / "checkpoint"
    manifest.update(_progress_at(Path(train_dir), ckpt))
    manifest.update(dict(extra or {}))
    return export_pool_policy(ckpt, out_dir, manifest)


def _progress_at(train_dir: Path, checkpoint: Path) -> dict[str, Any]:
    """Env steps and training time of an intermediate ``checkpoint_NNNNN`` (from progress.csv)."""
    import csv

    name = checkpoint.name
    if not name.startswith("checkpoint_") or not name[len("checkpoint_") :].isdigit():
        return {}
    it = int(name[len("checkpoint_") :])
    try:
        with (train_dir / "progress.csv").open() as fh:
            rows = [r for r in csv.DictReader(fh) if int(float(r["training_iteration"])) == it]
    except (OSError, KeyError, ValueError):
        return {}
    if not rows:
        return {}
    return {
        "env_steps": int(float(rows[0]["timesteps"])),
        "train_wall_s": round(float(rows[0]["time_total_s"]), 1),
        "training_iteration": it,
        "note": "an intermediate checkpoint of the run: env steps and time up to it",
    }


def export_pool_checkpoint(
    checkpoint: str | Path, out_dir: str | Path, manifest: Mapping[str, Any] | None = None
) -> Path:
    """Ship a pool checkpoint: with the manifest of its ``launch train`` run if it belongs to
    one (``RUN/checkpoint`` or ``RUN/checkpoint_NNNNN``), else with ``manifest`` alone."""
    ckpt = Path(checkpoint).expanduser().resolve()
    if (ckpt.parent / "train.json").is_file():
        return ship_training(ckpt.parent, out_dir, manifest, checkpoint=ckpt)
    return export_pool_policy(ckpt, out_dir, manifest)
