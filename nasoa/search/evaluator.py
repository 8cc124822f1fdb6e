"""The evaluator and archive-store interfaces of the search, with in-process implementations.

The Ray versions (:mod:`nasoa.cluster`) implement the same two small interfaces, so the ask/tell loop
(:mod:`nasoa.search.loop`) runs unchanged with or without Ray (archai's ``ModelEvaluator`` shape).
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from nasoa.common.io import JsonlJournal, fsync_dir
from nasoa.search.archive import COMPACTING_FILE, JOURNAL_FILE, ParetoArchive, Record

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Candidate:
    """A proposed encoding, with where in the search it was proposed."""

    archid: str
    encoding: str
    level: str
    generation: int


@dataclass(frozen=True)
class EvaluatorStats:
    """Worker time accounting: ``busy_s`` is time spent profiling and training candidates."""

    workers: int
    wall_s: float
    busy_s: float
    evaluated: int
    startup_s: float = 0.0
    per_worker_busy_s: tuple[float, ...] = field(default_factory=tuple)

    @property
    def efficiency(self) -> float:
        """Share of worker time (workers x wall) spent evaluating candidates."""
        total = self.workers * self.wall_s
        return self.busy_s / total if total > 0 else 0.0


class ArchiveStore(Protocol):
    """Holds the archive; every result goes through ``add``, which persists before returning."""

    def get_many(self, archids: Sequence[str]) -> dict[str, Record]: ...

    def add(self, record: Record) -> bool: ...

    def snapshot(self) -> ParetoArchive: ...


class Evaluator(Protocol):
    """Evaluates candidates and stores each result in the archive store as soon as it is known."""

    def evaluate(self, candidates: Sequence[Candidate]) -> list[Record]: ...

    def stats(self) -> EvaluatorStats: ...

    def close(self) -> None: ...


class LocalArchiveStore:
    """A run's archive in ``run_dir``: a result is journaled before it is acknowledged, and compacted to Parquet.

    Every :meth:`add_many` call is one journal append (one write, one fsync: a group commit for all its records) to
    ``archive.jsonl``; ``archive.parquet`` and ``front.parquet`` are rewritten from the journal now and then, in a
    background thread (the journal is first renamed to ``archive.jsonl.compacting``, so appends go on meanwhile),
    and completely by :meth:`compact`. Opening replays an earlier run's Parquet file and journals (a torn last line
    is skipped) and compacts them. :meth:`ParetoArchive.load <nasoa.search.archive.ParetoArchive.load>` reads all
    three files, so readers see every acknowledged result. The first result for an archid wins; later ones are
    counted in ``duplicates``. Thread-safe.

    Args:
        run_dir: Where the files live (None: in memory only).
        compact_rows: Compact once this many results were journaled since the last compaction, or a quarter of the
            archive if that is more (so compaction costs O(1) per result however large the archive grows).
        compact_s: Compact once the oldest result not yet in ``archive.parquet`` is this many seconds old.
    """

    def __init__(self, run_dir: str | os.PathLike | None, compact_rows: int = 1000, compact_s: float = 30.0) -> None:
        self.run_dir = Path(run_dir) if run_dir is not None else None
        self.compact_rows, self.compact_s = compact_rows, compact_s
        self.duplicates = 0
        self.compactions = 0
        self.lock = threading.Lock()
        self.compactor: threading.Thread | None = None
        self.journal: JsonlJournal | None = None
        self.uncompacted, self.oldest = 0, 0.0
        self.records: dict[str, Record] = {}  # in arrival order; a ParetoArchive is built only for snapshots
        self._snapshot: ParetoArchive | None = None
        if self.run_dir is not None:
            self.run_dir.mkdir(parents=True, exist_ok=True)
            self.records = {r.archid: r for r in ParetoArchive.load(self.run_dir).records}
            self.journal = JsonlJournal(self.run_dir / JOURNAL_FILE)
            if self.records and (self.journal.path.stat().st_size or self._compacting.exists()):
                self.compact()  # fold what an earlier run journaled into the Parquet files

    @property
    def _compacting(self) -> Path:
        return self.run_dir / COMPACTING_FILE

    def __len__(self) -> int:
        return len(self.records)

    def __contains__(self, archid: object) -> bool:
        return archid in self.records

    def get_many(self, archids: Sequence[str]) -> dict[str, Record]:
        return {a: r for a in archids if (r := self.records.get(a)) is not None}

    def add(self, record: Record) -> bool:
        """Store a record; returns False (and counts it) when its archid was already archived."""
        return self.add_many([record])[0]

    def add_many(self, records: Sequence[Record]) -> list[bool]:
        """Store records with one journal write and fsync; for each, whether it was new (False: a duplicate).

        The records are visible (``get_many``, ``snapshot``) only once they are durable.
        """
        with self.lock:
            new: dict[str, Record] = {}
            fresh = []
            for r in records:
                fresh.append(r.archid not in self.records and r.archid not in new)
                if fresh[-1]:
                    new[r.archid] = r
            self.duplicates += len(records) - len(new)
            if new and self.journal is not None:
                self.journal.append(r.to_dict() for r in new.values())
                self.oldest = self.oldest if self.uncompacted else time.monotonic()
                self.uncompacted += len(new)
            self.records.update(new)
            self._snapshot = None if new else self._snapshot
            if self._compaction_due():
                self._start_compaction()
            return fresh

    def _compaction_due(self) -> bool:
        if self.journal is None or not self.uncompacted or (self.compactor and self.compactor.is_alive()):
            return False
        due = self.uncompacted >= max(self.compact_rows, len(self.records) // 4)
        return due or time.monotonic() - self.oldest >= self.compact_s

    def _start_compaction(self) -> None:
        """Move the journal aside (appends go to a fresh one) and rewrite the Parquet files in a thread."""
        if not self._compacting.exists():  # else an earlier compaction failed: this one folds that journal in too
            self.journal.close()
            os.replace(self.journal.path, self._compacting)
            fsync_dir(self.run_dir)
            self.journal = JsonlJournal(self.run_dir / JOURNAL_FILE)
            self.uncompacted = 0
        snapshot = self._snapshot_locked()
        self.compactor = threading.Thread(target=self._compact, args=(snapshot,), name="archive-compaction")
        self.compactor.start()

    def _compact(self, snapshot: ParetoArchive) -> None:
        try:
            snapshot.save(self.run_dir)
            self._compacting.unlink(missing_ok=True)
            fsync_dir(self.run_dir)
            self.compactions += 1
        except OSError as err:  # the journal still holds every result: retried at the next compaction
            log.warning("archive compaction into %s failed: %s", self.run_dir, err)

    def compact(self) -> None:
        """Write every result into ``archive.parquet`` and ``front.parquet`` now, and empty the journal."""
        with self.lock:
            if self.compactor is not None:
                self.compactor.join()
            if self.run_dir is None or not (self.uncompacted or self._compacting.exists() or self.records):
                return
            self._snapshot_locked().save(self.run_dir)
            self._compacting.unlink(missing_ok=True)
            self.journal.truncate()
            self.uncompacted = 0
            self.compactions += 1

    def close(self) -> None:
        """Compact and close the journal."""
        self.compact()
        if self.journal is not None:
            self.journal.close()

    def snapshot(self) -> ParetoArchive:
        """The archive as a value (built once per change)."""
        with self.lock:
            return self._snapshot_locked()

    def _snapshot_locked(self) -> ParetoArchive:
        if self._snapshot is None:
            self._snapshot = ParetoArchive(tuple(self.records.values()))
        return self._snapshot


class LocalEvaluator:
    """Evaluates candidates one after another in this process with ``evaluate_fn``."""

    def __init__(self, evaluate_fn: Callable[[Candidate], Record], store: ArchiveStore) -> None:
        self.evaluate_fn = evaluate_fn
        self.store = store
        self.started = time.perf_counter()
        self.busy_s = 0.0
        self.evaluated = 0

    def evaluate(self, candidates: Sequence[Candidate]) -> list[Record]:
        out = []
        for c in candidates:
            t0 = time.perf_counter()
            record = self.evaluate_fn(c)
            self.busy_s += time.perf_counter() - t0
            self.evaluated += 1
            self.store.add(record)
            out.append(record)
        return out

    def stats(self) -> EvaluatorStats:
        wall = time.perf_counter() - self.started
        return EvaluatorStats(1, wall, self.busy_s, self.evaluated, 0.0, (self.busy_s,))

    def close(self) -> None:
        pass
