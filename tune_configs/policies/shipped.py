"""Shipped policies: a trained actor network as safetensors weights plus a JSON description.

A shipped policy is a directory with two files and nothing else:

* ``policy.safetensors``: the actor networks' weights (float32), tensors named
  ``<actor>/layer<i>.weight`` and ``<actor>/layer<i>.bias``; safetensors is a plain header plus raw
  bytes, so loading runs no code (no pickle);
* ``policy.json``: :data:`FORMAT` and its version, the architecture of every actor (layers in
  order, sizes, activation after each), how to turn network outputs into actions (the action
  distribution, its deterministic output and the action normalisation), the policy's
  ``interface`` (observation transform and action mapping: ``obs_mode``, ``action_mode``, the
  residual rule, ...), the scenario it was ``trained_on`` (provenance, with its resolved
  parameters; version 1 files carry both in one ``env_config``), the controller
  (``single`` or ``per-cell``) and a manifest: training command, seed, env steps, training wall
  time, git commit, the checkpoint it came from, export time.

:func:`load_shipped` reads it with numpy only (no Ray, no torch, no pickle) into a
:class:`ShippedPolicy`; :meth:`MLPActor.__call__` is the forward pass and
:meth:`ShippedPolicy.actions` the deterministic action in env units. The single-cell controller's
checkpoint evaluation (:mod:`tune_configs.policies.single`) runs the same numpy actor, so a shipped
directory evaluates to exactly the numbers of its checkpoint. Exporting checkpoints (and whole
sweeps) is :mod:`tune_configs.export`.

API (also for other controllers; a credit-pool per-cell controller would ship one actor per module
id, ``shared`` or ``cell_<i>``, each applied to its cells' observation rows)::

    from tune_configs.policies.shipped import actor_of_rl_module, write_shipped, load_shipped
    actors = {"shared": actor_of_rl_module(rl_module)}   # any RLlib default PPO torch module
    write_shipped(out_dir, actors, controller="per-cell", env_config=cfg, interface=POOL_INTERFACE,
                  action={"normalize": True, "low": [0, 0, -1], "high": [1, 1, 1]},
                  manifest={...}, extra={"policies": "shared"})
    pol = load_shipped(out_dir)
    mean = pol.actors["shared"](obs)     # (B, F) float32 -> (B, A) mean in network units
    act = pol.actions(obs, "shared")     # unsquashed and clipped to the action box

:func:`actor_of_rl_module` takes the actor path of RLlib's default PPO torch module (the actor
encoder's MLP, then the ``pi`` head) as an :class:`MLPActor`; ``ValueError`` for an architecture
it does not know (a layer type other than Linear and the supported activations).
:func:`is_shipped` / :func:`shipped_controller` recognise a shipped directory.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

FORMAT = "metalore-policy"
VERSION = 2  # 2: "interface" and "trained_on" instead of one "env_config" (version 1 still loads)
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
    interface: Iterable[str],
    action: Mapping[str, Any],
    manifest: Mapping[str, Any],
    extra: Mapping[str, Any] | None = None,
) -> Path:
    """Write ``policy.safetensors`` + ``policy.json`` into ``out_dir`` (created); returns it.

    ``env_config`` (the training one) is stored as the policy's ``interface`` (its keys named in
    ``interface``: what the policy needs to act) and ``trained_on`` (the rest: the scenario it was
    trained on, provenance; :mod:`tune_configs.policies.interface`).

    ``action``: ``normalize`` (RLlib's ``normalize_actions``: the mean lives in [-1, 1] and is
    mapped linearly to ``[low, high]``), ``low``, ``high``, ``shape`` (per agent); the action is
    then clipped to the box. ``extra`` adds controller-specific keys (e.g. ``params``,
    ``policies``).
    """
    from safetensors.numpy import save_file

    if not actors:
        raise ValueError("no actors to ship")
    keys = frozenset(interface)
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
        "interface": {k: v for k, v in env_config.items() if k in keys},
        "trained_on": {k: v for k, v in env_config.items() if k not in keys},
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
    _read_limited(Path(path).expanduser() / DESCRIPTION, MAX_DESCRIPTION_BYTES)
    try:
        desc = json.loads((Path(path).expanduser() / DESCRIPTION).read_bytes().decode("utf-8"))
    except (OSError, UnicodeDecodeError, RecursionError, json.JSONDecodeError) as exc:
        raise ShippedPolicyError(f"{path}: unreadable {DESCRIPTION} ({exc})") from exc
    try:
        check_description(desc)
    except ShippedPolicyError as exc:
        raise ShippedPolicyError(f"{Path(path).expanduser()}/{exc}") from None
    return str(desc["controller"])


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
        """The training env config: version 2's ``trained_on`` plus ``interface``."""
        d = self.description
        if "env_config" in d:  # version 1
            return dict(d["env_config"])
        return {**dict(d["trained_on"]), **dict(d["interface"])}

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


