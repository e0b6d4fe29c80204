"""The file system every sweep hands Tune for its storage: local files, replaced whole.

Tune writes its state and each trial's logs (``result.json``, ``progress.csv``, TensorBoard
events) in a staging directory of the driver, then copies the whole staging directory into the
experiment directory, again and again, every file of every trial, finished ones included
(``pyarrow.fs.copy_files``). Into a plain local file system that copy truncates each file and
writes it anew: a full disk, or a driver killed in the middle, leaves a finished trial's
``result.json`` empty, or Tune's only ``experiment_state`` cut short.

:func:`whole_file_system` is a local file system whose writes never leave a file cut. Each file
it is given is compared with the one already there: the same bytes are not written again (a
finished trial's files are left alone); a log that only grew gets the new bytes appended in place
(a reader that keeps the file open, as TensorBoard's data server does, reads on), cut back to its
old length if the append fails; anything else goes to a hidden file beside the target, renamed
into place once whole (``os.replace``: a reader sees the old file or the new one, never a part).
A write that fails (``ENOSPC``) gives its space back and leaves the old file as it was.
Everything else is the local file system's. Trials on other nodes receive it pickled and write
their checkpoints the same way. A driver killed half-way leaves hidden ``.partial-*`` files,
which ``--resume`` removes (:func:`remove_leftovers`).

pyarrow's copy threads drop the Python file objects they wrote through just after
``copy_files`` returns; a process that ends in that instant can abort (Python stops a thread that
asks for the GIL during its exit). Tune's driver and trials never end right after a copy (the
driver stops Ray first, which takes seconds); the test that makes a copy fail ends its process
with ``os._exit``.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import Any

import pyarrow
import pyarrow.fs as pafs

TYPE_NAME = "metalore-whole-local"
# A file being written: ``.partial-PID-ID`` beside its target, renamed into place once whole. The
# name keeps nothing of the target's, so no reader takes it for the target's kind (TensorBoard
# reads every file with "tfevents" in its name).
HIDDEN = ".partial-"


class _Writer:
    """A binary writer for ``target`` that never leaves it cut (module docstring).

    It compares what it is given with the file already there, and then:

    * the same bytes: writes nothing (a finished trial's files are not touched again);
    * the old bytes and more (a log that grew): appends the rest in place, so a reader that
      keeps the file open (TensorBoard) reads on; a failed append cuts the file back to its old
      length;
    * anything else, or no old file: writes a hidden file beside it and renames it into place
      on a clean close; a failed write removes the hidden file.

    A failure gives the space back at once and leaves ``target`` as it was.
    """

    def __init__(self, target: str) -> None:
        self.target = target
        self.closed = False
        self._pos = 0  # bytes given so far
        self._hidden: str | None = None
        self._out: Any = None  # where the bytes go once they differ (None: still the same)
        try:  # unbuffered: an append that fails leaves no bytes behind to be written at close
            self._old: Any = open(target, "r+b", buffering=0)  # noqa: SIM115 (closed in close() or abandon())
        except FileNotFoundError:
            self._old = None
            self._replace(b"")
        self._old_size = os.fstat(self._old.fileno()).st_size if self._old is not None else 0

    def _read_old(self, n: int) -> bytes:
        """Up to ``n`` bytes of the old file from where it stands (fewer only at its end)."""
        parts, left = [], n
        while left > 0 and (part := self._old.read(left)):
            parts.append(part)
            left -= len(part)
        return b"".join(parts)

    def _replace(self, head: bytes) -> None:
        self._hidden = os.path.join(
            os.path.dirname(self.target), f"{HIDDEN}{os.getpid()}-{id(self):x}"
        )
        self._out = open(self._hidden, "wb")  # noqa: SIM115 (closed in close() or abandon())
        self._out.write(head)

    def write(self, data: Any) -> int:
        chunk = bytes(data)
        try:
            if self._out is None:  # the same bytes so far: compare with the old file
                old = self._read_old(len(chunk))
                same = chunk[: len(old)] == old
                if same and len(old) == len(chunk):
                    self._pos += len(chunk)
                    return len(chunk)
                if same:  # the old file ends inside this chunk: append the rest in place
                    self._out = self._old
                    self._out.seek(self._old_size)
                    chunk = chunk[len(old) :]
                    self._pos += len(old)
                else:  # different: the old head so far, then this, into a hidden file
                    self._old.seek(0)
                    self._replace(self._read_old(self._pos))
            out: Any = self._out  # set by now (mypy keeps the narrowing to None above)
            view = memoryview(chunk)
            while view:  # the old file is unbuffered: a write may take part of the bytes
                view = view[out.write(view) :]
            self._pos += len(chunk)
            return len(data)
        except BaseException:
            self.abandon()
            raise

    def flush(self) -> None:
        if self._out is not None:
            try:
                self._out.flush()
            except BaseException:
                self.abandon()
                raise

    def tell(self) -> int:
        return self._pos

    def writable(self) -> bool:
        return True

    def readable(self) -> bool:
        return False

    def seekable(self) -> bool:
        return False

    def abandon(self) -> None:
        """Stop without finishing: the target is left (or cut back to) as it was."""
        if self.closed:
            return
        self.closed = True
        with contextlib.suppress(OSError):
            if self._out is not None and self._out is self._old:  # an append: undone
                os.ftruncate(self._old.fileno(), self._old_size)
        for fh in (self._out, self._old):
            if fh is not None:
                with contextlib.suppress(OSError):
                    fh.close()
        if self._hidden is not None:
            with contextlib.suppress(OSError):
                os.unlink(self._hidden)

    def close(self) -> None:
        """Finish: an append is flushed, a hidden file renamed into place (a failure abandons)."""
        if self.closed:
            return
        try:
            if self._out is None and self._pos < self._old_size:  # shorter than the old file
                self._old.seek(0)
                self._replace(self._read_old(self._pos))
            if self._out is not None:
                self._out.flush()  # a full disk fails here at the latest
        except BaseException:
            self.abandon()
            raise
        self.closed = True
        for fh in (self._out, self._old):
            if fh is not None:
                fh.close()
        if self._hidden is not None:
            os.replace(self._hidden, self.target)

    def __del__(self) -> None:  # dropped unclosed (a copy that failed on its source)
        self.abandon()


class WholeLocalHandler(pafs.FileSystemHandler):  # type: ignore[misc]  # pyarrow: untyped
    """A ``pyarrow`` file system handler: the local file system, whose writes never cut a file."""

    def __init__(self) -> None:
        self._local = pafs.LocalFileSystem()

    def __reduce__(self) -> tuple[Any, ...]:  # shipped to trials on other nodes
        return (WholeLocalHandler, ())

    def __eq__(self, other: object) -> bool:
        return isinstance(other, WholeLocalHandler)

    def __hash__(self) -> int:
        return hash(TYPE_NAME)

    def get_type_name(self) -> str:
        return TYPE_NAME

    def normalize_path(self, path: str) -> Any:
        return self._local.normalize_path(path)

    def get_file_info(self, paths: list[str]) -> Any:
        return self._local.get_file_info(paths)

    def get_file_info_selector(self, selector: Any) -> Any:
        return self._local.get_file_info(selector)

    def create_dir(self, path: str, recursive: bool) -> None:
        self._local.create_dir(path, recursive=recursive)

    def delete_dir(self, path: str) -> None:
        self._local.delete_dir(path)

    def delete_dir_contents(self, path: str, missing_dir_ok: bool = False) -> None:
        self._local.delete_dir_contents(path, missing_dir_ok=missing_dir_ok)

    def delete_root_dir_contents(self) -> None:
        raise OSError("refusing to delete the contents of the root directory")

    def delete_file(self, path: str) -> None:
        self._local.delete_file(path)

    def move(self, src: str, dest: str) -> None:
        self._local.move(src, dest)

    def copy_file(self, src: str, dest: str) -> None:
        with self._local.open_input_stream(src) as source:
            sink = _Writer(dest)
            try:
                while chunk := source.read(1 << 20):
                    sink.write(chunk)
            except BaseException:
                sink.abandon()
                raise
            sink.close()

    def open_input_stream(self, path: str) -> pyarrow.NativeFile:
        return self._local.open_input_stream(path)

    def open_input_file(self, path: str) -> pyarrow.NativeFile:
        return self._local.open_input_file(path)

    def open_output_stream(self, path: str, metadata: Any) -> pyarrow.NativeFile:
        return pyarrow.PythonFile(_Writer(path), mode="w")

    def open_append_stream(self, path: str, metadata: Any) -> pyarrow.NativeFile:
        return self._local.open_append_stream(path)


def whole_file_system() -> pafs.PyFileSystem:
    """A new local file system whose writes never cut a file (module docstring)."""
    return pafs.PyFileSystem(WholeLocalHandler())


def is_whole_local(fs: Any) -> bool:
    """``fs`` is a file system from :func:`whole_file_system`."""
    return isinstance(getattr(fs, "handler", None), WholeLocalHandler)


def remove_leftovers(directory: Path) -> int:
    """Remove the hidden files of writes that never finished under ``directory`` (a writer killed
    half-way); call only while no one writes there. Returns how many were removed."""
    removed = 0
    for path in sorted(directory.rglob(f"{HIDDEN}*")):
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
            removed += 1
    return removed
