"""RLlib callbacks that log episode metrics (they show in results and TensorBoard).

:class:`PoolMetrics` does the same for the credit pool: the CIVIC metrics of every finished
episode (:mod:`envs.core.pool.civic`) under ``env_runners/civic/<name>`` (overall, the
``TRAINING_KEYS``), ``env_runners/civic/cell<i>/<name>`` (per cell, with the units each cell lent
and borrowed: the trades), with a surge ``env_runners/civic/<phase>/<name>`` and, for a mix of
layouts (the city controller), ``env_runners/civic/layout/<preset>/<name>`` per layout played.


At the truncating step the env puts ``info["episode_metrics"]`` (see
``envs.core.metrics.SUMMARY_KEYS``) into the episode; :class:`MetaLoreMetrics` reads it in
``on_episode_end`` and logs, per finished episode, under ``env_runners/metalore/<name>`` the
headline metrics :data:`envs.core.metrics.HEADLINE_KEYS` (sync and E2E delay, served %, return
and its parts, jobs left queued, mean action; delays are skipped for an episode that completed no
UE job).

Each is a windowed mean over the last :data:`WINDOW` episodes. Tune writes them to TensorBoard as
``ray/tune/env_runners/metalore/<name>``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from ray.rllib.callbacks.callbacks import RLlibCallback

from envs.core.metrics import HEADLINE_KEYS
from envs.core.pool.civic import CELL_TRAINING_KEYS, PHASE_TRAINING_KEYS, TRAINING_KEYS

PREFIX = "metalore"
CIVIC_PREFIX = "civic"  # the pool's CIVIC metrics: env_runners/civic/...
LOGGED_KEYS: tuple[str, ...] = HEADLINE_KEYS
WINDOW = 100  # episodes in the smoothing window (RLlib's own episode_return_mean uses 100)


def metric_name(key: str) -> str:
    """Flattened result / Tune metric name of a logged key, e.g. ``env_runners/metalore/x``."""
    return f"env_runners/{PREFIX}/{key}"


def episode_metrics_from_infos(infos: list[Any]) -> dict[str, Any] | None:
    """The ``episode_metrics`` dict of an episode's last info, or None if absent."""
    for info in reversed(infos):
        if isinstance(info, dict) and "episode_metrics" in info:
            metrics: dict[str, Any] = info["episode_metrics"]
            return metrics
    return None


class MetaLoreMetrics(RLlibCallback):
    """Logs the MetaLore episode summary of every finished training episode."""

    def on_episode_end(
        self,
        *,
        episode: Any,
        metrics_logger: Any = None,
        **kwargs: Any,
    ) -> None:
        if metrics_logger is None:
            return
        metrics = episode_metrics_from_infos([episode.get_infos(-1)])
        if metrics is None:
            return
        for key in LOGGED_KEYS:
            value = metrics.get(key)
            if value is None or not math.isfinite(float(value)):
                continue
            metrics_logger.log_value((PREFIX, key), float(value), reduce="mean", window=WINDOW)


def civic_metric_name(*parts: str) -> str:
    """Result / Tune metric name, e.g. ``civic_metric_name("fulfillment_pct")``."""
    return "/".join(("env_runners", CIVIC_PREFIX, *parts))


def civic_from_infos(infos: Any) -> dict[str, Any] | None:
    """The ``civic`` metrics dict in an episode's last infos (multi- or single-agent)."""
    if not isinstance(infos, dict):
        return None
    if "civic" in infos and isinstance(infos["civic"], dict):
        return infos["civic"]
    for value in infos.values():
        if isinstance(value, dict) and isinstance(value.get("civic"), dict):
            found: dict[str, Any] = value["civic"]
            return found
    return None


def layout_of(infos: Any) -> str | None:
    """The layout (preset) a mix of layouts played in this episode, from its last infos."""
    if isinstance(infos, dict):
        for value in infos.values():
            if isinstance(value, dict) and isinstance(value.get("layout"), str):
                return str(value["layout"])
    return None


def civic_log_items(
    civic: Mapping[str, Any], layout: str | None = None
) -> list[tuple[tuple[str, ...], float]]:
    """``(key path, value)`` pairs the callback logs for one episode's CIVIC metrics (and, for
    an episode of a mix of layouts, the overall ones under ``layout/<preset>/`` too)."""
    items: list[tuple[tuple[str, ...], float]] = []

    def add(path: tuple[str, ...], value: Any) -> None:
        if value is None:
            return
        v = float(value)
        if math.isfinite(v):
            items.append((path, v))

    for key in TRAINING_KEYS:
        add((CIVIC_PREFIX, key), civic.get(key))
        if layout is not None:
            add((CIVIC_PREFIX, "layout", layout, key), civic.get(key))
    for c, cell in enumerate(civic.get("cells", [])):
        for key in CELL_TRAINING_KEYS:
            add((CIVIC_PREFIX, f"cell{c}", key), cell.get(key))
    for phase, pm in civic.get("phases", {}).items():
        for key in PHASE_TRAINING_KEYS:
            add((CIVIC_PREFIX, phase, key), pm.get(key))
    return items


class PoolMetrics(RLlibCallback):
    """Logs the CIVIC metrics of every finished training episode (see the module docstring)."""

    def on_episode_end(self, *, episode: Any, metrics_logger: Any = None, **kwargs: Any) -> None:
        if metrics_logger is None:
            return
        infos = episode.get_infos(-1)
        civic = civic_from_infos(infos)
        if civic is None:
            return
        for path, value in civic_log_items(civic, layout_of(infos)):
            metrics_logger.log_value(path, value, reduce="mean", window=WINDOW)
