"""The search archive as a value object: every evaluated candidate, and its Pareto front.

Modelled on pymoo's ``Archive.add`` (returns a new archive). Objectives: maximise ``accuracy``,
minimise ``train_step_ms``; failed candidates are kept but never on the front. Persisted as
Parquet, written atomically (temporary file + ``os.replace``), plus the results journaled since the last compaction
(``archive.jsonl``, see :class:`~nasoa.search.evaluator.LocalArchiveStore`); :meth:`ParetoArchive.load` reads both.
No Ray, no torch.
"""

from __future__ import annotations

import math
import os
import warnings
from collections.abc import Iterable
from dataclasses import dataclass, field, fields
from pathlib import Path

import pyarrow as pa

from nasoa.common.io import read_jsonl, read_parquet_checked, write_parquet_atomic
from nasoa.common.pareto import front_indices, hypervolume_2d

ARCHIVE_FILE = "archive.parquet"
FRONT_FILE = "front.parquet"
#: Results added since the last compaction, one JSON line each (fsynced before a result is acknowledged).
JOURNAL_FILE = "archive.jsonl"
#: The journal a compaction is folding into ``archive.parquet`` (deleted once the Parquet file holds its rows).
COMPACTING_FILE = "archive.jsonl.compacting"


@dataclass(frozen=True)
class Record:
    """One evaluated candidate (one archive row)."""

    archid: str
    encoding: str
    level: str
    generation: int
    status: str  # "ok" | "failed"
    accuracy: float = math.nan
    train_step_ms: float = math.nan
    params: int = 0
    macs: int = 0
    device: str = ""
    eval_s: float = 0.0
    error: str = ""
    profile_s: float = 0.0
    train_s: float = 0.0
    steps: int = 0
    worker: str = ""
    finished_at: float = 0.0

    @property
    def ok(self) -> bool:
        return self.status == "ok" and math.isfinite(self.accuracy) and math.isfinite(self.train_step_ms)

    def objectives(self) -> tuple[float, float]:
        """Minimisation form ``(-accuracy, train_step_ms)``."""
        return (-self.accuracy, self.train_step_ms)

    def to_dict(self) -> dict:
        return dict(vars(self))  # every field is a plain value: asdict's deep copy is not needed (it costs 10x)


_SCHEMA = pa.schema(
    [pa.field(f.name, {"str": pa.string(), "int": pa.int64(), "float": pa.float64()}[f.type]) for f in fields(Record)]
)


def non_dominated(records: Iterable[Record]) -> list[Record]:
    """The successful records no other successful record dominates, by ascending step time."""
    ok = [r for r in records if r.ok]
    idx = front_indices([r.objectives() for r in ok])
    return sorted((ok[i] for i in idx), key=lambda r: (r.train_step_ms, -r.accuracy))


def hypervolume(records: Iterable[Record], ref_step_ms: float) -> float:
    """Area dominated by the front in (accuracy, step time), with reference point (0 accuracy, ``ref_step_ms``).

    Step times are divided by ``ref_step_ms`` so the value lies in [0, 1].
    """
    points = [(r.train_step_ms / ref_step_ms, -r.accuracy) for r in records if r.ok]
    return hypervolume_2d(points, (1.0, 0.0))


@dataclass(frozen=True)
class ParetoArchive:
    """All evaluated candidates, unique by archid; ``add`` returns a new archive."""

    records: tuple[Record, ...] = ()
    _index: dict[str, int] = field(default_factory=dict, compare=False, repr=False)

    def __post_init__(self) -> None:
        if not self._index and self.records:
            object.__setattr__(self, "_index", {r.archid: i for i, r in enumerate(self.records)})
        if len(self._index) != len(self.records):
            raise ValueError("archive records must have unique archids")

    def __len__(self) -> int:
        return len(self.records)

    def __contains__(self, archid: object) -> bool:
        return archid in self._index

    def get(self, archid: str) -> Record | None:
        i = self._index.get(archid)
        return None if i is None else self.records[i]

    def add(self, *records: Record) -> ParetoArchive:
        """A new archive with the records whose archid is not already present (first result wins)."""
        new = list(self.records)
        index = dict(self._index)
        for r in records:
            if r.archid not in index:
                index[r.archid] = len(new)
                new.append(r)
        return ParetoArchive(tuple(new), index)

    def front(self) -> list[Record]:
        return non_dominated(self.records)

    def to_table(self, records: Iterable[Record] | None = None) -> pa.Table:
        rows = [r.to_dict() for r in (self.records if records is None else records)]
        return pa.Table.from_pylist(rows, schema=_SCHEMA)

    def save(self, run_dir: str | os.PathLike) -> None:
        """Write ``archive.parquet`` and ``front.parquet`` into ``run_dir``, each atomically."""
        run_dir = Path(run_dir)
        run_dir.mkdir(parents=True, exist_ok=True)
        write_parquet_atomic(self.to_table(), run_dir / ARCHIVE_FILE)
        write_parquet_atomic(self.to_table(self.front()), run_dir / FRONT_FILE)

    @classmethod
    def load(cls, run_dir: str | os.PathLike) -> ParetoArchive:
        """``archive.parquet`` and the results journaled since its last compaction (empty when there is neither).

        Files are read newest first (the journal, the journal being compacted, then the Parquet file): a result only
        ever moves towards the Parquet file, so a compaction running meanwhile cannot hide one. A corrupt Parquet
        file raises; a torn last journal line (a crash mid-append) is skipped.
        """
        run_dir = Path(run_dir)
        newest = list(read_jsonl(run_dir / JOURNAL_FILE))
        older = list(read_jsonl(run_dir / COMPACTING_FILE))
        archive = cls._load_parquet(run_dir / ARCHIVE_FILE)
        return archive.add(*(r for row in older + newest if (r := record_from_row(row)) is not None))

    @classmethod
    def _load_parquet(cls, path: Path) -> ParetoArchive:
        if not path.exists():
            return cls()
        table = read_parquet_checked(path)
        missing = [n for n in _SCHEMA.names if n not in table.column_names]
        if missing:
            raise ValueError(f"{path}: not a nasoa archive (missing columns {missing})")
        names = set(_SCHEMA.names)
        return cls().add(*(Record(**{k: v for k, v in row.items() if k in names}) for row in table.to_pylist()))


def record_from_row(row: dict) -> Record | None:
    """A journal row as a :class:`Record` (None, with a warning, for a row that is not one)."""
    try:
        return Record(**{f.name: row[f.name] for f in fields(Record) if f.name in row})
    except TypeError as err:
        warnings.warn(f"skipping an archive journal row that is not a record ({err})", stacklevel=2)
        return None
