"""Learned controllers, one registry entry each: configure, train, save, load, evaluate, export.

Every training path of the platform (``launch train``, the PPO Tune trials of every sweep), every
evaluation path (``launch eval``, a trial's final evaluation, the studies) and every export
(``launch export``) goes through a :class:`Controller`, so a new learned controller is one entry:

* ``single``: one PPO policy for ``MetaLore-v0`` (one cell, or several cells with per-cell actions
  from one network; :func:`tune_configs.ppo.build_ppo_config`); its evaluation rows carry the
  single-cell metrics of :data:`envs.core.metrics.SUMMARY_KEYS`;
* ``per-cell``: multi-agent PPO on the credit pool (:mod:`tune_configs.controllers.per_cell`), one
  agent per cell with a shared network (``policies="shared"``) or one each (``"separate"``); its
  evaluation (pool on) rows carry the CIVIC metrics of :mod:`envs.core.pool.civic`;
* ``central``: PPO on ``MetaLorePool-v0`` (:mod:`tune_configs.controllers.central`), one agent
  setting every cell's split and share; evaluated like ``per-cell``;
* ``city``: ``per-cell`` with the city recipe as its defaults (:data:`tune_configs.controllers.
  per_cell.CITY_RECIPE`): one network shared by every cell, without a cell identity, so one
  policy runs on every cell count (trained on ``city_19``, it beats the greedy rule on 3, 7, 19
  and 49 cells; ``docs/studies/city-controller.md``).

A controller outside the package is named by a ``module:attr`` reference (``launch train
--controller mypkg.ctrl:CONTROLLER``, ``--set controller=...`` of a sweep); ``attr`` is a
:class:`Controller` or a function returning one, and its ``name`` is that reference, so the
checkpoint's sidecar (:mod:`tune_configs.policies.checkpoint`) leads CLI subprocesses and Ray
workers back to it. The simplest extension is :func:`dataclasses.replace` of a built-in entry
(other defaults, another network); see ``docs/controllers.md``.

:func:`default_controller` picks the best measured one for a preset (``single`` on one cell);
:func:`controller_of_checkpoint` recognises a saved or shipped policy;
:func:`evaluate_checkpoint` evaluates any of them deterministically on episode seeds
``seed .. seed+episodes-1`` (optionally on another scenario) and writes a result set
(:mod:`analysis.resultset`).
"""

from __future__ import annotations

import importlib
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from analysis.resultset import aggregate_rows, run_metadata, write_result_set

SINGLE, PER_CELL, CENTRAL, CITY = "single", "per-cell", "central", "city"
Rows = tuple[list[dict[str, Any]], dict[str, Any]]  # episode rows, run metadata


