"""RLlib callback that logs the MetaLore episode metrics (they show in results and TensorBoard).

At the truncating step the env puts ``info["episode_metrics"]`` (see
``envs.core.metrics.SUMMARY_KEYS``) into the episode; :class:`MetaLoreMetrics` reads it in
``on_episode_end`` and logs, per finished episode, under ``env_runners/metalore/<name>``:

* ``sync_delay``, ``e2e_delay`` [steps] (skipped for an episode that completed no UE job),
* ``served_pct`` [%], ``episode_return`` and its parts ``sync_reward`` and ``delay_penalty``,
* ``left_queued`` (UE jobs still queued at the horizon), ``mean_w_b``, ``mean_w_c`` (mean applied
  action).

Each is a windowed mean over the last :data:`WINDOW` episodes. Tune writes them to TensorBoard as
``ray/tune/env_runners/metalore/<name>``.
"""

from __future__ import annotations

import math
from typing import Any

from ray.rllib.callbacks.callbacks import RLlibCallback

PREFIX = "metalore"
LOGGED_KEYS: tuple[str, ...] = (
    "sync_delay",
    "e2e_delay",
    "served_pct",
    "episode_return",
    "sync_reward",
    "delay_penalty",
    "left_queued",
    "mean_w_b",
    "mean_w_c",
)
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
