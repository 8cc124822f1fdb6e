"""The experience store: every finished fine-tuning run, append-only and durable, for the regime predictor.

Layout of a store folder: ``experience.jsonl`` (the journal: one JSON object per line, each appended and
fsync-ed before :meth:`ExperienceStore.append` returns) and ``experience.parquet`` (compacted rows, rewritten
atomically by :meth:`ExperienceStore.compact`, which then empties the journal). Readers read the journal first and
the Parquet file second, and drop journal rows whose ``run_id`` is already in Parquet, so a compaction interrupted
at any point loses and duplicates nothing. A torn last journal line (a crash mid-write) is skipped with a
warning; the writer cuts it off before appending. One writer per folder (an exclusive ``flock``); any number of
readers (``readonly=True``). No Ray, no torch.
"""

from __future__ import annotations

import fcntl
import json
import math
import numbers
import os
import time
import uuid
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from nasoa.common.io import read_parquet_checked, write_parquet_atomic
from nasoa.data.meta import TaskMeta
from nasoa.online.regime import Regime

if TYPE_CHECKING:
    from nasoa.zoo.manifest import ZooEntry

__all__ = ["EXPERIENCE_SCHEMA", "SOURCES", "ExperienceStore", "experience_row", "validate_row"]

JOURNAL_FILE = "experience.jsonl"
PARQUET_FILE = "experience.parquet"
LOCK_FILE = "experience.lock"

#: Where a row came from: offline collection, user feedback, or a stream of tasks.
SOURCES = ("collect", "feedback", "stream")

EXPERIENCE_SCHEMA = pa.schema(
    [
        ("run_id", pa.string()),
        ("timestamp", pa.float64()),
        ("task_name", pa.string()),
        ("num_classes", pa.int64()),
        ("num_train", pa.int64()),
        ("resolution", pa.int64()),
        ("channels", pa.int64()),
        ("model", pa.string()),
        ("lr", pa.float64()),
        ("frozen_stages", pa.int64()),
        ("batch_size", pa.int64()),
        ("epochs", pa.int64()),
        ("schedule", pa.string()),
        ("regime_id", pa.string()),
        ("model_kind", pa.string()),
        ("model_params", pa.int64()),
        ("model_macs", pa.int64()),
        ("model_top1", pa.float64()),
        ("model_num_stages", pa.int64()),
        ("device", pa.string()),
        ("accuracy", pa.float64()),
        ("time_s", pa.float64()),
        ("budget_s", pa.float64()),
        ("finished", pa.bool_()),
        ("stopped_by", pa.string()),
        ("source", pa.string()),
        ("feedback_id", pa.string()),
    ]
)
_COLUMNS = tuple(EXPERIENCE_SCHEMA.names)
_DEFAULTS: dict[str, Any] = {
    "task_name": "",
    "model_kind": "",
    "model_params": 0,
    "model_macs": 0,
    "model_top1": math.nan,
    "model_num_stages": 0,
    "device": "",
    "budget_s": math.nan,
    "finished": True,
    "stopped_by": "done",
    "source": "feedback",
    "feedback_id": None,
}


def _number(name: str, value: Any, *, minimum: float | None = None, maximum: float | None = None) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(float(value)):
        raise ValueError(f"experience row: {name} must be a finite number, got {value!r}")
    value = float(value)
    if (minimum is not None and value < minimum) or (maximum is not None and value > maximum):
        raise ValueError(f"experience row: {name} must be in [{minimum}, {maximum}], got {value}")
    return value


