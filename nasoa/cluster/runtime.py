"""Where jobs run: the ``runtime`` config (``conf/runtime/local.yaml``, ``aws.yaml``) as a typed value. No Ray here."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class RuntimeSettings:
    """A private local Ray instance or an existing cluster, and what each training worker gets.

    Attributes:
        name: A label for logs and summaries (``local``, ``aws``).
        address: None starts a private local Ray (never a stray one left running); ``auto`` or ``host:port`` joins
            that cluster.
        storage_path: Ray Train / Tune storage; None keeps it inside the run folder (a cluster needs shared storage).
        num_workers: Training workers of the search and zoo pools.
        cpus_per_worker: CPUs Ray reserves per training worker.
        gpus_per_worker: GPUs Ray reserves per training worker, in every job that trains; above 0, workers train on
            the GPU Ray assigned them.
        threads: Torch threads per worker.
        num_cpus: CPUs of a private local Ray (None: all cores).
        temp_dir: Root of a private local Ray's session folder (None: Ray's default; keep it short, Ray's socket
            paths must stay under 107 bytes).
        health_check_interval_s: Ray Train's health-check interval (a short one cuts a finished fit's teardown).
    """

    name: str = "local"
    address: str | None = None
    storage_path: str | None = None
    num_workers: int = 2
    cpus_per_worker: float = 1.0
    gpus_per_worker: float = 0.0
    threads: int = 1
    num_cpus: int | None = None
    temp_dir: str | None = None
    health_check_interval_s: float = 0.2

    @property
    def use_gpu(self) -> bool:
        """Whether training workers ask Ray for GPUs."""
        return self.gpus_per_worker > 0

    @property
    def device(self) -> str:
        """The torch device workers train on: ``cuda`` (the GPU Ray assigned) or ``cpu``."""
        return "cuda" if self.use_gpu else "cpu"

    def worker_resources(self, cpus: float | None = None) -> dict[str, float]:
        """Ray resources of one training worker (``cpus`` overrides the CPU count, e.g. for a lighter trial)."""
        resources: dict[str, float] = {"CPU": self.cpus_per_worker if cpus is None else cpus}
        if self.use_gpu:
            resources["GPU"] = self.gpus_per_worker
        return resources

    def storage(self, run_dir: Any, name: str = "ray") -> str:
        """Where Ray Train / Tune keep their files for a run in ``run_dir``."""
        return self.storage_path or f"{run_dir}/{name}"