@dataclass(frozen=True)
class Controller:
    """How one kind of learned controller is configured, saved, loaded, evaluated and shipped."""

    name: str
    resolve_env_config: Callable[[Mapping[str, Any]], dict[str, Any]]
    build_config: Callable[..., Any]  # (env_config, hparams, resources, seed, **options)
    env_params: Callable[[Mapping[str, Any]], Any]  # the EnvParams of an env config
    sidecar_fields: Callable[..., dict[str, Any]]  # (env_config, **options): sidecar entries
    load: Callable[[Path], Any]  # a checkpoint or shipped directory -> an acting policy
    evaluate_rows: Callable[[Path, int, int, Mapping[str, Any]], Rows]
    export: Callable[[Path, Path, Mapping[str, Any]], Path]  # (checkpoint, out, manifest)
    eval_keys: tuple[str, ...]  # reported as eval/<key> by a trial
    run_kind_prefix: str  # result-set kinds of this controller: "<prefix>eval", "<prefix>ppo-trial"
    options: tuple[str, ...] = ()  # trial/CLI options passed to build_config and sidecar_fields
    hparams: Mapping[str, Any] = field(default_factory=dict)  # its defaults over DEFAULT_HPARAMS

    def resolve_hparams(self, overrides: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """PPO hyper-parameters: the global defaults, this controller's, then ``overrides``."""
        from tune_configs.ppo import resolve_hparams

        return resolve_hparams({**self.hparams, **dict(overrides or {})})

    def run_kind(self, what: str) -> str:
        return f"{self.run_kind_prefix}{what}"

    def save(
        self, algo: Any, directory: str | Path, env_config: Mapping[str, Any], **extra: Any
    ) -> Path:
        """``algo.save`` to an absolute ``directory`` plus the sidecar; returns the directory.
        ``extra`` holds this controller's options and anything else the sidecar should keep."""
        from tune_configs.policies.checkpoint import write_sidecar

        path = Path(directory).expanduser().resolve()
        path.mkdir(parents=True, exist_ok=True)
        algo.save(str(path))
        options = {k: extra.pop(k) for k in self.options if k in extra}
        fields = self.sidecar_fields(env_config, **options)
        write_sidecar(path, self.name, env_config, **{**options, **fields, **extra})
        return path


# --- the built-in controllers ------------------------------------------------------------------
def _single() -> Controller:
    from envs.core.metrics import HEADLINE_KEYS
    from tune_configs.env import params_from_env_config
    from tune_configs.export import export_checkpoint
    from tune_configs.policies.single import load_policy, single_sidecar_fields
    from tune_configs.ppo import build_ppo_config, resolve_env_config

    return Controller(
        name=SINGLE,
        resolve_env_config=resolve_env_config,
        build_config=build_ppo_config,
        env_params=params_from_env_config,
        sidecar_fields=single_sidecar_fields,
        load=load_policy,
        evaluate_rows=_single_rows,
        export=export_checkpoint,
        eval_keys=HEADLINE_KEYS,
        run_kind_prefix="",
    )


def _lazy(reference: str) -> Callable[..., Any]:
    """``module:attr``, imported at the first call (the per-cell builders import Ray at module
    level; evaluating a shipped policy must not)."""

    def call(*args: Any, **kwargs: Any) -> Any:
        module, _, attr = reference.partition(":")
        return getattr(importlib.import_module(module), attr)(*args, **kwargs)

    return call


def _per_cell() -> Controller:
    per_cell = "tune_configs.controllers.per_cell:"
    return _pool_controller(
        PER_CELL, _lazy(per_cell + "resolve_pool_env_config"),
        _lazy(per_cell + "build_pool_ppo_config"), _lazy(per_cell + "pool_env_params"),
        _lazy(per_cell + "pool_sidecar_fields"), options=("policies",),
    )  # fmt: skip


def _central() -> Controller:
    from tune_configs.controllers.central import (
        CENTRAL_HPARAMS,
        build_central_ppo_config,
        central_env_params,
        central_sidecar_fields,
        resolve_central_env_config,
    )

    return _pool_controller(
        CENTRAL, resolve_central_env_config, build_central_ppo_config, central_env_params,
        central_sidecar_fields, hparams=CENTRAL_HPARAMS,
    )  # fmt: skip


def _pool_controller(
    name: str,
    resolve_env_config: Callable[[Mapping[str, Any]], dict[str, Any]],
    build_config: Callable[..., Any],
    env_params: Callable[[Mapping[str, Any]], Any],
    sidecar_fields: Callable[..., dict[str, Any]],
    **rest: Any,
) -> Controller:
    """A controller on the credit pool: loaded, evaluated (CIVIC metrics) and exported alike."""
    from envs.core.pool.civic import EVAL_KEYS
    from tune_configs.export import export_pool_checkpoint

    return Controller(
        name=name,
        resolve_env_config=resolve_env_config,
        build_config=build_config,
        env_params=env_params,
        sidecar_fields=sidecar_fields,
        load=load_any_pool_controller,
        evaluate_rows=_pool_rows,
        export=export_pool_checkpoint,
        eval_keys=EVAL_KEYS,
        run_kind_prefix="pool-",
        **rest,
    )


def _city() -> Controller:
    from dataclasses import replace

    from tune_configs.controllers.per_cell import CITY_HPARAMS

    return replace(
        _per_cell(), name=CITY,
        resolve_env_config=_lazy("tune_configs.controllers.per_cell:resolve_city_env_config"),
        hparams=CITY_HPARAMS,
    )  # fmt: skip


CONTROLLERS: dict[str, Callable[[], Controller]] = {
    SINGLE: _single,
    PER_CELL: _per_cell,
    CENTRAL: _central,
    CITY: _city,
}
POOL_CONTROLLERS = (PER_CELL, CENTRAL, CITY)


def get_controller(name: str) -> Controller:
    """The controller called ``name``: a built-in one or a ``module:attr`` reference
    (``ValueError`` naming the choices otherwise)."""
    if name in CONTROLLERS:
        return CONTROLLERS[name]()
    if ":" not in name:
        raise ValueError(
            f"unknown controller {name!r}; choose one of {', '.join(CONTROLLERS)} or name one "
            "outside the package as module:attr"
        )
    module_name, _, attr = name.partition(":")
    try:
        entry = getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError) as exc:
        raise ValueError(f"controller {name!r}: cannot import it ({exc})") from None
    try:
        controller = entry() if callable(entry) and not isinstance(entry, Controller) else entry
    except Exception as exc:  # a factory that fails, or something that is not a factory
        raise ValueError(
            f"controller {name!r}: calling it failed ({type(exc).__name__}: {exc})"
        ) from None
    if not isinstance(controller, Controller):
        raise ValueError(f"controller {name!r} is a {type(controller).__name__}, not a Controller")
    if controller.name != name:
        raise ValueError(f"controller {name!r} calls itself {controller.name!r}: use its reference")
    return controller


