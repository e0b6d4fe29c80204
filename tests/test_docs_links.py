"""Every relative link in the repository's Markdown files resolves inside the repository.

The repository must stand on its own: a user who clones it has nothing beside it. For each
Markdown file tracked by git (``git ls-files '*.md'``; in a tree without git, every ``*.md`` outside
hidden and build directories) this test parses inline links and images (``[text](target)``,
``![alt](target)``) and reference definitions (``[id]: target``), skipping fenced code blocks and
code spans, and fails if a relative target does not exist or points outside the repository root.
Anchors (``#section``) and queries are ignored; ``http(s)://`` and ``mailto:`` links are allowed
and never fetched; any other URL scheme (``file:``, ...) is rejected.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path
from urllib.parse import unquote

import pytest

from tests.helpers.docs import plain_lines

ROOT = Path(__file__).resolve().parents[1]
EXTERNAL = ("http://", "https://", "mailto:")
SKIP_DIRS = {".venv", "results", "build", "node_modules"}

_CODE_SPAN = re.compile(r"(`+).+?\1")
_LINK_TEXT = r"!?\[(?:[^\[\]]|\[[^\[\]]*\])*\]"  # [text] or ![alt], one level of nested []
_DEST = r"(<[^>]*>|[^\s()]*(?:\([^\s()]*\)[^\s()]*)*)"  # <target> or target with balanced ()
_INLINE = re.compile(_LINK_TEXT + r"\(\s*" + _DEST)
_REF_DEF = re.compile(r"^ {0,3}\[[^\]]+\]:\s*(<[^>]*>|\S+)")
_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:")


def _skipped(rel: Path) -> bool:
    return any(part.startswith(".") or part in SKIP_DIRS for part in rel.parts)


def markdown_files(root: Path) -> list[Path]:
    """The Markdown files tracked by git under ``root`` (or found on disk without git)."""
    try:
        out = subprocess.run(
            ["git", "ls-files", "-z", "--", "*.md"],
            cwd=root, capture_output=True, check=True, text=True,
        )  # fmt: skip
        names = [n for n in out.stdout.split("\0") if n]
        files = [root / n for n in names]
    except (OSError, subprocess.CalledProcessError):
        files = [p for p in root.rglob("*.md") if not _skipped(p.relative_to(root))]
    return sorted(p for p in files if p.is_file())  # a tracked file may be deleted in the tree


def link_targets(text: str) -> list[tuple[int, str]]:
    """(line number, target) of every link outside code blocks and code spans."""
    out: list[tuple[int, str]] = []
    for lineno, line in plain_lines(text):
        plain = _CODE_SPAN.sub("", line)
        ref = _REF_DEF.match(plain)
        if ref:
            out.append((lineno, ref.group(1)))
            continue
        out.extend((lineno, m.group(1)) for m in _INLINE.finditer(plain))
    return [(n, t[1:-1] if t.startswith("<") and t.endswith(">") else t) for n, t in out]


def check_target(root: Path, md_file: Path, target: str) -> str | None:
    """Why ``target`` (a link in ``md_file``) is broken, or None if it is fine."""
    if target.startswith(EXTERNAL):
        return None
    if _SCHEME.match(target):
        return "uses a URL scheme other than http(s) or mailto"
    path = unquote(target.split("#", 1)[0].split("?", 1)[0])
    if not path:
        return None  # an anchor in the same file
    base = root if path.startswith("/") else md_file.parent
    resolved = (base / path.lstrip("/")).resolve()
    root = root.resolve()
    if resolved != root and root not in resolved.parents:
        return "points outside the repository"
    if not resolved.exists():
        return "does not exist"
    return None


def broken_links(root: Path, files: list[Path]) -> list[str]:
    problems = []
    for md in files:
        for lineno, target in link_targets(md.read_text(encoding="utf-8")):
            why = check_target(root, md, target)
            if why:
                problems.append(f"{md.relative_to(root)}:{lineno}: {target!r} {why}")
    return problems


def test_repository_markdown_links_resolve_inside_the_repository() -> None:
    files = markdown_files(ROOT)
    assert any(p.name == "README.md" and p.parent == ROOT for p in files), files
    problems = broken_links(ROOT, files)
    assert not problems, "broken Markdown links:\n" + "\n".join(problems)


# --- the checker itself ---------------------------------------------------------------------------
@pytest.fixture
def tree(tmp_path: Path) -> Path:
    root = tmp_path / "repo"
    (root / "docs").mkdir(parents=True)
    (root / "docs" / "model.md").write_text("# Model\n")
    (root / "outside.md").write_text("x\n")
    (tmp_path / "sibling.md").write_text("x\n")
    return root


def _problems(root: Path, text: str, where: str = "README.md") -> list[str]:
    md = root / where
    md.write_text(text)
    return broken_links(root, [md])


def test_checker_accepts_links_that_resolve(tree: Path) -> None:
    text = (
        "See [the model](docs/model.md#radio), ![fig](<docs/model.md>), [top](#top),\n"
        "[ext](https://example.org/x.md), [mail](mailto:a@b.c), [root](/docs/model.md).\n"
        "[ref]: docs/model.md\n"
    )
    assert _problems(tree, text) == []
    assert _problems(tree, "[back](../outside.md) [me](model.md)\n", "docs/index.md") == []


def test_checker_reports_missing_and_escaping_targets(tree: Path) -> None:
    text = (
        "[gone](docs/missing.md)\n"
        "[spec](../sibling.md)\n"
        "[deep](docs/../../sibling.md#x)\n"
        "[file](file:///etc/passwd)\n"
        "[ref]: ../sibling.md\n"
    )
    problems = _problems(tree, text)
    assert len(problems) == 5, problems
    assert "does not exist" in problems[0]
    assert all("outside the repository" in p for p in problems[1:3] + problems[4:])
    assert "scheme" in problems[3]


def test_checker_ignores_code(tree: Path) -> None:
    text = "```bash\necho [x](nowhere.md)\n```\nInline `[y](nowhere.md)` code.\n"
    assert _problems(tree, text) == []
    assert _problems(tree, "~~~\n[x](nowhere.md)\n~~~\n[z](nowhere.md)\n") != []


def test_markdown_files_lists_tracked_markdown() -> None:
    names = {p.relative_to(ROOT).as_posix() for p in markdown_files(ROOT)}
    assert "README.md" in names
    assert all(n.endswith(".md") for n in names)
