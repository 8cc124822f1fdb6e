"""The evaluator and archive-store interfaces of the search, with in-process implementations.

The Ray versions (:mod:`nasoa.cluster`) implement the same two small interfaces, so the ask/tell loop
(:mod:`nasoa.search.loop`) runs unchanged with or without Ray (archai's ``ModelEvaluator`` shape).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from nasoa.search.archive import ParetoArchive, Record


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
    """An archive persisted to ``run_dir`` after every added record (a crash loses nothing stored)."""

    def __init__(self, run_dir: str | os.PathLike | None) -> None:
        self.run_dir = Path(run_dir) if run_dir is not None else None
        self.archive = ParetoArchive.load(self.run_dir) if self.run_dir is not None else ParetoArchive()
        self.duplicates = 0

    def get_many(self, archids: Sequence[str]) -> dict[str, Record]:
        return {a: r for a in archids if (r := self.archive.get(a)) is not None}

    def add(self, record: Record) -> bool:
        """Store a record; returns False (and counts it) when its archid was already archived."""
        if record.archid in self.archive:
            self.duplicates += 1
            return False
        self.archive = self.archive.add(record)
        if self.run_dir is not None:
            self.archive.save(self.run_dir)
        return True

    def snapshot(self) -> ParetoArchive:
        return self.archive


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
