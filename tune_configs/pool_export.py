"""Small, unpickled pool policies: export a trained actor to weights + JSON, replay it in numpy.

A shipped pool policy is a directory with

* ``policy.json``: what the policy controls and how (:data:`POLICY_FORMAT`, controller ``central``
  or ``per-cell``, the resolved env config with its control options, observation and action
  sizes, whether actions are normalised, the networks' layer names and activation) and a
  ``manifest`` (training command, seed, env steps, wall time, git commit, selection);
* ``weights.safetensors``: the actor networks' float32 weights in the safetensors layout (an
  8-byte little-endian header length, a JSON header, the raw little-endian data), written and read
  here with numpy alone.

Only the actor is kept (encoder layers and the mean half of the policy head): the deterministic
action of a Gaussian PPO policy is its mean, so the numpy forward pass (:class:`NumpyActor`)
reproduces the RLModule's ``forward_inference`` exactly up to float rounding. Loading never
unpickles anything.

* :func:`export_pool_policy`: RLlib checkpoint (central or per-cell) -> directory;
* :func:`load_exported_controller`: directory -> :class:`envs.core.pool.rules.Controller`;
* :func:`load_any_pool_controller`: an exported directory, a central or a per-cell checkpoint,
  whichever ``path`` holds (what ``launch pool-compare --checkpoint`` and ``launch eval`` use).

Run ``python -m tune_configs.pool_export TRAIN_DIR OUT_DIR [--extra selection.json]`` to export
the checkpoint of a ``launch train`` run with its manifest (:func:`ship_training`), or
``python -m tune_configs.pool_export CHECKPOINT OUT_DIR`` for a bare checkpoint.
"""

from __future__ import annotations

import json
import struct
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

POLICY_FILE = "policy.json"
WEIGHTS_FILE = "weights.safetensors"
POLICY_FORMAT = "metalore-pool-policy/1"
ACTIVATIONS: dict[str, Callable[[NDArray[np.float64]], NDArray[np.float64]]] = {
    "tanh": np.tanh,
    "relu": lambda x: np.maximum(x, 0.0),
    "linear": lambda x: x,
}


# --- safetensors, numpy only --------------------------------------------------------------------
def write_safetensors(path: Path, tensors: Mapping[str, NDArray[Any]]) -> None:
    """Write float32 tensors in the safetensors layout."""
    header: dict[str, Any] = {}
    chunks: list[bytes] = []
    offset = 0
    for name, arr in tensors.items():
        data = np.ascontiguousarray(arr, dtype="<f4").tobytes()
        header[name] = {"dtype": "F32", "shape": list(arr.shape),
                        "data_offsets": [offset, offset + len(data)]}  # fmt: skip
        chunks.append(data)
        offset += len(data)
    raw = json.dumps(header, separators=(",", ":")).encode()
    raw += b" " * (-len(raw) % 8)
    with path.open("wb") as fh:
        fh.write(struct.pack("<Q", len(raw)))
        fh.write(raw)
        for c in chunks:
            fh.write(c)


def read_safetensors(path: Path) -> dict[str, NDArray[np.float32]]:
    """Read the float32 tensors of a safetensors file (``ValueError`` if malformed)."""
    blob = path.read_bytes()
    if len(blob) < 8:
        raise ValueError(f"{path}: not a safetensors file")
    (n,) = struct.unpack("<Q", blob[:8])
    try:
        header = json.loads(blob[8 : 8 + n])
    except (ValueError, UnicodeDecodeError) as exc:
        raise ValueError(f"{path}: unreadable safetensors header ({exc})") from None
    data = blob[8 + n :]
    out: dict[str, NDArray[np.float32]] = {}
    for name, spec in header.items():
        if name == "__metadata__":
            continue
        if spec.get("dtype") != "F32":
            raise ValueError(f"{path}: tensor {name} has dtype {spec.get('dtype')}, expected F32")
        lo, hi = spec["data_offsets"]
        shape = tuple(int(s) for s in spec["shape"])
        arr = np.frombuffer(data[lo:hi], dtype="<f4")
        if arr.size != int(np.prod(shape)):
            raise ValueError(f"{path}: tensor {name} has {arr.size} values for shape {shape}")
        out[name] = arr.reshape(shape).astype(np.float32)
    return out


