"""A Tune callback that keeps a whole copy of the driver's newest saved state (imports Ray).

Tune copies its saved state into the experiment directory file by file: no file is cut
(:mod:`tune_configs.ops.storage`), but a driver killed between two files leaves states of two
saves, and a state cut by anything else must not strand the sweep
(:mod:`tune_configs.ops.tune_state`). :class:`StateKeeper` runs in the
driver after each step of Tune's loop; when Tune has saved anew (the staging copy of
``experiment_state`` changed), it copies that save, whole, into ``kept-state/`` of the
experiment (:func:`tune_configs.ops.tune_state.keep`), which ``--resume`` falls back on. A copy
that fails is tried again at most every ``retry_s`` seconds. Storage that is not a local (or
mounted) file system is left to Tune.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from ray.tune import Callback

from tune_configs.ops.tune_state import EXPERIMENT, keep, saved


class StateKeeper(Callback):
    """Keeps the newest whole save of Tune's experiment state (module docstring)."""

    def __init__(self, retry_s: float = 5.0) -> None:
        self.retry_s = retry_s
        self._kept: int | None = None  # mtime (ns) of the staging save kept last
        self._tried = -float("inf")  # when a copy last failed (monotonic)

    def __setstate__(self, state: dict[str, Any]) -> None:  # restored on --resume
        self.__dict__.update(state)
        self._kept, self._tried = None, -float("inf")

    def on_step_end(self, iteration: int, trials: list[Any], **info: Any) -> None:
        if trials:
            self.keep(Path(trials[0].local_experiment_path), Path(trials[0].remote_experiment_path))

    def on_experiment_end(self, trials: list[Any], **info: Any) -> None:
        self._tried = -float("inf")  # the final save: copied now, whatever the last failure
        self.on_step_end(0, trials)

    def keep(self, staging: Path, exp: Path) -> bool:
        """Copy the newest save in ``staging`` into ``exp`` if it is new (True if copied)."""
        states = saved(staging, EXPERIMENT)
        if not states or not exp.is_dir():
            return False
        try:
            stamp = states[-1].stat().st_mtime_ns
        except OSError:
            return False
        now = time.monotonic()
        if stamp == self._kept or now - self._tried < self.retry_s:
            return False
        if keep(staging, exp) is None:
            self._tried = now
            return False
        self._kept = stamp
        return True
