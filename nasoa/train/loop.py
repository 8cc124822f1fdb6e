"""A plain training and evaluation loop, used by the search, zoo building and deadline fine-tuning.

No Ray here: Ray workers call these functions (after :func:`set_threads`). A run under a time budget passes
``deadline_s`` (the budget minus the time reserved for BatchNorm re-estimation and evaluation); the loop checks
the clock before every step and never starts one past the deadline. A non-finite loss stops the run with
``stopped_by="nan"`` instead of raising, so the caller can record the failure.
"""

from __future__ import annotations

import math
import statistics
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Literal

import torch
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm

from nasoa.train.device import as_device, synchronize

__all__ = [
    "EvalResult",
    "TrainResult",
    "evaluate",
    "lr_at",
    "recalibrate_bn",
    "set_threads",
    "train",
    "train_and_evaluate",
    "warm_up",
]

Schedule = Literal["cosine", "step", "constant"]
StopReason = Literal["done", "deadline", "max_steps", "nan"]


@dataclass(frozen=True)
class TrainResult:
    """What :func:`train` did.

    Attributes:
        steps: Optimizer steps completed.
        epochs_done: Steps done over steps per epoch (full epochs when the loader has no length).
        seconds: Wall time of the whole call, data loading included.
        final_loss: Loss of the last step run (NaN or inf when stopped by a non-finite loss; NaN if no step ran).
        mean_loss_last_epoch: Mean loss over the steps of the last (possibly partial) epoch; NaN if none.
        finished: Whether the planned steps were completed (the plan as re-planned to fit the deadline).
        stopped_by: ``"done"``, ``"deadline"``, ``"max_steps"`` or ``"nan"``.
        step_ms_median: Median compute time of a step (batch fetch excluded), leaving out the first step when
            there are more; NaN if no step ran.
        planned_steps: The steps planned at the end (fewer than at the start when re-planned to the deadline).
        replanned: Whether the plan was shortened to end before the deadline.
        step_wall_ms: Median wall time of a step, batch fetch included (the first left out as above): what a step
            costs the run.
    """

    steps: int
    epochs_done: float
    seconds: float
    final_loss: float
    mean_loss_last_epoch: float
    finished: bool
    stopped_by: StopReason
    step_ms_median: float
    planned_steps: int = 0
    replanned: bool = False
    step_wall_ms: float = float("nan")


@dataclass(frozen=True)
class EvalResult:
    """What :func:`evaluate` measured.

    Attributes:
        top1: Fraction of correctly classified examples, in [0, 1].
        loss: Mean cross-entropy.
        n: Examples seen.
        seconds: Wall time.
    """

    top1: float
    loss: float
    n: int
    seconds: float


def set_threads(n: int) -> int:
    """Set torch's intra-op threads to ``n``, and its inter-op threads too where that is still allowed.

    Ray sets ``OMP_NUM_THREADS`` per task but reuses worker processes, so torch may keep an old thread count: call
    this inside each task.

    Returns:
        The intra-op thread count now in effect.
    """
    if n < 1:
        raise ValueError(f"threads must be at least 1, got {n}")
    torch.set_num_threads(n)
    if torch.get_num_interop_threads() != n:
        try:
            torch.set_num_interop_threads(n)
        except RuntimeError:  # only settable before the first inter-op parallel work in the process
            pass
    return torch.get_num_threads()


def warm_up() -> float:
    """Pay torch's one-off start-up costs (a first optimizer imports ``torch._dynamo``: 1.5-8 s here) now.

    Call it once in a fresh worker before anything timed or under a deadline; later calls cost microseconds.

    Returns:
        Seconds spent.
    """
    start = time.perf_counter()
    p = nn.Parameter(torch.zeros(2))
    opt = torch.optim.SGD([p], lr=0.1, momentum=0.9)
    p.sum().backward()
    opt.step()
    return time.perf_counter() - start


def lr_at(step: int, total: int, base_lr: float, schedule: Schedule, warmup: int = 0) -> float:
    """Learning rate for step ``step`` (0-based) of ``total`` planned steps.

    The first ``warmup`` steps ramp linearly up to ``base_lr``; then ``cosine`` anneals from ``base_lr`` towards 0;
    ``step`` multiplies by 0.1 at 1/2 and again at 3/4 of the steps; ``constant`` keeps ``base_lr``.
    """
    if step < warmup:
        return base_lr * (step + 1) / (warmup + 1)
    if schedule == "constant" or total <= 0:
        return base_lr
    t = min(step, total) / total
    if schedule == "cosine":
        return base_lr * 0.5 * (1.0 + math.cos(math.pi * t))
    if schedule == "step":
        return base_lr * (0.1 ** ((t >= 0.5) + (t >= 0.75)))
    raise ValueError(f"unknown schedule {schedule!r} (cosine, step or constant)")


