"""Which tests may use Ray, decided before anything imports it (used by ``tests/conftest.py``).

A test marked ``ray`` uses Ray: it starts Ray (in the test process or in a subprocess such as
``python -m launch train``), builds an RLlib algorithm, imports ``ray`` in the test process, or
checks Ray's internals; a module whose tests all do sets ``pytestmark = pytest.mark.ray``. The
rest is the core: ``pytest -m "not ray and not slow"`` never imports Ray (a core test's
subprocess may, e.g. a ``launch jobs`` client reporting an unreachable cluster), and
``tests/conftest.py`` fails the session if it does.

Nothing here imports Ray or the project's packages.
"""

from __future__ import annotations

import ast
import itertools
import re
from pathlib import Path

RAY = "ray"
# An identifier of a pytest match expression (``_pytest.mark.expression``'s grammar).
_IDENT = re.compile(r"[\w:+\-.\[\]\\/]+")
_KEYWORDS = frozenset({"and", "or", "not"})
_MAX_NAMES = 8  # 2**8 evaluations at most; beyond that the answer is "maybe" (True)


def ray_selectable(markexpr: str | None) -> bool:
    """Whether ``-m markexpr`` can select a test marked ``ray`` (True when unsure).

    False exactly when the expression is false for every test carrying ``ray``, whatever other
    markers it has: ``"not ray and not slow"`` and ``"not ray"`` exclude Ray; ``"not slow"`` (the
    default), ``"slow"``, ``"ray"`` or no expression do not.
    """
    if not markexpr:
        return True
    try:
        from _pytest.mark.expression import Expression

        expr = Expression.compile(markexpr)
    except Exception:  # a moved private API, or an expression pytest itself will reject
        return True
    names = sorted(set(_IDENT.findall(markexpr)) - _KEYWORDS - {RAY})
    if len(names) > _MAX_NAMES:
        return True
    for values in itertools.product((False, True), repeat=len(names)):
        present = frozenset({RAY, *(n for n, on in zip(names, values, strict=True) if on)})
        if expr.evaluate(_Markers(present)):
            return True
    return False


class _Markers:
    """A test's marker names, as the matcher of a ``-m`` expression (keyword arguments ignored)."""

    def __init__(self, names: frozenset[str]) -> None:
        self.names = names

    def __call__(self, name: str, /, **kwargs: object) -> bool:
        return name in self.names


def _is_ray_mark(node: ast.AST) -> bool:
    return (
        isinstance(node, ast.Attribute)
        and node.attr == RAY
        and isinstance(node.value, ast.Attribute)
        and node.value.attr == "mark"
    )


def declares_ray(path: Path) -> bool:
    """Whether the test module at ``path`` marks all its tests ``ray`` (a module-level
    ``pytestmark`` naming ``pytest.mark.ray``), read from its source without importing it."""
    try:
        tree = ast.parse(path.read_bytes(), str(path))
    except (OSError, SyntaxError, ValueError):
        return False
    for node in tree.body:
        if isinstance(node, ast.Assign):
            targets = node.targets
        elif isinstance(node, ast.AnnAssign) and node.value is not None:
            targets = [node.target]
        else:
            continue
        if any(isinstance(t, ast.Name) and t.id == "pytestmark" for t in targets):
            return any(_is_ray_mark(n) for n in ast.walk(node.value))
    return False


def prepare_ray_env() -> None:
    """This process's environment for Ray, before anything imports it: an embedded loopback Ray
    that joins no other cluster, its workers import this checkout, Tune's variables
    (:func:`tune_configs.ops.runtime.prepare_embedded`, :func:`~tune_configs.ops.runtime.
    use_tune_env`). Subprocesses (``python -m launch ...``) inherit it."""
    from tune_configs.ops import runtime

    runtime.prepare_embedded()
    runtime.use_tune_env()
