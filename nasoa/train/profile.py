"""Measure a model's training step time (forward + backward + SGD step), inference time and peak memory.

This is the step-time objective of the search and the cost basis of a fine-tuning regime: the median over timed
steps after warm-up, at a given batch size and resolution, on the device the zoo is meant for. The first optimizer
step in a fresh process takes seconds (1.2-7 s measured here, against 10-30 ms steady), so warm-up steps are never
timed.

Command line (several models are interleaved across ``--repeat`` rounds; medians are quoted)::

    python -m nasoa.train.profile ET-NAS-A resnet18 --batch-size 32 --resolution 64 --repeat 3
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import json
import statistics
import sys
import time
from collections.abc import Sequence
from contextlib import nullcontext
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from nasoa.train.device import as_device, synchronize

if TYPE_CHECKING:  # not imported at run time: nasoa.models pulls in the registry and torchvision
    from nasoa.models.staged import StagedNet

__all__ = ["StepProfile", "main", "profile_step"]


@dataclass(frozen=True)
class StepProfile:
    """What :func:`profile_step` measured.

    Attributes:
        train_step_ms: Median over the timed steps of forward + backward + optimizer step, in milliseconds.
        train_step_ms_all: Each timed step, in order (warm-up steps excluded).
        inference_ms: Median of the timed eval-mode forward passes on the same batch.
        peak_mem_mb: On CUDA, ``torch.cuda.max_memory_allocated`` during the profile (weights and batch
            included). On the CPU, approximate: how far the process's peak resident set rose above its resident
            set at the start of the timed part (activations, gradients, momentum; not weights), from Linux
            ``VmHWM`` (reset through ``/proc/self/clear_refs``) or else ``ru_maxrss``; memory the allocator kept
            from earlier work is reused and not counted, so a repeat can read lower. None where unreadable.
        batch_size: Images per step.
        resolution: Input height and width.
        device: The device profiled, e.g. ``"cpu"`` or ``"cuda:0"``.
        frozen_stages: Stages frozen (with the stem) during the profile; 0 = none.
        channels_last: Whether model and input used the channels-last memory format.
        amp: Whether autocast was on (bf16 on the CPU, fp16 with a gradient scaler on CUDA).
        warmup: Untimed steps before the timed ones.
        steps: Timed steps.
        threads: Torch intra-op threads in effect.
    """

    train_step_ms: float
    train_step_ms_all: tuple[float, ...]
    inference_ms: float
    peak_mem_mb: float | None
    batch_size: int
    resolution: int
    device: str
    frozen_stages: int
    channels_last: bool
    amp: bool
    warmup: int
    steps: int
    threads: int = 0

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (the step list becomes a list)."""
        d = dataclasses.asdict(self)
        d["train_step_ms_all"] = list(self.train_step_ms_all)
        return d


def _check_args(model: nn.Module, batch_size: int, resolution: int, steps: int, warmup: int, frozen_stages: int):
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}")
    if resolution < 1:
        raise ValueError(f"resolution must be at least 1, got {resolution}")
    if steps < 1:
        raise ValueError(f"steps must be at least 1, got {steps}")
    if warmup < 0:
        raise ValueError(f"warmup must be non-negative, got {warmup}")
    if frozen_stages != 0:
        num_stages = getattr(model, "num_stages", None)
        if num_stages is None or not hasattr(model, "freeze"):
            raise ValueError("frozen_stages > 0 needs a StagedNet (a model with stages and freeze())")
        if not 0 <= frozen_stages <= num_stages:
            raise ValueError(f"frozen_stages must be in 0..{num_stages} for this model, got {frozen_stages}")


def _infer_num_classes(model: nn.Module) -> int:
    n = getattr(model, "num_classes", None)
    if isinstance(n, int):
        return n
    linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
    if not linears:
        raise ValueError("cannot tell the number of classes of this model: pass num_classes")
    return linears[-1].out_features


