"""Single entry point: ``python -m launch <subcommand> ...`` (``--help`` lists them).

After the command returns, the process ends without tearing the interpreter down module by module:
the exit handlers run (Ray's shutdown, logging, temporary files), the output is flushed, and the
process exits with ``os._exit``. Tearing down torch, RLlib and numba objects one by one takes
about 2 s of a 12 s ``launch train`` on a 2-core machine and changes nothing on disk. If a
non-daemon thread is still running, the normal exit (which waits for it) is used instead.

Before anything else, a process started without ``PYTHONHASHSEED`` starts itself again (same pid,
same arguments) with ``PYTHONHASHSEED=0``, which every process it starts inherits (the embedded
Ray, its env runners and trials). RLlib orders a multi-agent batch by iterating a ``set`` of agent
ids, and the order of a set of strings follows Python's per-process hash seed: without a fixed one,
two pool trainings with the same ``--seed`` sample differently from their first step. An explicit
``PYTHONHASHSEED`` (``random`` too) is left as it is (``docs/conventions.md#randomness``).
"""

import atexit
import contextlib
import os
import sys
import threading

from tune_configs.ops.runtime import HASH_SEED_ENV  # a light module (os, pathlib)


def _with_fixed_hash_seed() -> None:
    if "PYTHONHASHSEED" in os.environ:
        return
    os.environ.update(HASH_SEED_ENV)
    os.execv(sys.executable, [sys.executable, *sys.orig_argv[1:]])


if __name__ == "__main__":
    _with_fixed_hash_seed()

from launch.cli import main  # noqa: E402 (after the re-start above, which must come first)


def _exit(code: int) -> None:
    others = [t for t in threading.enumerate() if t is not threading.main_thread()]
    if any(t.is_alive() and not t.daemon for t in others):
        sys.exit(code)
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):
            stream.flush()
    os._exit(code)


if __name__ == "__main__":
    _exit(main())
