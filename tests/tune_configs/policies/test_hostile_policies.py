"""Hostile shipped-policy directories (hypothesis, in-process): a ``policy.json`` that is malformed
or has a bad field, tensors of the wrong shape or dtype, with NaN or infinite values, missing or
extra, files beyond the size limits: ``launch eval`` refuses each with an error naming the field
or tensor (exit status 2) before any episode runs, and the loader never unpickles anything."""

from __future__ import annotations

import copy
import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.helpers.cli import run_launch_here
from tests.helpers.hostile import JSON, examples
from tune_configs.policies.shipped import (
    DESCRIPTION,
    MAX_DESCRIPTION_BYTES,
    MAX_WEIGHTS_BYTES,
    WEIGHTS,
)

ROOT = Path(__file__).resolve().parents[3]
MODELS = {"single": ROOT / "models" / "paper" / "d0.9_p0",
          "central": ROOT / "models" / "pool" / "three_cell_hetero"}  # fmt: skip


class EpisodeRan(AssertionError):
    pass


@pytest.fixture(autouse=True)
def no_episode(monkeypatch: pytest.MonkeyPatch) -> None:
    """Any episode (single cell: the vector env; pool: the simulator's reset) fails the test."""
    import pickle

    from envs.core.pool import sim
    from tune_configs.policies import single

    def ran(*_a: Any, **_k: Any) -> Any:
        raise EpisodeRan("an episode ran")

    def unpickled(*_a: Any, **_k: Any) -> Any:
        raise AssertionError("something was unpickled")

    monkeypatch.setattr(single, "vector_env", ran)
    monkeypatch.setattr(sim.PoolSimulator, "reset", ran)
    monkeypatch.setattr(pickle, "load", unpickled)
    monkeypatch.setattr(pickle, "loads", unpickled)


def _copy(kind: str, tmp: Path) -> Path:
    d = tmp / kind
    shutil.copytree(MODELS[kind], d)
    return d


def _tensors(d: Path) -> dict[str, np.ndarray]:
    from safetensors.numpy import load_file

    return dict(load_file(str(d / WEIGHTS)))


def _save(d: Path, tensors: dict[str, np.ndarray]) -> None:
    from safetensors.numpy import save_file

    save_file(tensors, str(d / WEIGHTS))


def _refused(d: Path, says: str | tuple[str, ...]) -> str:
    """``launch eval d`` (``pool-compare`` for a pool policy) refuses ``d`` naming ``says``."""
    kind = "central" if d.name == "central" else "single"
    if kind == "single":
        r = run_launch_here("eval", str(d), "--episodes", "2")
    else:
        r = run_launch_here("pool-compare", "--scenario", "three_cell_hetero", "--checkpoint",
                            str(d), "--episodes", "2", "--tune-episodes", "1")  # fmt: skip
    assert r.returncode == 2, (r.stdout, r.stderr[-2000:])
    assert "Traceback" not in r.stderr and "an episode ran" not in r.stderr, r.stderr
    words = (says,) if isinstance(says, str) else says
    assert any(w in r.stderr for w in words), (words, r.stderr[-1500:])
    return r.stderr


