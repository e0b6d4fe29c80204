"""Shared pieces of the hostile-input tests (hypothesis, in-process): any JSON value, text that is
not JSON, and the settings every such test uses."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

_SCALARS = (
    st.none() | st.booleans() | st.integers() | st.floats()
    | st.integers(min_value=-3, max_value=12) | st.floats(min_value=-1.0, max_value=300.0)
    | st.text(max_size=6)
    | st.sampled_from(["poisson", "fixed", "raw", "log1p", "residual", "single", "tanh", ""])
)  # fmt: skip
# any JSON value: numbers of every size, NaN and infinities, strings, nested lists and objects
JSON = st.recursive(
    _SCALARS,
    lambda inner: (
        st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=4), inner, max_size=3)
    ),
    max_leaves=10,
)
# what a user may type after NAME=: JSON, or any other text (taken as a string)
RAW = JSON.map(lambda v: json.dumps(v)) | st.text(max_size=10)


def examples(n: int) -> settings:
    """Hypothesis settings: ``n`` examples, no deadline (a busy machine), fixtures allowed, and
    the same examples in every run (``derandomize``: CI never fails on a draw nobody saw before;
    to explore new draws, set it to False here and run with ``--hypothesis-seed=K``)."""
    return settings(
        max_examples=n, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True
    )


def parsed(raw: str) -> Any:
    """The value ``--set NAME=raw`` gives (JSON when it parses, else the text)."""
    try:
        return json.loads(raw)
    except json.JSONDecodeError:
        return raw


def nothing_written(root: Path) -> bool:
    return not any(Path(root).iterdir())
