"""numba's on-disk cache of the kernels follows every simulator source (envs/core/jitcache.py).

A fresh interpreter compiles a cached function from a throw-away module, then the cache is
checked against a new digest (as after an edit of another module): the index is emptied (the
function compiles again) and stamped; the same digest leaves it alone.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from envs.core import batch, dynamics, jitcache
from envs.vector import _step_all

ROOT = Path(__file__).resolve().parents[2]

SCRIPT = """
import sys
sys.path.insert(0, {tmp!r})
from envs.core import jitcache
import kernels
kernels.twice(2.0)                       # compiles and writes the cache
cache = jitcache.cache_of(kernels.twice)
print("entries", len(cache._cache_file._load_index()))
print("emptied", jitcache.refresh(kernels.twice, "digest-1"))
print("entries", len(cache._cache_file._load_index()))
print("emptied", jitcache.refresh(kernels.twice, "digest-1"))
print("stamp", jitcache.stamp_path(kernels.twice).read_text())
print("guarded", jitcache.guard(vars(kernels)))
"""


def test_refresh_empties_a_stale_cache_once(tmp_path: Path) -> None:
    (tmp_path / "kernels.py").write_text(
        "from numba import njit\n\n@njit(cache=True)\ndef twice(x):\n    return 2.0 * x\n"
    )
    r = subprocess.run(
        [sys.executable, "-c", SCRIPT.format(tmp=str(tmp_path))],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert r.returncode == 0, r.stderr[-3000:]
    lines = r.stdout.split("\n")
    assert lines[0] == "entries 1"  # compiled and cached
    assert lines[1:4] == ["emptied True", "entries 0", "emptied False"]
    assert lines[4] == "stamp digest-1"
    assert lines[5] == "guarded ['twice']"  # the sources' digest is not "digest-1"


def test_every_cached_kernel_of_the_simulator_is_guarded() -> None:
    """Each cached kernel has a stamp of the current sources beside its cache index."""
    digest = jitcache.sources_digest()
    for fn in (batch._run, dynamics.step_kernel, _step_all):
        stamp = jitcache.stamp_path(fn)
        assert stamp is not None, f"{fn.py_func.__qualname__}: numba no longer exposes its cache"
        if stamp.parent.exists() and stamp.exists():
            assert stamp.read_text() == digest
        assert jitcache.refresh(fn, digest) is False  # nothing to do: stamped at import


def test_digest_covers_every_source_file(tmp_path: Path) -> None:
    (tmp_path / "a.py").write_text("x = 1\n")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "b.py").write_text("y = 2\n")
    first = jitcache.sources_digest.__wrapped__(tmp_path)
    (tmp_path / "sub" / "b.py").write_text("y = 3\n")
    assert jitcache.sources_digest.__wrapped__(tmp_path) != first