# Limits of a shipped policy directory read from elsewhere (the largest shipped policy, a
# three-cell central controller, is about 50 kB of JSON and 60 kB of weights).
MAX_DESCRIPTION_BYTES = 4 * 2**20
MAX_WEIGHTS_BYTES = 64 * 2**20
MAX_ACTORS = 64
MAX_LAYERS = 16
MAX_WIDTH = 4096  # features of any layer
MAX_ACTION_DIM = 1024
DISTRIBUTIONS = ("diag_gaussian", "diag_gaussian_mean")
POLICY_MODES = ("shared", "separate", "central")


def _bad(field: str, problem: str) -> ShippedPolicyError:
    return ShippedPolicyError(f"{DESCRIPTION}: {field}: {problem}")


def _whole(v: Any, lo: int, hi: int) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and lo <= v <= hi


def _finite_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and bool(np.isfinite(v))


def _check_actor(name: str, spec: Any) -> list[tuple[str, tuple[int, ...]]]:
    """The tensors (name, shape) an actor's description promises; errors name the field."""
    where = f"actors.{name}"
    if not isinstance(spec, dict):
        raise _bad(where, "must be an object")
    for key, hi in (("in_features", MAX_WIDTH), ("action_dim", MAX_ACTION_DIM)):
        if not _whole(spec.get(key), 1, hi):
            raise _bad(f"{where}.{key}", f"must be an integer in [1, {hi}], got {spec.get(key)!r}")
    if spec.get("distribution") not in DISTRIBUTIONS:
        raise _bad(f"{where}.distribution", f"must be one of {DISTRIBUTIONS}")
    layers = spec.get("layers")
    if not isinstance(layers, list) or not 1 <= len(layers) <= MAX_LAYERS:
        raise _bad(f"{where}.layers", f"must be a list of 1 to {MAX_LAYERS} layers")
    tensors: list[tuple[str, tuple[int, ...]]] = []
    width = spec["in_features"]
    for i, lyr in enumerate(layers):
        at = f"{where}.layers[{i}]"
        if not isinstance(lyr, dict):
            raise _bad(at, "must be an object")
        for key in ("in", "out"):
            if not _whole(lyr.get(key), 1, MAX_WIDTH):
                raise _bad(f"{at}.{key}", f"must be an integer in [1, {MAX_WIDTH}]")
        if lyr["in"] != width:
            raise _bad(f"{at}.in", f"is {lyr['in']}, the layer before gives {width}")
        if not isinstance(lyr.get("activation"), str) or lyr["activation"] not in _ACTIVATIONS:
            raise _bad(f"{at}.activation", f"must be one of {sorted(_ACTIVATIONS)}")
        width = lyr["out"]
        tensors += [(f"{name}/layer{i}.weight", (lyr["out"], lyr["in"])),
                    (f"{name}/layer{i}.bias", (lyr["out"],))]  # fmt: skip
    outputs = spec["action_dim"] * (2 if spec["distribution"] == "diag_gaussian" else 1)
    if width != outputs:
        raise _bad(f"{where}.layers[{len(layers) - 1}].out",
                   f"is {width}; {spec['distribution']} with action_dim {spec['action_dim']} "
                   f"needs {outputs}")  # fmt: skip
    return tensors


def check_description(desc: Any) -> dict[str, tuple[int, ...]]:
    """Check a ``policy.json`` body from elsewhere; returns the tensors (name -> shape) it
    promises. ``ShippedPolicyError`` names the first bad field."""
    if not isinstance(desc, dict):
        raise ShippedPolicyError(f"{DESCRIPTION}: must be a JSON object")
    if desc.get("format") != FORMAT:
        raise _bad("format", f"must be {FORMAT!r}, got {desc.get('format')!r}")
    if not _whole(desc.get("version"), 1, VERSION):
        raise _bad("version", f"must be an integer in [1, {VERSION}], got {desc.get('version')!r}")
    if not isinstance(desc.get("controller"), str) or not desc["controller"]:
        raise _bad("controller", "must be a non-empty string")
    actors = desc.get("actors")
    if not isinstance(actors, dict) or not 1 <= len(actors) <= MAX_ACTORS:
        raise _bad("actors", f"must be an object of 1 to {MAX_ACTORS} actors")
    tensors: dict[str, tuple[int, ...]] = {}
    for name, spec in actors.items():
        if not name or "/" in name:
            raise _bad("actors", f"actor name {name!r} must be non-empty, without '/'")
        tensors.update(_check_actor(name, spec))
    action = desc.get("action")
    if not isinstance(action, dict):
        raise _bad("action", "must be an object")
    if "normalize" in action and not isinstance(action["normalize"], bool):
        raise _bad("action.normalize", "must be true or false")
    for key in ("low", "high"):
        v = action.get(key, 0.0)
        ok = _finite_number(v) or (
            isinstance(v, list) and 0 < len(v) <= MAX_ACTION_DIM and all(map(_finite_number, v))
        )
        if not ok:
            raise _bad(f"action.{key}", "must be a finite number or a list of them")
    shape = action.get("shape")
    if shape is not None and not (
        isinstance(shape, list) and 1 <= len(shape) <= 4
        and all(_whole(n, 1, MAX_ACTION_DIM) for n in shape)
    ):  # fmt: skip
        raise _bad("action.shape", f"must be a list of 1 to 4 sizes in [1, {MAX_ACTION_DIM}]")
    configs = ("env_config",) if desc["version"] == 1 else ("interface", "trained_on")
    for key in configs:
        if not isinstance(desc.get(key), dict):
            raise _bad(key, "must be an object (the policy's env config)")
    checks: tuple[tuple[str, Callable[[Any], bool]], ...] = (
        ("manifest", lambda v: isinstance(v, dict)),
        ("n_cells", lambda v: _whole(v, 1, 64)),
        ("policies", lambda v: v in POLICY_MODES),
    )
    for key, valid in checks:
        if key in desc and not valid(desc[key]):
            raise _bad(key, f"has a bad value {desc[key]!r}")
    return tensors


