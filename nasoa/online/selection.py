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

from nasoa.online.features import from_target
from nasoa.online.predictor import create_predictor

#: Candidates tried by default: (registry name, keyword arguments).
DEFAULT_CANDIDATES: tuple[tuple[str, dict[str, Any]], ...] = (
    ("curve_blr", {}),
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
    """Score every candidate on ``rows`` (featurized by ``generator.row_samples``); best (lowest regret) first.

    Each held-out task is predicted as a new task (no offset of its own): its runs' final top-1 are ranked and
    compared with what they achieved (regret of the top pick, mean absolute error in top-1).

    Raises:
        ValueError: If fewer than two past tasks have ``min_runs`` usable runs.
    """
    samples = _samples(generator, rows)
    if not samples:
        raise ValueError("no usable experience rows to select a predictor from")
    tasks: dict[str, list[int]] = {}
    for i, (_, _, _, group, _, _) in enumerate(samples):
        tasks.setdefault(group, []).append(i)
    held = [g for g, idx in tasks.items() if len(idx) >= min_runs]
    if len(held) < 2:
        raise ValueError(f"need at least two past tasks with {min_runs}+ runs to compare predictors, got {len(held)}")
    scores = []
    for name, kwargs in candidates:
        regrets, errors = [], []
        for group in held:
            regret, error = _held_out(generator, samples, group, name, kwargs)
            regrets.append(regret)
            errors.append(error)
        scores.append(CandidateScore(name, dict(kwargs), float(np.mean(regrets)), float(np.mean(errors)), len(held)))
    return sorted(scores, key=lambda s: (s.mean_regret, s.mean_abs_error))


def _samples(generator: Any, rows: Iterable[Mapping[str, Any]]) -> list[tuple]:
    """Per usable row: its sample rows, targets, noise, task group, final top-1 and classes."""
    out = []
    for row in rows:
        try:
            X, y, noise, group = generator.row_samples(row)
        except (ValueError, KeyError, TypeError):
            continue
        out.append((X, y, noise, group, float(row["accuracy"]), int(row["num_classes"])))
    return out


def _held_out(generator: Any, samples: list[tuple], group: str, name: str, kwargs: Mapping[str, Any]) -> tuple:
    """Regret and mean absolute error (top-1) on task ``group`` of a predictor fitted on the other tasks."""
    train = [s for s in samples if s[3] != group]
    test = [s for s in samples if s[3] == group]
    predictor = create_predictor(name, **kwargs)
    f = generator.featurizer
    predictor.prepare(f.names, f.prior_mean, f.prior_std)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        predictor.fit(
            np.vstack([s[0] for s in train]),
            np.concatenate([s[1] for s in train]),
            [s[3] for s in train for _ in s[1]],
            np.concatenate([s[2] for s in train]),
        )
    mean = predictor.predict_mean(np.vstack([s[0][:1] for s in test]))  # final points, the task unseen
    predicted = from_target(mean, np.asarray([s[5] for s in test]))
    achieved = np.asarray([s[4] for s in test])
    return float(achieved.max() - achieved[int(np.argmax(predicted))]), float(np.abs(predicted - achieved).mean())
