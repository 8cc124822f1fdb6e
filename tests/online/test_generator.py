"""The regime generator: candidates sized to the budget, a budget-monotone choice, the fallback, learning, errors."""

import math
import time
from dataclasses import replace

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nasoa.data.meta import TaskMeta
from nasoa.online import (
    CostModel,
    CurveBLR,
    DeviceCost,
    MeanPredictor,
    NoFeasibleRegime,
    Regime,
    RegimeGenerator,
    experience_row,
    predict_time_s,
    sized_to_budget,
)

from .fakes import DEVICE, ENTRIES, SPACE, fitted_generator, generator, make_entry, past_rows, sim_task

TASK = TaskMeta(num_classes=10, num_train=500, resolution=32, channels=3, name="t")

tasks = st.builds(
    TaskMeta,
    num_classes=st.integers(2, 200),
    num_train=st.integers(1, 20_000),
    resolution=st.sampled_from([16, 32, 64, 96]),
    channels=st.sampled_from([1, 3]),
    name=st.sampled_from(["", "a", "b"]),
)
budgets = st.floats(0.5, 5_000.0, allow_nan=False)


@pytest.fixture(scope="module")
def trained():
    """A generator fitted on simulated experience of 8 past tasks (module scope: do not update it in tests)."""
    rng = np.random.default_rng(0)
    g = generator()
    g.fit(past_rows(g, [sim_task(rng, f"p{i}") for i in range(8)]))
    return g


def test_the_grid_is_models_by_frozen_batch_lr_plus_the_fallback(trained):
    assert trained.num_candidates == 4 * 5 * 2 * 4  # the fallback (resnet18, lr 0.01, batch 32) is on the grid
    fb = trained.regime_at(trained.fallback_index, 10, 500)
    assert (fb.model, fb.lr, fb.frozen_stages, fb.batch_size) == ("resnet18.t", 0.01, 0, 32)
    off_grid = generator(space=replace(SPACE, fallback={"model": "mid", "lr": 0.05, "batch_size": 64}))
    assert off_grid.num_candidates == 4 * 5 * 2 * 4 + 1 and off_grid.fallback_index == off_grid.num_candidates - 1


@settings(max_examples=40, deadline=None)
@given(task=tasks, budget=budgets)
def test_candidates_are_sized_like_sized_to_budget(trained, task, budget):
    steps, times = trained.sized(task, budget)
    for i in range(0, trained.num_candidates, 17):
        entry = trained.all_entries[trained.regime_at(i, 1, task.num_train).model]
        base = trained.regime_at(i, 1, task.num_train)
        sized = sized_to_budget(entry, base, task, budget, DEVICE, trained.cost_model, trained.space.max_epochs)
        assert (sized.steps if sized else 0) == steps[i]
        if sized is not None:
            assert times[i] == trained.cost_model.time_s(entry, sized, task, DEVICE) <= budget


@settings(max_examples=40, deadline=None)
@given(task=tasks, budget=budgets, probe_s=st.floats(0.0, 3.0))
def test_answers_never_exceed_the_budget(trained, task, budget, probe_s):
    try:
        answer = trained.propose(task, budget, top_k=3, probes={"mid.t": 0.5}, probe_s=probe_s)
    except NoFeasibleRegime as err:
        assert err.cheapest_time_s > budget
        return
    for option in (answer.best, *answer.alternatives):
        entry = trained.all_entries[option.regime.model]
        assert option.predicted_time_s == predict_time_s(entry, option.regime, task, DEVICE, trained.cost_model)
        assert option.predicted_time_s + probe_s <= budget and option.regime.steps >= 1
        assert 0.0 <= option.predicted_lcb <= option.predicted_accuracy <= 1.0 and option.predicted_std > 0
    assert len(answer.alternatives) == min(3, answer.num_feasible - 1)


@settings(max_examples=25, deadline=None)
@given(task=tasks, small=st.floats(2.0, 200.0), factor=st.floats(1.0, 20.0))
def test_the_choice_is_budget_monotone(trained, task, small, factor):
    """A longer budget: every candidate plans at least as many steps, and the chosen score never drops."""
    try:
        short = trained.propose(task, small, top_k=0)
    except NoFeasibleRegime:
        return
    long = trained.propose(task, small * factor, top_k=0)
    assert long.predicted_lcb >= short.predicted_lcb - 1e-12
    s_short, _ = trained.sized(task, small)
    s_long, _ = trained.sized(task, small * factor)
    assert (s_long >= s_short).all()
    same = trained.score(task, long.regime)  # the same candidate, more steps: a prediction at least as high
    assert long.predicted_accuracy >= same.predicted_accuracy - 1e-9 or long.regime != same.regime


