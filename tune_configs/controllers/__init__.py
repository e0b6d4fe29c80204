"""Learned controllers behind one interface: build, checkpoint and evaluate a PPO policy.

Every training path of the platform (``launch train``, the PPO Tune trials of every sweep) and
every evaluation path (``launch eval``, a trial's final evaluation) goes through a
:class:`Controller`, so a new learned controller is one entry of :data:`CONTROLLERS`:

* ``single``: one PPO policy for ``MetaLore-v0`` (one cell, or several cells with per-cell actions
  from one network); checkpoints carry :data:`tune_configs.policies.single.SIDECAR`; its evaluation
  rows carry the single-cell metrics of :data:`envs.core.metrics.SUMMARY_KEYS`;
* ``per-cell``: multi-agent PPO on the credit pool (:mod:`tune_configs.controllers.per_cell`), one
  agent per cell
  with a shared network (``policies="shared"``) or one each (``"separate"``); checkpoints carry
  :data:`tune_configs.controllers.per_cell.POOL_SIDECAR`; its evaluation (pool on) rows carry the
  CIVIC metrics of
  :mod:`envs.core.pool.civic` (overall, per cell and per phase, flat);
* ``central``: PPO on ``MetaLorePool-v0`` (:mod:`tune_configs.controllers.central`), one agent
  setting
  every cell's split and share; sidecar :data:`tune_configs.controllers.central.CENTRAL_SIDECAR`;
  evaluated like ``per-cell``.

:func:`default_controller` picks ``per-cell`` for a multi-cell preset when the pool is asked for
and ``single`` otherwise; :func:`controller_of_checkpoint` recognises a saved policy by its
sidecar. :func:`evaluate_checkpoint` evaluates any checkpoint deterministically on episode seeds
``seed .. seed+episodes-1`` (optionally on another scenario) and writes a result set
(:mod:`analysis.resultset`).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from analysis.resultset import aggregate_rows, run_metadata, write_result_set

SINGLE, PER_CELL, CENTRAL = "single", "per-cell", "central"


@dataclass(frozen=True)
class Controller:
    """How one kind of learned controller is configured, saved and evaluated."""

    name: str
    resolve_env_config: Callable[[Mapping[str, Any]], dict[str, Any]]
    build_config: Callable[..., Any]  # (env_config, hparams, resources, seed, **options)
    env_params: Callable[[Mapping[str, Any]], Any]  # the EnvParams of an env config
    write_sidecar: Callable[..., Path]  # (checkpoint_dir, env_config, **options_and_extra)
    sidecar: str
    eval_keys: tuple[str, ...]  # reported as eval/<key> by a trial
    run_kind_prefix: str  # result-set kinds of this controller: "<prefix>eval", "<prefix>ppo-trial"
    options: tuple[str, ...] = ()  # trial/CLI options passed to build_config and write_sidecar
    hparams: Mapping[str, Any] = field(default_factory=dict)  # its defaults over DEFAULT_HPARAMS

    def resolve_hparams(self, overrides: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """PPO hyper-parameters: the global defaults, this controller's, then ``overrides``."""
        from tune_configs.ppo import resolve_hparams

        return resolve_hparams({**self.hparams, **dict(overrides or {})})

    def run_kind(self, what: str) -> str:
        return f"{self.run_kind_prefix}{what}"


def _single() -> Controller:
    from envs.core.metrics import HEADLINE_KEYS
    from tune_configs.env import params_from_env_config
    from tune_configs.policies.single import SIDECAR, write_sidecar
    from tune_configs.ppo import build_ppo_config, resolve_env_config

    return Controller(
        name=SINGLE,
        resolve_env_config=resolve_env_config,
        build_config=build_ppo_config,
        env_params=params_from_env_config,
        write_sidecar=write_sidecar,
        sidecar=SIDECAR,
        eval_keys=HEADLINE_KEYS,
        run_kind_prefix="",
    )