class _PeakRSS:
    """Peak resident-set growth of this process on the CPU (Linux ``VmHWM``, else ``ru_maxrss``)."""

    def __init__(self) -> None:
        self.base_kb: int | None = None
        self.reset_ok = False

    @staticmethod
    def _status_kb(key: str) -> int | None:
        try:
            with open("/proc/self/status") as f:
                for line in f:
                    if line.startswith(key + ":"):
                        return int(line.split()[1])
        except OSError:
            return None
        return None

    @staticmethod
    def _maxrss_kb() -> int | None:
        try:
            import resource  # lazy: POSIX only
        except ImportError:  # not on POSIX
            return None
        kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return kb // 1024 if sys.platform == "darwin" else kb  # macOS reports bytes

    def start(self) -> None:
        try:  # Linux: reset the high-water mark, so the peak is this profile's own
            with open("/proc/self/clear_refs", "w") as f:
                f.write("5")
            self.reset_ok = True
        except OSError:
            self.reset_ok = False
        if self.reset_ok:
            self.base_kb = self._status_kb("VmRSS")
        else:
            self.base_kb = self._maxrss_kb()

    def peak_mb(self) -> float | None:
        if self.base_kb is None:
            return None
        peak = self._status_kb("VmHWM") if self.reset_ok else self._maxrss_kb()
        if peak is None:
            return None
        return max(0, peak - self.base_kb) / 1024.0


def profile_step(
    model: StagedNet,
    batch_size: int = 32,
    resolution: int = 64,
    in_chans: int = 3,
    num_classes: int | None = None,
    device: str | torch.device = "cpu",
    frozen_stages: int = 0,
    channels_last: bool = False,
    amp: bool = False,
    warmup: int = 3,
    steps: int = 7,
    lr: float = 0.01,
    threads: int | None = None,
) -> StepProfile:
    """Time training steps and inference of ``model`` on a random batch.

    The model is profiled on a deep copy, so its weights, BatchNorm statistics, freeze state, device and memory
    format are as they were afterwards. With ``frozen_stages=k`` the copy is ``freeze(k)``-ed and SGD (momentum
    0.9) only sees the trainable parameters, so the frozen stem and stages skip the backward pass.

    Args:
        model: The network (a StagedNet; any ``nn.Module`` works when ``frozen_stages`` is 0).
        batch_size: Images per step.
        resolution: Input height and width.
        in_chans: Input channels.
        num_classes: Label range of the random targets; by default the model's classifier width.
        device: ``"cpu"``, ``"cuda"``, ``"cuda:N"`` or ``"auto"``.
        frozen_stages: Freeze the stem and the first ``k`` stages (0 = none).
        channels_last: Use the channels-last memory format for model and input.
        amp: Autocast: bf16 on the CPU, fp16 with a ``GradScaler`` on CUDA.
        warmup: Untimed steps first (and untimed inference passes).
        steps: Timed steps (and timed inference passes).
        lr: SGD learning rate.
        threads: Torch intra-op threads during the profile (restored after); None leaves them alone.

    Returns:
        The measured :class:`StepProfile`.

    Raises:
        ValueError: a bad argument (non-positive batch or steps, frozen stages out of range, no CUDA).
    """
    _check_args(model, batch_size, resolution, steps, warmup, frozen_stages)
    if threads is not None and threads < 1:
        raise ValueError(f"threads must be at least 1, got {threads}")
    dev = as_device(device)
    n_classes = num_classes if num_classes is not None else _infer_num_classes(model)
    if n_classes < 1:
        raise ValueError(f"num_classes must be positive, got {n_classes}")

    old_threads = torch.get_num_threads()
    if threads is not None:
        torch.set_num_threads(threads)
    try:
        return _profile(
            model,
            batch_size,
            resolution,
            in_chans,
            n_classes,
            dev,
            frozen_stages,
            channels_last,
            amp,
            warmup,
            steps,
            lr,
        )
    finally:
        if threads is not None:
            torch.set_num_threads(old_threads)