def test_more_budget_buys_longer_runs_and_better_predictions(trained):
    rng = np.random.default_rng(5)
    task = sim_task(rng, "held")
    answers = [trained.propose(task.meta, b, probes=task.probes()) for b in (3.0, 10.0, 30.0, 100.0)]
    lcbs = [a.predicted_lcb for a in answers]
    assert lcbs == sorted(lcbs) and lcbs[0] < lcbs[-1]
    assert answers[-1].predicted_time_s > answers[0].predicted_time_s
    assert all(a.predicted_time_s > 0.6 * b for a, b in zip(answers[:3], (3.0, 10.0, 30.0)))  # the budget is used


def test_an_uncertain_prediction_falls_back_to_the_safe_regime():
    cold = generator()  # no experience: every regime's difference from the fallback is uncertain
    answer = cold.propose(TASK, 30.0)
    assert answer.fallback and answer.regime.model == "resnet18.t"
    assert (answer.regime.lr, answer.regime.frozen_stages, answer.regime.batch_size) == (0.01, 0, 32)
    trusting = generator(max_contrast_std=math.inf, kappa=0.0)  # no uncertainty rule: the prior's best mean
    assert not trusting.propose(TASK, 30.0).fallback
    rng = np.random.default_rng(1)
    g = generator()
    g.fit(past_rows(g, [sim_task(rng, f"p{i}") for i in range(6)]))
    assert not g.propose(TASK, 30.0).fallback  # with experience, a confidently better regime
    strict = generator(max_contrast_std=1e-6)
    strict.fit(past_rows(strict, [sim_task(rng, f"q{i}") for i in range(2)]))
    assert strict.propose(TASK, 30.0).fallback


def test_no_feasible_regime():
    g = generator()
    steps, _ = g.sized(TASK, 1e9)
    one = [predict_time_s(g.all_entries[g.regime_at(i, 1, 500).model], g.regime_at(i, 1, 500), TASK, DEVICE)
           for i in range(g.num_candidates)]  # fmt: skip
    with pytest.raises(NoFeasibleRegime, match="one step") as info:
        g.propose(TASK, min(one) * 0.99)
    assert isinstance(info.value, ValueError) and info.value.cheapest_time_s == pytest.approx(min(one))
    assert g.propose(TASK, min(one)).regime.steps == 1
    with pytest.raises(NoFeasibleRegime):
        g.propose(TASK, min(one) + 0.5, probe_s=1.0)  # the probes' seconds are taken off the budget
    with pytest.raises(NoFeasibleRegime):
        g.propose(TASK, 10.0, probe_s=12.0)  # probes that overran the whole budget leave nothing to run


@pytest.mark.parametrize("budget", [0, 0.0, -1.0, math.nan, math.inf, -math.inf, "10", None, True])
def test_bad_budget(trained, budget):
    with pytest.raises(ValueError, match="budget_s"):
        trained.propose(TASK, budget)


@pytest.mark.parametrize(
    "task",
    [
        {"num_classes": 0, "num_train": 500, "resolution": 32, "channels": 3},
        {"num_classes": 10, "num_train": -5, "resolution": 32, "channels": 3},
        {"num_classes": 10, "num_train": 2.5, "resolution": 32, "channels": 3},
        {"num_classes": 10, "num_train": "many", "resolution": 32, "channels": 3},
        {"num_classes": 10, "resolution": 32, "channels": 3},
        {"num_classes": 10, "num_train": 500, "resolution": 32, "channels": 3, "colour": True},
        "not a task",
    ],
)
def test_bad_task(trained, task):
    with pytest.raises(ValueError):
        trained.propose(task, 60.0)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [({"top_k": -1}, "top_k"), ({"probes": {"mid.t": 1.5}}, "probes"), ({"probes": [0.5]}, "probes"),
     ({"probe_s": -1.0}, "probe_s"), ({"probe_s": math.inf}, "probe_s")],
)  # fmt: skip
def test_bad_options(trained, kwargs, match):
    with pytest.raises(ValueError, match=match):
        trained.propose(TASK, 60.0, **kwargs)