# The pool presets whose best measured learned controller is the central one (the shipped
# models/pool/three_cell_hetero and surge, docs/studies/pool-learning.md); the city controller on
# every other pool preset (docs/studies/city-controller.md).
CENTRAL_PRESETS = ("three_cell_hetero", "surge")


def default_controller(preset: str) -> str:
    """The best measured controller of a preset: ``central`` on :data:`CENTRAL_PRESETS`, ``city``
    on the other credit-pool presets (:data:`envs.core.pool.scenarios.SCENARIOS`), else
    ``single``."""
    from envs.core.pool.scenarios import SCENARIOS

    if preset in CENTRAL_PRESETS:
        return CENTRAL
    return CITY if preset in SCENARIOS else SINGLE


def controller_of_checkpoint(checkpoint: str | Path) -> Controller:
    """The controller a checkpoint's sidecar or a shipped policy's ``policy.json`` names
    (``single`` for a checkpoint without a sidecar)."""
    from tune_configs.policies.checkpoint import read_sidecar
    from tune_configs.policies.shipped import shipped_controller

    ckpt = Path(checkpoint).expanduser()
    name = shipped_controller(ckpt)
    if name is None:
        info = read_sidecar(ckpt) if ckpt.is_dir() else None
        name = str(info["controller"]) if info is not None else SINGLE
    return get_controller(name)


# --- loading and evaluation rows of the built-in controllers ----------------------------------
def load_any_pool_controller(path: str | Path) -> Any:
    """Whatever pool policy ``path`` holds: a shipped directory, a central or a per-cell
    checkpoint (``ValueError`` if none)."""
    from tune_configs.policies.checkpoint import read_sidecar
    from tune_configs.policies.pool import POOL_CONTROLLERS, load_exported_controller
    from tune_configs.policies.shipped import is_shipped, shipped_controller

    p = Path(path).expanduser().resolve()
    if not p.is_dir():
        raise ValueError(f"policy {str(path)!r} is not a directory")
    if is_shipped(p):  # numpy only: no Ray, no torch
        if shipped_controller(p) not in POOL_CONTROLLERS:
            raise ValueError(f"{p}: controller {shipped_controller(p)!r} is not a pool controller")
        return load_exported_controller(p)
    from tune_configs.controllers.central import load_central_controller
    from tune_configs.controllers.per_cell import load_pool_controller

    info = read_sidecar(p)
    if info is not None and info["controller"] == CENTRAL:
        return load_central_controller(p)
    return load_pool_controller(p)