# --- policy.json -------------------------------------------------------------------------------
def _paths(x: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every key path of a JSON value (dict keys and list indices)."""
    out = [path] if path else []
    if isinstance(x, dict):
        for k, v in x.items():
            out += _paths(v, (*path, k))
    elif isinstance(x, list) and len(x) <= 8:
        for i, v in enumerate(x):
            out += _paths(v, (*path, i))
    return out


_DESC = {k: json.loads((MODELS[k] / DESCRIPTION).read_text()) for k in MODELS}
# the fields a loader reads (the manifest and trained_on are provenance, free-form)
_READ = {k: [p for p in _paths(d) if p[0] not in ("manifest", "trained_on", "env_config")
             or len(p) == 1] for k, d in _DESC.items()}  # fmt: skip


def _set(desc: Any, path: tuple[Any, ...], value: Any, delete: bool) -> Any:
    out = copy.deepcopy(desc)
    node = out
    for k in path[:-1]:
        node = node[k]
    if delete:
        if isinstance(node, dict):
            del node[path[-1]]
        else:
            node.pop(path[-1])
    else:
        node[path[-1]] = value
    return out


@examples(120)
@given(st.sampled_from(sorted(MODELS)).flatmap(
    lambda k: st.tuples(st.just(k), st.sampled_from(_READ[k]))), JSON, st.booleans())  # fmt: skip
def test_a_bad_description_field_is_refused_or_harmless(
    tmp_path_factory: Any, item: tuple[str, tuple[Any, ...]], value: Any, delete: bool
) -> None:
    """Any field of policy.json replaced by any JSON value (or deleted): refused with an error
    naming a field (then ``launch eval`` exits 2 without an episode), or loaded and able to act
    on its scenario's observations."""
    from tune_configs.policies.pool import load_exported_controller
    from tune_configs.policies.single import load_policy

    kind, path = item
    d = _copy(kind, tmp_path_factory.mktemp("p"))
    (d / DESCRIPTION).write_text(json.dumps(_set(_DESC[kind], path, value, delete)))
    load = load_policy if kind == "single" else load_exported_controller
    try:
        policy = load(d)
    except ValueError as exc:  # ShippedPolicyError and CheckpointError are ValueErrors
        text = str(exc)
        assert "Traceback" not in text
        named = {str(p) for p in path} | {"policy.json", "policy.safetensors", "tensor"}
        assert any(n in text for n in named) or "invalid parameter" in text, (path, text)
        _refused(d, tuple(named | {"invalid parameter", "unknown"}))
        return
    if kind == "single":  # loaded: it acts on an observation of its scenario, no error
        from envs.metalore_env import obs_shape

        actions = policy.act(np.zeros((3, *obs_shape(policy.params)), np.float32))
        assert actions.shape == (3, *policy.action_shape) and np.isfinite(actions).all()


@pytest.mark.parametrize("kind", sorted(MODELS))
@pytest.mark.parametrize(
    ("content", "says"),
    [
        (b"{not json", "unreadable"),
        (b"", "unreadable"),
        (b"\xff\xfe\x00bad utf-8", "unreadable"),
        (b"[" * 200_000, "unreadable"),  # nested beyond the JSON parser's recursion limit
        (b"[]", "must be a JSON object"),
        (b'{"format": "metalore-policy", "version": 99}', "version"),
    ],
)
def test_malformed_json_is_refused(tmp_path: Path, kind: str, content: bytes, says: str) -> None:
    d = _copy(kind, tmp_path)
    (d / DESCRIPTION).write_bytes(content)
    _refused(d, says)


@pytest.mark.parametrize("kind", sorted(MODELS))
@pytest.mark.parametrize("name", [DESCRIPTION, WEIGHTS])
def test_files_beyond_the_limits_are_refused_unread(tmp_path: Path, kind: str, name: str) -> None:
    d = _copy(kind, tmp_path)
    limit = MAX_DESCRIPTION_BYTES if name == DESCRIPTION else MAX_WEIGHTS_BYTES
    with (d / name).open("r+b") as fh:  # a sparse file: large, but costs no disk
        fh.truncate(limit + 1)
    _refused(d, f"more than the limit of {limit:,}")


# --- policy.safetensors ------------------------------------------------------------------------
_MUTATIONS = ("shape", "dtype", "nan", "inf", "missing", "extra", "garbage", "huge_header")


@examples(80)
@given(st.sampled_from(sorted(MODELS)), st.sampled_from(_MUTATIONS), st.integers(0, 10**6),
       st.sampled_from([np.float64, np.float16, np.int32, np.uint8]))  # fmt: skip
def test_bad_tensors_are_refused_naming_them(
    tmp_path_factory: Any, kind: str, mutation: str, pick: int, dtype: Any
) -> None:
    d = _copy(kind, tmp_path_factory.mktemp("t"))
    tensors = _tensors(d)
    name = sorted(tensors)[pick % len(tensors)]
    t = tensors[name]
    says: tuple[str, ...] = (name,)
    if mutation == "shape":
        tensors[name] = np.concatenate([t, t[:1]]) if t.ndim == 1 else t.T.copy()
        if t.ndim == 2 and t.shape[0] == t.shape[1]:
            tensors[name] = t[:, :-1].copy()
        says = (name, "shape")
    elif mutation == "dtype":
        tensors[name] = t.astype(dtype)
        says = (name, "dtype")
    elif mutation in ("nan", "inf"):
        flat = t.copy().reshape(-1)
        flat[pick % flat.size] = np.nan if mutation == "nan" else -np.inf
        tensors[name] = flat.reshape(t.shape)
        says = (name, "NaN or infinite")
    elif mutation == "missing":
        del tensors[name]
        says = ("missing",)
    elif mutation == "extra":
        tensors["extra/layer0.weight"] = t
        says = ("unexpected",)
    if mutation == "garbage":
        (d / WEIGHTS).write_bytes(bytes(range(256)) * 4)
        says = ("unreadable",)
    elif mutation == "huge_header":  # a header length far beyond the file
        (d / WEIGHTS).write_bytes((2**62).to_bytes(8, "little") + b"{}")
        says = ("unreadable",)
    else:
        _save(d, tensors)
    _refused(d, says)


def test_the_shipped_policies_themselves_load(tmp_path: Path) -> None:
    from tune_configs.policies.pool import load_exported_controller
    from tune_configs.policies.single import load_policy

    assert load_policy(MODELS["single"]).actor is not None
    assert load_exported_controller(MODELS["central"]) is not None
