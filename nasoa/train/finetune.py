"""Fine-tune a zoo model on a task with a regime, under a deadline. Plain torch, no Ray.

The deadline covers everything from the call: loading, training, BN re-estimation and evaluation. Training
stops before a step would start past ``deadline - reserve`` (the reserve is the predicted evaluation time),
so a run overshoots its deadline by at most one step plus evaluation.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

import torch

from nasoa.data import make_loaders
from nasoa.train.device import device_name
from nasoa.train.loop import evaluate, train_and_evaluate


@dataclass(frozen=True)
class FinetuneResult:
    """What a fine-tuning run achieved."""

    accuracy: float
    time_s: float
    finished: bool
    stopped_by: str  # "done" | "deadline" | "nan"
    steps: int
    planned_steps: int
    epochs_done: float
    train_s: float
    eval_s: float
    device: str = ""

    def to_dict(self) -> dict:
        return asdict(self)


def finetune(
    zoo,  # noqa: ANN001 - a nasoa.zoo.Zoo
    regime,  # noqa: ANN001 - a nasoa.online.regime.Regime
    task,  # noqa: ANN001 - a nasoa.data.Task
    deadline_s: float | None = None,
    device: str = "cpu",
    seed: int = 0,
    bn_batches: int = 5,
    on_epoch: Callable[[int, float], Any] | None = None,
) -> FinetuneResult:
    """Fine-tune ``regime.model`` from ``zoo`` on ``task``; stop cleanly at ``deadline_s`` seconds after the call.

    ``on_epoch(epoch, top1)``, when given, is called after every epoch but the last with the validation top-1 of
    the model as it is (running BN statistics; this evaluation counts against the deadline), and at the end with
    the final top-1: a multi-fidelity search (BOHB) learns from these.
    """
    t0 = time.perf_counter()
    if deadline_s is not None and not (math.isfinite(deadline_s) and deadline_s > 0):
        raise ValueError(f"deadline_s must be a positive number of seconds, got {deadline_s!r}")
    torch.manual_seed(seed)
    entry = zoo.get(regime.model)
    model = zoo.load(regime.model, num_classes=task.num_classes, frozen_stages=regime.frozen_stages, device=device)
    train_loader, val_loader = make_loaders(task, regime.batch_size, seed=seed)
    planned = regime.epochs * len(train_loader)
    reserve = _eval_reserve(entry, task, regime.batch_size, bn_batches, device_name(device))
    budget = None if deadline_s is None else max(0.0, deadline_s - (time.perf_counter() - t0) - reserve)
    on_step = None
    if on_epoch is not None:
        per_epoch = len(train_loader)

        def on_step(step: int, loss: float, lr: float) -> None:
            if step % per_epoch == 0 and step < planned:
                on_epoch(step // per_epoch, evaluate(model, val_loader, device=device).top1)
                model.train()  # a StagedNet keeps its frozen parts in eval mode

    t_train = time.perf_counter()
    result, ev = train_and_evaluate(
        model,
        train_loader,
        val_loader,
        bn_batches=bn_batches,
        device=device,
        epochs=regime.epochs,
        lr=regime.lr,
        schedule=regime.schedule,
        frozen_stages=regime.frozen_stages,
        deadline_s=budget,
        on_step=on_step,
    )
    t_eval = t_train + result.seconds
    accuracy = ev.top1 if ev is not None else 1.0 / task.num_classes  # a diverged run is as good as chance
    end = time.perf_counter()
    if on_epoch is not None:
        on_epoch(max(1, math.ceil(result.steps / max(1, len(train_loader)))), float(accuracy))
    return FinetuneResult(
        accuracy=float(accuracy),
        time_s=end - t0,
        finished=result.finished,
        stopped_by=result.stopped_by if result.stopped_by != "max_steps" else "done",
        steps=result.steps,
        planned_steps=planned,
        epochs_done=result.steps / max(1, len(train_loader)),
        train_s=t_eval - t0,
        eval_s=end - t_eval,
        device=device_name(device),
    )


def _eval_reserve(entry, task, batch_size: int, bn_batches: int, device: str) -> float:  # noqa: ANN001
    """Predicted seconds for BN re-estimation and validation, from the zoo profiles (0 when unprofiled)."""
    try:
        val_batches = math.ceil(len(task.val) / batch_size)
        per_batch = entry.inference_ms(device, batch_size, resolution=task.meta.resolution) / 1000
    except KeyError:
        return 0.0
    return 1.5 * (val_batches + bn_batches) * per_batch