def _profile(
    model: nn.Module,
    batch_size: int,
    resolution: int,
    in_chans: int,
    num_classes: int,
    dev: torch.device,
    frozen_stages: int,
    channels_last: bool,
    amp: bool,
    warmup: int,
    steps: int,
    lr: float,
) -> StepProfile:
    net = copy.deepcopy(model)
    if hasattr(net, "freeze"):
        net.freeze(frozen_stages)
    net.to(dev)
    memory_format = torch.channels_last if channels_last else torch.contiguous_format
    net.to(memory_format=memory_format)
    net.train()
    params = [p for p in net.parameters() if p.requires_grad]
    if not params:
        raise ValueError("nothing to train: every parameter is frozen")
    opt = torch.optim.SGD(params, lr=lr, momentum=0.9)
    loss_fn = nn.CrossEntropyLoss()

    gen = torch.Generator().manual_seed(0)
    x = torch.randn(batch_size, in_chans, resolution, resolution, generator=gen).to(dev)
    x = x.contiguous(memory_format=memory_format)
    y = torch.randint(0, num_classes, (batch_size,), generator=gen).to(dev)

    use_scaler = amp and dev.type == "cuda"
    amp_dtype = torch.float16 if dev.type == "cuda" else torch.bfloat16
    scaler = torch.amp.GradScaler("cuda") if use_scaler else None

    def autocast():
        return torch.autocast(dev.type, dtype=amp_dtype) if amp else nullcontext()

    def train_step() -> None:
        opt.zero_grad(set_to_none=True)
        with autocast():
            loss = loss_fn(net(x), y)
        if scaler is not None:
            scaler.scale(loss).backward()
            scaler.step(opt)
            scaler.update()
        else:
            loss.backward()
            opt.step()

    mem = _PeakRSS()
    synchronize(dev)
    if dev.type == "cuda":
        torch.cuda.reset_peak_memory_stats(dev)
    else:
        mem.start()

    for _ in range(warmup):
        train_step()
    synchronize(dev)
    times: list[float] = []
    for _ in range(steps):
        t0 = time.perf_counter()
        train_step()
        synchronize(dev)
        times.append((time.perf_counter() - t0) * 1e3)
    opt.zero_grad(set_to_none=True)

    net.eval()
    infer: list[float] = []
    with torch.inference_mode(), autocast():
        for _ in range(warmup):
            net(x)
        synchronize(dev)
        for _ in range(steps):
            t0 = time.perf_counter()
            net(x)
            synchronize(dev)
            infer.append((time.perf_counter() - t0) * 1e3)

    if dev.type == "cuda":
        peak: float | None = torch.cuda.max_memory_allocated(dev) / 2**20
    else:
        peak = mem.peak_mb()

    return StepProfile(
        train_step_ms=statistics.median(times),
        train_step_ms_all=tuple(times),
        inference_ms=statistics.median(infer),
        peak_mem_mb=peak,
        batch_size=batch_size,
        resolution=resolution,
        device=str(dev),
        frozen_stages=frozen_stages,
        channels_last=channels_last,
        amp=amp,
        warmup=warmup,
        steps=steps,
        threads=torch.get_num_threads(),
    )


# ----------------------------------------------------------------------------------------------------- command line


def resolve_model(name: str, num_classes: int, in_chans: int = 3) -> nn.Module:
    """Build a model by name (an ET-NAS name or encoding, or a reference family) with the model registry."""
    from nasoa.models import create_model  # lazy: the registry imports torchvision, needed only for the CLI

    return create_model(name, num_classes, **({} if in_chans == 3 else {"in_chans": in_chans}))