def _per_cell() -> Controller:
    from envs.core.pool.civic import EVAL_KEYS
    from tune_configs.controllers.per_cell import (
        POOL_SIDECAR,
        build_pool_ppo_config,
        pool_env_params,
        resolve_pool_env_config,
        write_pool_sidecar,
    )

    return Controller(
        name=PER_CELL,
        resolve_env_config=resolve_pool_env_config,
        build_config=build_pool_ppo_config,
        env_params=pool_env_params,
        write_sidecar=write_pool_sidecar,
        sidecar=POOL_SIDECAR,
        eval_keys=EVAL_KEYS,
        run_kind_prefix="pool-",
        options=("policies",),
    )


def _central() -> Controller:
    from envs.core.pool.civic import EVAL_KEYS
    from tune_configs.controllers.central import (
        CENTRAL_HPARAMS,
        CENTRAL_SIDECAR,
        build_central_ppo_config,
        central_env_params,
        resolve_central_env_config,
        write_central_sidecar,
    )

    return Controller(
        name=CENTRAL,
        resolve_env_config=resolve_central_env_config,
        build_config=build_central_ppo_config,
        env_params=central_env_params,
        write_sidecar=write_central_sidecar,
        sidecar=CENTRAL_SIDECAR,
        eval_keys=EVAL_KEYS,
        run_kind_prefix="pool-",
        hparams=CENTRAL_HPARAMS,
    )


CONTROLLERS: dict[str, Callable[[], Controller]] = {
    SINGLE: _single,
    PER_CELL: _per_cell,
    CENTRAL: _central,
}
POOL_CONTROLLERS = (PER_CELL, CENTRAL)


def get_controller(name: str) -> Controller:
    """The controller called ``name`` (``ValueError`` naming the choices otherwise)."""
    if name not in CONTROLLERS:
        raise ValueError(f"unknown controller {name!r}; choose one of {', '.join(CONTROLLERS)}")
    return CONTROLLERS[name]()


def default_controller(preset: str, pool: bool = False) -> str:
    """``per-cell`` when the pool is asked for on a multi-cell preset, else ``single``."""
    from envs.core.presets import make_params

    if pool and make_params(preset).scenario.n_cells > 1:
        return PER_CELL
    return SINGLE


def controller_of_checkpoint(checkpoint: str | Path) -> Controller:
    """The controller whose sidecar a checkpoint directory holds (single-cell by default), or
    the one a shipped policy directory's ``policy.json`` names
    (:mod:`tune_configs.policies.shipped`)."""
    from tune_configs.policies.shipped import shipped_controller

    ckpt = Path(checkpoint).expanduser()
    shipped = shipped_controller(ckpt)
    if shipped is not None:
        return get_controller(shipped)
    for name in POOL_CONTROLLERS:
        pool = get_controller(name)
        if (ckpt / pool.sidecar).is_file():
            return pool
    return get_controller(SINGLE)


def save_checkpoint(
    controller: Controller,
    algo: Any,
    directory: str | Path,
    env_config: Mapping[str, Any],
    **extra: Any,
) -> Path:
    """``algo.save`` to an absolute ``directory`` plus the controller's sidecar; returns it."""
    path = Path(directory).expanduser().resolve()
    path.mkdir(parents=True, exist_ok=True)
    algo.save(str(path))
    controller.write_sidecar(path, env_config, **extra)
    return path


