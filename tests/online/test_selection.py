"""Leave-one-past-task-out choice of the predictor, on simulated experience with hidden task difficulty."""

import numpy as np
import pytest

from nasoa.online.selection import leave_one_task_out, task_key

from .fakes import generator, past_rows, sim_task


def test_scores_every_candidate_and_ranks_the_best_first():
    rng = np.random.default_rng(0)
    g = generator()
    rows = past_rows(g, [sim_task(rng, f"t{i}") for i in range(5)], per_budget=3)
    scores = leave_one_task_out(
        g, [*rows, {"task_name": "t0", "model": "nope"}], candidates=(("mean", {}), ("curve_blr", {}))
    )
    assert [s.tasks for s in scores] == [5, 5]
    assert scores[0].mean_regret <= scores[1].mean_regret
    by = {s.name: s for s in scores}
    assert by["curve_blr"].mean_abs_error < by["mean"].mean_abs_error
    assert by["curve_blr"].mean_regret <= by["mean"].mean_regret


def test_needs_two_past_tasks():
    rng = np.random.default_rng(1)
    g = generator()
    with pytest.raises(ValueError, match="two past tasks"):
        leave_one_task_out(g, past_rows(g, [sim_task(rng, "only")]))
    with pytest.raises(ValueError, match="no usable"):
        leave_one_task_out(g, [{"model": "nope"}])
    row = {"task_name": "t0", "num_classes": 3, "num_train": 100, "resolution": 32, "channels": 3}
    assert task_key(row) == ("t0", 3, 100, 32, 3)
