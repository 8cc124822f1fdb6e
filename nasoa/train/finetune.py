"""Fine-tune a zoo model on a task with a regime, under a deadline. Plain torch, no Ray.

The deadline covers everything from the call: loading, training, BN re-estimation and evaluation on the
validation split. Training is planned for the regime's steps and re-planned from the measured time per step so
that it ends, annealed, before ``deadline - reserve`` (the reserve is the predicted evaluation time); as a last
resort no step starts past that point, so a run overshoots its deadline by at most one step plus evaluation. A short
learning curve (validation top-1 on a sample, at a quarter, half and three quarters of the plan) is recorded on the
way. With ``test=True`` the test split is scored after the clock stops: the benchmark's measurement, not the run's.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import torch
from torch.utils.data import DataLoader, Subset

from nasoa.data import make_loaders, make_test_loader
from nasoa.train.device import device_name
from nasoa.train.loop import evaluate, train_and_evaluate

#: Fractions of the plan where the learning curve is sampled.
CURVE_AT = (0.25, 0.5, 0.75)
#: Validation images the curve points are measured on (the final top-1 uses all of them).
CURVE_IMAGES = 128


@dataclass(frozen=True)
class FinetuneResult:
    """What a fine-tuning run achieved.

    Attributes:
        accuracy: Validation top-1 at the end (chance for a diverged run).
        time_s: Wall seconds of the run (test scoring excluded).
        finished: Whether the run completed its plan (as re-planned), annealed.
        stopped_by: ``"done"``, ``"deadline"`` (cut) or ``"nan"`` (diverged).
        steps: Optimizer steps done.
        planned_steps: Steps planned at the start.
        epochs_done: Steps over steps per epoch.
        train_s: Seconds until training ended (loading included).
        eval_s: Seconds of BN re-estimation and validation.
        device: Where it ran (``cpu:<host>`` or ``cuda:<name>``).
        final_planned_steps: Steps planned at the end (fewer when re-planned to fit the deadline).
        step_ms: Median measured training step (batch fetch excluded).
        step_wall_ms: Median wall time of a training step, batch fetch included (what a step costs the run).
        curve: ``[steps, validation top-1 on a sample]`` at a few points of the plan, then the final top-1.
        test_accuracy: Test top-1 (only when asked for; measured after the clock stopped).
    """

    accuracy: float
    time_s: float
    finished: bool
    stopped_by: str
    steps: int
    planned_steps: int
    epochs_done: float
    train_s: float
    eval_s: float
    device: str = ""
    final_planned_steps: int = 0
    step_ms: float = math.nan
    curve: list = field(default_factory=list)
    step_wall_ms: float = math.nan
    test_accuracy: float | None = None

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
    test: bool = False,
    loader_workers: int = 0,
) -> FinetuneResult:
    """Fine-tune ``regime.model`` from ``zoo`` on ``task``; end, annealed, before ``deadline_s`` seconds from the call.

    ``on_epoch(epoch, top1)``, when given, is called after every epoch but the last with the validation top-1 of
    the model as it is (running BN statistics; this evaluation counts against the deadline), and at the end with
    the final top-1: a multi-fidelity search (BOHB) learns from these. ``loader_workers`` data-loader processes
    decode and augment ahead of the training step (0: in this process).
    """
    t0 = time.perf_counter()
    if deadline_s is not None and not (math.isfinite(deadline_s) and deadline_s > 0):
        raise ValueError(f"deadline_s must be a positive number of seconds, got {deadline_s!r}")
    torch.manual_seed(seed)
    model = zoo.load(regime.model, num_classes=task.num_classes, frozen_stages=regime.frozen_stages, device=device)
    train_loader, val_loader = make_loaders(task, regime.batch_size, seed=seed, num_workers=loader_workers)
    planned = regime.planned_steps(len(train_loader.dataset))
    curve: list[list[float]] = []
    reserve = _Reserve(zoo.get(regime.model), regime, task, bn_batches, device_name(device))
    budget = None if deadline_s is None else max(0.0, deadline_s - (time.perf_counter() - t0))
    hooks = _Hooks(model, val_loader, device, planned, len(train_loader), on_epoch, curve)
    t_train = time.perf_counter()
    result, ev = train_and_evaluate(
        model,
        train_loader,
        val_loader,
        bn_batches=bn_batches,
        device=device,
        epochs=regime.epochs,
        max_steps=planned,
        lr=regime.lr,
        schedule=regime.schedule,
        frozen_stages=regime.frozen_stages,
        deadline_s=budget,
        on_step=hooks,
        fit_deadline=budget is not None,
        on_replan=hooks.replan,
        reserve=reserve if budget is not None else None,
    )
    t_eval = t_train + result.seconds
    accuracy = ev.top1 if ev is not None else 1.0 / task.num_classes  # a diverged run is as good as chance
    end = time.perf_counter()
    curve.append([result.steps, float(accuracy)])
    if on_epoch is not None:
        on_epoch(max(1, math.ceil(result.steps / max(1, len(train_loader)))), float(accuracy))
    return FinetuneResult(
        accuracy=float(accuracy),
        time_s=end - t0,
        finished=result.finished,
        stopped_by="done" if result.stopped_by == "max_steps" else result.stopped_by,
        steps=result.steps,
        planned_steps=planned,
        epochs_done=result.steps / max(1, len(train_loader)),
        train_s=t_eval - t0,
        eval_s=end - t_eval,
        device=device_name(device),
        final_planned_steps=result.planned_steps,
        step_ms=result.step_ms_median,
        step_wall_ms=result.step_wall_ms,
        curve=curve,
        test_accuracy=_test_top1(model, task, regime.batch_size, device) if test and ev is not None else None,
    )


class _Hooks:
    """Called after every step: the learning curve's points, and ``on_epoch`` at epoch ends."""

    def __init__(self, model, val_loader, device, planned, per_epoch, on_epoch, curve) -> None:  # noqa: ANN001
        self.model, self.device, self.planned, self.per_epoch = model, device, planned, per_epoch
        self.on_epoch, self.curve = on_epoch, curve
        self.val_loader = val_loader
        self.sample = _sample_loader(val_loader)
        self.points: set[int] = set()
        self.replan(planned)

    def replan(self, planned: int) -> None:
        """The curve's points at fractions of the (new) plan; points already measured stay."""
        done = max((int(s) for s, _ in self.curve), default=0)
        self.points = {p for p in (max(1, round(f * planned)) for f in CURVE_AT) if done < p < planned}

    def __call__(self, step: int, loss: float, lr: float) -> None:
        if step in self.points:
            self.curve.append([step, evaluate(self.model, self.sample, device=self.device).top1])
            self.model.train()  # a StagedNet keeps its frozen parts in eval mode
        if self.on_epoch is not None and step % self.per_epoch == 0 and step < self.planned:
            self.on_epoch(step // self.per_epoch, evaluate(self.model, self.val_loader, device=self.device).top1)
            self.model.train()


def _sample_loader(val_loader: DataLoader) -> DataLoader:
    """The first :data:`CURVE_IMAGES` validation images, in the same batches."""
    data = val_loader.dataset
    if len(data) <= CURVE_IMAGES:
        return val_loader
    return DataLoader(Subset(data, range(CURVE_IMAGES)), batch_size=val_loader.batch_size, shuffle=False)


def _test_top1(model, task, batch_size: int, device: str) -> float | None:  # noqa: ANN001
    """Test top-1 of the fine-tuned model (None for a task without a test split)."""
    if task.test is None:
        return None
    return float(evaluate(model, make_test_loader(task, batch_size), device=device).top1)


class _Reserve:
    """Seconds to keep free after training: BN re-estimation, validation and the curve points.

    Predicted from the zoo profiles (with a 1.5x margin), and scaled up by how much slower than profiled the
    training steps run (the measured wall time per step over the profiled step): on a machine busier than when the
    zoo was profiled, evaluation is slower too. Without a profile for the device: 1.5x the batches at the measured
    step time.
    """

    def __init__(self, entry, regime, task, bn_batches: int, device: str) -> None:  # noqa: ANN001
        val = len(task.val)
        curve = len(CURVE_AT) * math.ceil(min(val, CURVE_IMAGES) / regime.batch_size)
        self.batches = math.ceil(val / regime.batch_size) + bn_batches + curve
        res = task.meta.resolution
        try:
            self.per_batch = entry.inference_ms(device, regime.batch_size, resolution=res) / 1000
            self.step = entry.step_ms(device, regime.batch_size, regime.frozen_stages, resolution=res) / 1000
        except KeyError:
            self.per_batch = self.step = None

    def __call__(self, recent_step_s: float) -> float:
        if self.per_batch is None:  # no profile: an evaluation batch costs at most a training step
            return 1.5 * self.batches * recent_step_s
        slower = max(1.0, recent_step_s / self.step) if self.step > 0 else 1.0
        return 1.5 * self.batches * self.per_batch * slower


__all__ = ["CURVE_AT", "FinetuneResult", "finetune"]
