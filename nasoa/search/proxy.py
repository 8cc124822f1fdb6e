"""Evaluate one candidate on the proxy task: profile its training step, train it briefly, measure top-1.

Plain torch, no Ray: the Ray Train workers of :mod:`nasoa.cluster` call :func:`evaluate_candidate`, and so can a
test. The proxy is a :class:`~nasoa.train.recipe.Recipe` (the ``recipe@proxy`` config). Any exception (out of
memory included) or a non-finite loss gives a ``failed`` record.
"""

from __future__ import annotations

import time
import traceback
from dataclasses import replace

import torch

from nasoa.models import build
from nasoa.search.archive import Record
from nasoa.search.evaluator import Candidate
from nasoa.space import complexity, parse
from nasoa.train.device import device_name
from nasoa.train.recipe import Recipe, fit, profile, source_task


def evaluate_candidate(candidate: Candidate, recipe: Recipe, worker: str = "") -> Record:
    """Profile, partially train and validate one candidate; failures become ``failed`` records."""
    t0 = time.perf_counter()
    base = {"archid": candidate.archid, "encoding": candidate.encoding, "level": candidate.level}
    base |= {"generation": candidate.generation, "worker": worker, "device": device_name(recipe.device)}
    done: dict = {"params": 0, "macs": 0}  # what was measured before a failure
    try:
        return Record(**base, **_measure(candidate, recipe, t0, done), status="ok", finished_at=time.time())
    except Exception as err:  # noqa: BLE001 - every failure is recorded, and the search goes on
        if "cuda" in recipe.device:
            torch.cuda.empty_cache()
        error = f"{type(err).__name__}: {err}\n" + "".join(traceback.format_tb(err.__traceback__, limit=-3))
        done |= {"eval_s": time.perf_counter() - t0, "error": error[:4000]}
        return Record(**base, **done, status="failed", finished_at=time.time())


def _measure(candidate: Candidate, recipe: Recipe, t0: float, done: dict) -> dict:
    """Profile at the recipe's first batch size, then train and evaluate; fills ``done`` as it goes."""
    task = source_task(recipe.source, recipe.resolution, recipe.seed)
    arch = parse(candidate.encoding)
    cx = complexity(arch, recipe.resolution, task.num_classes)
    done |= {"params": cx.params, "macs": cx.macs}
    torch.manual_seed(recipe.seed)
    model = build(arch, task.num_classes)
    ((_, _, step),) = profile(model, replace(recipe, profile_batch_sizes=recipe.profile_batch_sizes[:1]))
    done["profile_s"] = time.perf_counter() - t0
    result, ev = fit(model, recipe)
    if ev is None:
        raise FloatingPointError(f"non-finite loss after {result.steps} steps")
    return done | {
        "accuracy": float(ev.top1),
        "train_step_ms": float(step.train_step_ms),
        "eval_s": time.perf_counter() - t0,
        "train_s": time.perf_counter() - t0 - done["profile_s"],
        "steps": result.steps,
    }
