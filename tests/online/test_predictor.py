import json
import time

import numpy as np
import pytest

from nasoa.online import (
    PREDICTORS,
    BayesianLinearPredictor,
    CurveBLR,
    MeanPredictor,
    Predictor,
    create_predictor,
    predictor_from_state,
    register_predictor,
)


def synthetic(n: int, d: int = 12, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """y = a smooth nonlinear function of the features + noise, in [0, 1]."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d)) * np.linspace(0.5, 3.0, d) + np.arange(d)
    z = (X - np.arange(d)) / np.linspace(0.5, 3.0, d)
    f = 0.55 + 0.12 * np.tanh(z[:, 0]) + 0.08 * z[:, 1] - 0.05 * z[:, 2] ** 2 + 0.05 * np.sin(z[:, 3]) * z[:, 4]
    return X, np.clip(f + rng.normal(0.0, 0.02, n), 0.0, 1.0)


def rmse(p: Predictor, X: np.ndarray, y: np.ndarray) -> float:
    return float(np.sqrt(np.mean((p.predict(X).mean - y) ** 2)))


def test_registry():
    assert {"curve_blr", "bayes_linear", "mean", "knn"} <= set(PREDICTORS)
    assert isinstance(create_predictor("bayes_linear", num_rff=8), BayesianLinearPredictor)
    with pytest.raises(ValueError, match="unknown predictor 'nope'.*bayes_linear"):
        create_predictor("nope")
    with pytest.raises(ValueError, match="already registered"):
        register_predictor("mean")(MeanPredictor)
    with pytest.raises(ValueError, match="unknown predictor"):
        predictor_from_state({"name": "nope"})


@pytest.mark.parametrize("name", sorted(PREDICTORS))
def test_contract(name):
    X, y = synthetic(60)
    p = create_predictor(name)
    prior = p.predict(X[:3])
    assert prior.mean.shape == prior.var.shape == (3,) and (prior.var > 0).all()
    np.testing.assert_array_equal(p.predict_mean(X[:3]), prior.mean)
    assert p.fit(X[:50], y[:50]) is p and p.num_samples == 50
    p.update(X[50:52], y[50:52])
    p.update(X[52], y[52:53])
    assert p.num_samples == 53
    mean, var = p.predict(X)
    assert mean.shape == var.shape == (60,) and np.isfinite(mean).all() and (var > 0).all()
    np.testing.assert_array_equal(p.predict_mean(X), mean)  # the same numbers, without the variance
    state = json.loads(json.dumps(p.to_state()))
    q = predictor_from_state(state)
    assert type(q) is type(p) and q.num_samples == p.num_samples
    np.testing.assert_array_equal(q.predict(X).mean, mean)
    np.testing.assert_array_equal(q.predict(X).var, var)
    groups = [f"t{i % 3}" for i in range(60)]
    p.update(X[53:55], y[53:55], groups[53:55], [0.1, 0.2])  # groups and noise are accepted by every predictor
    assert p.predict(X, groups).mean.shape == (60,) and p.contrast_var(X, X[0]).shape == (60,)
    with pytest.raises(ValueError):
        p.fit(X[:5], y[:4])
    with pytest.raises(ValueError):
        p.update(X[:1], [np.nan])


def test_bayes_linear_beats_the_mean():
    X, y = synthetic(500)
    blr = BayesianLinearPredictor().fit(X[:300], y[:300])
    base = MeanPredictor().fit(X[:300], y[:300])
    e_blr, e_mean = rmse(blr, X[300:], y[300:]), rmse(base, X[300:], y[300:])
    print(f"held-out RMSE: bayes_linear {e_blr:.4f}, mean {e_mean:.4f}")
    assert e_blr < 0.6 * e_mean


def test_online_update_takes_effect_and_is_fast():
    X, y = synthetic(300)
    p = BayesianLinearPredictor().fit(X[:200], y[:200])
    x_new = X[250:251] + 1.5  # somewhere the model has not seen
    y_new = np.array([0.95])
    before = abs(p.predict(x_new).mean[0] - y_new[0])
    start = time.perf_counter()
    p.update(x_new, y_new)
    elapsed = time.perf_counter() - start
    after = abs(p.predict(x_new).mean[0] - y_new[0])
    print(f"bayes_linear update: {elapsed * 1e3:.3f} ms ({len(p._mean)} basis fns); error {before:.3f} -> {after:.3f}")
    assert after < before
    assert elapsed < 1.0


def test_online_updates_match_a_batch_fit():
    X, y = synthetic(80)
    batch = BayesianLinearPredictor().fit(X, y)
    online = BayesianLinearPredictor()
    online._init_basis(X)  # the scaling and basis the batch fit chose, with the prior as posterior
    for i in range(len(X)):
        online.update(X[i : i + 1], y[i : i + 1])
    np.testing.assert_allclose(online.predict(X).mean, batch.predict(X).mean, atol=1e-6)
    np.testing.assert_allclose(online.predict(X).var, batch.predict(X).var, rtol=1e-5)


def test_update_before_fit_and_unfitted_state():
    X, y = synthetic(10)
    p = BayesianLinearPredictor(num_rff=4)
    assert p.dim is None
    q = predictor_from_state(json.loads(json.dumps(p.to_state())))
    np.testing.assert_array_equal(q.predict(X).mean, p.predict(X).mean)
    p.update(X[:1], y[:1])
    assert p.dim == X.shape[1] and p.num_samples == 1
    with pytest.raises(ValueError, match="features"):
        p.predict(X[:, :3])


@pytest.mark.parametrize("kwargs", [{"noise_std": 0.0}, {"num_rff": -1}, {"lengthscale": -1.0}, {"bounds": (1, 0)}])
def test_bayes_linear_validation(kwargs):
    with pytest.raises(ValueError):
        BayesianLinearPredictor(**kwargs)


def test_bad_state():
    p = BayesianLinearPredictor(num_rff=4).fit(*synthetic(20))
    state = p.to_state()
    with pytest.raises(ValueError, match="version"):
        BayesianLinearPredictor.from_state({**state, "version": 99})
    with pytest.raises(ValueError, match="not a 'bayes_linear'"):
        BayesianLinearPredictor.from_state({**state, "name": "mean"})
    with pytest.raises(ValueError, match="shapes"):
        BayesianLinearPredictor.from_state({**state, "mean": state["mean"][:-1]})


def grouped(n: int, d: int = 10, tasks: int = 6, seed: int = 0):
    """y = x . w + a hidden offset per task + noise (each sample's noise known)."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d))
    groups = [f"task{i % tasks}" for i in range(n)]
    offset = {g: rng.normal(0.0, 1.0) for g in set(groups)}
    noise = rng.uniform(0.05, 0.3, n)
    w = rng.normal(0.0, 0.5, d)
    y = X @ w + np.array([offset[g] for g in groups]) + rng.normal(0.0, 1.0, n) * noise
    return X, y, groups, noise, w, offset


def test_curve_blr_online_updates_equal_the_batch_fit():
    X, y, groups, noise, _, _ = grouped(120)
    batch = CurveBLR().fit(X, y, groups, noise)
    online = CurveBLR()
    online.update(X[:1], y[:1], groups[:1], noise[:1])
    for lo in range(1, len(X), 7):  # one or several samples at a time, tasks interleaved
        online.update(X[lo : lo + 7], y[lo : lo + 7], groups[lo : lo + 7], noise[lo : lo + 7])
    assert online.num_samples == batch.num_samples == 120
    for g in ("task0", "task5", None, "never-seen"):
        np.testing.assert_allclose(online.predict(X, g).mean, batch.predict(X, g).mean, atol=1e-8)
        np.testing.assert_allclose(online.predict(X, g).var, batch.predict(X, g).var, rtol=1e-8)
    np.testing.assert_allclose(online.contrast_var(X, X[0]), batch.contrast_var(X, X[0]), rtol=1e-8)


def test_curve_blr_learns_what_transfers_and_each_tasks_offset():
    X, y, groups, noise, w, offset = grouped(600, tasks=30)
    p = CurveBLR(offset_std=1.0).fit(X, y, groups, noise)
    assert np.abs(p._w - w).max() < 0.1  # the weights, whatever each task's offset
    x_new = np.random.default_rng(1).normal(size=(20, X.shape[1]))
    new = p.predict(x_new)  # a new task: its offset unknown, wider
    seen = p.predict(x_new, "task3")
    assert (new.var > seen.var).all()
    np.testing.assert_allclose(seen.mean - new.mean, offset["task3"], atol=0.25)
    w_b = p.linear("task3")  # the linear form gives the same means
    np.testing.assert_allclose(x_new @ w_b[0] + w_b[1], seen.mean, atol=1e-10)
    # a new task's first feedback moves every prediction of that task by its offset
    p.update(x_new[:1], x_new[:1] @ w + 2.0, ["fresh"], [0.05])
    moved = p.predict_mean(x_new[1:], "fresh") - p.predict_mean(x_new[1:])
    assert np.allclose(moved, moved[0]) and 1.0 < moved[0] < 2.1


def test_curve_blr_state_prepare_and_errors():
    X, y, groups, noise, _, _ = grouped(50)
    p = CurveBLR()
    names = [f"c{i}" for i in range(X.shape[1])]
    p.prepare(names, np.full(len(names), 0.1), np.full(len(names), 0.7))
    p.fit(X, y, groups, noise)
    q = predictor_from_state(json.loads(json.dumps(p.to_state())))
    assert q.names == tuple(names) and q.num_samples == 50
    np.testing.assert_array_equal(q.predict(X, "task1").mean, p.predict(X, "task1").mean)
    q.prepare(names, np.zeros(len(names)), np.ones(len(names)))  # the same columns: kept as they are
    with pytest.raises(ValueError, match="other columns"):
        q.prepare(names[:-1], np.zeros(len(names) - 1), np.ones(len(names) - 1))
    with pytest.raises(ValueError, match="noise"):
        p.update(X[:1], y[:1], None, [0.0])
    with pytest.raises(ValueError, match="groups"):
        p.update(X[:2], y[:2], ["a"], None)
    with pytest.raises(ValueError):
        CurveBLR(offset_std=0.0)
    with pytest.raises(ValueError, match="shapes"):
        CurveBLR.from_state({**p.to_state(), "eta": [0.0]})
