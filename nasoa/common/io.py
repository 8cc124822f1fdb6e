"""Crash-safe files: atomic Parquet and JSON writes, and an fsync-ed JSON-lines journal.

Every file nasoa persists goes through here. A reader never sees a half-written Parquet or JSON file (temporary
file in the same folder, fsync, ``os.replace``); a journal line is on disk when :meth:`JsonlJournal.append`
returns, and a torn last line (a crash mid-append) is cut on open and skipped on read.
"""

from __future__ import annotations

import json
import os
import tempfile
import warnings
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq


def fsync_dir(path: str | os.PathLike) -> None:
    """Make a folder's entries (a new or renamed file) durable."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _replace_atomic(path: Path, write: Any) -> None:
    """Call ``write(tmp_path)``, fsync the temporary file, then rename it over ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        write(tmp)
        with open(tmp, "rb") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_parquet_atomic(table: pa.Table, path: str | os.PathLike) -> None:
    """Write a Parquet file through a temporary file in the same folder and ``os.replace``."""
    _replace_atomic(Path(path), lambda tmp: pq.write_table(table, tmp))


def write_json_atomic(value: Any, path: str | os.PathLike, indent: int | None = 2) -> None:
    """Write ``value`` as JSON (non-JSON values through ``str``) atomically."""
    text = json.dumps(value, indent=indent, default=str)
    _replace_atomic(Path(path), lambda tmp: Path(tmp).write_text(text))


def read_parquet_checked(path: str | os.PathLike) -> pa.Table:
    """Read a Parquet file; a truncated or corrupt file raises ``ValueError`` naming it.

    The bytes are read through one open file, so a writer replacing the file meanwhile cannot mix two versions
    (reading by path, pyarrow may open it twice: footer, then pages).
    """
    try:
        with open(path, "rb") as f:
            data = f.read()
        return pq.read_table(pa.BufferReader(data))
    except (pa.ArrowInvalid, OSError) as err:
        raise ValueError(f"{path} is corrupt or truncated ({err}); restore it from a backup or move it away") from err


def read_jsonl(path: str | os.PathLike) -> Iterator[dict[str, Any]]:
    """The JSON objects of a journal, in order; a torn or unreadable line is skipped (with a warning)."""
    path = Path(path)
    if not path.exists():
        return
    with open(path, "rb") as fh:
        for number, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except ValueError:
                warnings.warn(f"{path}:{number}: skipping an unreadable line (a torn append?)", stacklevel=2)
                continue
            if isinstance(row, dict):
                yield row


class JsonlJournal:
    """An append-only JSON-lines file: each :meth:`append` call is one write and one fsync (a group commit).

    Opening cuts a torn last line (an append interrupted by a crash), so new lines never glue onto it.
    """

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        new = not self.path.exists()
        self._cut_torn_tail()
        self._fh = open(self.path, "ab")  # noqa: SIM115 - held until close()
        if new:
            fsync_dir(self.path.parent)

    def _cut_torn_tail(self) -> None:
        if not self.path.exists():
            return
        data = self.path.read_bytes()
        end = data.rfind(b"\n") + 1
        if end < len(data):
            warnings.warn(
                f"{self.path}: cutting a torn last line of {len(data) - end} bytes (an interrupted append)",
                RuntimeWarning,
                stacklevel=3,
            )
            with open(self.path, "r+b") as fh:
                fh.truncate(end)
                os.fsync(fh.fileno())

    def append(self, rows: Iterable[Mapping[str, Any]]) -> int:
        """Write ``rows``, one line each, and fsync once; returns how many were written."""
        if self._fh is None:
            raise RuntimeError(f"{self.path}: journal is closed")
        lines = [json.dumps(dict(r), separators=(",", ":"), default=str).encode() + b"\n" for r in rows]
        if lines:
            self._fh.write(b"".join(lines))
            self._fh.flush()
            os.fsync(self._fh.fileno())
        return len(lines)

    def rows(self) -> list[dict[str, Any]]:
        """Every row written so far (this writer's included)."""
        if self._fh is not None:
            self._fh.flush()
        return list(read_jsonl(self.path))

    def truncate(self) -> None:
        """Empty the journal durably (after its rows were compacted elsewhere)."""
        self._fh.truncate(0)
        self._fh.flush()
        os.fsync(self._fh.fileno())

    def close(self) -> None:
        if self._fh is not None:
            self._fh.close()
            self._fh = None

    def __enter__(self) -> JsonlJournal:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
