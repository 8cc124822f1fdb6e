"""Leave-one-past-task-out choice of the predictor, on made-up runs with a known best ranking."""

import numpy as np
import pytest

from nasoa.online.selection import leave_one_task_out, task_key


class Featurizer:
    """row_features: the regime's 'quality' knob and noise; accuracy follows the knob within each task."""

    def row_features(self, row):
        if row.get("bad"):
            raise ValueError("unusable row")
        return np.array([row["knob"], row["noise"]]), row["accuracy"]


def rows(tasks=4, runs=6, seed=0):
    rng = np.random.default_rng(seed)
    out = []
    for t in range(tasks):
        for i in range(runs):
            knob = float(i) / runs
            out.append(
                {
                    "task_name": f"t{t}",
                    "num_classes": 3 + t,
                    "num_train": 100,
                    "resolution": 32,
                    "channels": 3,
                    "knob": knob,
                    "noise": float(rng.normal()),
                    "accuracy": 0.3 + 0.6 * knob,
                }
            )
    return out + [{"task_name": "t0", "bad": True}]


def test_scores_every_candidate_and_ranks_the_best_first():
    scores = leave_one_task_out(
        Featurizer(), rows(), candidates=(("mean", {}), ("knn", {"k": 3}), ("bayes_linear", {}))
    )
    assert [s.tasks for s in scores] == [4, 4, 4]
    assert scores[0].mean_regret <= scores[1].mean_regret <= scores[2].mean_regret
    by = {s.name: s for s in scores}
    assert by["bayes_linear"].mean_regret < 0.05 and by["mean"].mean_regret > by["bayes_linear"].mean_regret


def test_needs_two_past_tasks():
    with pytest.raises(ValueError, match="two past tasks"):
        leave_one_task_out(Featurizer(), rows(tasks=1))
    with pytest.raises(ValueError, match="no usable"):
        leave_one_task_out(Featurizer(), [{"bad": True}])
    assert task_key(rows()[0]) == ("t0", 3, 100, 32, 3)
