import json
import time

import numpy as np
import pytest

from nasoa.online import (
    PREDICTORS,
    BayesianLinearPredictor,
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
    assert {"bayes_linear", "mean", "knn"} <= set(PREDICTORS)
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
    assert ((mean >= 0) & (mean <= 1)).all()
    np.testing.assert_array_equal(p.predict_mean(X), mean)  # the same numbers, without the variance
    state = json.loads(json.dumps(p.to_state()))
    q = predictor_from_state(state)
    assert type(q) is type(p) and q.num_samples == p.num_samples
    np.testing.assert_array_equal(q.predict(X).mean, mean)
    np.testing.assert_array_equal(q.predict(X).var, var)
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