def _spread(values: Sequence[float]) -> float:
    """(max - min) / median: 0 for one value."""
    med = statistics.median(values)
    return (max(values) - min(values)) / med if med > 0 else 0.0


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m nasoa.train.profile",
        description="Profile training step time (fwd+bwd+SGD step), inference time and peak memory of models. "
        "Several models are interleaved across --repeat rounds; the table quotes medians over rounds.",
    )
    p.add_argument("models", nargs="+", help="model names: ET-NAS-A.., ET-NAS encodings, torchvision names")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--resolution", type=int, default=64)
    p.add_argument("--in-chans", type=int, default=3)
    p.add_argument("--num-classes", type=int, default=1000)
    p.add_argument("--device", default="cpu", help="cpu, cuda, cuda:N or auto")
    p.add_argument("--frozen-stages", type=int, default=0, help="freeze the stem and the first K stages")
    p.add_argument("--channels-last", action="store_true")
    p.add_argument("--amp", action="store_true", help="autocast: bf16 on cpu, fp16 + GradScaler on cuda")
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--steps", type=int, default=7)
    p.add_argument("--repeat", type=int, default=1, help="rounds; models are interleaved within each round")
    p.add_argument("--threads", type=int, default=None, help="torch intra-op threads")
    p.add_argument(
        "--max-spread",
        type=float,
        default=None,
        help="exit 1 when a model's step-time spread across rounds, (max-min)/median, exceeds this (e.g. 0.10)",
    )
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    return p


def main(argv: list[str] | None = None) -> int:
    """Run the profiler command line; returns the exit status."""
    args = _parser().parse_args(argv)
    if args.repeat < 1:
        print("error: --repeat must be at least 1", file=sys.stderr)
        return 2
    try:
        nets = {name: resolve_model(name, args.num_classes, args.in_chans) for name in args.models}
    except (ValueError, KeyError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2

    runs: dict[str, list[StepProfile]] = {name: [] for name in nets}
    try:
        for _ in range(args.repeat):
            for name, net in nets.items():
                runs[name].append(
                    profile_step(
                        net,
                        batch_size=args.batch_size,
                        resolution=args.resolution,
                        in_chans=args.in_chans,
                        num_classes=args.num_classes,
                        device=args.device,
                        frozen_stages=args.frozen_stages,
                        channels_last=args.channels_last,
                        amp=args.amp,
                        warmup=args.warmup,
                        steps=args.steps,
                        threads=args.threads,
                    )
                )
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2

    rows = []
    for name, profiles in runs.items():
        step = [p.train_step_ms for p in profiles]
        mems = [p.peak_mem_mb for p in profiles if p.peak_mem_mb is not None]
        rows.append(
            {
                "model": name,
                "batch_size": args.batch_size,
                "resolution": args.resolution,
                "device": profiles[0].device,
                "frozen_stages": args.frozen_stages,
                "train_step_ms": statistics.median(step),
                "inference_ms": statistics.median(p.inference_ms for p in profiles),
                "peak_mem_mb": max(mems) if mems else None,
                "spread": _spread(step),
                "rounds": len(profiles),
                "runs": [p.to_dict() for p in profiles],
            }
        )

    if args.json:
        print(json.dumps({"results": rows}, indent=2))
    else:
        _print_table(rows, args.repeat)

    if args.max_spread is not None and any(r["spread"] > args.max_spread for r in rows):
        print(f"step-time spread above {args.max_spread:.0%} for some model", file=sys.stderr)
        return 1
    return 0


def _print_table(rows: list[dict[str, Any]], repeat: int) -> None:
    header = ["model", "batch", "res", "device", "frozen", "step ms", "infer ms", "peak MB"]
    if repeat > 1:
        header += ["spread", "rounds (step ms)"]
    lines = [header]
    for r in rows:
        mem = "-" if r["peak_mem_mb"] is None else f"{r['peak_mem_mb']:.0f}"
        line = [
            r["model"],
            str(r["batch_size"]),
            str(r["resolution"]),
            r["device"],
            str(r["frozen_stages"]),
            f"{r['train_step_ms']:.1f}",
            f"{r['inference_ms']:.1f}",
            mem,
        ]
        if repeat > 1:
            line += [f"{r['spread']:.0%}", " ".join(f"{run['train_step_ms']:.1f}" for run in r["runs"])]
        lines.append(line)
    widths = [max(len(row[i]) for row in lines) for i in range(len(header))]
    for row in lines:
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())


if __name__ == "__main__":
    sys.exit(main())
