"""The zoo's training-efficiency figure: source top-1 against training step time, the front marked."""

from __future__ import annotations

import os
from collections.abc import Sequence

import matplotlib
import matplotlib.ticker

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from nasoa.common.pareto import dominates  # noqa: E402
from nasoa.zoo.manifest import ZooEntry  # noqa: E402


def zoo_points(entries: Sequence[ZooEntry], device: str | None = None) -> list[tuple[ZooEntry, float]]:
    """Each entry with its unfrozen step time at its largest profiled batch on ``device`` (default: the first)."""
    out = []
    for e in entries:
        dev = device or (e.devices()[0] if e.devices() else None)
        if dev is not None and dev in e.devices():
            out.append((e, e.profile(dev).train_step_ms))
    return out


def zoo_front(points: Sequence[tuple[ZooEntry, float]]) -> list[tuple[ZooEntry, float]]:
    """Points no other point dominates (higher top-1, lower step time)."""
    return sorted(
        (p for p in points if not any(dominates((-q[0].top1, q[1]), (-p[0].top1, p[1])) for q in points)),
        key=lambda p: p[1],
    )


def plot_zoo(entries: Sequence[ZooEntry], path: str | os.PathLike, device: str | None = None) -> str:
    """Scatter every entry (ET-NAS and references apart), label each, draw the front; save a PNG."""
    points = zoo_points(entries, device)
    fig, ax = plt.subplots(figsize=(7.5, 4.8), dpi=120)
    styles = {"etnas": ("o", "tab:red", "ET-NAS space"), "reference": ("s", "tab:gray", "reference models")}
    for kind, (marker, color, label) in styles.items():
        pts = [(e, ms) for e, ms in points if e.kind == kind]
        if pts:
            ax.scatter([ms for _, ms in pts], [e.top1 for e, _ in pts], marker=marker, color=color, s=45, label=label)
    for e, ms in points:
        ax.annotate(e.name, (ms, e.top1), textcoords="offset points", xytext=(4, 4), fontsize=7)
    front = zoo_front(points)
    if front:
        ax.plot([ms for _, ms in front], [e.top1 for e, _ in front], "k--", lw=1, label=f"front ({len(front)})")
    dev = device or (points[0][0].devices()[0] if points else "")
    batch = points[0][0].profile(dev).batch_size if points else 0
    ax.set_xscale("log")
    ax.xaxis.set_major_formatter(matplotlib.ticker.ScalarFormatter())
    ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
    ax.set_xlabel(f"training step time (ms, batch {batch}, {dev})")
    ax.set_ylabel("top-1 on the source task")
    ax.set_title(f"zoo training efficiency: {len(points)} models")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="best")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return str(path)
