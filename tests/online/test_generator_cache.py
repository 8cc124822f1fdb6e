"""The generator's per-task cache: its answers equal those of a fresh generator (no cache) through learning."""

import numpy as np

from nasoa.online import CurveBLR, KNNPredictor, MeanPredictor, NoFeasibleRegime, predictor_from_state

from .fakes import generator, past_rows, sim_task


def fresh_answer(g, task, budget, top_k, probes=None):
    """What a new generator with a copy of ``g``'s predictor (and time scale) answers: nothing cached."""
    copy = generator(predictor=predictor_from_state(g.predictor.to_state()))
    copy.speed = g.speed
    return answer_or_none(copy, task, budget, top_k, probes)


def answer_or_none(g, task, budget, top_k, probes=None):
    try:
        return g.propose(task, budget, top_k, probes=probes).to_dict()
    except NoFeasibleRegime:
        return None


def test_cached_answers_equal_fresh_ones_through_learning():
    rng = np.random.default_rng(3)
    sims = [sim_task(rng, f"t{i}") for i in range(3)]
    g = generator()
    g.fit(past_rows(g, sims[:1]))
    new_rows = past_rows(g, sims[1:], per_budget=1, seed=5)
    for step, row in enumerate(new_rows[:5]):
        for sim in sims:
            for budget in (1.5, 8.0, 64.0):
                for top_k, probes in ((0, None), (3, sim.probes())):
                    got = answer_or_none(g, sim.meta, budget, top_k, probes)
                    assert got == fresh_answer(g, sim.meta, budget, top_k, probes), (step, sim.meta, budget)
        before = g.propose(sims[1].meta, 64.0).to_dict()
        g.learn(row)  # the cache must not hide the update
        assert g.propose(sims[1].meta, 64.0).to_dict() == fresh_answer(g, sims[1].meta, 64.0, 3)
        assert g.propose(sims[1].meta, 64.0).to_dict() != before


def test_cache_follows_a_replaced_predictor():
    rng = np.random.default_rng(4)
    sims = [sim_task(rng, f"t{i}") for i in range(2)]
    g = generator()
    g.fit(past_rows(g, sims))
    task = sims[0].meta
    first = g.propose(task, 1e3).to_dict()
    original = g.predictor
    g.predictor = CurveBLR()  # the prior: another answer
    assert g.propose(task, 1e3).to_dict() != first
    g.predictor = predictor_from_state(original.to_state())  # an exact copy: the first answer again
    assert g.propose(task, 1e3).to_dict() == first


def test_predictors_without_a_linear_form_or_a_cache_token_work_too():
    rng = np.random.default_rng(5)
    sims = [sim_task(rng, f"t{i}") for i in range(2)]
    rows = past_rows(generator(), sims)

    class Untracked(MeanPredictor):
        @property
        def cache_token(self):
            return None

    for predictor in (KNNPredictor(k=3), Untracked()):
        g = generator(predictor=predictor)
        g.fit(rows)
        answer = g.propose(sims[0].meta, 30.0)
        assert answer.predicted_time_s <= 30.0
    g.predictor._mean, g.predictor._n = 3.0, 1  # changed behind its back: still seen (no cache without a token)
    assert g.propose(sims[0].meta, 30.0, top_k=0).predicted_accuracy > answer.predicted_accuracy