# --- the actor ----------------------------------------------------------------------------------
class NumpyActor:
    """A feed-forward actor: hidden layers with ``activation``, a linear output (the mean)."""

    def __init__(self, layers: list[tuple[NDArray[Any], NDArray[Any]]], activation: str) -> None:
        if activation not in ACTIVATIONS:
            raise ValueError(f"unknown activation {activation!r}; known: {sorted(ACTIVATIONS)}")
        if not layers:
            raise ValueError("an actor needs at least one layer")
        self.layers = [(np.asarray(w, np.float64), np.asarray(b, np.float64)) for w, b in layers]
        self.activation = ACTIVATIONS[activation]

    def __call__(self, obs: NDArray[Any]) -> NDArray[np.float64]:
        x = np.asarray(obs, dtype=np.float64)
        last = len(self.layers) - 1
        for i, (w, b) in enumerate(self.layers):
            x = x @ w.T + b
            if i < last:
                x = self.activation(x)
        return x


def actor_tensors(state: Mapping[str, Any], act_dim: int, prefix: str) -> dict[str, NDArray[Any]]:
    """The actor's tensors of an RLlib default PPO module's ``state_dict``, renamed
    ``<prefix>.<i>.weight`` / ``.bias`` in forward order (the policy head cut to the mean)."""
    enc = sorted(
        {int(k.split(".")[4]) for k in state if k.startswith("encoder.actor_encoder.net.mlp.")}
    )
    head = sorted({int(k.split(".")[3]) for k in state if k.startswith("pi.net.mlp.")})
    if not head:
        raise ValueError("no policy head (pi.net.mlp.*) in the module's state")
    names = [f"encoder.actor_encoder.net.mlp.{i}" for i in enc] + [f"pi.net.mlp.{i}" for i in head]
    out: dict[str, NDArray[Any]] = {}
    for j, name in enumerate(names):
        w = np.asarray(state[f"{name}.weight"].detach().cpu().numpy(), np.float32)
        b = np.asarray(state[f"{name}.bias"].detach().cpu().numpy(), np.float32)
        if j == len(names) - 1:  # (mean, log_std) -> mean
            w, b = w[:act_dim], b[:act_dim]
        out[f"{prefix}.{j}.weight"] = w
        out[f"{prefix}.{j}.bias"] = b
    return out


def actors_from(info: Mapping[str, Any], tensors: Mapping[str, NDArray[Any]]) -> dict[str, Any]:
    """``{module: NumpyActor}`` from ``policy.json``'s ``modules`` and the weights."""
    out: dict[str, Any] = {}
    for mid, spec in dict(info["modules"]).items():
        layers = []
        for j in range(int(spec["layers"])):
            try:
                layers.append((tensors[f"{mid}.{j}.weight"], tensors[f"{mid}.{j}.bias"]))
            except KeyError as exc:
                raise ValueError(f"weights lack tensor {exc} of module {mid}") from None
        out[mid] = NumpyActor(layers, str(spec["activation"]))
    return out


