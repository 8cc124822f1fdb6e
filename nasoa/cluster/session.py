"""The one way jobs get Ray: ``with ray_session(runtime): ...``.

Inside a session that is already up (a test's Ray, or the pipeline running several jobs), it reuses it and leaves
it running; otherwise it joins the configured cluster or starts a private local instance, and shuts it down on
the way out, whatever happened inside.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager

import ray

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
