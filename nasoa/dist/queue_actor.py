"""A Ray actor that hands candidates to long-lived workers and keeps their time accounting."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence

import ray

from nasoa.search.evaluator import Candidate


@ray.remote(num_cpus=0)
class CandidateQueue:
    """FIFO of candidates; ``get`` waits for work and returns None once the queue is closed."""

    def __init__(self) -> None:
        self.queue: asyncio.Queue[Candidate | None] = asyncio.Queue()
        self.closed = False
        self.in_flight: dict[str, tuple[str, float]] = {}
        self.busy: dict[str, float] = {}
        self.ready: dict[str, float] = {}
        self.evaluated = 0

    async def put(self, candidates: Sequence[Candidate]) -> int:
        for c in candidates:
            self.queue.put_nowait(c)
        return self.queue.qsize()

    async def get(self, worker: str) -> Candidate | None:
        self.ready.setdefault(worker, time.time())
        if self.closed and self.queue.empty():
            return None
        item = await self.queue.get()
        if item is None:  # wake-up sentinel from close(): pass it on to the next waiting worker
            self.queue.put_nowait(None)
            return None
        self.in_flight[worker] = (item.archid, time.time())
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