def _single_rows(checkpoint: Path, episodes: int, seed: int, overrides: Mapping[str, Any]) -> Rows:
    from tune_configs.policies.single import evaluate_policy, load_policy

    policy = load_policy(checkpoint, **overrides)
    rows = evaluate_policy(policy, episodes, seed)
    meta = {"preset": policy.preset, "env_config": policy.env_config, "params": policy.params}
    if policy.evaluation is not None:
        meta["evaluated_on"] = policy.evaluation.to_dict()
    return rows, meta


def pool_policy_to_evaluate(
    path: str | Path, overrides: Mapping[str, Any]
) -> tuple[Any, Any, Any, dict[str, Any]]:
    """``(controller, PoolSimulator, evaluation, env config)`` of the pool policy at ``path``:
    the simulator built from the policy's evaluation env config (its interface, its training
    scenario unless ``overrides`` change it), as ``launch eval`` and ``launch replay`` run it."""
    from envs.pool.env import MetaLorePoolEnv
    from envs.pool.multiagent import MultiCellPoolEnv
    from tune_configs.policies.interface import (
        POOL_INTERFACE,
        evaluation_env_config,
        split_env_config,
    )
    from tune_configs.policies.pool import pool_env_kwargs

    policy = load_any_pool_controller(path)
    interface, scenario = split_env_config(policy.info.get("env_config", {}), POOL_INTERFACE)
    evaluation = evaluation_env_config(interface, scenario, overrides)
    env_config = pool_env_kwargs(evaluation.env_config)
    if policy.info.get("controller") == CENTRAL:
        ps = MetaLorePoolEnv(**{k: v for k, v in env_config.items() if k != "scope"}).ps
    else:
        ps = MultiCellPoolEnv(**env_config).ps
    return policy, ps, evaluation, env_config


def _pool_rows(checkpoint: Path, episodes: int, seed: int, overrides: Mapping[str, Any]) -> Rows:
    from envs.core.pool.civic import flat_row
    from envs.core.pool.rules import evaluate_controller

    policy, ps, evaluation, env_config = pool_policy_to_evaluate(checkpoint, overrides)
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

    ``env_overrides`` change the evaluation scenario (``preset`` and any parameter by flat name;
    :mod:`tune_configs.policies.interface`); the policy's interface stays the training one. The
    result set's kind is ``<controller prefix><what>`` (``eval``, ``ppo-trial``, ``pool-eval``,
    ``pool-ppo-trial``).
    """
    from envs.core.metrics import CLI_KEYS

    controller = controller_of_checkpoint(checkpoint)
    path = Path(checkpoint).expanduser().resolve()
    t0 = time.perf_counter()
    rows, info = controller.evaluate_rows(path, episodes, seed, env_overrides)
    elapsed = time.perf_counter() - t0
    if out_dir is not None:
        meta_info = dict(info)
        params = meta_info.pop("params")
        meta = run_metadata(
            controller.run_kind(what), params, preset=meta_info.pop("preset"), seed=seed,
            episodes=episodes, checkpoint=str(path), controller=controller.name,
            elapsed_s=round(elapsed, 3), **meta_info, **dict(extra or {}),
        )  # fmt: skip
        summaries = write_result_set(out_dir, meta, rows)
    else:
        summaries = aggregate_rows(rows)
    summary = dict(summaries[0])
    if controller.run_kind_prefix == "":  # single-cell rows: the key order of ``launch static``
        summary["w_b"], summary["w_c"] = summary.get("mean_w_b"), summary.get("mean_w_c")
        summary = {**{k: summary.get(k) for k in CLI_KEYS}, **summary}
    summary["controller"] = controller.name
    if "evaluated_on" in info:
        summary["evaluated_on"] = info["evaluated_on"]
    return summary