# --- export ---------------------------------------------------------------------------------------
def export_pool_policy(
    checkpoint: str | Path, out_dir: str | Path, manifest: Mapping[str, Any] | None = None
) -> Path:
    """Export a central or per-cell pool checkpoint to ``out_dir`` (see the module docstring)."""
    from ray.rllib.core.rl_module.rl_module import RLModule

    from tune_configs.pool import MODULE_DIR, POOL_SIDECAR
    from tune_configs.pool_central import CENTRAL_SIDECAR

    ckpt = Path(checkpoint).expanduser().resolve()
    out = Path(out_dir).expanduser().resolve()
    if (ckpt / CENTRAL_SIDECAR).is_file():
        info = json.loads((ckpt / CENTRAL_SIDECAR).read_text())
        mids = {"default_policy": "central"}
        act_dim = int(info["act_dim"])
        controller = "central"
    elif (ckpt / POOL_SIDECAR).is_file():
        info = json.loads((ckpt / POOL_SIDECAR).read_text())
        mids = {m: m for m in info["modules"]}
        act_dim = 3
        controller = "per-cell"
    else:
        raise ValueError(f"{ckpt}: neither {CENTRAL_SIDECAR} nor {POOL_SIDECAR} found")
    activation = str((info.get("hparams") or {}).get("fcnet_activation", "tanh"))
    tensors: dict[str, NDArray[Any]] = {}
    modules: dict[str, Any] = {}
    for mid, name in mids.items():
        module: Any = RLModule.from_checkpoint(str(ckpt / MODULE_DIR / mid))
        t = actor_tensors(module.state_dict(), act_dim, name)
        tensors.update(t)
        modules[name] = {"layers": len(t) // 2, "activation": activation}
    out.mkdir(parents=True, exist_ok=True)
    write_safetensors(out / WEIGHTS_FILE, tensors)
    body = {
        "format": POLICY_FORMAT,
        "controller": controller,
        "env_config": info["env_config"],
        "n_cells": info.get("n_cells"),
        "policies": info.get("policies", "central" if controller == "central" else "shared"),
        "normalize_actions": bool(info.get("normalize_actions", True)),
        "act_dim": act_dim,
        "obs_dim": info.get("obs_dim"),
        "modules": modules,
        "manifest": dict(manifest or {}),
    }
    (out / POLICY_FILE).write_text(json.dumps(body, indent=2, default=str) + "\n")
    return out


# --- load ----------------------------------------------------------------------------------------
def read_policy_info(directory: Path) -> dict[str, Any]:
    try:
        info: dict[str, Any] = json.loads((directory / POLICY_FILE).read_text())
    except (OSError, ValueError) as exc:
        raise ValueError(f"{directory / POLICY_FILE}: unreadable ({exc})") from None
    if info.get("format") != POLICY_FORMAT:
        raise ValueError(f"{directory / POLICY_FILE}: format {info.get('format')!r} is not "
                         f"{POLICY_FORMAT!r}")  # fmt: skip
    return info


def load_exported_controller(directory: str | Path) -> Any:
    """An exported pool policy as a controller (central or per-cell), numpy only."""
    d = Path(directory).expanduser().resolve()
    info = read_policy_info(d)
    actors = actors_from(info, read_safetensors(d / WEIGHTS_FILE))
    if info["controller"] == "central":
        from tune_configs.pool_central import CentralPolicyController

        return CentralPolicyController(d, actors["central"], info)
    from tune_configs.pool import PoolPolicyController

    return PoolPolicyController(d, actors, info)


def load_any_pool_controller(path: str | Path) -> Any:
    """Whatever pool policy ``path`` holds: an exported directory, a central or a per-cell
    checkpoint (``ValueError`` if none)."""
    from tune_configs.pool import load_pool_controller
    from tune_configs.pool_central import CENTRAL_SIDECAR, load_central_controller

    p = Path(path).expanduser().resolve()
    if not p.is_dir():
        raise ValueError(f"policy {str(path)!r} is not a directory")
    if (p / POLICY_FILE).is_file():
        return load_exported_controller(p)
    if (p / CENTRAL_SIDECAR).is_file():
        return load_central_controller(p)
    return load_pool_controller(p)


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
        wall_time_s=run.get("elapsed_s"),
        status=run.get("status"),
    )
    return out


def ship_training(
    train_dir: str | Path, out_dir: str | Path, extra: Mapping[str, Any] | None = None
) -> Path:
    """Export ``TRAIN_DIR/checkpoint`` with the training run's manifest (plus ``extra``, e.g. how
    the policy was selected)."""
    manifest = {**manifest_of_training(train_dir), **dict(extra or {})}
    return export_pool_policy(Path(train_dir) / "checkpoint", out_dir, manifest)


def main(argv: list[str] | None = None) -> int:
    import argparse

    p = argparse.ArgumentParser(prog="python -m tune_configs.pool_export", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    p.add_argument("source", help="a launch train output directory (with train.json and "
                   "checkpoint/) or a checkpoint directory")  # fmt: skip
    p.add_argument("out", help="directory to write policy.json and weights.safetensors to")
    p.add_argument("--extra", metavar="JSON_FILE",
                   help="JSON object added to the manifest (e.g. the selection)")  # fmt: skip
    args = p.parse_args(sys.argv[1:] if argv is None else argv)
    extra = json.loads(Path(args.extra).read_text()) if args.extra else {}
    src = Path(args.source)
    if (src / "train.json").is_file():
        print(ship_training(src, args.out, extra))
    else:
        print(export_pool_policy(src, args.out, extra))
    return 0


if __name__ == "__main__":
    sys.exit(main())
