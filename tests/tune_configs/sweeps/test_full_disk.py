"""A sweep whose storage fills up: it stops with a clear error naming the path, leaves no
half-counted result set, and ``--resume`` after space is freed finishes the study with nothing
lost.

Slow (about 1-2 min): ``pytest -m slow tests/tune_configs/sweeps/test_full_disk.py``. The storage
is a small tmpfs mounted for the test (root only: skipped otherwise) and always unmounted. Driven
by trial barriers, not timing: one trial finishes, the disk is filled, then the other trial runs
into the full disk. Tune's copies into the full disk never cut a file
(``tune_configs/ops/storage.py``), so the finished trial's files, ``result.json`` included, are
byte for byte as before. The test then cuts the only experiment state itself, as a killed driver
or a foreign copy could, so the resume has to fall back on the copy the driver kept
(``tune_state.keep``).
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from analysis.collect import collect
from tests.helpers.drills import (
    alive_or_fail,
    check_nothing_lost,
    complete_trials,
    finished,
    kill_group,
    launch,
    start_launch,
    tail,
    wait_until,
)
from tune_configs.ops.barrier import Barrier

pytestmark = [pytest.mark.slow, pytest.mark.ray]

SWEEP = ["static-grid", "--budget", "small", "--set", "episodes=10"]  # 2 trials


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 16 MB tmpfs at ``tmp_path/disk``, unmounted afterwards."""
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    mnt = tmp_path / "disk"
    mnt.mkdir()
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=16m,mode=0700", "tmpfs", str(mnt)],
                       capture_output=True, text=True)  # fmt: skip
    if r.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {r.stderr.strip()}")
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "--lazy", str(mnt)], check=True)


def _loads(data: bytes) -> bool:
    try:
        json.loads(data)
    except ValueError:
        return False
    return True


def _fill(mnt: Path) -> Path:
    ballast = mnt / "ballast"
    with ballast.open("wb") as fh, contextlib.suppress(OSError):
        while True:
            fh.write(b"\0" * 65536)
            fh.flush()
    return ballast


def test_a_full_disk_stops_the_sweep_and_resume_finishes_it(
    small_disk: Path, tmp_path: Path
) -> None:
    b = Barrier(tmp_path / "barrier")  # on the test's own disk, not the small one
    env = {**os.environ, **b.env()}
    log = tmp_path / "sweep.log"
    exp = small_disk / "grid"
    sweep = start_launch("sweep", *SWEEP, "--storage", str(small_disk), "--name", "grid",
                         env=env, log=log)  # fmt: skip
    try:
        alive = alive_or_fail(sweep, log)
        first, second = b.wait("*@start#0", count=2, timeout=600, check=alive)[:2]
        b.release(first)  # one trial finishes; the other waits at its start
        wait_until(lambda: finished(exp, first.trial), 300, "the first trial", check=alive)
        before = complete_trials(exp)
        assert list(before) == [first.trial]
        _fill(small_disk)
        assert os.statvfs(small_disk).f_bavail == 0
        b.open()  # the second trial now writes into the full disk
        rc = sweep.wait(timeout=600)
    finally:
        kill_group(sweep)
    out = tail(log, 200)
    assert rc == 1, out
    assert f"error: no space left on the device holding {exp}" in out, out
    assert "--resume" in out.splitlines()[-1], out
    assert "Traceback (most recent call last)" not in out.split("error: no space left")[-1]
    # no half-counted result set: only the finished trial counts, byte for byte as before
    assert complete_trials(exp) == before
    counted = collect(exp, write=False)
    assert set(counted.episodes["source"]) == {first.trial}
    assert not (exp / second.trial / "summary.json").exists()
    assert not list(exp.rglob(".partial-*"))  # failed copies gave their space back

    # The worst a cut copy can do to Tune's state: its only experiment state cut short (no longer
    # by a full disk, ops/storage.py; made certain here).
    (state,) = exp.glob("experiment_state-*.json")
    data = state.read_bytes()
    if _loads(data):
        state.write_bytes(data[: len(data) // 2])
    (small_disk / "ballast").unlink()  # space freed
    r = launch("sweep", *SWEEP, "--storage", str(small_disk), "--name", "grid", "--resume",
               env=env)  # fmt: skip
    assert r.returncode == 0, r.stdout + r.stderr
    assert f"{state.name} is cut short" in r.stdout and "replaced by the copy kept" in r.stdout
    check_nothing_lost(exp, 2, before, env=env)
