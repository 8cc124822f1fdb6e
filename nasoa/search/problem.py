"""The pymoo problem of the search: one object variable (the encoding), two objectives, one constraint.

Objectives (minimised): ``-accuracy`` and ``train_step_ms``. Constraint: ``<= 0`` when the candidate
was evaluated successfully, ``1`` when it failed. Evaluation happens outside pymoo (ask/tell).
"""

from __future__ import annotations

import numpy as np
from pymoo.core.problem import Problem

from nasoa.search.archive import Record

FAILED_F = (0.0, 1e12)


class ArchProblem(Problem):
    """Declares the shapes; ``_evaluate`` is never called because the driver tells results itself."""

    def __init__(self) -> None:
        super().__init__(n_var=1, n_obj=2, n_ieq_constr=1, vtype=object)

    def _evaluate(self, x, out, *args, **kwargs):  # noqa: ANN001
        raise RuntimeError("candidates are evaluated outside pymoo: use the ask/tell driver")


def objectives(records: list[Record]) -> tuple[np.ndarray, np.ndarray]:
    """F (n x 2) and G (n x 1) for records, failed ones infeasible with a dominated placeholder F."""
    F = np.array([r.objectives() if r.ok else FAILED_F for r in records], dtype=float)
    G = np.array([[-1.0 if r.ok else 1.0] for r in records], dtype=float)
    return F, G
