"""Pareto maths over plain points (every objective minimised): dominance, the front, a spread, 2-D hypervolume.

The one implementation the search archive, the zoo's front members, the zoo-efficiency benchmark and the plots
use. No torch, no Ray.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from pymoo.util.nds.non_dominated_sorting import NonDominatedSorting


def dominates(a: Sequence[float], b: Sequence[float]) -> bool:
    """Whether ``a`` Pareto-dominates ``b`` (minimisation)."""
    return all(x <= y for x, y in zip(a, b)) and any(x < y for x, y in zip(a, b))


def front_indices(points: Sequence[Sequence[float]]) -> list[int]:
    """Indices of the points no other point dominates (duplicates of a front point are all kept), in input order."""
    if len(points) == 0:
        return []

    F = np.asarray(points, dtype=float)
    return sorted(int(i) for i in NonDominatedSorting().do(F, only_non_dominated_front=True))


def spread(front: Sequence, k: int) -> list:
    """Up to ``k`` members of a sorted front: both ends and evenly spaced members between (``k == 1``: the last)."""
    if len(front) <= k:
        return list(front)
    if k == 1:
        return [front[-1]]
    idx = sorted({round(i * (len(front) - 1) / (k - 1)) for i in range(k)})
    return [front[i] for i in idx]


def hypervolume_2d(points: Sequence[tuple[float, float]], ref: tuple[float, float]) -> float:
    """Area dominated by ``points`` (both objectives minimised) and bounded by the reference point ``ref``."""
    inside = sorted((x, y) for x, y in points if x < ref[0] and y < ref[1])
    area, best_y = 0.0, ref[1]
    for x, y in inside:  # sweep along the first objective; each point adds its band below the best so far
        if y < best_y:
            area += (best_y - y) * (ref[0] - x)
            best_y = y
    return area