def test_answer_dict_and_determinism():
    rows = past_rows(generator(), [sim_task(np.random.default_rng(2), "p")])
    a = fitted_generator(rows).propose(TASK.to_dict(), 60.0, top_k=2, probes={"mid.t": 0.6}, probe_s=1.5)
    b = fitted_generator(rows).propose(TASK, 60.0, top_k=2, probes={"mid.t": 0.6}, probe_s=1.5)
    assert a == b
    d = a.to_dict()
    for key in ("model", "lr", "frozen_stages", "batch_size", "epochs", "steps", "predicted_accuracy",
                "predicted_std", "predicted_lcb", "predicted_time_s", "fallback", "probe_s", "probes"):  # fmt: skip
        assert key in d
    assert d["regime_id"] == a.regime.regime_id and len(d["alternatives"]) == 2 and d["probe_s"] == 1.5
    assert d["footprint"]["device_seconds"] == a.predicted_time_s
    assert a.footprint == DeviceCost().footprint(a.predicted_time_s)
    assert a.regime.epochs == math.ceil(a.regime.steps / math.ceil(500 / a.regime.batch_size))
    assert generator(use_probes=False).propose(TASK, 60.0, probes={"mid.t": 0.6}).probes == {}


def test_learn_moves_the_task_and_equals_a_fit():
    rng = np.random.default_rng(3)
    rows = past_rows(generator(), [sim_task(rng, f"p{i}") for i in range(3)])
    online = fitted_generator(rows[:-4])
    new = rows[-4:]
    before = online.propose(TASK, 40.0)
    reports = [online.learn(r) for r in new]
    assert all(r.update_s < 0.05 for r in reports) and reports[-1].num_samples > reports[0].num_samples
    batch = fitted_generator(rows)
    for b in (5.0, 40.0):
        got, want = online.propose(TASK, b).to_dict(), batch.propose(TASK, b).to_dict()
        assert got.keys() == want.keys()
        for key in ("model", "steps", "fallback"):
            assert got[key] == want[key]
        assert got["predicted_accuracy"] == pytest.approx(want["predicted_accuracy"], abs=1e-9)
    first = new[0]
    assert abs(reports[0].predicted_after - first["accuracy"]) <= abs(reports[0].predicted_before - first["accuracy"])
    assert online.propose(TASK, 40.0) != before


def test_a_run_teaches_every_point_of_its_curve_and_what_it_did():
    g = generator()
    task = TaskMeta(num_classes=10, num_train=5000, resolution=32, channels=3, name="big")
    regime = Regime("mid.t", 0.03, 1, 32, 1, steps=60)
    row = experience_row(task, regime, ENTRIES[1], accuracy=0.8, time_s=3.0, steps=50, finished=False,
                         stopped_by="deadline", curve=[[15, 0.8], [30, 0.8], [45, 0.8], [50, 0.8]])  # fmt: skip
    X, y, noise, group = g.row_samples(row)
    assert X.shape[0] == 4 and len(y) == len(noise) == 4 and group == '["big", 10, 5000, 32, 3]'
    end_lr = X[:, g.featurizer.names.index("end_lr")]
    assert end_lr[0] > 0  # cut by the deadline at 50 of 60 steps: not annealed
    assert (end_lr[1:] > end_lr[0]).all() and (noise[1:] > noise[0]).all()  # mid-run, and on 128 of 1000 images
    finished = experience_row(TASK, regime, ENTRIES[1], accuracy=0.8, time_s=3.0, steps=50)
    assert g.row_samples(finished)[0][0, g.featurizer.names.index("end_lr")] == 0.0  # re-planned: annealed
    old = {k: v for k, v in finished.items() if k not in ("steps", "curve")} | {"steps": None, "curve": []}
    assert g.row_samples(old)[0].shape[0] == 1  # an older row: its plan, one point


def test_the_time_scale_is_learned_from_measured_steps():
    g = generator()
    assert g.time_scale == 1.0
    steps_before, _ = g.sized(TASK, 30.0)
    profiled = ENTRIES[1].step_ms(DEVICE, 32, 1, resolution=32)
    regime = Regime("mid.t", 0.03, 1, 32, 4, steps=60)
    for _ in range(5):
        row = experience_row(TASK, regime, ENTRIES[1], accuracy=0.8, time_s=3.0, step_ms=3 * profiled, device=DEVICE)
        g.learn(row)
    assert g.time_scale == pytest.approx(3.0)
    steps_after, times = g.sized(TASK, 30.0)
    assert (steps_after <= steps_before).all() and (times <= 30.0).all()
    assert g.speed["load_ms_per_image"] == 0.0  # one kind of step: loading cannot be told from the model's cost
    elsewhere = experience_row(TASK, regime, ENTRIES[1], accuracy=0.8, time_s=3.0, step_ms=1.0, device="cuda:x")
    g.learn(elsewhere)
    assert g.time_scale == pytest.approx(3.0)  # another device's speed says nothing of this one
    assert g.fit([elsewhere]) == 1 and g.time_scale == pytest.approx(3.0)


