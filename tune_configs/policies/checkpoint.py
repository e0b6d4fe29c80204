"""The one sidecar of a checkpoint: which controller saved it and what it needs to act.

Every checkpoint the platform saves (``launch train``, a PPO trial of any sweep) holds RLlib's
files plus :data:`SIDECAR`, a JSON object with

* ``controller``: the controller's name (``single``, ``per-cell``, ``central``, or a
  ``module:attr`` reference of a controller outside the package), so a checkpoint finds its
  loader, evaluator and exporter in the registry (:mod:`tune_configs.controllers`);
* ``env_config``: the resolved training env config (the policy's interface and the scenario it
  was trained on, :mod:`tune_configs.policies.interface`);
* the controller's own fields (module ids, number of cells, action normalisation, ...) and the
  run's extras (seed, hyper-parameters, env steps).

Checkpoints saved before there was one sidecar carry ``metalore_pool_policy.json`` (per-cell) or
``metalore_pool_central.json`` (central); :func:`read_sidecar` reads them as well and fills in the
controller. A checkpoint without any sidecar is refused (:func:`require_sidecar`): it was not saved
by the platform, and RLlib checkpoints are pickles. Nothing here imports Ray or torch.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

SIDECAR = "metalore_policy.json"
# Sidecars of earlier versions, by the controller that wrote them.
LEGACY_SIDECARS = {"metalore_pool_central.json": "central", "metalore_pool_policy.json": "per-cell"}
# Where RLlib keeps the RLModules of a checkpoint (one sub-directory per module id).
MODULE_DIR = Path("learner_group", "learner", "rl_module")
DEFAULT_MODULE = "default_policy"


class CheckpointError(ValueError):
    """A checkpoint path that is missing, incomplete or unreadable (a usage error for the CLI)."""


def write_sidecar(
    checkpoint_dir: str | Path, controller: str, env_config: Mapping[str, Any], **fields: Any
) -> Path:
    """Write :data:`SIDECAR` into a checkpoint directory; returns its path."""
    body = {"controller": controller, "env_config": dict(env_config), **fields}
    path = Path(checkpoint_dir) / SIDECAR
    path.write_text(json.dumps(body, indent=2, default=str) + "\n")
    return path


def read_sidecar(checkpoint_dir: str | Path) -> dict[str, Any] | None:
    """The sidecar of a checkpoint directory (this version's or an earlier one), or None."""
    d = Path(checkpoint_dir).expanduser()
    for name, controller in ((SIDECAR, "single"), *LEGACY_SIDECARS.items()):
        path = d / name
        if not path.is_file():
            continue
        try:
            info = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError) as exc:
            raise CheckpointError(f"{path}: unreadable ({exc})") from exc
        if not isinstance(info, dict) or "env_config" not in info:
            raise CheckpointError(f"{path}: no env_config")
        info.setdefault("controller", controller)
        return info
    return None


def require_sidecar(checkpoint_dir: str | Path) -> dict[str, Any]:
    """The sidecar of a checkpoint (:func:`read_sidecar`), or :class:`CheckpointError` for a
    checkpoint without one.

    A checkpoint without the sidecar was not saved by this platform. RLlib checkpoints hold
    pickles (``class_and_ctor_args.pkl``, the module state), and unpickling runs code, so the
    platform never reads one it did not write (no fallback to the pickled algorithm config):
    ``docs/trusted-inputs.md``. Policies from elsewhere come as shipped directories
    (``policy.safetensors`` + ``policy.json``), which load without pickle.
    """
    info = read_sidecar(checkpoint_dir)
    if info is None:
        raise CheckpointError(
            f"{checkpoint_dir}: no {SIDECAR}, so not a checkpoint saved by this platform; "
            "RLlib checkpoints are pickles and only the platform's own are loaded "
            "(docs/trusted-inputs.md). Ship a policy from elsewhere as policy.safetensors + "
            "policy.json (python -m launch export, run where it was trained)"
        )
    return info
