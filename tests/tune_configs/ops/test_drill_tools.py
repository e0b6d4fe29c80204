"""The tools of the fault drills, without Ray: trial barriers and the sweep lock.

A barrier must hold a trial in another process until the drill releases exactly that arrival,
count a retried trial's arrivals apart, cost nothing when unset and end a forgotten wait with a
clear error. The sweep lock must refuse a second holder (naming the first) and vanish with a
killed holder.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tune_configs.ops import barrier, sweeplock
from tune_configs.ops.barrier import Barrier, BarrierTimeout

ROOT = Path(__file__).resolve().parents[3]


def _reach_in_child(b: Barrier, event: str, trial: str, **env: str) -> subprocess.Popen[str]:
    code = (
        "import sys; from tune_configs.ops import barrier; barrier.reach(sys.argv[1], sys.argv[2])"
    )
    return subprocess.Popen(
        [sys.executable, "-c", code, event, trial], cwd=ROOT,
        env={**os.environ, **b.env(), **env}, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip


def test_reach_is_a_no_op_without_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(barrier.ENV, raising=False)
    barrier.reach("start", "t")  # returns at once


def test_trial_waits_until_released(tmp_path: Path) -> None:
    b = Barrier(tmp_path / "b")
    first = _reach_in_child(b, "start", "trial_a_00000")
    other = _reach_in_child(b, "start", "trial_b_00001")
    try:
        arrivals = b.wait("*@start#*", count=2, timeout=60)
        a = next(x for x in arrivals if x.trial == "trial_a_00000")
        assert a.pid == first.pid and a.n == 0 and a.event == "start"
        time.sleep(0.5)
        assert first.poll() is None and other.poll() is None  # both held
        b.release(a)
        assert first.wait(timeout=30) == 0
        time.sleep(0.5)
        assert other.poll() is None  # only that arrival was released
        b.allow("trial_b_*@start#*")
        assert other.wait(timeout=30) == 0
    finally:
        b.open()
        for p in (first, other):
            if p.poll() is None:
                p.kill()
                p.wait()


def test_retried_trial_arrives_again_and_open_passes_all(tmp_path: Path) -> None:
    b = Barrier(tmp_path / "b")
    b.open()
    for _ in range(2):
        assert _reach_in_child(b, "iteration-2", "t_00000").wait(timeout=60) == 0
    assert [a.key for a in b.arrivals("t_00000@iteration-2#*")] == [
        "t_00000@iteration-2#0", "t_00000@iteration-2#1",
    ]  # fmt: skip
    b.close()
    held = _reach_in_child(b, "end", "t_00000")
    try:
        b.wait("t_00000@end#0", timeout=60)
        time.sleep(0.3)
        assert held.poll() is None  # closed again
    finally:
        b.open()
        assert held.wait(timeout=30) == 0
    b.reset()
    assert b.arrivals() == []


def test_forgotten_barrier_raises_a_clear_error(tmp_path: Path) -> None:
    b = Barrier(tmp_path / "b")
    child = _reach_in_child(b, "start", "t_00007", **{barrier.TIMEOUT_ENV: "0.5"})
    _, err = child.communicate(timeout=60)
    assert child.returncode != 0
    assert "BarrierTimeout" in err and "t_00007" in err and "'start'" in err
    assert str(b.directory) in err


def test_reach_raises_in_process(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(barrier.ENV, str(tmp_path))
    monkeypatch.setenv(barrier.TIMEOUT_ENV, "0.2")
    with pytest.raises(BarrierTimeout, match="never released"):
        barrier.reach("end", "x")


def test_wait_times_out_listing_arrivals(tmp_path: Path) -> None:
    b = Barrier(tmp_path)
    with pytest.raises(TimeoutError, match="0 of 1 arrivals"):
        b.wait("*@end#*", timeout=0.3)


# ------------------------------------------------------------------------------------------
# sweep lock


def test_second_holder_is_refused_and_a_killed_holder_frees_the_lock(tmp_path: Path) -> None:
    exp = tmp_path / "storage" / "exp"
    code = (
        "import sys, time\n"
        "from tune_configs.ops import sweeplock\n"
        "sweeplock.acquire(sys.argv[1])\n"
        "print('held', flush=True)\n"
        "time.sleep(300)\n"
    )
    holder = subprocess.Popen([sys.executable, "-c", code, str(exp)], cwd=ROOT,
                              stdout=subprocess.PIPE, text=True)  # fmt: skip
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        with pytest.raises(sweeplock.SweepLocked, match=f"pid {holder.pid} on ") as info:
            sweeplock.acquire(exp)
        assert str(exp) in str(info.value) and "--name" in str(info.value)
        assert not sweeplock.has_content(exp)  # the lock file alone is no content
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    with sweeplock.acquire(exp) as lock:  # the kernel dropped the dead holder's lock
        assert lock.held
        with pytest.raises(sweeplock.SweepLocked):
            sweeplock.acquire(exp)  # also refused within one process
    assert not lock.held
    sweeplock.acquire(exp).release()
    (exp / "experiment_state-x.json").write_text("{}")
    assert sweeplock.has_content(exp)
    assert not sweeplock.acquire("s3://bucket/exp").held  # URIs are not locked


def test_a_driver_refused_before_the_holder_wrote_its_name_still_names_it(tmp_path: Path) -> None:
    """Two sweeps started at once: the loser may find the lock taken but its file still empty
    (the holder writes who it is right after locking). It reads again until the name is there."""
    import fcntl
    import json
    import threading

    exp = tmp_path / "exp"
    exp.mkdir()
    with (exp / sweeplock.LOCK_NAME).open("a+") as held:
        fcntl.flock(held.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)  # taken, nothing written yet
        info = {"pid": 4242, "host": "h", "since": "now", "command": "launch sweep x"}

        def write_name() -> None:
            time.sleep(0.2)
            held.write(json.dumps(info) + "\n")
            held.flush()

        writer = threading.Thread(target=write_name)
        writer.start()
        try:
            with pytest.raises(sweeplock.SweepLocked, match="pid 4242 on h since now"):
                sweeplock.acquire(exp)
        finally:
            writer.join()
