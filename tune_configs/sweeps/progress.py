"""Compact sweep progress for Tune (imports Ray: import it only after Ray is set up).

:class:`ProgressPrinter` prints one line per started, finished or failed trial (with the final
evaluation of finished ones) and a status line at most every ``every_s`` seconds, instead of Tune's
wide status tables. It holds only plain values, so Tune can pickle it into the experiment state and
restore it on ``--resume``.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from ray.tune import Callback


class ProgressPrinter(Callback):
    """One line per trial event, a status line every ``every_s`` seconds (to stdout)."""

    def __init__(
        self,
        dirname: Callable[[Any], str],
        max_failures: int,
        total: int | None = None,
        every_s: float = 60.0,
    ) -> None:
        self.dirname = dirname  # a trial's directory name (tune_configs.trials.trial_dirname)
        self.max_failures = max_failures  # retries of a crashed trial
        self.total = total
        self.every_s = every_s
        self._done = 0
        self._t0 = time.monotonic()
        self._last = self._t0

    def __setstate__(self, state: dict[str, Any]) -> None:  # restored on --resume
        self.__dict__.update(state)
        self._t0 = self._last = time.monotonic()

    def _line(self, text: str) -> None:
        elapsed = time.monotonic() - self._t0
        print(f"[{elapsed / 60:6.1f} min] {text}", file=sys.stdout, flush=True)

    def _count(self) -> str:
        return f"{self._done}/{self.total}" if self.total else f"{self._done} done"

    def on_trial_start(self, iteration: int, trials: list[Any], trial: Any, **info: Any) -> None:
        self._line(f"started  {self.dirname(trial)}")

    def on_trial_result(
        self, iteration: int, trials: list[Any], trial: Any, result: dict[str, Any], **info: Any
    ) -> None:
        self._status(trials)

    def on_trial_complete(self, iteration: int, trials: list[Any], trial: Any, **info: Any) -> None:
        self._done += 1
        desc = describe_result(trial.last_result or {})
        self._line(f"finished {self.dirname(trial)}  {desc}  [{self._count()}]")

    def on_trial_error(self, iteration: int, trials: list[Any], trial: Any, **info: Any) -> None:
        self._line(
            f"ERROR    {self.dirname(trial)} (a crashed trial is retried up to "
            f"{self.max_failures}x "
            f"from its last checkpoint; details in {trial.path}/error.txt)"
        )

    def _status(self, trials: Sequence[Any]) -> None:
        now = time.monotonic()
        if now - self._last < self.every_s:
            return
        self._last = now
        states: dict[str, int] = {}
        for t in trials:
            states[t.status] = states.get(t.status, 0) + 1
        running = [t for t in trials if t.status == "RUNNING"]
        steps = ", ".join(
            f"{self.dirname(t)} {int((t.last_result or {}).get('timesteps', 0)):,} steps"
            for t in running[:4]
        )  # fmt: skip
        counts = " ".join(f"{k.lower()} {v}" for k, v in sorted(states.items()))
        self._line(f"status   {counts}" + (f"  ({steps})" if steps else ""))


def describe_result(result: Mapping[str, Any]) -> str:
    """``served 90.1 %  sync 12.34  e2e 6.54`` from ``eval/*`` results (or the block size)."""
    if "eval/served_pct" in result:
        parts = [f"served {result['eval/served_pct']:.1f} %"]
        for key, label in (("eval/sync_delay", "sync"), ("eval/e2e_delay", "e2e")):
            if key in result:
                parts.append(f"{label} {result[key]:.2f}")
        if "eval/mean_w_b" in result and "timesteps" in result:
            parts.append(f"w=({result['eval/mean_w_b']:.2f},{result['eval/mean_w_c']:.2f})")
        return "  ".join(parts)
    if "policies" in result:
        return f"{int(result['policies'])} policies evaluated"
    return ""
