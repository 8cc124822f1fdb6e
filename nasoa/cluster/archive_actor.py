"""A Ray actor that serialises access to the search archive and persists it after every result."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import ray
from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

from nasoa.search.archive import ParetoArchive, Record
from nasoa.search.evaluator import LocalArchiveStore


@ray.remote(num_cpus=0, max_restarts=-1, max_task_retries=-1)
class ArchiveActor:
    """Holds a :class:`LocalArchiveStore`; ``wait_for`` lets the driver wait for a generation's results.

    Restarts (``max_restarts=-1``) reload the archive from its Parquet file, so a killed actor loses nothing
    it acknowledged.
    """

    def __init__(self, run_dir: str | None) -> None:
        self.store = LocalArchiveStore(run_dir)
        self.changed = asyncio.Condition()

    async def add(self, record: Record) -> bool:
        added = self.store.add(record)
        async with self.changed:
            self.changed.notify_all()
        return added

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
            return all(a in self.store.archive for a in wanted)

        async with self.changed:
            try:
                await asyncio.wait_for(self.changed.wait_for(done), timeout_s)
            except asyncio.TimeoutError:
                pass
        return self.store.get_many(wanted)


def start_archive_actor(run_dir: str | None, name: str | None = None) -> ray.actor.ActorHandle:
    """Start the archive actor on this driver's node, so it writes where the driver reads."""
    node = ray.get_runtime_context().get_node_id()
    return ArchiveActor.options(
        name=name, scheduling_strategy=NodeAffinitySchedulingStrategy(node_id=node, soft=False)
    ).remote(run_dir)


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
