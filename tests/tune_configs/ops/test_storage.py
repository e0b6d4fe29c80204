"""The sweeps' storage file system (tune_configs/ops/storage.py): Tune's copies leave the same
bytes alone, append a grown log in place and replace anything else whole, and a copy that fails
half-way leaves the old file as it was.

A write that fails is made real, without root, by a file size limit (``RLIMIT_FSIZE``: a write
past it fails with ``EFBIG``, as one fails with ``ENOSPC`` on a full disk), in a subprocess.
"""

from __future__ import annotations

import gc
import os
import pickle
import subprocess
import sys
import textwrap
from pathlib import Path

import pyarrow.fs as pafs
import pytest

from tune_configs.ops.storage import (
    HIDDEN,
    is_whole_local,
    remove_leftovers,
    whole_file_system,
)

ROOT = Path(__file__).resolve().parents[3]


def _tree(root: Path) -> dict[str, bytes]:
    files = sorted(p for p in root.rglob("*") if p.is_file())
    return {str(p.relative_to(root)): p.read_bytes() for p in files}


def _source(tmp_path: Path) -> Path:
    src = tmp_path / "staging"
    (src / "trial_0").mkdir(parents=True)
    (src / "experiment_state.json").write_bytes(b"{}" * 3000)
    (src / "trial_0" / "result.json").write_bytes(b'{"x": 1}\n' * 500)
    (src / "trial_0" / "events.out.tfevents.1.vm").write_bytes(bytes(range(256)) * 20)
    return src


def test_copies_arrive_whole_and_the_system_travels_to_other_processes(tmp_path: Path) -> None:
    src, dest = _source(tmp_path), tmp_path / "exp"
    fs = whole_file_system()
    pafs.copy_files(str(src), str(dest), destination_filesystem=fs)
    pafs.copy_files(str(src), str(dest), destination_filesystem=fs)  # again, over the first copy
    assert _tree(dest) == _tree(src)
    assert not list(dest.rglob(f"{HIDDEN}*"))
    assert is_whole_local(fs) and not is_whole_local(pafs.LocalFileSystem())
    again = pickle.loads(pickle.dumps(fs))  # what a trial on another node receives
    assert is_whole_local(again) and again == fs
    fs.copy_file(str(dest / "experiment_state.json"), str(dest / "copy.json"))
    assert (dest / "copy.json").read_bytes() == (src / "experiment_state.json").read_bytes()
    infos = fs.get_file_info(pafs.FileSelector(str(dest), recursive=True))
    assert {Path(i.path).name for i in infos} >= {"trial_0", "result.json", "copy.json"}


def test_same_bytes_stay_a_grown_log_is_appended_in_place_the_rest_is_replaced(
    tmp_path: Path,
) -> None:
    src, dest = _source(tmp_path), tmp_path / "exp"
    fs = whole_file_system()
    pafs.copy_files(str(src), str(dest), destination_filesystem=fs)
    state, result = dest / "experiment_state.json", dest / "trial_0" / "result.json"
    events = dest / "trial_0" / "events.out.tfevents.1.vm"
    old = {p: os.stat(p) for p in (state, result, events)}
    # a TensorBoard-like reader holds the event file open at its end
    reader = events.open("rb")
    reader.seek(0, os.SEEK_END)
    (src / "trial_0" / "result.json").write_bytes(result.read_bytes() + b'{"x": 2}\n')
    (src / "experiment_state.json").write_bytes(b"[]" * 100)  # rewritten, and shorter
    grown = b"more events" * 200_000  # more than one of copy_files' 1 MiB chunks
    (src / "trial_0" / "events.out.tfevents.1.vm").write_bytes(events.read_bytes() + grown)
    pafs.copy_files(str(src), str(dest), destination_filesystem=fs)
    assert _tree(dest) == _tree(src)
    assert not list(dest.rglob(f"{HIDDEN}*"))
    assert reader.read() == grown  # appended to the file the reader has open
    reader.close()
    assert os.stat(events).st_ino == old[events].st_ino
    assert os.stat(result).st_ino == old[result].st_ino
    assert os.stat(state).st_ino != old[state].st_ino  # replaced whole
    unchanged = dest / "trial_0" / "params.json"
    (src / "trial_0" / "params.json").write_bytes(b"{}")
    pafs.copy_files(str(src), str(dest), destination_filesystem=fs)
    stamp = os.stat(unchanged)
    pafs.copy_files(str(src), str(dest), destination_filesystem=fs)
    assert os.stat(unchanged).st_mtime_ns == stamp.st_mtime_ns  # the same bytes: not written


