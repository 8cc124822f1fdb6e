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
from collections.abc import Mapping, Sequence
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
        ("planned_steps", pa.int64()),
        ("steps", pa.int64()),
        ("epochs_done", pa.float64()),
        ("step_ms", pa.float64()),
        ("curve", pa.list_(pa.list_(pa.float64()))),
        ("probes", pa.string()),
        ("probe_s", pa.float64()),
    ]
)
_COLUMNS = tuple(EXPERIENCE_SCHEMA.names)
#: Columns added after the first stores: an older Parquet file without them reads with their defaults.
_LATER = ("planned_steps", "steps", "epochs_done", "step_ms", "curve", "probes", "probe_s")
#: The regime's fields in a row (its planned ``steps`` are the row's ``planned_steps``).
_REGIME_KEYS = ("model", "lr", "frozen_stages", "batch_size", "epochs", "schedule")
#: Most learning-curve points and probe scores a row keeps.
MAX_CURVE = 64
MAX_PROBES = 1024
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
    "planned_steps": None,
    "steps": None,
    "epochs_done": None,
    "step_ms": None,
    "curve": (),
    "probes": {},
    "probe_s": 0.0,
}


def validate_row(row: Mapping[str, Any]) -> dict[str, Any]:
    """A complete, typed copy of an experience row; missing optional fields take defaults.

    ``run_id`` (a new UUID), ``timestamp`` (now) and ``regime_id`` (from the regime fields, ``planned_steps``
    included) are filled in when absent.

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
    regime = row_regime(row)
    out = {**_DEFAULTS, **{k: v for k, v in row.items() if v is not None or k == "feedback_id"}}
    out["steps"] = row.get("steps")
    out.update(task.to_dict())
    out["task_name"] = out.pop("name")
    out.update({k: v for k, v in regime.to_dict().items() if k != "steps"}, planned_steps=regime.steps)
    if "regime_id" in row and row["regime_id"] not in (None, "", regime.regime_id):
        raise ValueError(f"experience row: regime_id {row['regime_id']!r} does not match the regime fields")
    out["regime_id"] = regime.regime_id
    out["run_id"] = str(row.get("run_id") or uuid.uuid4().hex)
    out["timestamp"] = _number("timestamp", row.get("timestamp") or time.time(), minimum=0.0)
    out["accuracy"] = _number("accuracy", row.get("accuracy"), minimum=0.0, maximum=1.0)
    out["time_s"] = _number("time_s", row.get("time_s"), minimum=0.0)
    out["budget_s"] = _nan_or_number("budget_s", out["budget_s"])
    for name in ("epochs_done", "step_ms"):  # None when unknown (NaN is read as unknown)
        value = None if out[name] is None else _nan_or_number(name, out[name])
        out[name] = None if value is None or math.isnan(value) else value
    out["probe_s"] = _number("probe_s", out["probe_s"], minimum=0.0)
    for name in ("model_params", "model_macs", "model_num_stages"):
        out[name] = _count(name, out[name])
    out["steps"] = None if out["steps"] is None else _count("steps", out["steps"])
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
    out["curve"] = _curve(out["curve"])
    out["probes"] = _probes(out["probes"])
    return {k: out[k] for k in _COLUMNS}


def row_regime(row: Mapping[str, Any]) -> Regime:
    """The regime an experience row ran (its ``planned_steps`` as the regime's ``steps``)."""
    fields = {k: row[k] for k in _REGIME_KEYS if k in row}
    if row.get("planned_steps") is not None:
        fields["steps"] = row["planned_steps"]
    return Regime.from_dict(fields)


def _nan_or_number(name: str, value: Any) -> float:
    if isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isnan(value):
        return math.nan
    return _number(name, value, minimum=0.0)


def _count(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 0:
        raise ValueError(f"experience row: {name} must be a non-negative integer, got {value!r}")
    return int(value)


def _curve(value: Any) -> list[list[float]]:
    """``[[steps, top-1], ...]``: steps non-negative, top-1 in [0, 1], at most :data:`MAX_CURVE` points."""
    if isinstance(value, (str, bytes, Mapping)) or not hasattr(value, "__iter__"):
        raise ValueError(f"experience row: curve must be a list of [steps, top-1] pairs, got {value!r}")
    points = list(value)
    if len(points) > MAX_CURVE:
        raise ValueError(f"experience row: curve has {len(points)} points (at most {MAX_CURVE})")
    out = []
    for point in points:
        pair = list(point) if hasattr(point, "__iter__") and not isinstance(point, (str, bytes)) else None
        if pair is None or len(pair) != 2:
            raise ValueError(f"experience row: a curve point is [steps, top-1], got {point!r}")
        out.append([_number("curve steps", pair[0], minimum=0.0), _number("curve top-1", pair[1], 0.0, 1.0)])
    return out


def _probes(value: Any) -> dict[str, float]:
    """``{zoo key: probe top-1}``: at most :data:`MAX_PROBES`, each in [0, 1] (JSON text is accepted)."""
    if isinstance(value, str):
        try:
            value = json.loads(value) if value else {}
        except json.JSONDecodeError as err:
            raise ValueError(f"experience row: probes is not JSON ({err})") from None
    if not isinstance(value, Mapping) or len(value) > MAX_PROBES:
        raise ValueError(f"experience row: probes must be a mapping of at most {MAX_PROBES} zoo keys to top-1")
    return {str(k): _number(f"probes[{k}]", v, minimum=0.0, maximum=1.0) for k, v in value.items()}


def _number(name: str, value: Any, minimum: float | None = None, maximum: float | None = None) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(float(value)):
        raise ValueError(f"experience row: {name} must be a finite number, got {value!r}")
    value = float(value)
    if (minimum is not None and value < minimum) or (maximum is not None and value > maximum):
        raise ValueError(f"experience row: {name} must be in [{minimum}, {maximum}], got {value}")
    return value


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
    steps: int | None = None,
    epochs_done: float | None = None,
    step_ms: float | None = None,
    curve: Sequence[Sequence[float]] = (),
    probes: Mapping[str, float] | None = None,
    probe_s: float = 0.0,
) -> dict[str, Any]:
    """A validated experience row from a task, the regime it ran, the zoo entry (for model info) and the result.

    Args:
        task: The task's meta-features (its ``name`` is the row's ``task_name``).
        regime: The regime run; its ``steps`` (the plan) are the row's ``planned_steps``.
        entry: The zoo entry of ``regime.model`` (model descriptors), or None.
        accuracy: Validation top-1 at the end.
        time_s: Wall seconds of the run.
        budget_s: The run's time budget.
        finished: Whether it completed its (re-)planned steps, annealed.
        stopped_by: ``"done"``, ``"deadline"`` or ``"nan"``.
        source: ``"collect"``, ``"feedback"`` or ``"stream"``.
        feedback_id: Idempotency key (a second row with it is not stored).
        device: Where it ran.
        steps: Optimizer steps done (None: unknown, as in older rows).
        epochs_done: Steps done over steps per epoch.
        step_ms: Median wall milliseconds of a training step, batch fetch included (what a step cost the run).
        curve: ``[steps, validation top-1]`` points during the run (the last may be the final top-1).
        probes: Probe top-1 by zoo key on this task, as used to choose the regime.
        probe_s: Seconds the probes took (counted in the budget).
    """
    row: dict[str, Any] = {**{k: v for k, v in task.to_dict().items() if k != "name"}, "task_name": task.name}
    row.update({k: v for k, v in regime.to_dict().items() if k != "steps"}, planned_steps=regime.steps)
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
    row.update(accuracy=accuracy, time_s=time_s, budget_s=budget_s, finished=finished, stopped_by=stopped_by)
    row.update(source=source, feedback_id=feedback_id, device=device, steps=steps, epochs_done=epochs_done)
    row.update(step_ms=step_ms, curve=list(curve), probes=dict(probes or {}), probe_s=probe_s)
    return validate_row(row)


def _table(rows: list[dict[str, Any]]) -> pa.Table:
    """Rows as a table with :data:`EXPERIENCE_SCHEMA`; ``probes`` as JSON text (a map column reads back as pairs)."""
    flat = [r | {"probes": json.dumps(r["probes"], sort_keys=True)} for r in rows]
    return pa.Table.from_pylist(flat, schema=EXPERIENCE_SCHEMA)


def _from_parquet(row: dict[str, Any]) -> dict[str, Any]:
    """A row read from Parquet: columns an older store lacks take their defaults, ``probes`` parsed."""
    out = {k: row.get(k, _DEFAULTS.get(k)) for k in _COLUMNS}
    out["curve"] = out["curve"] or []
    out["probes"] = _probes(out["probes"] or {})
    return out


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
        missing = [n for n in _COLUMNS if n not in table.column_names and n not in _LATER]
        if missing:
            raise ValueError(f"{path}: not an experience store (missing columns {missing})")
        rows = table.select([n for n in _COLUMNS if n in table.column_names]).to_pylist()
        return [_from_parquet(r) for r in rows]

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
        """All rows as a table with :data:`EXPERIENCE_SCHEMA` (``probes`` as JSON text)."""
        return _table(self.rows())

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
        write_parquet_atomic(_table(self._rows), self.path / PARQUET_FILE)
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
