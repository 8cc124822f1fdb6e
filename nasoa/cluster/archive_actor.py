"""A Ray actor that serialises access to the search archive: results acknowledged once durable, in group commits."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Sequence

import ray

from nasoa.cluster.session import on_driver_node
from nasoa.common.batching import GroupCommit
from nasoa.search.archive import ParetoArchive, Record
from nasoa.search.evaluator import LocalArchiveStore


@ray.remote(num_cpus=0, max_restarts=-1, max_task_retries=-1)
class ArchiveActor:
    """Holds a :class:`LocalArchiveStore`; ``wait_for`` lets the driver wait for a generation's results.

    ``add`` calls are group-committed (:class:`~nasoa.common.batching.GroupCommit`): while one batch is written and
    fsynced (in a thread, off the event loop), the calls arriving meanwhile queue up and go to the journal together
    as the next batch, one fsync for all of them; each call returns only once its batch is durable. Restarts
    (``max_restarts=-1``) replay the Parquet file and the journal, so a killed actor loses nothing it acknowledged;
    Ray retries the calls in flight (``max_task_retries``), and a retried ``add`` of a result that was already
    durable returns False (counted as a duplicate).
    """

    def __init__(self, run_dir: str | None, compact_rows: int = 1000, compact_s: float = 30.0) -> None:
        self.store = LocalArchiveStore(run_dir, compact_rows, compact_s)
        self.changed = asyncio.Condition()
        self.commit: GroupCommit[Record] = GroupCommit(self._write)

    async def add(self, record: Record) -> bool:
        """Store a result; True once it is durable, False for an archid already archived (first result wins)."""
        return await self.commit.submit(record)

    async def add_many(self, records: Sequence[Record]) -> list[bool]:
        """:meth:`add` for several results (a client's own batch); one flag each."""
        return await self.commit.submit_many(list(records))

    async def _write(self, records: list[Record]) -> list[bool]:
        """One batch: journaled and fsynced in a thread (the event loop takes new calls meanwhile)."""
        fresh = await asyncio.to_thread(self.store.add_many, records)
        async with self.changed:
            self.changed.notify_all()
        return fresh

    async def compact(self) -> int:
        """Write everything into ``archive.parquet`` and ``front.parquet`` now (after the batch being written)."""
        await self.commit.idle()
        await asyncio.to_thread(self.store.compact)
        return len(self.store)

    async def stats(self) -> dict:
        """Results added, batches written (fsyncs), compactions, duplicates and the archive's size."""
        s = self.store
        added = self.commit.items - s.duplicates
        counts = {"added": added, "batches": self.commit.batches, "compactions": s.compactions}
        return counts | {"duplicates": s.duplicates, "size": len(s), "pid": os.getpid()}

    async def get_many(self, archids: Sequence[str]) -> dict[str, Record]:
        return self.store.get_many(archids)

    async def snapshot(self) -> ParetoArchive:
        return self.store.snapshot()

    async def duplicates(self) -> int:
        return self.store.duplicates

    async def wait_for(self, archids: Sequence[str], timeout_s: float) -> dict[str, Record]:
        """Wait until every archid is archived or ``timeout_s`` passes; returns what is there."""
        wanted = list(archids)

        def done() -> bool:
            return all(a in self.store for a in wanted)

        async with self.changed:
            try:
                await asyncio.wait_for(self.changed.wait_for(done), timeout_s)
            except asyncio.TimeoutError:
                pass
        return self.store.get_many(wanted)


def start_archive_actor(run_dir: str | None, name: str | None = None, **store: float) -> ray.actor.ActorHandle:
    """Start the archive actor on this driver's node, so it writes where the driver reads (``store``: compaction)."""
    return ArchiveActor.options(name=name, **on_driver_node()).remote(run_dir, **store)


class RemoteArchiveStore:
    """The :class:`~nasoa.search.evaluator.ArchiveStore` interface over an :class:`ArchiveActor` handle."""

    def __init__(self, actor: ray.actor.ActorHandle) -> None:
        self.actor = actor

    def get_many(self, archids: Sequence[str]) -> dict[str, Record]:
        return ray.get(self.actor.get_many.remote(list(archids)))

    def add(self, record: Record) -> bool:
        return ray.get(self.actor.add.remote(record))

    def snapshot(self) -> ParetoArchive:
        return ray.get(self.actor.snapshot.remote())
