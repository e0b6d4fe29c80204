"""The documentation index lists every page, and every pointer into the docs names a real section.

* ``docs/README.md`` is the index: every Markdown page under ``docs/`` is linked from it (except
  the pages the paper study generates, named in :data:`GENERATED`), and every page it links exists.
* Every Markdown link with an anchor (``page.md#section`` or ``#section``) names a heading of its
  target page, with GitHub's anchor rules (lower case, punctuation dropped, spaces to hyphens,
  ``-1``, ``-2`` for repeated headings; explicit ``<a id=...>`` anchors count too).
* Docstrings and comments of the product packages point into the docs as
  ``docs/<page>.md#<anchor>``: the page must exist and the anchor must be one of its sections.
  They never cite a document outside the repository by section number ("spec section 4",
  "spec 3.1").
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from tests.helpers.docs import plain_lines


def _root() -> Path:
    here = Path(__file__).resolve().parent
    for d in (here, *here.parents):
        if (d / "pyproject.toml").is_file() and (d / "docs").is_dir():
            return d
    raise RuntimeError("repository root not found")


ROOT = _root()
DOCS = ROOT / "docs"
INDEX = DOCS / "README.md"
# written by ``python -m tune_configs.studies.paper_docs`` (the paper study's output), not by hand
GENERATED = frozenset({"docs/results/README.md", "docs/results/table_one_pooled.md"})
PRODUCT = ("envs", "analysis", "tune_configs", "launch", "docker")
SKIP_DIRS = {".venv", "build", "node_modules"}  # and the top-level results/ (run outputs)

_CODE_SPAN = re.compile(r"(`+).+?\1")
_HEADING = re.compile(r"^ {0,3}(#{1,6})\s+(.*?)\s*#*\s*$")
_HTML_ANCHOR = re.compile(r"<a\s+(?:id|name)=[\"']([^\"']+)[\"']", re.IGNORECASE)
_LINK_TEXT = r"!?\[(?:[^\[\]]|\[[^\[\]]*\])*\]"  # [text] or ![alt], one level of nested []
_DEST = r"(<[^>]*>|[^\s()]*(?:\([^\s()]*\)[^\s()]*)*)"  # <target> or target with balanced ()
_LINK = re.compile(_LINK_TEXT + r"\(\s*" + _DEST)
_DOC_POINTER = re.compile(r"\bdocs/[\w./-]*?\.md(?:#[\w-]+)?")
_SPEC_SECTION = re.compile(r"\bspec(?:\s+section)?\s+\d|\bspec\s+§|§\s*\d", re.IGNORECASE)


def _tracked(pattern: str) -> list[Path]:
    """Files tracked by git matching ``pattern`` (or found on disk without git)."""
    try:
        out = subprocess.run(
            ["git", "ls-files", "-z", "--", pattern],
            cwd=ROOT, capture_output=True, check=True, text=True,
        )  # fmt: skip
        files = [ROOT / n for n in out.stdout.split("\0") if n]
    except (OSError, subprocess.CalledProcessError):
        prefix, _, suffix = pattern.rpartition("*")
        files = [
            p
            for p in ROOT.rglob(f"*{suffix}")
            if _rel(p).startswith(prefix) and not _skipped(p.relative_to(ROOT).parts[:-1])
        ]
    return sorted(p for p in files if p.is_file())


def _skipped(dirs: tuple[str, ...]) -> bool:
    return dirs[:1] == ("results",) or any(d.startswith(".") or d in SKIP_DIRS for d in dirs)


def _rel(path: Path) -> str:
    return path.resolve().relative_to(ROOT).as_posix()


def slug(heading: str) -> str:
    """GitHub's anchor of a heading's text."""
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # a link keeps its text
    text = re.sub(r"<[^>]+>", "", text).strip().lower()
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def anchors(md: Path) -> set[str]:
    """Every anchor a Markdown page defines."""
    found: set[str] = set()
    seen: dict[str, int] = {}
    for _, line in plain_lines(md.read_text(encoding="utf-8")):
        found.update(_HTML_ANCHOR.findall(line))
        m = _HEADING.match(line)
        if not m:
            continue
        base = slug(m.group(2))
        n = seen.get(base, 0)
        seen[base] = n + 1
        found.add(base if n == 0 else f"{base}-{n}")
    return found


def links(md: Path) -> list[tuple[int, str]]:
    """(line number, target) of every inline link outside code."""
    out: list[tuple[int, str]] = []
    for lineno, line in plain_lines(md.read_text(encoding="utf-8")):
        for m in _LINK.finditer(_CODE_SPAN.sub("", line)):
            t = m.group(1)
            out.append((lineno, t[1:-1] if t.startswith("<") and t.endswith(">") else t))
    return out


def _local(target: str) -> bool:
    return not re.match(r"^[A-Za-z][A-Za-z0-9+.-]*:", target)


# --- the index ------------------------------------------------------------------------------------
def indexed_pages() -> set[str]:
    """Repository paths of the local pages and directories ``docs/README.md`` links to."""
    pages = set()
    for _, target in links(INDEX):
        path = target.split("#", 1)[0].split("?", 1)[0]
        if path and _local(target):
            resolved = (INDEX.parent / path).resolve()
            if DOCS.resolve() in resolved.parents:
                pages.add(_rel(resolved) if resolved.exists() else path)
    return pages


def test_every_docs_page_is_in_the_index() -> None:
    pages = {_rel(p) for p in _tracked("docs/*.md")} - {_rel(INDEX)}
    missing = sorted(pages - GENERATED - indexed_pages())
    assert not missing, f"pages under docs/ missing from docs/README.md: {missing}"


def test_every_indexed_page_exists() -> None:
    gone = []
    for lineno, target in links(INDEX):
        path = target.split("#", 1)[0].split("?", 1)[0]
        if path and _local(target) and not (INDEX.parent / path).exists():
            gone.append(f"docs/README.md:{lineno}: {target}")
    assert not gone, "docs/README.md lists pages that do not exist:\n" + "\n".join(gone)


def test_generated_pages_exist() -> None:
    assert all((ROOT / p).is_file() for p in GENERATED), sorted(GENERATED)


# --- anchors --------------------------------------------------------------------------------------
def _anchor_problem(page: Path, anchor: str) -> str | None:
    if not page.is_file():
        return "page does not exist"
    if page.suffix != ".md" or anchor in anchors(page):
        return None
    return f"no section #{anchor} in {_rel(page)}"


def test_markdown_anchors_name_sections() -> None:
    problems = []
    for md in _tracked("*.md"):
        for lineno, target in links(md):
            if "#" not in target or not _local(target):
                continue
            path, anchor = target.split("#", 1)
            page = (md.parent / path).resolve() if path else md
            if ROOT.resolve() not in page.parents:
                continue  # test_docs_links reports links that leave the repository
            why = _anchor_problem(page, anchor)
            if why:
                problems.append(f"{_rel(md)}:{lineno}: {target!r}: {why}")
    assert not problems, "broken anchors:\n" + "\n".join(problems)


def _product_sources() -> list[Path]:
    return [p for p in _tracked("*.py") if _rel(p).split("/", 1)[0] in PRODUCT]


def test_code_points_at_existing_docs_sections() -> None:
    problems = []
    for src in _product_sources():
        for lineno, line in enumerate(src.read_text(encoding="utf-8").splitlines(), start=1):
            for ref in _DOC_POINTER.findall(line):
                path, _, anchor = ref.partition("#")
                page = ROOT / path
                why = "page does not exist" if not page.is_file() else None
                if not why and anchor:
                    why = _anchor_problem(page, anchor)
                if why:
                    problems.append(f"{_rel(src)}:{lineno}: {ref}: {why}")
    assert not problems, "docs pointers in code that do not resolve:\n" + "\n".join(problems)


def test_code_never_cites_the_spec_by_section_number() -> None:
    hits = [
        f"{_rel(src)}:{lineno}: {line.strip()}"
        for src in _product_sources()
        for lineno, line in enumerate(src.read_text(encoding="utf-8").splitlines(), start=1)
        if _SPEC_SECTION.search(line)
    ]
    assert not hits, "cite docs/model/<page>.md#<anchor> instead:\n" + "\n".join(hits)


# --- the helpers themselves -----------------------------------------------------------------------
@pytest.mark.parametrize(
    ("heading", "anchor"),
    [
        ("Where DRL pays: the adaptivity study", "where-drl-pays-the-adaptivity-study"),
        ("The shipped policy (`models/paper/adaptive`)", "the-shipped-policy-modelspaperadaptive"),
        ("Results (seeds 20000-20099, 0.1 grid)", "results-seeds-20000-20099-01-grid"),
        ("The `paper_dynamic` preset", "the-paper_dynamic-preset"),
        ("See [the model](cell.md)", "see-the-model"),
    ],
)
def test_slug_follows_github(heading: str, anchor: str) -> None:
    assert slug(heading) == anchor


def test_anchors_of_a_page(tmp_path: Path) -> None:
    md = tmp_path / "page.md"
    md.write_text(
        "# Title\n\n## Step\n\n```\n# not a heading\n```\n\n## Step\n\n"
        '<a id="custom"></a>\n### Radio (spec)\n'
    )
    assert anchors(md) == {"title", "step", "step-1", "custom", "radio-spec"}


def test_spec_citation_pattern() -> None:
    for cited in ("spec section 4", "Spec 3.1", "(spec 1, load check)", "spec §5", "§ 8"):
        assert _SPEC_SECTION.search(cited), cited
    for fine in ("module_spec", "the RLModule spec of", "docs/model/cell.md#reward"):
        assert not _SPEC_SECTION.search(fine), fine