# --- evaluation ---------------------------------------------------------------------------------
def _single_rows(
    checkpoint: Path, episodes: int, seed: int, overrides: Mapping[str, Any]
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    from tune_configs.policies.single import evaluate_policy, load_policy

    policy = load_policy(checkpoint, **overrides)
    rows = evaluate_policy(policy, episodes, seed)
    meta = {"preset": policy.preset, "env_config": policy.env_config, "params": policy.params}
    if policy.evaluation is not None:
        meta["evaluated_on"] = policy.evaluation.to_dict()
    return rows, meta


def _pool_rows(
    checkpoint: Path, episodes: int, seed: int, overrides: Mapping[str, Any]
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    from envs.core.pool.civic import flat_row
    from envs.core.pool.rules import evaluate_controller
    from envs.pool.env import MetaLorePoolEnv
    from envs.pool.multiagent import MultiCellPoolEnv
    from tune_configs.controllers.per_cell import pool_env_kwargs
    from tune_configs.policies.interface import (
        POOL_INTERFACE,
        evaluation_env_config,
        split_env_config,
    )

    policy = load_any_pool_controller(checkpoint)
    interface, scenario = split_env_config(policy.info.get("env_config", {}), POOL_INTERFACE)
    evaluation = evaluation_env_config(interface, scenario, overrides)
    env_config = pool_env_kwargs(evaluation.env_config)
    if policy.info.get("controller") == CENTRAL:
        ps = MetaLorePoolEnv(**{k: v for k, v in env_config.items() if k != "scope"}).ps
    else:
        ps = MultiCellPoolEnv(**env_config).ps
    metrics = evaluate_controller(ps.params, ps.pool.params, policy, episodes, seed)
    reward = ps.params.reward
    rows = [
        {
            "policy": policy.label,
            "kind": "ppo",
            "w_b": None,
            "w_c": None,
            "delta": reward.delta,
            "penalty": reward.penalty,
            "preset": env_config["preset"],
            "seed": m["seed"],
            **flat_row(m),
        }
        for m in metrics
    ]
    meta = {
        "preset": env_config["preset"],
        "env_config": env_config,
        "params": ps.params,
        "pool": ps.pool.params.to_dict(),
        "n_cells": ps.n_cells,
        "evaluated_on": evaluation.to_dict(),
    }
    return rows, meta


def evaluate_checkpoint(
    checkpoint: str | Path,
    episodes: int,
    seed: int,
    out_dir: str | Path | None = None,
    extra: Mapping[str, Any] | None = None,
    what: str = "eval",
    **env_overrides: Any,
) -> dict[str, Any]:
    """Evaluate any saved policy; optionally write a result set. Returns its summary dict.

    ``env_overrides`` change the evaluation scenario (``preset`` and any parameter by flat name);
    the observation transform stays the training one. The result set's kind is
    ``<controller prefix><what>`` (``eval``, ``ppo-trial``, ``pool-eval``, ``pool-ppo-trial``).
    """
    from envs.core.metrics import CLI_KEYS

    controller = controller_of_checkpoint(checkpoint)
    rows_of = _pool_rows if controller.name in POOL_CONTROLLERS else _single_rows
    t0 = time.perf_counter()
    rows, info = rows_of(Path(checkpoint).expanduser().resolve(), episodes, seed, env_overrides)
    elapsed = time.perf_counter() - t0
    if out_dir is not None:
        info = dict(info)
        params = info.pop("params")
        meta = run_metadata(
            controller.run_kind(what), params, preset=info.pop("preset"), seed=seed,
            episodes=episodes, checkpoint=str(Path(checkpoint).expanduser().resolve()),
            controller=controller.name, elapsed_s=round(elapsed, 3), **info, **dict(extra or {}),
        )  # fmt: skip
        summaries = write_result_set(out_dir, meta, rows)
    else:
        summaries = aggregate_rows(rows)
    summary = dict(summaries[0])
    if controller.name == SINGLE:  # the key order of ``launch static --json``
        summary["w_b"], summary["w_c"] = summary.get("mean_w_b"), summary.get("mean_w_c")
        summary = {**{k: summary.get(k) for k in CLI_KEYS}, **summary}
    summary["controller"] = controller.name
    if "evaluated_on" in info:
        summary["evaluated_on"] = info["evaluated_on"]
    return summary


def load_any_pool_controller(path: str | Path) -> Any:
    """Whatever pool policy ``path`` holds: a shipped directory, a central or a per-cell
    checkpoint (``ValueError`` if none)."""
    from tune_configs.policies.pool import POOL_CONTROLLERS, load_exported_controller
    from tune_configs.policies.shipped import is_shipped, shipped_controller

    p = Path(path).expanduser().resolve()
    if not p.is_dir():
        raise ValueError(f"policy {str(path)!r} is not a directory")
    if is_shipped(p):  # numpy only: no Ray, no torch
        if shipped_controller(p) not in POOL_CONTROLLERS:
            raise ValueError(f"{p} holds a {shipped_controller(p)} policy, not a pool policy")
        return load_exported_controller(p)
    from tune_configs.controllers.central import CENTRAL_SIDECAR, load_central_controller
    from tune_configs.controllers.per_cell import load_pool_controller

    if (p / CENTRAL_SIDECAR).is_file():
        return load_central_controller(p)
    return load_pool_controller(p)
