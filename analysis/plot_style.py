"""The look shared by the figures of :mod:`analysis.figures` and :mod:`analysis.curves`.

``plt`` is pyplot on the Agg backend (importing this module selects it): nothing goes on screen.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import pandas as pd

__all__ = ["DPI", "legend_below", "plt", "save", "tag_order", "trained_colors"]

DPI = 130


def trained_colors(n: int) -> list[Any]:
    """``n`` colours for trained policies, never the red and orange of the rule-based markers."""
    tab10 = plt.get_cmap("tab10")
    tab20 = plt.get_cmap("tab20")
    base = [tab10(i) for i in (0, 2, 4, 5, 6, 8, 9, 7)]
    extra = [tab20(i) for i in (1, 5, 9, 11, 13, 15, 17, 19)]
    palette = base + extra
    return [palette[i % len(palette)] for i in range(n)]


def tag_order(tags: pd.Series) -> pd.Series:
    """Sort key for tags: A, B, ..., Z, AA, ...; empty and unknown tags last."""
    return tags.map(lambda t: (len(str(t)) if str(t).isalpha() else 99, str(t)))


def legend_below(
    fig: Any, handles: Sequence[Any], labels: Sequence[str], ncol: int, title: str | None = None
) -> None:
    """Legend under the axes; the axes are laid out in the space the legend leaves."""
    leg = fig.legend(
        list(handles),
        list(labels),
        loc="lower center",
        ncol=max(1, ncol),
        fontsize=8,
        frameon=False,
        title=title,
        title_fontsize=8,
        bbox_to_anchor=(0.5, 0.0),
    )
    fig.canvas.draw()
    height = leg.get_window_extent(fig.canvas.get_renderer()).height / fig.bbox.height
    fig.tight_layout(rect=(0, min(0.6, height + 0.01), 1, 0.95))


def save(fig: Any, path: str | Path, **savefig: Any) -> Path:
    """Write ``fig`` to ``path`` (creating its directory), close it and return the path."""
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, **savefig)
    plt.close(fig)
    return out
