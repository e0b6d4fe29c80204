"""Keep numba's on-disk cache of the simulator's kernels in step with their sources.

Numba's ``cache=True`` keys a compiled function to the source file that defines it, and to that
file only. A kernel that calls jitted functions of other modules (``batch._run`` and
``vector._step_all`` call ``dynamics.step_kernel``, which inlines ``queues`` and ``radio``) would
keep running its old machine code after those modules change, with no error: a new parameter
read from a shifted index, for example.

:func:`guard` closes that gap. Called at the end of every module that defines cached kernels, it
compares a digest of the sources of *all* the simulator's modules (every ``.py`` file of the
``envs`` package) with the digest stamped beside each cached function's index; when they differ
(or no stamp exists yet), it empties that function's cache index, so numba compiles the function
afresh on its first call and caches it again, and it writes the new stamp. Any change to any
module therefore recompiles every cached kernel once: a few seconds, against silently stale code.

It relies on two attributes of numba's dispatcher (``_cache``, with ``cache_path`` and
``flush()``, present since numba 0.4x); when a future numba lacks them, :func:`guard` does nothing
and ``tests/test_jitcache.py`` fails, naming what changed.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from functools import lru_cache
from pathlib import Path
from typing import Any

ENVS_DIR = Path(__file__).resolve().parents[1]  # the ``envs`` package
STAMP_SUFFIX = ".sources"


@lru_cache(maxsize=1)
def sources_digest(root: Path = ENVS_DIR) -> str:
    """SHA-256 over the relative path and bytes of every ``.py`` file below ``root``."""
    h = hashlib.sha256()
    for path in sorted(root.rglob("*.py")):
        if "__pycache__" in path.parts:
            continue
        h.update(path.relative_to(root).as_posix().encode())
        h.update(b"\0")
        h.update(path.read_bytes())
        h.update(b"\0")
    return h.hexdigest()


def cache_of(dispatcher: Any) -> Any | None:
    """The on-disk cache of a numba dispatcher compiled with ``cache=True`` (else None)."""
    cache = getattr(dispatcher, "_cache", None)
    if cache is None or not hasattr(cache, "flush") or not hasattr(cache, "cache_path"):
        return None
    return cache


def stamp_path(dispatcher: Any) -> Path | None:
    cache = cache_of(dispatcher)
    if cache is None:
        return None
    func = dispatcher.py_func
    return Path(cache.cache_path) / f"{func.__module__}.{func.__qualname__}{STAMP_SUFFIX}"


def refresh(dispatcher: Any, digest: str) -> bool:
    """Empty ``dispatcher``'s cache index unless it was written for ``digest``; True if emptied.

    Stamps the index with ``digest`` afterwards. A read-only cache directory is left alone
    (numba then compiles in memory anyway).
    """
    cache, stamp = cache_of(dispatcher), stamp_path(dispatcher)
    if cache is None or stamp is None:
        return False
    try:
        if stamp.read_text() == digest:
            return False
    except OSError:
        pass
    try:
        cache.flush()
        stamp.parent.mkdir(parents=True, exist_ok=True)
        stamp.write_text(digest)
    except OSError:
        return False
    return True


def guard(namespace: Mapping[str, Any]) -> list[str]:
    """:func:`refresh` every cached numba function of a module's ``globals()`` against the
    digest of the ``envs`` sources; returns the names whose cache was emptied."""
    digest = sources_digest()
    emptied = []
    for name, obj in list(namespace.items()):
        func = getattr(obj, "py_func", None)
        if func is None or getattr(func, "__module__", None) != namespace.get("__name__"):
            continue  # not a numba function, or one imported from another module
        if refresh(obj, digest):
            emptied.append(name)
    return emptied
