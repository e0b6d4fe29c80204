"""Shipped policies: a trained actor network as safetensors weights plus a JSON description.

A shipped policy is a directory with two files and nothing else:

* ``policy.safetensors``: the actor networks' weights (float32), tensors named
  ``<actor>/<layer>.weight`` and ``<actor>/<layer>.bias``; safetensors is a plain header plus raw
  bytes, so loading runs no code (no pickle);
* ``policy.json``: :data:`FORMAT` and its version, the architecture of every actor (layers in
  order, sizes, activation after each), how to turn network outputs into actions (the action
  distribution, its deterministic output and the action normalisation), the observation transform
  (the env config, ``obs_mode`` included, and its resolved parameters), the controller
  (``single`` or ``per-cell``) and a manifest: training command, seed, env steps, training wall
  time, git commit, the checkpoint it came from, export time.

:func:`load_shipped` reads it with numpy only (no Ray, no torch, no pickle) into a
:class:`ShippedPolicy`; :meth:`MLPActor.__call__` is the forward pass and
:meth:`ShippedPolicy.actions` the deterministic action in env units. The single-cell controller's
checkpoint evaluation (:mod:`tune_configs.policy`) runs the same numpy actor, so a shipped
directory evaluates to exactly the numbers of its checkpoint.

API (also for other controllers; the credit pool's per-cell controller ships one actor per module
id, ``shared`` or ``cell_<i>``, each applied to its cells' observation rows)::

    from tune_configs.export import actor_of_rl_module, write_shipped, load_shipped
    actors = {"shared": actor_of_rl_module(rl_module)}   # any RLlib default PPO torch module
    write_shipped(out_dir, actors, controller="per-cell", env_config=cfg,
                  action={"normalize": True, "low": [0, 0, -1], "high": [1, 1, 1]},
                  manifest={...}, extra={"policies": "shared"})
    pol = load_shipped(out_dir)
    mean = pol.actors["shared"](obs)     # (B, F) float32 -> (B, A) mean in network units
    act = pol.actions(obs, "shared")     # unsquashed and clipped to the action box

* :func:`actor_of_rl_module`: the actor path of RLlib's default PPO torch module (the actor
  encoder's MLP, then the ``pi`` head) as an :class:`MLPActor`; ``ValueError`` for an
  architecture it does not know (a layer type other than Linear and the supported activations);
* :func:`export_checkpoint`: a checkpoint of the ``single`` controller -> a shipped directory
  (``python -m launch export CKPT --out DIR``); :func:`is_shipped` recognises one.

Run ``python -m launch export results/train-a/checkpoint --out models/mine`` and then
``python -m launch eval models/mine``; the directory weighs about 25 kB for a [64, 64] actor.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

FORMAT = "metalore-policy"
VERSION = 1
WEIGHTS = "policy.safetensors"
DESCRIPTION = "policy.json"
SINGLE_ACTOR = "default_policy"  # the actor name of a single-cell policy

_ACTIVATIONS: dict[str, Callable[[NDArray[np.float32]], NDArray[np.float32]]] = {
    "linear": lambda x: x,
    "tanh": np.tanh,
    "relu": lambda x: np.maximum(x, np.float32(0.0)),
    "sigmoid": lambda x: (np.float32(1.0) / (np.float32(1.0) + np.exp(-x))).astype(np.float32),
    "silu": lambda x: (x / (np.float32(1.0) + np.exp(-x))).astype(np.float32),
    "elu": lambda x: np.where(x > 0, x, np.expm1(x)).astype(np.float32),
}
_TORCH_ACTIVATIONS = {"Tanh": "tanh", "ReLU": "relu", "Sigmoid": "sigmoid", "SiLU": "silu",
                      "ELU": "elu", "Identity": "linear"}  # fmt: skip


class ShippedPolicyError(ValueError):
    """A shipped policy directory that is missing, incomplete or inconsistent."""


@dataclass(frozen=True)
class Dense:
    """One fully connected layer ``y = act(x W^T + b)``, weights float32 ``(out, in)``."""

    weight: NDArray[np.float32]
    bias: NDArray[np.float32]
    activation: str = "linear"

    def __post_init__(self) -> None:
        if self.activation not in _ACTIVATIONS:
            raise ValueError(f"activation {self.activation!r} not in {sorted(_ACTIVATIONS)}")
        if self.weight.ndim != 2 or self.bias.shape != (self.weight.shape[0],):
            raise ValueError(f"layer shapes {self.weight.shape} / {self.bias.shape} do not match")


@dataclass(frozen=True)
class MLPActor:
    """An actor MLP; ``distribution`` says how its outputs parameterise the action distribution:
    ``diag_gaussian`` (mean then log std, the deterministic action is the mean) or
    ``diag_gaussian_mean`` (the outputs are the mean, the log std being free parameters)."""

    layers: tuple[Dense, ...]
    action_dim: int
    distribution: str = "diag_gaussian"

    def __post_init__(self) -> None:
        if not self.layers:
            raise ValueError("an actor needs at least one layer")
        for a, b in zip(self.layers, self.layers[1:], strict=False):
            if a.weight.shape[0] != b.weight.shape[1]:
                raise ValueError("consecutive layer sizes do not match")
        want = {"diag_gaussian": 2 * self.action_dim, "diag_gaussian_mean": self.action_dim}
        if self.distribution not in want:
            raise ValueError(f"distribution {self.distribution!r} not in {sorted(want)}")
        if self.out_features != want[self.distribution]:
            raise ValueError(
                f"{self.distribution} with {self.action_dim} actions needs "
                f"{want[self.distribution]} outputs, the network has {self.out_features}"
            )

    @property
    def in_features(self) -> int:
        return int(self.layers[0].weight.shape[1])

    @property
    def out_features(self) -> int:
        return int(self.layers[-1].weight.shape[0])

    def __call__(self, obs: NDArray[Any]) -> NDArray[np.float32]:
        """Deterministic network output (the mean) ``(B, action_dim)`` for ``obs`` ``(B, ...)``."""
        x = np.asarray(obs, dtype=np.float32).reshape(len(obs), -1)
        if x.shape[1] != self.in_features:
            raise ValueError(f"observation has {x.shape[1]} features, the actor {self.in_features}")
        for layer in self.layers:
            x = _ACTIVATIONS[layer.activation](x @ layer.weight.T + layer.bias)
        return x[:, : self.action_dim]

    def spec(self) -> dict[str, Any]:
        """JSON description (no weights)."""
        return {
            "in_features": self.in_features,
            "action_dim": self.action_dim,
            "distribution": self.distribution,
            "deterministic": "mean",
            "layers": [
                {"in": int(w.shape[1]), "out": int(w.shape[0]), "activation": lyr.activation}
                for lyr in self.layers
                for w in (lyr.weight,)
            ],
        }


# --- from an RLlib module -------------------------------------------------------------------
def _dense_layers(sequential: Any) -> list[Dense]:
    layers: list[Dense] = []
    for child in sequential.children():
        kind = type(child).__name__
        if kind == "Linear":
            w = child.weight.detach().cpu().numpy().astype(np.float32)
            b = (
                child.bias.detach().cpu().numpy().astype(np.float32)
                if child.bias is not None
                else np.zeros(w.shape[0], np.float32)
            )
            layers.append(Dense(w, b))
        elif kind in _TORCH_ACTIVATIONS and layers and layers[-1].activation == "linear":
            last = layers.pop()
            layers.append(Dense(last.weight, last.bias, _TORCH_ACTIVATIONS[kind]))
        else:
            raise ValueError(f"cannot export a {kind} layer (only Linear and activations)")
    return layers


def actor_of_rl_module(module: Any) -> MLPActor:
    """The actor of an RLlib default PPO torch RLModule (actor encoder MLP + ``pi`` head)."""
    encoder = getattr(module, "encoder", None)
    enc = getattr(encoder, "actor_encoder", None) or getattr(encoder, "encoder", None)
    pi = getattr(module, "pi", None)
    try:
        layers = _dense_layers(enc.net.mlp) + _dense_layers(pi.net.mlp)  # type: ignore[union-attr]
    except AttributeError as exc:
        raise ValueError(f"not a default PPO MLP module ({type(module).__name__})") from exc
    space = module.action_space
    action_dim = int(np.prod(space.shape))
    free_std = bool((getattr(module, "model_config", None) or {}).get("free_log_std", False))
    dist = "diag_gaussian_mean" if free_std else "diag_gaussian"
    return MLPActor(tuple(layers), action_dim, dist)


# --- writing and reading ----------------------------------------------------------------------
def write_shipped(
    out_dir: str | Path,
    actors: Mapping[str, MLPActor],
    *,
    controller: str,
    env_config: Mapping[str, Any],
    action: Mapping[str, Any],
    manifest: Mapping[str, Any],
    extra: Mapping[str, Any] | None = None,
) -> Path:
    """Write ``policy.safetensors`` + ``policy.json`` into ``out_dir`` (created); returns it.

    ``action``: ``normalize`` (RLlib's ``normalize_actions``: the mean lives in [-1, 1] and is
    mapped linearly to ``[low, high]``), ``low``, ``high``, ``shape`` (per agent); the action is
    then clipped to the box. ``extra`` adds controller-specific keys (e.g. ``params``,
    ``policies``).
    """
    from safetensors.numpy import save_file

    if not actors:
        raise ValueError("no actors to ship")
    out = Path(out_dir).expanduser().resolve()
    out.mkdir(parents=True, exist_ok=True)
    tensors: dict[str, NDArray[np.float32]] = {}
    for name, actor in actors.items():
        if "/" in name:
            raise ValueError(f"actor name {name!r} must not contain '/'")
        for i, layer in enumerate(actor.layers):
            tensors[f"{name}/layer{i}.weight"] = np.ascontiguousarray(layer.weight, np.float32)
            tensors[f"{name}/layer{i}.bias"] = np.ascontiguousarray(layer.bias, np.float32)
    save_file(tensors, str(out / WEIGHTS), metadata={"format": FORMAT, "version": str(VERSION)})
    body = {
        "format": FORMAT,
        "version": VERSION,
        "controller": controller,
        "actors": {name: actor.spec() for name, actor in actors.items()},
        "action": dict(action),
        "env_config": dict(env_config),
        **dict(extra or {}),
        "manifest": dict(manifest),
    }
    (out / DESCRIPTION).write_text(json.dumps(body, indent=2, default=str) + "\n")
    return out


def is_shipped(path: str | Path) -> bool:
    """True if ``path`` is a shipped policy directory (has :data:`DESCRIPTION`)."""
    return (Path(path).expanduser() / DESCRIPTION).is_file()


def shipped_controller(path: str | Path) -> str | None:
    """The controller name of a shipped policy directory (None if it is not one)."""
    if not is_shipped(path):
        return None
    try:
        desc = json.loads((Path(path).expanduser() / DESCRIPTION).read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise ShippedPolicyError(f"{path}: unreadable {DESCRIPTION} ({exc})") from exc
    return str(desc.get("controller", "single")) if isinstance(desc, dict) else None


@dataclass
class ShippedPolicy:
    """A loaded shipped policy: its description and numpy actors."""

    path: Path
    description: dict[str, Any]
    actors: dict[str, MLPActor] = field(default_factory=dict)

    @property
    def controller(self) -> str:
        return str(self.description["controller"])

    @property
    def env_config(self) -> dict[str, Any]:
        return dict(self.description["env_config"])

    def actions(self, obs: NDArray[Any], actor: str = SINGLE_ACTOR) -> NDArray[np.float64]:
        """Deterministic actions in env units for ``obs`` ``(B, ...)`` (shape ``(B, *shape)``)."""
        return to_env_actions(self.actors[actor](obs), self.description["action"])


def to_env_actions(mean: NDArray[Any], action: Mapping[str, Any]) -> NDArray[np.float64]:
    """Network means -> env actions: unsquash from [-1, 1] if normalised, clip to the box."""
    a = np.asarray(mean, dtype=np.float64)
    low = np.asarray(action.get("low", 0.0), dtype=np.float64).reshape(-1)
    high = np.asarray(action.get("high", 1.0), dtype=np.float64).reshape(-1)
    flat = a.reshape(len(a), -1)
    if low.size not in (1, flat.shape[1]):  # per-entry bounds of one row of a (n, k) action
        low = np.resize(low, flat.shape[1])
        high = np.resize(high, flat.shape[1])
    if action.get("normalize", True):
        flat = low + (flat + 1.0) * 0.5 * (high - low)
    flat = np.clip(flat, low, high)
    shape = tuple(action.get("shape") or a.shape[1:])
    return flat.reshape(len(a), *shape)


def load_shipped(path: str | Path) -> ShippedPolicy:
    """Read a shipped policy with numpy only (``ShippedPolicyError`` if broken)."""
    from safetensors import SafetensorError
    from safetensors.numpy import load_file

    d = Path(path).expanduser().resolve()
    if not (d / DESCRIPTION).is_file() or not (d / WEIGHTS).is_file():
        raise ShippedPolicyError(f"{d} is not a shipped policy: {DESCRIPTION} or {WEIGHTS} missing")
    try:
        desc = json.loads((d / DESCRIPTION).read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise ShippedPolicyError(f"{d / DESCRIPTION}: unreadable ({exc})") from exc
    if not isinstance(desc, dict) or desc.get("format") != FORMAT:
        raise ShippedPolicyError(f"{d / DESCRIPTION}: not a {FORMAT} description")
    if int(desc.get("version", 0)) > VERSION:
        raise ShippedPolicyError(f"{d}: format version {desc['version']} is newer than {VERSION}")
    try:
        tensors = load_file(str(d / WEIGHTS))
    except (OSError, SafetensorError) as exc:
        raise ShippedPolicyError(f"{d / WEIGHTS}: unreadable ({exc})") from exc
    actors: dict[str, MLPActor] = {}
    try:
        for name, spec in desc["actors"].items():
            layers = tuple(
                Dense(
                    tensors[f"{name}/layer{i}.weight"].astype(np.float32),
                    tensors[f"{name}/layer{i}.bias"].astype(np.float32),
                    str(lyr["activation"]),
                )
                for i, lyr in enumerate(spec["layers"])
            )
            actors[name] = MLPActor(layers, int(spec["action_dim"]), str(spec["distribution"]))
    except (KeyError, TypeError, ValueError) as exc:
        raise ShippedPolicyError(f"{d}: weights do not match the description ({exc})") from exc
    return ShippedPolicy(d, desc, actors)


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
    from tune_configs.policy import SIDECAR, load_policy, read_checkpoint_info

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
        "low": 0.0,
        "high": 1.0,
        "shape": shape,
    }
    return write_shipped(
        out_dir,
        {SINGLE_ACTOR: actor},
        controller="single",
        env_config=policy.env_config,
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
    cfg = d.get("env_config", {})
    return (
        f"{d['controller']} policy (delta={cfg.get('delta')}, penalty={cfg.get('penalty')}; "
        f"actors {sizes}; {m.get('env_steps')} env steps, seed {m.get('seed')})"
    )


# --- one shipped policy per reward setting of a sweep --------------------------------------------
TUNING_SEED = 1_000_000  # first episode seed of the selection episodes (evaluation seeds are small)


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
    from analysis.resultset import RUN_FILE, SUMMARY_FILE
    from tune_configs.policy import evaluate_policy, load_policy

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