def _split_batch(batch: Any) -> tuple[torch.Tensor, torch.Tensor | None]:
    if isinstance(batch, (list, tuple)):
        return batch[0], (batch[1] if len(batch) > 1 else None)
    if isinstance(batch, dict):
        return batch["image"] if "image" in batch else batch["x"], batch.get("label", batch.get("y"))
    return batch, None


def _apply_freeze(model: nn.Module, frozen_stages: int) -> None:
    if hasattr(model, "freeze"):
        model.freeze(frozen_stages)
    elif frozen_stages != 0:
        raise ValueError("frozen_stages > 0 needs a StagedNet (a model with freeze())")


def train(
    model: nn.Module,
    train_loader: Iterable[Any],
    *,
    epochs: int = 1,
    lr: float = 0.05,
    momentum: float = 0.9,
    weight_decay: float = 5e-4,
    schedule: Schedule = "cosine",
    frozen_stages: int = 0,
    max_steps: int | None = None,
    deadline_s: float | None = None,
    device: str | torch.device = "cpu",
    on_step: Callable[[int, float, float], Any] | None = None,
    label_smoothing: float = 0.0,
    fit_deadline: bool = False,
    on_replan: Callable[[int], Any] | None = None,
    optimizer: str = "sgd",
    warmup_steps: int = 0,
    reserve: Callable[[float], float] | None = None,
) -> TrainResult:
    """Train ``model`` in place with SGD over its trainable parameters.

    The model is moved to ``device`` and left ``freeze(frozen_stages)``-ed and in train mode. The learning rate
    follows ``schedule`` per step over the planned steps (``epochs`` x batches per epoch, capped by ``max_steps``).

    Args:
        model: The network; a StagedNet when ``frozen_stages`` > 0.
        train_loader: Yields ``(images, labels)`` batches; re-iterated once per epoch.
        epochs: Passes over ``train_loader``.
        lr: Peak learning rate.
        momentum: SGD momentum.
        weight_decay: SGD weight decay.
        schedule: ``"cosine"``, ``"step"`` or ``"constant"``.
        frozen_stages: Freeze the stem and the first ``k`` stages (0 = none).
        max_steps: Stop after this many steps (needed when the loader has no length and ``epochs`` is large).
        deadline_s: Seconds from the call after which no new step is started.
        device: ``"cpu"``, ``"cuda"``, ``"cuda:N"`` or ``"auto"``.
        on_step: Called after each step as ``on_step(step, loss, lr)``, ``step`` counting from 1.
        label_smoothing: Cross-entropy label smoothing.
        fit_deadline: Re-plan to the deadline: from the third step on, when the measured wall time per step says
            the planned steps would not fit before ``deadline_s``, shorten the plan (the schedule then anneals to
            the new end), so the run ends annealed instead of being cut.
        on_replan: Called with the new planned steps whenever the plan is shortened.
        optimizer: ``"sgd"`` (momentum, weight decay) or ``"adamw"`` (decoupled weight decay).
        warmup_steps: Steps of linear learning-rate warm-up before the schedule.
        reserve: Seconds before ``deadline_s`` to keep free for what follows training (evaluation), as a function
            of the recent wall seconds per step (0.0 before any step), updated whenever the plan is: a machine
            slower than predicted slows the evaluation too, so the reserve can grow with it. None keeps nothing
            free.

    Returns:
        A :class:`TrainResult`; a deadline or a non-finite loss is reported there, not raised.
    """
    start = time.perf_counter()
    if epochs < 0:
        raise ValueError(f"epochs must be non-negative, got {epochs}")
    if max_steps is not None and max_steps < 0:
        raise ValueError(f"max_steps must be non-negative, got {max_steps}")
    if schedule not in ("cosine", "step", "constant"):
        raise ValueError(f"unknown schedule {schedule!r} (cosine, step or constant)")
    dev = as_device(device)
    _apply_freeze(model, frozen_stages)
    model.to(dev)
    params = [p for p in model.parameters() if p.requires_grad]
    if not params:
        raise ValueError("nothing to train: every parameter is frozen")

    try:
        per_epoch: int | None = len(train_loader)  # type: ignore[arg-type]
    except TypeError:
        per_epoch = None
    planned = epochs * per_epoch if per_epoch is not None else None
    if max_steps is not None:
        planned = max_steps if planned is None else min(planned, max_steps)
    if planned is None:
        raise ValueError("the loader has no length: pass max_steps to plan the schedule")

    capped = max_steps is not None and (per_epoch is None or max_steps < epochs * per_epoch)
    opt = _optimizer(optimizer, params, lr, momentum, weight_decay)
    loss_fn = nn.CrossEntropyLoss(label_smoothing=label_smoothing)
    model.train()

    reserved = [reserve(0.0) if reserve is not None else 0.0]  # updated with the plan (below), read by the checks

    def past_deadline() -> bool:
        return deadline_s is not None and time.perf_counter() - start >= deadline_s - reserved[0]

    steps = 0
    full_epochs = 0
    final_loss = float("nan")
    epoch_losses: list[float] = []
    step_ms: list[float] = []
    step_wall: list[float] = []  # per step, batch fetch included: what re-planning divides the time left by
    stopped_by: StopReason | None = None
    first_plan = planned

    for _ in range(epochs):
        losses: list[float] = []
        it = iter(train_loader)
        while True:
            if steps >= planned:
                stopped_by = "max_steps" if capped else "done"
                break
            if past_deadline():
                stopped_by = "deadline"
                break
            t_wall = time.perf_counter()
            try:
                batch = next(it)
            except StopIteration:
                full_epochs += 1
                break
            if past_deadline():
                stopped_by = "deadline"
                break
            x, y = _split_batch(batch)
            if y is None:
                raise ValueError("train_loader must yield (images, labels)")
            x = x.to(dev, non_blocking=True)
            y = y.to(dev, non_blocking=True)
            step_lr = lr_at(steps, planned, lr, schedule, warmup_steps)
            for group in opt.param_groups:
                group["lr"] = step_lr

            t0 = time.perf_counter()
            opt.zero_grad(set_to_none=True)
            loss = loss_fn(model(x), y)
            loss_value = float(loss.detach())
            final_loss = loss_value
            if not math.isfinite(loss_value):
                stopped_by = "nan"
                break
            loss.backward()
            opt.step()
            synchronize(dev)
            step_ms.append((time.perf_counter() - t0) * 1e3)
            step_wall.append(time.perf_counter() - t_wall)
            steps += 1
            losses.append(loss_value)
            if on_step is not None:
                on_step(steps, loss_value, step_lr)
            if fit_deadline and deadline_s is not None and steps >= 3:
                reserved[0] = reserve(_recent(step_wall)) if reserve is not None else 0.0
                new = _replan(planned, steps, deadline_s - reserved[0] - (time.perf_counter() - start), step_wall)
                if new < planned and on_replan is not None:
                    on_replan(new)
                planned = new
        if losses:  # an epoch cut short before its first step leaves the previous epoch's mean
            epoch_losses = losses
        if stopped_by is not None:
            break
    opt.zero_grad(set_to_none=True)

    if stopped_by is None:
        stopped_by = "done"
    timed = step_ms[1:] if len(step_ms) > 1 else step_ms
    return TrainResult(
        steps=steps,
        epochs_done=steps / per_epoch if per_epoch else float(full_epochs),
        seconds=time.perf_counter() - start,
        final_loss=final_loss,
        mean_loss_last_epoch=statistics.fmean(epoch_losses) if epoch_losses else float("nan"),
        finished=stopped_by in ("done", "max_steps"),
        stopped_by=stopped_by,
        step_ms_median=statistics.median(timed) if timed else float("nan"),
        planned_steps=planned,
        replanned=planned < first_plan,
        step_wall_ms=1e3 * statistics.median(step_wall[1:] if len(step_wall) > 1 else step_wall)
        if step_wall
        else math.nan,
    )