def test_the_loading_cost_per_image_is_told_apart_from_the_models():
    g = generator()
    rows = []
    for entry, batch, res in [(ENTRIES[0], 16, 32), (ENTRIES[2], 32, 32), (ENTRIES[1], 32, 64), (ENTRIES[3], 16, 48),
                              (ENTRIES[0], 32, 48), (ENTRIES[2], 16, 64)]:  # fmt: skip
        task = TaskMeta(10, 500, res, 3, "speed")
        profiled = entry.step_ms(DEVICE, batch, 0, resolution=res)
        wall = 2.0 * profiled + 0.5 * batch * (res / 32) ** 2
        regime = Regime(entry.key, 0.01, 0, batch, 1)
        rows.append(experience_row(task, regime, entry, accuracy=0.5, time_s=1.0, step_ms=wall, device=DEVICE))
    g.fit(rows)
    assert g.speed == pytest.approx({"time_scale": 2.0, "load_ms_per_image": 0.5})
    entry, regime = ENTRIES[1], Regime("mid.t", 0.01, 0, 32, 1)
    assert g.cost_model.step_ms(entry, regime, TASK, DEVICE) == pytest.approx(2 * entry.step_ms(DEVICE, 32, 0) + 16)


def test_learn_and_fit_errors():
    rows = past_rows(generator(), [sim_task(np.random.default_rng(4), "p")])
    g = generator()
    bad = {**rows[0], "model": "gone.t"}
    with pytest.raises(ValueError, match="unknown zoo model 'gone.t'"):
        g.learn(bad)
    with pytest.warns(UserWarning, match="1 experience row"):
        assert g.fit([bad, *rows[:5]]) == 5
    assert g.fit([]) == 0


def test_unprofiled_entries_are_learned_from_but_not_proposed():
    lonely = replace(make_entry("lonely.t", "etnas", 1.0, 0.9, 1000), profiles=())
    with pytest.warns(UserWarning, match="lonely.t"):
        g = RegimeGenerator([*ENTRIES, lonely], CurveBLR(), SPACE, DEVICE)
    assert g.num_candidates == 4 * 5 * 2 * 4 and "model=lonely.t" in g.featurizer.names
    row = experience_row(TASK, Regime("lonely.t", 0.01, 0, 32, 2), lonely, accuracy=0.9, time_s=2.0)
    assert g.learn(row).num_samples == 1
    with pytest.warns(UserWarning), pytest.raises(ValueError, match="no zoo entry has profiles on device 'gpu'"):
        RegimeGenerator(list(ENTRIES), MeanPredictor(), device="gpu")
    with pytest.raises(ValueError, match="duplicate"):
        RegimeGenerator([*ENTRIES, ENTRIES[0]], MeanPredictor(), device=DEVICE)


def test_models_restricts_proposals_not_the_columns():
    g = generator(models=["mid", "resnet18.t"])
    assert {g.regime_at(i, 1, 100).model for i in range(g.num_candidates)} == {"mid.t", "resnet18.t"}
    assert g.featurizer.names == generator().featurizer.names  # one predictor serves both
    with pytest.raises(ValueError, match="not in the zoo"):
        generator(models=["nope"])


def test_a_predictor_fitted_on_another_zoo_is_refused():
    g = fitted_generator(past_rows(generator(), [sim_task(np.random.default_rng(6), "p")]))
    with pytest.raises(ValueError, match="other columns"):
        RegimeGenerator(list(ENTRIES[:2]) + [ENTRIES[3]], g.predictor, SPACE, DEVICE)


def test_cost_model_and_space_follow_the_config():
    g = generator(cost_model=CostModel(overhead_s=0.5), space=replace(SPACE, max_epochs=2))
    steps, _ = g.sized(TASK, 1e6)
    per_epoch = np.ceil(500 / g._batch)
    assert (steps == 2 * per_epoch).all()


def test_propose_is_fast(trained):
    rng = np.random.default_rng(1)
    tasks = [TaskMeta(int(rng.integers(2, 100)), int(rng.integers(100, 5000)), 32, 3, f"n{i}") for i in range(30)]
    start = time.perf_counter()
    for t in tasks:
        trained.propose(t, 120.0)
    cold = (time.perf_counter() - start) / len(tasks)
    start = time.perf_counter()
    for t in tasks:
        trained.propose(t, 60.0)
    warm = (time.perf_counter() - start) / len(tasks)
    print(f"propose over {trained.num_candidates} regimes: {cold * 1e3:.2f} ms new task, {warm * 1e3:.2f} ms known")
    assert cold < 0.1
