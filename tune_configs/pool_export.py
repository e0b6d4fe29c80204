"""Shipped pool policies: the credit pool's side of :mod:`tune_configs.export`.

A pool policy ships like any other (``policy.safetensors`` + ``policy.json``, numpy actors, no
pickle; :func:`tune_configs.export.write_shipped`), with controller ``central`` (one actor,
``central``) or ``per-cell`` (one actor per module: ``shared`` or ``cell_<i>``). What this module
adds is how such a policy acts in the pool: the actors' deterministic outputs go through the same
:class:`envs.pool_control.PoolControl` as in training (trader observation, residual action on
the greedy rule, ...), so the controllers below replay exactly what was trained. ``policy.json``
carries the resolved env config (with the control options and the residual's base splits), the
number of cells and the policy mode; its ``action`` entry has ``normalize`` (RLlib's
``normalize_actions``: only for the plain action box) and ``mode`` (the action map).

* :func:`export_pool_policy`: RLlib checkpoint (central or per-cell) -> shipped directory;
* :func:`ship_training`: the checkpoint of a ``launch train`` run, with its manifest (training
  command, seed, env steps, wall time, git commit) plus extra keys (e.g. the selection);
* :func:`load_exported_controller`: shipped directory -> :class:`envs.core.pool.rules.Controller`;
* :func:`load_any_pool_controller`: a shipped directory, a central or a per-cell checkpoint,
  whichever ``path`` holds (``launch pool-compare --checkpoint`` and ``launch eval`` use it).

From the command line: ``python -m launch export CHECKPOINT --out DIR`` (the manifest comes from
the ``launch train`` run the checkpoint belongs to, if any), then ``python -m launch pool-compare
--checkpoint DIR``.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from tune_configs.pool_replay import CentralPolicyController, PoolPolicyController
from tune_configs.shipped import (
    actor_of_rl_module,
    is_shipped,
    load_shipped,
    shipped_controller,
    write_shipped,
)

POOL_CONTROLLERS = ("central", "per-cell")
CENTRAL_ACTOR = "central"


def export_pool_policy(
    checkpoint: str | Path, out_dir: str | Path, manifest: Mapping[str, Any] | None = None
) -> Path:
    """Ship a central or per-cell pool checkpoint to ``out_dir`` (see the module docstring)."""
    from ray.rllib.core.rl_module.rl_module import RLModule

    from tune_configs.pool import MODULE_DIR, POOL_SIDECAR
    from tune_configs.pool_central import CENTRAL_SIDECAR

    ckpt = Path(checkpoint).expanduser().resolve()
    if (ckpt / CENTRAL_SIDECAR).is_file():
        info = json.loads((ckpt / CENTRAL_SIDECAR).read_text())
        modules = {"default_policy": CENTRAL_ACTOR}
        controller, policies = "central", "central"
        shape = [int(info["n_cells"]), 3]
    elif (ckpt / POOL_SIDECAR).is_file():
        info = json.loads((ckpt / POOL_SIDECAR).read_text())
        modules = {m: m for m in info["modules"]}
        controller, policies = "per-cell", str(info.get("policies", "shared"))
        shape = [3]
    else:
        raise ValueError(f"{ckpt}: neither {CENTRAL_SIDECAR} nor {POOL_SIDECAR} found")
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
        out_dir, actors, controller=controller, env_config=env_config, action=action,
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


# --- replay ---------------------------------------------------------------------------------------
def load_exported_controller(directory: str | Path) -> Any:
    """A shipped pool policy as a controller (central or per-cell), numpy only."""
    policy = load_shipped(directory)
    desc = policy.description
    if policy.controller not in POOL_CONTROLLERS:
        raise ValueError(f"{directory} holds a {policy.controller} policy, not a pool policy")
    info = {
        **{k: v for k, v in desc.items() if k != "actors"},
        "normalize_actions": bool(desc.get("action", {}).get("normalize", False)),
    }
    if policy.controller == "central":
        return CentralPolicyController(policy.path, policy.actors[CENTRAL_ACTOR], info)
    return PoolPolicyController(policy.path, dict(policy.actors), info)


def load_any_pool_controller(path: str | Path) -> Any:
    """Whatever pool policy ``path`` holds: a shipped directory, a central or a per-cell
    checkpoint (``ValueError`` if none)."""
    p = Path(path).expanduser().resolve()
    if not p.is_dir():
        raise ValueError(f"policy {str(path)!r} is not a directory")
    if is_shipped(p):  # numpy only: no Ray, no torch
        if shipped_controller(p) not in POOL_CONTROLLERS:
            raise ValueError(f"{p} holds a {shipped_controller(p)} policy, not a pool policy")
        return load_exported_controller(p)
    from tune_configs.pool import load_pool_controller
    from tune_configs.pool_central import CENTRAL_SIDECAR, load_central_controller

    if (p / CENTRAL_SIDECAR).is_file():
        return load_central_controller(p)
    return load_pool_controller(p)