def validate_row(row: Mapping[str, Any]) -> dict[str, Any]:
    """A complete, typed copy of an experience row; missing optional fields take defaults.

    ``run_id`` (a new UUID), ``timestamp`` (now) and ``regime_id`` (from the regime fields) are filled in when
    absent.

    Raises:
        ValueError: If a key is unknown, a required key is missing, or a value is invalid.
    """
    if not isinstance(row, Mapping):
        raise ValueError(f"an experience row must be a mapping, got {type(row).__name__}")
    unknown = sorted(set(row) - set(_COLUMNS))
    if unknown:
        raise ValueError(f"unknown experience row key(s) {unknown}")
    try:
        task = TaskMeta.from_dict(
            {k: row[k] for k in ("num_classes", "num_train", "resolution", "channels") if k in row}
            | {"name": row.get("task_name") or ""}
        )
    except TypeError as err:
        raise ValueError(str(err)) from err
    regime = Regime.from_dict(
        {k: row[k] for k in ("model", "lr", "frozen_stages", "batch_size", "epochs", "schedule") if k in row}
    )
    out = {**_DEFAULTS, **{k: v for k, v in row.items() if v is not None or k == "feedback_id"}}
    out.update(task.to_dict())
    out["task_name"] = out.pop("name")
    out.update(regime.to_dict())
    if "regime_id" in row and row["regime_id"] not in (None, "", regime.regime_id):
        raise ValueError(f"experience row: regime_id {row['regime_id']!r} does not match the regime fields")
    out["regime_id"] = regime.regime_id
    out["run_id"] = str(row.get("run_id") or uuid.uuid4().hex)
    out["timestamp"] = _number("timestamp", row.get("timestamp") or time.time(), minimum=0.0)
    out["accuracy"] = _number("accuracy", row.get("accuracy"), minimum=0.0, maximum=1.0)
    out["time_s"] = _number("time_s", row.get("time_s"), minimum=0.0)
    budget = out["budget_s"]
    if not (isinstance(budget, numbers.Real) and not isinstance(budget, bool) and math.isnan(budget)):
        out["budget_s"] = _number("budget_s", budget, minimum=0.0)
    for name in ("model_params", "model_macs", "model_num_stages"):
        value = out[name]
        if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 0:
            raise ValueError(f"experience row: {name} must be a non-negative integer, got {value!r}")
        out[name] = int(value)
    if not isinstance(out["model_top1"], numbers.Real) or isinstance(out["model_top1"], bool):
        raise ValueError(f"experience row: model_top1 must be a number, got {out['model_top1']!r}")
    out["model_top1"] = float(out["model_top1"])
    if not isinstance(out["finished"], bool):
        raise ValueError(f"experience row: finished must be true or false, got {out['finished']!r}")
    if out["source"] not in SOURCES:
        raise ValueError(f"experience row: source must be one of {SOURCES}, got {out['source']!r}")
    for name in ("task_name", "model_kind", "device", "stopped_by"):
        if not isinstance(out[name], str):
            raise ValueError(f"experience row: {name} must be a string, got {out[name]!r}")
    fid = out["feedback_id"]
    if fid is not None and (not isinstance(fid, str) or not fid):
        raise ValueError(f"experience row: feedback_id must be a non-empty string or null, got {fid!r}")
    return {k: out[k] for k in _COLUMNS}


