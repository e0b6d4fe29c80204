"""Commit markers of result sets (:mod:`analysis.resultset`): a set counts only when its
``summary.json``, written last, exists and matches the episodes it summarises; ``launch report``
skips every other set and names it."""

from __future__ import annotations

import errno
import json
from pathlib import Path

import pytest

from analysis.collect import collect
from analysis.report import write_report
from analysis.resultset import (
    DIGEST_KEY,
    EPISODES_FILE,
    RUN_FILE,
    SUMMARY_FILE,
    UncommittedResultSet,
    commit_problem,
    read_result_set,
)
from tests.analysis.test_analysis_collect import fake_rows, write_set


def _static(out: Path, w_b: float, episodes: int = 6) -> None:
    name = f"static({w_b:g},0.4)"
    write_set(out, "static", fake_rows(name, "static", w_b, 0.4, episodes, 9, 6, 90))


def _rows(path: Path) -> list[bytes]:
    return (path / EPISODES_FILE).read_bytes().splitlines(keepends=True)


@pytest.fixture
def sets(tmp_path: Path) -> dict[str, Path]:
    """Six result sets: one committed, five that must not count."""
    d = {name: tmp_path / name for name in ("good", "no_summary", "cut_rows", "cut_rows_legacy",
                                            "rewritten", "half_row")}  # fmt: skip
    for i, path in enumerate(d.values()):
        _static(path, round(0.1 * (i + 1), 1))
    (d["no_summary"] / SUMMARY_FILE).unlink()  # a writer stopped before its last file
    # cut exactly at a row boundary: the CSV still ends with a newline and parses
    rows = _rows(d["cut_rows"])
    (d["cut_rows"] / EPISODES_FILE).write_bytes(b"".join(rows[:-2]))
    # the same cut in a result set written before summaries carried the digest
    legacy = d["cut_rows_legacy"]
    summary = json.loads((legacy / SUMMARY_FILE).read_text())
    (legacy / SUMMARY_FILE).write_text(json.dumps([
        {k: v for k, v in s.items() if k != DIGEST_KEY} for s in summary
    ]))  # fmt: skip
    (legacy / EPISODES_FILE).write_bytes(b"".join(_rows(legacy)[:-1]))
    # as many rows, other numbers (e.g. a rerun that died before its new summary.json)
    text = (d["rewritten"] / EPISODES_FILE).read_text()
    (d["rewritten"] / EPISODES_FILE).write_text(text.replace(",90.0,", ",91.0,"))
    rows = _rows(d["half_row"])
    (d["half_row"] / EPISODES_FILE).write_bytes(b"".join(rows)[:-9])
    return d


def test_only_the_committed_set_counts_and_each_other_is_named(sets: dict[str, Path]) -> None:
    assert commit_problem(sets["good"]) is None
    reasons = {name: commit_problem(path) for name, path in sets.items() if name != "good"}
    assert "summary.json: missing" in str(reasons["no_summary"])
    assert "does not match" in str(reasons["cut_rows"]) and "sha256" in str(reasons["cut_rows"])
    assert "5 rows, summarised 6" in str(reasons["cut_rows_legacy"])
    assert "does not match" in str(reasons["rewritten"])
    assert all(r is not None for r in reasons.values()), reasons
    meta, episodes, _ = read_result_set(sets["good"])
    assert meta["kind"] == "static" and len(episodes) == 6
    for name in reasons:
        with pytest.raises((FileNotFoundError, UncommittedResultSet)):
            read_result_set(sets[name])


def test_report_skips_and_names_every_uncommitted_set(
    sets: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    root = next(iter(sets.values())).parent
    c = collect(root, write=False)
    assert sorted(p.name for p, _ in c.skipped) == sorted(n for n in sets if n != "good")
    assert set(c.episodes["source"]) == {"good"}
    text = write_report(root, reps=50).read_text()
    err = capsys.readouterr().err
    for name in sets:
        if name != "good":
            assert f"Skipped {name}" in text, name
            assert f"skipped {sets[name]}" in err, name


def test_rewriting_a_set_removes_its_old_marker_first(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A rewrite that fails after the old summary.json was removed leaves an uncommitted set
    (never the old marker beside new rows); the failing file write leaves no temporary file."""
    import analysis.resultset as rs

    out = tmp_path / "set"
    _static(out, 0.3)
    assert commit_problem(out) is None
    real = rs._write_atomic

    def full_disk(path: Path, data: bytes) -> None:
        if path.name == EPISODES_FILE:
            with path.with_name(f".{path.name}.tmp").open("wb") as fh:
                fh.write(data[: len(data) // 2])
            path.with_name(f".{path.name}.tmp").unlink()
            raise OSError(errno.ENOSPC, "No space left on device", str(path))
        real(path, data)

    monkeypatch.setattr(rs, "_write_atomic", full_disk)
    with pytest.raises(OSError, match="No space left"):
        _static(out, 0.3, episodes=8)
    assert not (out / SUMMARY_FILE).exists()
    assert sorted(p.name for p in out.iterdir()) == [EPISODES_FILE, RUN_FILE]
    assert "missing" in str(commit_problem(out))


def test_atomic_write_names_the_path_and_leaves_nothing_on_error(tmp_path: Path) -> None:
    from analysis.resultset import write_json

    target = tmp_path / "no_such_dir" / "x.json"
    with pytest.raises(OSError) as info:
        write_json(target, {"a": 1})
    assert str(target.parent) in str(info.value)
    assert list(tmp_path.iterdir()) == []
