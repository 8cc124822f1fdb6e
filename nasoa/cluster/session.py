"""The one way jobs get Ray: ``with ray_session(runtime): ...``; and ``stop_signals()`` for a clean stop on SIGTERM.

Inside a session that is already up (a test's Ray, or the pipeline running several jobs), it reuses it and leaves
it running; otherwise it joins the configured cluster or starts a private local instance, and shuts it down on
the way out, whatever happened inside.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType

import ray
from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

from nasoa.cluster.runtime import RuntimeSettings

log = logging.getLogger(__name__)


def start_ray(runtime: RuntimeSettings) -> None:
    """Join ``runtime.address`` or start a private local Ray (never a bare ``ray.init()``: it joins stray clusters)."""
    os.environ.setdefault("RAY_TRAIN_HEALTH_CHECK_INTERVAL_S", str(runtime.health_check_interval_s))
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    if runtime.address:
        ray.init(address=runtime.address, log_to_driver=False)
        return
    ray.init(
        address="local",
        num_cpus=runtime.num_cpus or os.cpu_count(),
        include_dashboard=False,
        log_to_driver=False,
        _temp_dir=runtime.temp_dir,
    )


@contextmanager
def ray_session(runtime: RuntimeSettings) -> Iterator[str]:
    """Ray for the duration of the block; yields the GCS address. Only a session this call started is shut down."""
    owned = not ray.is_initialized()
    if owned:
        start_ray(runtime)
    address = ray.get_runtime_context().gcs_address
    log.info("Ray at %s (%s)", address, "joined " + runtime.address if runtime.address else "private local instance")
    try:
        yield address
    finally:
        if owned:
            ray.shutdown()


def on_driver_node() -> dict:
    """Actor options pinning an actor to this driver's node (the head node on a cluster).

    The actors that hold a job's state (the archive, the work queue, the result sinks) live there: worker nodes
    (spot instances) may go at any time, and the sinks write files where the driver reads them.
    """
    node = ray.get_runtime_context().get_node_id()
    return {"scheduling_strategy": NodeAffinitySchedulingStrategy(node_id=node, soft=False)}


class StopRequest:
    """Set when SIGTERM or SIGINT arrives inside :func:`stop_signals`; the job checks it and stops cleanly."""

    def __init__(self) -> None:
        self.event = threading.Event()
        self.signal: str | None = None

    @property
    def requested(self) -> bool:
        return self.event.is_set()

    def wait(self, timeout_s: float | None = None) -> bool:
        """Block until a stop is requested (or ``timeout_s`` passes); whether it was."""
        return self.event.wait(timeout_s)

    def handle(self, signum: int, frame: FrameType | None) -> None:
        name = signal.Signals(signum).name
        if self.requested:
            log.warning("%s received: already stopping (in-flight work is finishing)", name)
            return
        self.signal = name
        self.event.set()
        log.warning("%s received: stopping (in-flight work finishes, then Serve and Ray shut down)", name)


@contextmanager
def stop_signals() -> Iterator[StopRequest]:
    """SIGTERM and SIGINT set a :class:`StopRequest` instead of ending the process mid-call; restored on the way out.

    Enter it after Ray is up (``ray.init`` installs a SIGTERM handler that exits the driver at once). In a thread
    other than the main one no handler can be installed: the request is then never set.
    """
    stop = StopRequest()
    if threading.current_thread() is not threading.main_thread():
        yield stop
        return
    previous = {s: signal.signal(s, stop.handle) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield stop
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
