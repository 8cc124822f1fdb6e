"""The search archive as a value object: every evaluated candidate, and its Pareto front.

Modelled on pymoo's ``Archive.add`` (returns a new archive). Objectives: maximise ``accuracy``,
minimise ``train_step_ms``; failed candidates are kept but never on the front. Persisted as
Parquet, written atomically (temporary file + ``os.replace``). No Ray, no torch.
"""

from __future__ import annotations

import math
import os
import tempfile
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

ARCHIVE_FILE = "archive.parquet"
FRONT_FILE = "front.parquet"


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
        return asdict(self)


_SCHEMA = pa.schema(
    [pa.field(f.name, {"str": pa.string(), "int": pa.int64(), "float": pa.float64()}[f.type]) for f in fields(Record)]
)


def dominates(a: tuple[float, ...], b: tuple[float, ...]) -> bool:
    """Whether ``a`` Pareto-dominates ``b`` (minimisation)."""
    return all(x <= y for x, y in zip(a, b)) and any(x < y for x, y in zip(a, b))


def non_dominated(records: Iterable[Record]) -> list[Record]:
    """The successful records no other successful record dominates, by ascending step time."""
    ok = [r for r in records if r.ok]
    if not ok:
        return []
    from pymoo.util.nds.non_dominated_sorting import NonDominatedSorting

    F = np.array([r.objectives() for r in ok], dtype=float)
    idx = NonDominatedSorting().do(F, only_non_dominated_front=True)
    return sorted((ok[i] for i in idx), key=lambda r: (r.train_step_ms, -r.accuracy))


def spread(front: Sequence[Record], k: int) -> list[Record]:
    """Up to ``k`` members of a front (sorted by step time): both ends and evenly spaced members between.

    With ``k == 1`` the slowest (most accurate) member is kept.
    """
    if len(front) <= k:
        return list(front)
    if k == 1:
        return [front[-1]]
    idx = sorted({round(i * (len(front) - 1) / (k - 1)) for i in range(k)})
    return [front[i] for i in idx]


def hypervolume(records: Iterable[Record], ref_step_ms: float) -> float:
    """Area dominated by the front in (accuracy, step time), with reference point (0 accuracy, ``ref_step_ms``).

    Step times are divided by ``ref_step_ms`` so the value lies in [0, 1].
    """
    front = [r for r in non_dominated(records) if r.train_step_ms < ref_step_ms]
    area, best_acc = 0.0, 0.0
    # Sweep from the fastest point: each adds the band between the best accuracy so far and its own.
    for r in sorted(front, key=lambda r: r.train_step_ms):
        if r.accuracy > best_acc:
            area += (r.accuracy - best_acc) * (1.0 - r.train_step_ms / ref_step_ms)
            best_acc = r.accuracy
    return area


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
        """Load ``archive.parquet`` from ``run_dir`` (empty archive when absent); a corrupt file raises."""
        path = Path(run_dir) / ARCHIVE_FILE
        if not path.exists():
            return cls()
        table = read_parquet_checked(path)
        missing = [n for n in _SCHEMA.names if n not in table.column_names]
        if missing:
            raise ValueError(f"{path}: not a nasoa archive (missing columns {missing})")
        names = set(_SCHEMA.names)
        return cls().add(*(Record(**{k: v for k, v in row.items() if k in names}) for row in table.to_pylist()))


def write_parquet_atomic(table: pa.Table, path: Path) -> None:
    """Write a Parquet file through a temporary file in the same folder and ``os.replace``."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        pq.write_table(table, tmp)
        with open(tmp, "rb") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def read_parquet_checked(path: Path) -> pa.Table:
    """Read a Parquet file; a truncated or corrupt file raises ``ValueError`` naming it.

    The bytes are read through one open file, so a writer replacing the file meanwhile (``write_parquet_atomic``)
    cannot mix two versions: reading by path, pyarrow may open it twice (footer, then pages).
    """
    try:
        with open(path, "rb") as f:
            data = f.read()
        return pq.read_table(pa.BufferReader(data))
    except (pa.ArrowInvalid, OSError) as err:
        raise ValueError(f"{path} is corrupt or truncated ({err}); restore it from a backup or move it away") from err