def _optimizer(name: str, params: list, lr: float, momentum: float, weight_decay: float) -> torch.optim.Optimizer:
    if name == "sgd":
        return torch.optim.SGD(params, lr=lr, momentum=momentum, weight_decay=weight_decay)
    if name == "adamw":
        return torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay)
    raise ValueError(f"unknown optimizer {name!r} (sgd or adamw)")


def _recent(step_wall: list[float]) -> float:
    """The recent wall seconds per step: the median of the last 8 (the last alone when there is one)."""
    return statistics.median(step_wall[-8:]) if len(step_wall) > 1 else step_wall[-1]


def _replan(planned: int, steps: int, seconds_left: float, step_wall: list[float]) -> int:
    """The plan shortened, if need be, to the steps that fit ``seconds_left`` at the recent wall time per step."""
    fits = steps + max(0, math.floor(seconds_left / max(_recent(step_wall), 1e-9)))
    return min(planned, fits)


@torch.inference_mode()
def evaluate(model: nn.Module, val_loader: Iterable[Any], device: str | torch.device = "cpu") -> EvalResult:
    """Top-1 accuracy and mean cross-entropy of ``model`` over ``val_loader`` in eval mode.

    The model's train/eval mode is restored afterwards.

    Raises:
        ValueError: the loader yielded no examples.
    """
    start = time.perf_counter()
    dev = as_device(device)
    was_training = model.training
    model.to(dev)
    model.eval()
    correct = 0
    n = 0
    loss_sum = 0.0
    try:
        for batch in val_loader:
            x, y = _split_batch(batch)
            if y is None:
                raise ValueError("val_loader must yield (images, labels)")
            x = x.to(dev, non_blocking=True)
            y = y.to(dev, non_blocking=True)
            logits = model(x)
            loss_sum += float(nn.functional.cross_entropy(logits.float(), y, reduction="sum"))
            correct += int((logits.argmax(dim=1) == y).sum())
            n += y.numel()
    finally:
        model.train(was_training)
    synchronize(dev)
    if n == 0:
        raise ValueError("val_loader yielded no examples")
    return EvalResult(top1=correct / n, loss=loss_sum / n, n=n, seconds=time.perf_counter() - start)


