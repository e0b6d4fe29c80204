"""One table of seed ranges: envs/core/seeds.py and docs/model/cell.md#seed-ranges agree."""

from __future__ import annotations

import itertools
import re
from pathlib import Path

from envs.core import seeds

DOC = Path(__file__).resolve().parents[2] / "docs" / "model" / "cell.md"


def test_the_doc_table_is_the_module() -> None:
    text = DOC.read_text().split("### Seed ranges", 1)[1].split("\n## ", 1)[0]
    rows = re.findall(r"^\| `(\w+)` \| ([\d,]+) \|", text, flags=re.M)
    assert {name: int(first.replace(",", "")) for name, first in rows} == seeds.RANGES
    assert all(getattr(seeds, name) == first for name, first in seeds.RANGES.items())


def test_the_ranges_are_apart() -> None:
    firsts = sorted(seeds.RANGES.values())
    # at least 1,000 episodes between two ranges (evaluations use 100; searches 10-100)
    assert all(b - a >= 1_000 for a, b in itertools.pairwise(firsts))
