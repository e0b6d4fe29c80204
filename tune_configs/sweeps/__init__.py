"""Sweeps: one module per named Tune sweep, and the registry of their names.

What belongs here: the sweep modules (each exposes ``NAME``, ``DESCRIPTION``, ``SETTINGS``,
``BUDGETS``, its search space, stop condition and metrics as names, importable without running
anything), what they share (:mod:`.common`: budgets, Tuner construction, resume, summaries), the
typed ``--set`` settings (:mod:`.settings`), the compact progress printer (:mod:`.progress`) and
the Optuna sweeps' stored study (:mod:`.study`: database storage, study name, samplers;
:mod:`.searcher`: Tune's ``OptunaSearch`` on it, each Optuna trial linked to its Tune trial).
:data:`SWEEPS` is the one list of sweep names: ``launch sweep``, ``launch submit``, their help and
the docs all read it. A new sweep is a module here plus one entry in :data:`SWEEPS`.
"""

from __future__ import annotations

import importlib
from types import ModuleType

# CLI name -> module; the order is the order of the help texts.
SWEEPS: dict[str, str] = {
    "quickstart": "tune_configs.sweeps.quickstart",
    "paper-grid": "tune_configs.sweeps.paper_grid",
    "static-grid": "tune_configs.sweeps.static_grid",
    "optuna-reward": "tune_configs.sweeps.optuna_reward",
    "optuna-static": "tune_configs.sweeps.optuna_static",
    "pool": "tune_configs.sweeps.pool",  # multi-cell credit pool: learned controllers and rules
}


def sweep_module(name: str) -> ModuleType:
    """The module of sweep ``name`` (``KeyError`` for an unknown name)."""
    return importlib.import_module(SWEEPS[name])