def _frozen_bn(model: nn.Module) -> set[int]:
    """Ids of the BatchNorm layers that count as frozen."""
    frozen: set[int] = set()
    frozen_modules = getattr(model, "frozen_modules", None)
    if callable(frozen_modules):
        for part in frozen_modules():
            frozen.update(id(m) for m in part.modules() if isinstance(m, _BatchNorm))
    for m in model.modules():
        if isinstance(m, _BatchNorm):
            params = list(m.parameters(recurse=False))
            if params and not any(p.requires_grad for p in params):
                frozen.add(id(m))
    return frozen


@torch.no_grad()
def recalibrate_bn(
    model: nn.Module, loader: Iterable[Any], batches: int = 10, device: str | torch.device = "cpu"
) -> float:
    """Re-estimate the running statistics of the trainable BatchNorm layers on a few batches.

    Short fine-tuning leaves BatchNorm statistics lagging (a model evaluated at chance until they are re-estimated,
    as measured here after a 3-epoch pretraining of MobileNetV3-small): the trainable layers' running mean and
    variance are reset and recomputed as a cumulative average (``momentum=None``) over up to ``batches`` forward
    passes in train mode, without gradients. Frozen layers (in the model's frozen stem and stages, or with all
    affine parameters frozen) keep theirs. Nothing changes if the loader is empty. Modes and momenta are restored.

    Args:
        model: The network.
        loader: Yields ``(images, labels)`` or images; labels are ignored.
        batches: Forward passes at most.
        device: ``"cpu"``, ``"cuda"``, ``"cuda:N"`` or ``"auto"``.

    Returns:
        Seconds spent (count them in a time budget).
    """
    start = time.perf_counter()
    if batches < 1:
        raise ValueError(f"batches must be at least 1, got {batches}")
    dev = as_device(device)
    frozen = _frozen_bn(model)
    layers = [m for m in model.modules() if isinstance(m, _BatchNorm) and m.track_running_stats and id(m) not in frozen]
    if not layers:
        return time.perf_counter() - start
    model.to(dev)
    modes = {m: m.training for m in model.modules()}
    momenta = {m: m.momentum for m in layers}
    try:
        model.train()
        for m in model.modules():  # frozen BN must not update, whatever the model's train() does
            if isinstance(m, _BatchNorm) and id(m) in frozen:
                m.eval()
        done = 0
        for batch in loader:
            if done >= batches:
                break
            x, _ = _split_batch(batch)
            if done == 0:
                for m in layers:
                    m.reset_running_stats()
                    m.momentum = None
            model(x.to(dev, non_blocking=True))
            done += 1
        synchronize(dev)
    finally:
        for m, momentum in momenta.items():
            m.momentum = momentum
        for m, mode in modes.items():
            m.training = mode
    return time.perf_counter() - start


def train_and_evaluate(
    model: nn.Module,
    train_loader: Iterable[Any],
    val_loader: Iterable[Any],
    *,
    bn_batches: int = 0,
    device: str | torch.device = "cpu",
    **train_kw: Any,
) -> tuple[TrainResult, EvalResult | None]:
    """Train, re-estimate BN statistics on ``bn_batches`` training batches, then evaluate.

    Returns the training result and the evaluation, or ``None`` for the evaluation when the loss went non-finite
    (each caller decides what a diverged run means: a failed candidate, a failed entry, chance accuracy).
    """
    result = train(model, train_loader, device=device, **train_kw)
    if result.stopped_by == "nan":
        return result, None
    if bn_batches and result.steps:
        recalibrate_bn(model, train_loader, batches=bn_batches, device=device)
    return result, evaluate(model, val_loader, device=device)
