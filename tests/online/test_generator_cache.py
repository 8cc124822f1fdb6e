"""The generator's per-task cache of predictions and rankings: answers equal an uncached computation."""

import numpy as np
import pytest

from nasoa.online import BayesianLinearPredictor, KNNPredictor, MeanPredictor, NoFeasibleRegime, predictor_from_state
from nasoa.online.generator import RegimeAnswer

from .fakes import fitted_generator, random_rows, random_task


def uncached(generator, task, budget, top_k):
    """propose() as a straight computation: predict every candidate, lexsort the feasible ones."""
    times, features = generator.candidates(task)
    feasible = times <= budget
    if not feasible.any():
        return None
    pred = generator.predictor.predict(features)
    std = np.sqrt(np.maximum(pred.var, 0.0))
    score = pred.mean + generator.exploration * std if generator.exploration else pred.mean
    index = np.flatnonzero(feasible)
    order = np.lexsort((index, -times[index], -generator._top1[index], -score[index]))
    options = [generator._option(int(i), times, pred.mean, std[i]) for i in index[order[: 1 + top_k]]]
    return RegimeAnswer(options[0], tuple(options[1:]), budget, generator.num_candidates, int(feasible.sum()))


def same_answer(got, want) -> bool:
    """Equal answers; ``predicted_std`` within 1e-12 relative (propose predicts it on the chosen rows alone)."""
    if isinstance(got, dict) and isinstance(want, dict):
        if got.keys() != want.keys():
            return False
        return all(
            np.isclose(got[k], want[k], rtol=1e-12, atol=0) if k == "predicted_std" else same_answer(got[k], want[k])
            for k in got
        )
    if isinstance(got, list | tuple) and isinstance(want, list | tuple):
        return len(got) == len(want) and all(same_answer(a, b) for a, b in zip(got, want))
    return got == want


def answer_or_none(generator, task, budget, top_k):
    try:
        return generator.propose(task, budget, top_k)
    except NoFeasibleRegime:
        return None


@pytest.mark.parametrize("exploration", [0.0, 0.5])
def test_cached_answers_equal_uncached_ones_through_learning(train_rows, exploration):

    generator = fitted_generator(train_rows, exploration=exploration)
    rng = np.random.default_rng(3)
    tasks = [random_task(rng) for _ in range(4)]
    for step, row in enumerate(random_rows(6, seed=9)):
        for task in tasks:
            for budget in (2.0, 20.0, 200.0, 1e5):
                for top_k in (0, 3):
                    got = answer_or_none(generator, task, budget, top_k)
                    want = uncached(generator, task, budget, top_k)
                    assert same_answer(got and got.to_dict(), want and want.to_dict()), (step, task, budget, top_k)
        before = generator.propose(tasks[0], 1e5).to_dict()
        generator.learn(row)  # the cache must not hide the update
        assert same_answer(generator.propose(tasks[0], 1e5).to_dict(), uncached(generator, tasks[0], 1e5, 3).to_dict())
        assert generator.propose(tasks[0], 1e5).to_dict() != before


def test_cache_follows_a_replaced_predictor_and_exploration(generator):
    task = random_task(np.random.default_rng(5))
    first = generator.propose(task, 1e5).to_dict()
    original = generator.predictor
    try:
        generator.predictor = BayesianLinearPredictor()  # the prior: another answer
        assert same_answer(generator.propose(task, 1e5).to_dict(), uncached(generator, task, 1e5, 3).to_dict())
        assert generator.propose(task, 1e5).to_dict() != first
        generator.predictor = predictor_from_state(original.to_state())  # an exact copy: the first answer again
        assert generator.propose(task, 1e5).to_dict() == first
    finally:
        generator.predictor = original
    generator.exploration = 2.0
    try:
        assert same_answer(generator.propose(task, 1e5).to_dict(), uncached(generator, task, 1e5, 3).to_dict())
    finally:
        generator.exploration = 0.0
    assert generator.propose(task, 1e5).to_dict() == first


@pytest.mark.parametrize("cls", [BayesianLinearPredictor, MeanPredictor, KNNPredictor])
def test_cache_token_changes_with_every_change(cls, train_rows):

    X, y = zip(*(fitted_generator(train_rows[:5]).row_features(r) for r in train_rows[:20]))
    X, y = np.vstack(X), np.asarray(y)
    p = cls()
    tokens = [p.cache_token]
    p.fit(X[:10], y[:10])
    tokens.append(p.cache_token)
    p.update(X[10:11], y[10:11])
    tokens.append(p.cache_token)
    tokens.append(predictor_from_state(p.to_state()).cache_token)
    assert None not in tokens and len(set(tokens)) == len(tokens)
    p.predict(X)
    assert p.cache_token == tokens[2]  # predicting changes nothing


def test_untracked_predictor_is_not_cached(train_rows):

    class Untracked(MeanPredictor):
        @property
        def cache_token(self):
            return None

    generator = fitted_generator(train_rows[:5])
    generator.predictor = Untracked()
    task = random_task(np.random.default_rng(0))
    generator.propose(task, 1e5)
    generator.predictor._mean, generator.predictor._n = 0.9, 1  # changed behind its back: still seen
    assert generator.propose(task, 1e5).predicted_accuracy == 0.9
