"""Evaluate one candidate on the proxy task: profile its training step, train it briefly, measure top-1.

Plain torch, no Ray: the Ray Train workers of :mod:`nasoa.dist` call :func:`evaluate_candidate`, and
so can a test. Any exception (out of memory included) or a non-finite loss gives a ``failed`` record.
"""

from __future__ import annotations

import functools
import socket
import time
import traceback
from dataclasses import asdict, dataclass

from nasoa.search.archive import Record
from nasoa.search.evaluator import Candidate


@dataclass(frozen=True)
class ProxySettings:
    """How candidates are measured: proxy data, partial training, and the step-time profile."""

    task: str = "digits"
    resolution: int = 32
    batch_size: int = 64
    train_steps: int = 40
    lr: float = 0.1
    weight_decay: float = 5e-4
    schedule: str = "cosine"
    profile_batch_size: int = 64
    profile_warmup: int = 2
    profile_steps: int = 5
    recalibrate_bn_batches: int = 5
    device: str = "cpu"
    seed: int = 0

    def to_dict(self) -> dict:
        return asdict(self)


@functools.lru_cache(maxsize=4)
def proxy_task(spec: str, resolution: int, seed: int):  # noqa: ANN201
    """The proxy task, built once per process."""
    from nasoa.data import make_task

    return make_task(spec, resolution=resolution, seed=seed)


def device_name(device: str) -> str:
    """A label for where step times were measured, e.g. ``cpu:hostname`` or ``cuda:NVIDIA H100``."""
    if device.startswith("cuda"):
        import torch

        return f"cuda:{torch.cuda.get_device_name(torch.device(device))}"
    return f"cpu:{socket.gethostname()}"


def evaluate_candidate(candidate: Candidate, settings: ProxySettings, worker: str = "") -> Record:
    """Profile, partially train and validate one candidate; failures become ``failed`` records."""
    import torch

    from nasoa.space import build, complexity, parse
    from nasoa.train import profile_step, train_and_evaluate

    t0 = time.perf_counter()
    base = {"archid": candidate.archid, "encoding": candidate.encoding, "level": candidate.level}
    base |= {"generation": candidate.generation, "worker": worker, "device": device_name(settings.device)}
    params = macs = 0
    profile_s = train_s = 0.0
    try:
        task = proxy_task(settings.task, settings.resolution, settings.seed)
        arch = parse(candidate.encoding)
        cx = complexity(arch, settings.resolution, task.num_classes)
        params, macs = cx.params, cx.macs
        torch.manual_seed(settings.seed)
        model = build(arch, task.num_classes)
        profile = profile_step(
            model,
            batch_size=settings.profile_batch_size,
            resolution=settings.resolution,
            device=settings.device,
            warmup=settings.profile_warmup,
            steps=settings.profile_steps,
        )
        profile_s = time.perf_counter() - t0
        from nasoa.data import make_loaders

        train_loader, val_loader = make_loaders(task, settings.batch_size, seed=settings.seed)
        result, ev = train_and_evaluate(
            model,
            train_loader,
            val_loader,
            bn_batches=settings.recalibrate_bn_batches,
            device=settings.device,
            epochs=10**6,
            max_steps=settings.train_steps,
            lr=settings.lr,
            weight_decay=settings.weight_decay,
            schedule=settings.schedule,
        )
        if ev is None:
            raise FloatingPointError(f"non-finite loss after {result.steps} steps")
        top1 = ev.top1
        train_s = time.perf_counter() - t0 - profile_s
        return Record(
            **base,
            status="ok",
            accuracy=float(top1),
            train_step_ms=float(profile.train_step_ms),
            params=params,
            macs=macs,
            eval_s=time.perf_counter() - t0,
            profile_s=profile_s,
            train_s=train_s,
            steps=result.steps,
            finished_at=time.time(),
        )
    except Exception as err:  # noqa: BLE001 - every failure is recorded, and the search goes on
        if "cuda" in settings.device:
            torch.cuda.empty_cache()
        return Record(
            **base,
            status="failed",
            params=params,
            macs=macs,
            eval_s=time.perf_counter() - t0,
            error=(f"{type(err).__name__}: {err}\n" + "".join(traceback.format_tb(err.__traceback__, limit=-3)))[:4000],
            profile_s=profile_s,
            finished_at=time.time(),
        )
