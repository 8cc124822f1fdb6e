import math

import numpy as np
import pytest

from nasoa.data.meta import TaskMeta
from nasoa.online import Featurizer, from_target, to_target
from nasoa.online.features import EPOCH_KNOTS, RUN_NAMES, amount_columns, target_noise

from .fakes import ENTRIES

TASK = TaskMeta(num_classes=10, num_train=500, resolution=32, channels=3)


def test_layout_names_and_priors():
    f = Featurizer(ENTRIES)
    assert len(f.names) == len(set(f.names)) == f.dim == len(f.prior_mean) == len(f.prior_std)
    assert f.names[-len(ENTRIES) :] == tuple(f"model={e.key}" for e in ENTRIES)
    assert (f.prior_std > 0).all() and f.prior_mean[f.names.index("amount_0")] > 0  # more training helps, a priori


def test_static_rows_and_probes():
    f = Featurizer(ENTRIES)
    model = np.array([0, 1, 2])
    rows = f.static(TASK, model, [0.01, 0.1, 0.03], [0, 2, 4], [16, 32, 64])
    x = dict(zip(f.names, rows[1]))
    assert x["bias"] == 1.0 and x["log_classes"] == 0.0 and x["frozen"] == 0.5 and x["log_lr"] == pytest.approx(1.0)
    assert x["model=mid.t"] == 1.0 and x["model=fast.t"] == 0.0 and x["probe_missing"] == 1.0
    assert rows[2, f.names.index("head_only")] == 1.0 and (rows[:, f.index.run] == 0).all()
    probed = f.static(TASK, model, 0.01, 0, 32, probes={"mid.t": 0.8, "fast.t": 0.5, "gone.t": 0.9})
    p = {n: probed[:, i] for i, n in enumerate(f.names)}
    assert list(p["probe_missing"]) == [0.0, 0.0, 1.0] and (p["probe_task_missing"] == 0).all()
    assert p["probe_rel"][1] == 0.0 and p["probe_rel"][0] < 0  # mid.t is the task's best probed model


def test_run_columns_grow_with_training_and_saturate():
    epochs = np.array([1 / 32, 1 / 16, 0.5, 1.0, 8.0, 64.0, 1000.0])
    ramps = amount_columns(epochs)
    assert ramps.shape == (7, len(EPOCH_KNOTS) - 1) and (np.diff(ramps.sum(1)) >= 0).all()
    assert ramps[0].sum() == 0 and ramps[-1].sum() == ramps[-2].sum() == pytest.approx(math.log(64 * 16))
    f = Featurizer(ENTRIES)
    rows = f.static(TASK, np.zeros(len(epochs), dtype=int), 0.01, 0, 32)
    f.fill_run(rows, epochs * 16, epochs, np.zeros(len(epochs)))
    assert rows[:, f.index.run].shape[1] == len(RUN_NAMES)
    assert (np.diff(rows[:, f.names.index("log_steps")]) >= 0).all()


def test_target_round_trip_and_noise():
    acc = np.array([0.15, 0.5, 0.9])
    y = to_target(acc, 10)
    np.testing.assert_allclose(from_target(y, 10), acc)
    assert to_target(0.05, 10) == to_target(0.1, 10)  # below chance: clipped
    assert target_noise(0.9, 10, 1000, 0.03) < target_noise(0.9, 10, 100, 0.03)  # fewer images scored, noisier
    assert target_noise(0.99, 10, 1000, 0.03) > target_noise(0.6, 10, 1000, 0.03)  # near the top, a logit moves more


def test_run_at_knots_equals_the_rows_it_skips():
    from nasoa.online.features import EPOCH_KNOTS

    f = Featurizer(ENTRIES)
    rng = np.random.default_rng(0)
    static = f.static(TASK, np.array([0, 1, 2, 3]), [0.01, 0.1, 0.03, 0.003], [0, 2, 4, 1], [16, 32, 64, 16])
    per_epoch = np.ceil(500 / np.array([16, 32, 64, 16]))
    w = rng.normal(size=f.dim)
    got = f.run_at_knots(w[f.index.run], static[:, list(f.index.interact)], per_epoch)
    for k, knot in enumerate(EPOCH_KNOTS):
        rows = f.fill_run(static.copy(), knot * per_epoch, np.full(4, knot), np.zeros(4))
        np.testing.assert_allclose(got[:, k], rows[:, f.index.run] @ w[f.index.run], atol=1e-12)
