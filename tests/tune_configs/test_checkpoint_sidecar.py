"""The one checkpoint sidecar: written with its controller, and the earlier per-controller
files still read (checkpoints saved before there was one sidecar)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tune_configs.policies.checkpoint import (
    SIDECAR,
    CheckpointError,
    read_sidecar,
    write_sidecar,
)


def test_written_with_its_controller(tmp_path: Path) -> None:
    write_sidecar(tmp_path, "per-cell", {"preset": "three_cell"}, modules=["shared"], seed=3)
    info = read_sidecar(tmp_path)
    assert info == {"controller": "per-cell", "env_config": {"preset": "three_cell"},
                    "modules": ["shared"], "seed": 3}  # fmt: skip
    assert (tmp_path / SIDECAR).is_file()


@pytest.mark.parametrize(
    ("name", "controller"),
    [("metalore_pool_central.json", "central"), ("metalore_pool_policy.json", "per-cell")],
)
def test_earlier_sidecars_are_read(tmp_path: Path, name: str, controller: str) -> None:
    (tmp_path / name).write_text(json.dumps({"env_config": {"preset": "surge"}, "n_cells": 3}))
    info = read_sidecar(tmp_path)
    assert info is not None and info["controller"] == controller and info["n_cells"] == 3


def test_none_or_broken(tmp_path: Path) -> None:
    assert read_sidecar(tmp_path) is None
    (tmp_path / SIDECAR).write_text("{not json")
    with pytest.raises(CheckpointError, match="unreadable"):
        read_sidecar(tmp_path)
    (tmp_path / SIDECAR).write_text(json.dumps({"controller": "single"}))
    with pytest.raises(CheckpointError, match="no env_config"):
        read_sidecar(tmp_path)
