"""A Ray actor that hands work items (candidates, zoo entries) to long-lived workers and keeps their time accounting."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence

import ray

from typing import Any


@ray.remote(num_cpus=0)
class WorkQueue:
    """FIFO of work items; ``get`` waits for work and returns None once the queue is closed."""

    def __init__(self) -> None:
        self.queue: asyncio.Queue[Any] = asyncio.Queue()
        self.closed = False
        self.in_flight: dict[str, tuple[str, float]] = {}
        self.busy: dict[str, float] = {}
        self.ready: dict[str, float] = {}
        self.evaluated = 0

    async def put(self, items: Sequence[Any]) -> int:
        for c in items:
            self.queue.put_nowait(c)
        return self.queue.qsize()

    async def get(self, worker: str) -> Any:
        self.ready.setdefault(worker, time.time())
        if self.closed and self.queue.empty():
            return None
        item = await self.queue.get()
        if item is None:  # wake-up sentinel from close(): pass it on to the next waiting worker
            self.queue.put_nowait(None)
            return None
        self.in_flight[worker] = (str(getattr(item, "archid", None) or getattr(item, "key", item)), time.time())
        return item

    async def done(self, worker: str, busy_s: float) -> None:
        self.in_flight.pop(worker, None)
        self.busy[worker] = self.busy.get(worker, 0.0) + busy_s
        self.evaluated += 1

    async def close(self) -> None:
        self.closed = True
        self.queue.put_nowait(None)

    async def stats(self) -> dict:
        return {
            "busy": dict(self.busy),
            "ready": dict(self.ready),
            "evaluated": self.evaluated,
            "in_flight": dict(self.in_flight),
            "pending": self.queue.qsize(),
        }
