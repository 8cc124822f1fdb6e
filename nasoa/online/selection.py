"""Choosing the predictor from past experience: leave-one-task-out over the experience rows.

Each candidate predictor is fitted on every past task but one and asked to rank the held-out task's runs; its score
is the mean regret of its top pick (best top-1 of the task's runs minus the top-1 of the run it ranks first), the
quantity the regime generator lives by. Only past tasks are used, never the tasks the predictor will serve.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from nasoa.online.predictor import create_predictor

#: Candidates tried by default: (registry name, keyword arguments).
DEFAULT_CANDIDATES: tuple[tuple[str, dict[str, Any]], ...] = (
    ("bayes_linear", {}),
    ("knn", {"k": 5}),
    ("knn", {"k": 10}),
)


@dataclass(frozen=True)
class CandidateScore:
    """Leave-one-task-out figures of one candidate predictor."""

    name: str
    kwargs: Mapping[str, Any]
    mean_regret: float
    mean_abs_error: float
    tasks: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "kwargs": dict(self.kwargs),
            "mean_regret": self.mean_regret,
            "mean_abs_error": self.mean_abs_error,
            "tasks": self.tasks,
        }


def task_key(row: Mapping[str, Any]) -> tuple:
    """What the predictor knows of a task: its name and meta-features; rows of one past task share it.

    Takes an experience row (``task_name``) or a ``TaskMeta.to_dict()`` (``name``).
    """
    name = row.get("task_name", row.get("name"))
    return (name, *(row.get(k) for k in ("num_classes", "num_train", "resolution", "channels")))


def leave_one_task_out(
    generator: Any,
    rows: Iterable[Mapping[str, Any]],
    candidates: Sequence[tuple[str, Mapping[str, Any]]] = DEFAULT_CANDIDATES,
    min_runs: int = 3,
) -> list[CandidateScore]:
    """Score every candidate on ``rows`` (featurized by ``generator.row_features``); best (lowest regret) first.

    Raises:
        ValueError: If fewer than two past tasks have ``min_runs`` usable runs.
    """
    X, y, groups = [], [], []
    for row in rows:
        try:
            x, acc = generator.row_features(row)
        except (ValueError, KeyError):
            continue
        X.append(x)
        y.append(acc)
        groups.append(task_key(row))
    if not X:
        raise ValueError("no usable experience rows to select a predictor from")
    X, y = np.vstack(X), np.asarray(y)
    index: dict[tuple, int] = {}
    labels = np.array([index.setdefault(g, len(index)) for g in groups])
    held = [t for t in np.unique(labels) if (labels == t).sum() >= min_runs]
    if len(held) < 2:
        raise ValueError(f"need at least two past tasks with {min_runs}+ runs to compare predictors, got {len(held)}")
    scores = []
    for name, kwargs in candidates:
        regrets, errors = [], []
        for t in held:
            test = labels == t
            predictor = create_predictor(name, **kwargs)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                predictor.fit(X[~test], y[~test])
            mean = predictor.predict(X[test]).mean
            regrets.append(float(y[test].max() - y[test][int(np.argmax(mean))]))
            errors.append(float(np.abs(mean - y[test]).mean()))
        scores.append(CandidateScore(name, dict(kwargs), float(np.mean(regrets)), float(np.mean(errors)), len(held)))
    return sorted(scores, key=lambda s: (s.mean_regret, s.mean_abs_error))
