"""Group commit for asyncio code: items submitted concurrently share one call of a batch writer.

The archive actor journals results through one (one fsync per batch), and each process that forwards results to
the archive (the work queue, a benchmark's client process) sends them through one (one Ray call per batch). No Ray
here: the writer is any ``async (items) -> results`` function.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Generic, TypeVar

T = TypeVar("T")


class GroupCommit(Generic[T]):
    """Each submission waits for its own result; those arriving while a batch is written go together in the next.

    The batch size adapts to the load: one item when idle, everything that arrived during one write under load; no
    timer, so an idle submission is never delayed.

    Args:
        write_many: Writes a batch; returns one result per item, in order. An exception fails every item of the
            batch (each submitter gets it); later batches are tried again.
    """

    def __init__(self, write_many: Callable[[list[T]], Awaitable[Sequence[Any]]]) -> None:
        self.write_many = write_many
        self.pending: list[tuple[T, asyncio.Future]] = []
        self.writer: asyncio.Task | None = None
        self.batches = 0
        self.items = 0

    async def submit(self, item: T) -> Any:
        """Write ``item`` in the next batch; its result once the batch is written."""
        return (await self.submit_many([item]))[0]

    async def submit_many(self, items: Sequence[T]) -> list[Any]:
        """Write ``items`` in the next batch; their results in order."""
        loop = asyncio.get_running_loop()
        futures = [loop.create_future() for _ in items]
        self.pending.extend(zip(items, futures))
        if self.writer is None or self.writer.done():
            self.writer = asyncio.create_task(self._drain())
        return list(await asyncio.gather(*futures))

    async def _drain(self) -> None:
        while self.pending:
            batch, self.pending = self.pending, []
            try:
                results = await self.write_many([item for item, _ in batch])
            except Exception as err:  # noqa: BLE001 - handed to every submitter of the batch
                _settle(batch, [None] * len(batch), err)
                continue
            self.batches += 1
            self.items += len(batch)
            _settle(batch, results, None)

    async def idle(self) -> None:
        """Wait until everything submitted so far is written."""
        while self.writer is not None and not self.writer.done():
            await asyncio.shield(self.writer)


def _settle(batch: list[tuple[Any, asyncio.Future]], results: Sequence[Any], error: Exception | None) -> None:
    for (_, future), result in zip(batch, results, strict=True):
        if future.done():  # its submitter went away (cancelled)
            continue
        if error is None:
            future.set_result(result)
        else:
            future.set_exception(error)
