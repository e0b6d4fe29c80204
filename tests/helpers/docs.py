"""Shared helpers for the documentation tests: Markdown lines outside fenced code blocks."""

from __future__ import annotations

import re

_FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})")


def plain_lines(text: str) -> list[tuple[int, str]]:
    """(line number, line) outside fenced code blocks (the fence lines themselves left out)."""
    out: list[tuple[int, str]] = []
    fence: str | None = None
    for lineno, line in enumerate(text.splitlines(), start=1):
        m = _FENCE.match(line)
        if m:
            marker = m.group(1)
            if fence is None:
                fence = marker[0] * len(marker)
            elif marker.startswith(fence):
                fence = None
            continue
        if fence is None:
            out.append((lineno, line))
    return out
