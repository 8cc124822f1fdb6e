"""Pareto plots: accuracy against training step time, with the front marked."""

from __future__ import annotations

import os
from collections.abc import Sequence

import matplotlib
import matplotlib.ticker

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from nasoa.search.archive import Record, non_dominated  # noqa: E402


def plot_search(records: Sequence[Record], path: str | os.PathLike, title: str = "nasoa search") -> str:
    """Scatter every successful candidate by level, draw the front as a staircase, save a PNG."""
    fig, ax = plt.subplots(figsize=(7, 4.5), dpi=120)
    markers = {"block": ("o", "tab:blue"), "macro": ("s", "tab:orange")}
    for level, (marker, color) in markers.items():
        pts = [r for r in records if r.ok and r.level == level]
        if pts:
            ax.scatter(
                [r.train_step_ms for r in pts],
                [r.accuracy for r in pts],
                marker=marker,
                color=color,
                alpha=0.6,
                label=f"{level}-level ({len(pts)})",
            )
    front = non_dominated(records)
    if front:
        xs, ys = [front[0].train_step_ms], [front[0].accuracy]
        for r in front[1:]:
            xs += [r.train_step_ms, r.train_step_ms]
            ys += [ys[-1], r.accuracy]
        ax.plot(xs, ys, color="black", lw=1.2, label=f"Pareto front ({len(front)})")
        ax.scatter([r.train_step_ms for r in front], [r.accuracy for r in front], facecolors="none", edgecolors="k")
    failed = sum(not r.ok for r in records)
    ax.set_xscale("log")
    ax.xaxis.set_major_formatter(matplotlib.ticker.ScalarFormatter())
    ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
    ax.set_xlabel("training step time (ms, median, log scale)")
    ax.set_ylabel("proxy top-1 accuracy")
    ax.set_title(f"{title}: {len(records)} candidates, {failed} failed")
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return str(path)
