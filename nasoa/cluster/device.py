"""The torch device a Ray worker trains on: decided from what Ray assigned the worker, not from the config.

Every worker entry point that trains (the Train pool's loop: search, zoo, stream, finetune; collect's and BOHB's Tune
trials; the benchmark's fine-tuning tasks) calls :func:`assigned_device` once. A job asks Ray for a GPU per worker
when its runtime says so (``runtime.gpus_per_worker``); the worker then trains on the GPU Ray gave it. A node that
declares GPUs torch cannot see (``ray start --num-gpus=N`` on a CPU machine, as the multi-node test does) trains on
the CPU, with one warning line per process.
"""

from __future__ import annotations

import logging
import os

import ray
import torch

log = logging.getLogger(__name__)
_warned: set[str] = set()


def _warn_once(message: str) -> None:
    if message not in _warned:
        _warned.add(message)
        log.warning("%s", message)


def _cuda_index(gpu_id: str) -> int:
    """The torch index of Ray's GPU ``gpu_id``: its place in CUDA_VISIBLE_DEVICES (Ray sets it), else the id."""
    visible = [v.strip() for v in os.environ.get("CUDA_VISIBLE_DEVICES", "").split(",") if v.strip()]
    if visible:
        return visible.index(gpu_id) if gpu_id in visible else 0
    return int(gpu_id) if gpu_id.isdigit() else 0


def assigned_device(requested: str = "cpu") -> str:
    """``cuda:<i>`` for the first GPU Ray assigned this worker (made the current device), else ``cpu``.

    Args:
        requested: The device the job's config asked for (``runtime.device``). Used as is outside Ray; inside a Ray
            worker only what Ray assigned counts (a ``cuda`` request without an assigned GPU trains on the CPU, and a
            GPU Ray assigned but torch cannot see falls back to the CPU), each with one warning.
    """
    if not ray.is_initialized():
        return requested
    gpu_ids = [str(g) for g in ray.get_gpu_ids()]
    if not gpu_ids:
        if requested.startswith("cuda"):
            _warn_once(f"{requested} requested but Ray assigned this worker no GPU: training on the CPU")
        return "cpu"
    if not torch.cuda.is_available():
        _warn_once(f"Ray assigned GPU(s) {gpu_ids} but torch sees no CUDA device here: training on the CPU")
        return "cpu"
    index = _cuda_index(gpu_ids[0])
    torch.cuda.set_device(index)
    return f"cuda:{index}"