@pytest.mark.parametrize("change", ["grow", "rewrite"])
def test_a_copy_that_fails_half_way_leaves_the_old_files_as_they_were(
    tmp_path: Path, change: str
) -> None:
    src, dest = _source(tmp_path), tmp_path / "exp"
    pafs.copy_files(str(src), str(dest), destination_filesystem=whole_file_system())
    before = _tree(dest)
    for name in before:  # larger than the limit below: appended to, or rewritten
        data = (src / name).read_bytes() * 4
        (src / name).write_bytes(data if change == "grow" else bytes(reversed(data)))
    limit = max(len(b) for b in before.values()) + 100
    script = textwrap.dedent(f"""
        import os, resource, signal
        import pyarrow.fs as pafs
        from tune_configs.ops.storage import whole_file_system
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails instead
        resource.setrlimit(resource.RLIMIT_FSIZE, ({limit}, {limit}))
        try:
            pafs.copy_files({str(src)!r}, {str(dest)!r}, destination_filesystem=whole_file_system())
        except OSError as exc:
            print("failed:", exc, flush=True)
            # at once: pyarrow's threads may still drop their Python file objects (module doc)
            os._exit(3)
    """)
    r = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True)
    assert r.returncode == 3, r.stdout + r.stderr
    assert "File too large" in r.stdout or "Errno 27" in r.stdout, r.stdout
    assert _tree(dest) == before  # nothing cut, nothing half-new
    assert not list(dest.rglob(f"{HIDDEN}*"))  # and the failed copies' space given back


def test_a_writer_dropped_unclosed_leaves_the_target_alone(tmp_path: Path) -> None:
    target = tmp_path / "result.json"
    target.write_bytes(b"old\n")
    fs = whole_file_system()
    out = fs.open_output_stream(str(target))
    out.write(b"new, but never closed")
    assert target.read_bytes() == b"old\n"
    del out
    gc.collect()
    assert target.read_bytes() == b"old\n"
    assert not list(tmp_path.glob(f"{HIDDEN}*"))
    with fs.open_output_stream(str(target)) as out:
        out.write(b"new\n")
    assert target.read_bytes() == b"new\n"


def test_leftovers_of_a_killed_writer_are_removed(tmp_path: Path) -> None:
    (tmp_path / "t").mkdir()
    (tmp_path / "t" / f"{HIDDEN}123-7f").write_bytes(b"half")
    (tmp_path / f"{HIDDEN}9-1").write_bytes(b"")
    (tmp_path / "t" / "result.json").write_bytes(b"{}\n")
    assert remove_leftovers(tmp_path) == 2
    assert _tree(tmp_path) == {"t/result.json": b"{}\n"}
    assert remove_leftovers(tmp_path) == 0


def test_an_append_in_small_writes_that_fails_is_undone(tmp_path: Path) -> None:
    target = tmp_path / "progress.csv"
    old = b"a,b\n" + b"1,2\n" * 1000
    target.write_bytes(old)
    script = textwrap.dedent(f"""
        import os, resource, signal
        from tune_configs.ops.storage import whole_file_system
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, ({len(old) + 50}, {len(old) + 50}))
        out = whole_file_system().open_output_stream({str(target)!r})
        try:
            out.write({old!r})
            for _ in range(100):  # 30 bytes at a time: the limit falls inside the second
                out.write(b"3,4\\n" * 7 + b"x\\n")
            out.close()
        except OSError as exc:
            print("failed:", exc, flush=True)
            os._exit(3)
    """)
    r = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True)
    assert r.returncode == 3, r.stdout + r.stderr
    assert target.read_bytes() == old
    assert not list(tmp_path.glob(f"{HIDDEN}*"))