def experience_row(
    task: TaskMeta,
    regime: Regime,
    entry: ZooEntry | None,
    *,
    accuracy: float,
    time_s: float,
    budget_s: float = math.nan,
    finished: bool = True,
    stopped_by: str = "done",
    source: str = "feedback",
    feedback_id: str | None = None,
    device: str = "",
) -> dict[str, Any]:
    """A validated experience row from a task, the regime it ran, the zoo entry (for model info) and the result."""
    row: dict[str, Any] = {**{k: v for k, v in task.to_dict().items() if k != "name"}, "task_name": task.name}
    row.update(regime.to_dict())
    if entry is not None:
        if entry.key != regime.model:
            raise ValueError(f"zoo entry {entry.key!r} is not the regime's model {regime.model!r}")
        row.update(
            model_kind=entry.kind,
            model_params=int(entry.params),
            model_macs=int(entry.macs),
            model_top1=float(entry.top1),
            model_num_stages=int(entry.num_stages),
        )
    row.update(
        accuracy=accuracy,
        time_s=time_s,
        budget_s=budget_s,
        finished=finished,
        stopped_by=stopped_by,
        source=source,
        feedback_id=feedback_id,
        device=device,
    )
    return validate_row(row)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class ExperienceStore:
    """Append-only, crash-safe store of finished fine-tuning runs in a folder.

    Args:
        path: The store folder (created for a writer).
        readonly: Open for reading only: no lock, :meth:`rows` re-reads the files each time.

    Raises:
        RuntimeError: If another writer holds the folder.
    """

    def __init__(self, path: str | os.PathLike, readonly: bool = False) -> None:
        self.path = Path(path)
        self.readonly = readonly
        self.duplicates = 0
        self._journal = None
        self._lock = None
        if not readonly:
            self.path.mkdir(parents=True, exist_ok=True)
            self._lock = open(self.path / LOCK_FILE, "a")  # noqa: SIM115 - held until close()
            try:
                fcntl.flock(self._lock.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError as err:
                self._lock.close()
                self._lock = None
                raise RuntimeError(f"{self.path}: another writer holds this experience store") from err
            self._cut_torn_tail()
            new = not (self.path / JOURNAL_FILE).exists()
            self._journal = open(self.path / JOURNAL_FILE, "ab")  # noqa: SIM115 - held until close()
            if new:
                _fsync_dir(self.path)
        self._rows: list[dict[str, Any]] = []
        self._run_ids: set[str] = set()
        self._feedback_ids: set[str] = set()
        self.reload()

    # -- reading -------------------------------------------------------------------------------------------------

    def _read_journal(self) -> list[dict[str, Any]]:
        path = self.path / JOURNAL_FILE
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            return []
        lines = data.split(b"\n")
        rows = []
        for i, line in enumerate(lines):
            if not line.strip():
                continue
            last = i == len(lines) - 1  # no newline after it: written only in part
            try:
                row = json.loads(line)
                if last:
                    raise ValueError("no end of line")
                rows.append(validate_row(row))
            except ValueError as err:
                where = "torn last line" if last else f"corrupt line {i + 1}"
                warnings.warn(f"{path}: skipping {where} ({err})", RuntimeWarning, stacklevel=3)
        return rows

    def _read_parquet(self) -> list[dict[str, Any]]:
        path = self.path / PARQUET_FILE
        if not path.exists():
            return []
        table = read_parquet_checked(path)
        missing = [n for n in _COLUMNS if n not in table.column_names]
        if missing:
            raise ValueError(f"{path}: not an experience store (missing columns {missing})")
        return table.select(list(_COLUMNS)).to_pylist()

    def reload(self) -> None:
        """Re-reads the store from disk (journal first, then Parquet: safe against a concurrent compaction)."""
        journal = self._read_journal()
        rows = self._read_parquet()
        seen = {r["run_id"] for r in rows}
        rows += [r for r in journal if r["run_id"] not in seen and not seen.add(r["run_id"])]
        self._rows = rows
        self._run_ids = seen
        self._feedback_ids = {r["feedback_id"] for r in rows if r["feedback_id"]}

    def rows(self) -> list[dict[str, Any]]:
        """All stored rows, oldest first (copies)."""
        if self.readonly:
            self.reload()
        return [dict(r) for r in self._rows]

    def __len__(self) -> int:
        if self.readonly:
            self.reload()
        return len(self._rows)

    def __contains__(self, feedback_id: object) -> bool:
        return feedback_id in self._feedback_ids

    def to_table(self) -> pa.Table:
        """All rows as a table with :data:`EXPERIENCE_SCHEMA`."""
        return pa.Table.from_pylist(self.rows(), schema=EXPERIENCE_SCHEMA)

    # -- writing -------------------------------------------------------------------------------------------------

    def _writable(self) -> None:
        if self.readonly:
            raise RuntimeError(f"{self.path}: experience store opened read-only")
        if self._journal is None:
            raise RuntimeError(f"{self.path}: experience store is closed")

    def _cut_torn_tail(self) -> None:
        """Truncates the journal after its last complete line, so new lines are not glued to a torn one."""
        path = self.path / JOURNAL_FILE
        if not path.exists():
            return
        data = path.read_bytes()
        end = data.rfind(b"\n") + 1
        if end < len(data):
            warnings.warn(
                f"{path}: cutting a torn last line of {len(data) - end} bytes (an interrupted append)",
                RuntimeWarning,
                stacklevel=3,
            )
            with open(path, "r+b") as fh:
                fh.truncate(end)
                os.fsync(fh.fileno())

    def append(self, row: Mapping[str, Any]) -> bool:
        """Validates ``row`` and appends it durably (on disk when this returns).

        Returns:
            True if stored; False if a row with the same ``feedback_id`` is already stored (counted in
            ``duplicates``, nothing written).

        Raises:
            ValueError: If the row is invalid.
        """
        self._writable()
        clean = validate_row(row)
        fid = clean["feedback_id"]
        if fid is not None and fid in self._feedback_ids:
            self.duplicates += 1
            return False
        if clean["run_id"] in self._run_ids:
            raise ValueError(f"experience row: run_id {clean['run_id']!r} is already stored")
        line = json.dumps(clean, separators=(",", ":")).encode() + b"\n"
        self._journal.write(line)
        self._journal.flush()
        os.fsync(self._journal.fileno())
        self._rows.append(clean)
        self._run_ids.add(clean["run_id"])
        if fid is not None:
            self._feedback_ids.add(fid)
        return True

    def compact(self) -> int:
        """Rewrites every row into ``experience.parquet`` atomically and empties the journal.

        Returns:
            The number of rows in the Parquet file.
        """
        self._writable()
        write_parquet_atomic(pa.Table.from_pylist(self._rows, schema=EXPERIENCE_SCHEMA), self.path / PARQUET_FILE)
        _fsync_dir(self.path)
        self._journal.truncate(0)
        self._journal.flush()
        os.fsync(self._journal.fileno())
        return len(self._rows)

    def close(self) -> None:
        """Closes the journal and releases the writer lock."""
        if self._journal is not None:
            self._journal.close()
            self._journal = None
        if self._lock is not None:
            fcntl.flock(self._lock.fileno(), fcntl.LOCK_UN)
            self._lock.close()
            self._lock = None

    def __enter__(self) -> ExperienceStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:  # noqa: BLE001 - best effort at interpreter shutdown
            pass