def _read_limited(path: Path, limit: int) -> None:
    size = path.stat().st_size
    if size > limit:
        raise ShippedPolicyError(
            f"{path}: {size:,} bytes, more than the limit of {limit:,} for {path.name}"
        )


def load_shipped(path: str | Path) -> ShippedPolicy:
    """Read a shipped policy with numpy only (``ShippedPolicyError`` if broken).

    A directory from elsewhere is checked before anything uses it: each file within its size
    limit (:data:`MAX_DESCRIPTION_BYTES`, :data:`MAX_WEIGHTS_BYTES`), the description's fields
    (:func:`check_description`), and every tensor present with the promised shape, float32 and
    finite, and no other tensor. Errors name the file and the field or tensor.
    """
    from safetensors import SafetensorError, safe_open

    d = Path(path).expanduser().resolve()
    if not (d / DESCRIPTION).is_file() or not (d / WEIGHTS).is_file():
        raise ShippedPolicyError(f"{d} is not a shipped policy: {DESCRIPTION} or {WEIGHTS} missing")
    _read_limited(d / DESCRIPTION, MAX_DESCRIPTION_BYTES)
    _read_limited(d / WEIGHTS, MAX_WEIGHTS_BYTES)
    try:
        desc = json.loads((d / DESCRIPTION).read_bytes().decode("utf-8"))
    except (OSError, UnicodeDecodeError, RecursionError, json.JSONDecodeError) as exc:
        raise ShippedPolicyError(f"{d / DESCRIPTION}: unreadable ({exc})") from exc
    try:
        shapes = check_description(desc)
    except ShippedPolicyError as exc:
        raise ShippedPolicyError(f"{d}/{exc}") from None
    tensors: dict[str, NDArray[np.float32]] = {}
    try:
        with safe_open(str(d / WEIGHTS), framework="numpy") as fh:
            names = set(fh.keys())
            extra, missing = sorted(names - set(shapes)), sorted(set(shapes) - names)
            if extra or missing:
                raise ShippedPolicyError(
                    f"{d / WEIGHTS}: tensors do not match {DESCRIPTION} "
                    f"(missing {missing[:4]}, unexpected {extra[:4]})"
                )
            for name, shape in shapes.items():
                part = fh.get_slice(name)
                dtype, got = part.get_dtype(), tuple(part.get_shape())
                if dtype != "F32":
                    raise ShippedPolicyError(f"{d / WEIGHTS}: tensor {name}: dtype {dtype}, "
                                             "must be F32 (float32)")  # fmt: skip
                if got != shape:
                    raise ShippedPolicyError(f"{d / WEIGHTS}: tensor {name}: shape {list(got)}, "
                                             f"{DESCRIPTION} says {list(shape)}")  # fmt: skip
                value = np.asarray(fh.get_tensor(name), dtype=np.float32)
                bad = int(np.size(value) - np.count_nonzero(np.isfinite(value)))
                if bad:
                    raise ShippedPolicyError(
                        f"{d / WEIGHTS}: tensor {name}: {bad} NaN or infinite values"
                    )
                tensors[name] = value
    except (OSError, SafetensorError) as exc:
        raise ShippedPolicyError(f"{d / WEIGHTS}: unreadable ({exc})") from exc
    actors: dict[str, MLPActor] = {}
    for name, spec in desc["actors"].items():
        layers = tuple(
            Dense(
                tensors[f"{name}/layer{i}.weight"],
                tensors[f"{name}/layer{i}.bias"],
                str(lyr["activation"]),
            )
            for i, lyr in enumerate(spec["layers"])
        )
        actors[name] = MLPActor(layers, int(spec["action_dim"]), str(spec["distribution"]))
    return ShippedPolicy(d, desc, actors)
