"""A Ray actor that hands work items (candidates, zoo entries) to long-lived workers and keeps their time accounting.

Items survive worker deaths. Every worker registers under its *slot* (its Ray Train rank) with an id unique to its
process (hostname and pid). Ray Train restarts a failed worker group as a whole, so a new id registering in a slot
means the slot's previous worker is gone: the item that worker held (handed out, never reported ``done``) goes back
to the *front* of the queue. Each key is handed out at most ``max_attempts`` times; after that it is dropped and
``on_give_up(item, attempts, reason)`` gives the result that stands for it, so the caller stops waiting. Results
pass through the queue to the sink (:meth:`WorkQueue.done`), which lets it keep exactly one result per key: a late
result from a worker that was presumed dead, or a second one from a retry, is dropped and counted, never sent twice.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Callable, Sequence
from typing import Any

import ray

from nasoa.common.batching import GroupCommit


def item_key(item: Any) -> str:
    """An item's key: ``archid`` (candidates), else ``key`` (zoo items, fine-tuning jobs), else ``str(item)``."""
    return str(getattr(item, "archid", None) or getattr(item, "key", None) or item)


@ray.remote(num_cpus=0)
class WorkQueue:
    """FIFO of work items; ``get`` waits for work and returns None once the queue is closed and empty.

    Args:
        sink: An actor with ``add_many(results)``; results (and give-up results) are forwarded to it, those arriving
            together in one call (:class:`~nasoa.common.batching.GroupCommit`).
        on_give_up: ``(item, attempts, reason) -> result`` for an item that ran out of attempts; None: no result is sent
            (the key is listed in ``stats()['given_up']``).
        max_attempts: How many times one key may be handed out.
    """

    def __init__(
        self,
        sink: ray.actor.ActorHandle | None = None,
        on_give_up: Callable[[Any, int, str], Any] | None = None,
        max_attempts: int = 2,
    ) -> None:
        self.sink = sink
        self.forward: GroupCommit[Any] = GroupCommit(self._forward_many)  # one sink call per batch of results
        self.on_give_up = on_give_up
        self.max_attempts = max_attempts
        self.items: deque[Any] = deque()
        self.changed = asyncio.Condition()
        self.closed = False
        self.in_flight: dict[str, tuple[Any, float]] = {}  # worker id -> (item, handed out at)
        self.slot_of: dict[str, str] = {}  # worker id -> slot
        self.dead: set[str] = set()  # workers of a worker group that was restarted
        self.attempts: dict[str, int] = {}
        self.finished: set[str] = set()
        self.given_up: list[str] = []
        self.events: list[str] = []
        self.dropped_results = 0
        self.busy: dict[str, float] = {}
        self.ready: dict[str, float] = {}
        self.evaluated = 0

    async def put(self, items: Sequence[Any]) -> int:
        async with self.changed:
            self.items.extend(items)
            self.changed.notify_all()
        return len(self.items)

    async def register(self, worker: str, slot: str) -> list[str]:
        """A new worker in ``slot``; if the slot had a live worker, the group restarted: requeue the old items.

        Ray Train restarts the whole worker group, so a new process in an occupied slot means every worker
        registered before it is gone: all of them are marked dead (a ``get`` call still pending for one of them,
        which Ray does not cancel when its caller dies, then returns None instead of taking an item) and the items
        they held are requeued. Returns the requeued keys.
        """
        self.ready.setdefault(slot, time.time())
        restart = any(s == slot and w != worker and w not in self.dead for w, s in self.slot_of.items())
        self.slot_of[worker] = slot
        if not restart:
            return []
        gone = [w for w in self.slot_of if w != worker and w not in self.dead]
        self.dead.update(gone)
        orphans = [w for w in gone if w in self.in_flight]
        keys = [item_key(self.in_flight[w][0]) for w in orphans]
        for w in orphans:
            await self._requeue(w, f"worker {w} died")
        async with self.changed:
            self.changed.notify_all()  # wake the dead workers' pending get calls
        return keys

    async def get(self, worker: str) -> Any:
        """The next item for ``worker`` (a worker holds one item at a time); None once closed and empty."""
        if worker in self.in_flight:  # a worker asking again has abandoned its previous item
            await self._requeue(worker, f"worker {worker} asked for work before reporting it done")
        self.ready.setdefault(self.slot_of.get(worker, worker), time.time())
        async with self.changed:
            while True:
                await self.changed.wait_for(lambda: self.items or self.closed or worker in self.dead)
                if worker in self.dead or not self.items:
                    return None
                item = self.items.popleft()
                if item_key(item) not in self.finished:
                    break
        key = item_key(item)
        self.attempts[key] = self.attempts.get(key, 0) + 1
        self.in_flight[worker] = (item, time.time())
        return item

    async def done(self, worker: str, key: str, result: Any, busy_s: float) -> bool:
        """``worker`` finished ``key``: forward ``result`` to the sink unless the key already has one."""
        held = self.in_flight.get(worker)
        if held is not None and item_key(held[0]) == key:
            del self.in_flight[worker]
        slot = self.slot_of.get(worker, worker)
        self.busy[slot] = self.busy.get(slot, 0.0) + busy_s
        if key in self.finished:
            self.dropped_results += 1
            return False
        self.finished.add(key)
        self.evaluated += 1
        if self.sink is not None:
            await self.forward.submit(result)
        return True

    async def done_and_get(self, worker: str, key: str, result: Any, busy_s: float) -> Any:
        """:meth:`done`, then :meth:`get`: one call per item for a worker's loop."""
        await self.done(worker, key, result, busy_s)
        return await self.get(worker)

    async def _forward_many(self, results: list[Any]) -> list[bool]:
        return await self.sink.add_many.remote(results)

    async def _requeue(self, worker: str, reason: str) -> None:
        item, _ = self.in_flight.pop(worker)
        key = item_key(item)
        if key in self.finished:
            return
        n = self.attempts.get(key, 0)
        if n < self.max_attempts:
            self.events.append(f"requeued {key} after attempt {n} of {self.max_attempts}: {reason}")
            async with self.changed:
                self.items.appendleft(item)
                self.changed.notify_all()
            return
        self.finished.add(key)
        self.given_up.append(key)
        self.events.append(f"gave up on {key} after {n} attempts: {reason}")
        if self.sink is not None and self.on_give_up is not None:
            await self.forward.submit(self.on_give_up(item, n, reason))

    async def close(self) -> None:
        async with self.changed:
            self.closed = True
            self.changed.notify_all()

    async def stats(self) -> dict:
        return {
            "busy": dict(self.busy),
            "ready": dict(self.ready),
            "evaluated": self.evaluated,
            "in_flight": {w: (item_key(item), t) for w, (item, t) in self.in_flight.items()},
            "pending": len(self.items),
            "given_up": list(self.given_up),
            "events": list(self.events),
            "dropped_results": self.dropped_results,
        }
