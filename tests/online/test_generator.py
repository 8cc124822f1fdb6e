import math
import time
from dataclasses import replace

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nasoa.data.meta import TaskMeta
from nasoa.online import (
    FEATURE_NAMES,
    BayesianLinearPredictor,
    DeviceCost,
    MeanPredictor,
    NoFeasibleRegime,
    Regime,
    RegimeGenerator,
    RegimeSpace,
    experience_row,
    predict_time_s,
)

from .fakes import DEVICE, ENTRIES, fitted_generator, make_entry, simulate

TASK = TaskMeta(num_classes=10, num_train=500, resolution=32, channels=3)

tasks = st.builds(
    TaskMeta,
    num_classes=st.integers(2, 200),
    num_train=st.integers(1, 20_000),
    resolution=st.sampled_from([16, 32, 64, 96]),
    channels=st.sampled_from([1, 3]),
)
budgets = st.floats(0.5, 5_000.0, allow_nan=False)


def cheapest_time(task: TaskMeta) -> float:
    return min(predict_time_s(e, r, task, DEVICE) for e in ENTRIES for r in RegimeSpace().enumerate(e))


def test_grid_matches_the_space(generator):
    space = RegimeSpace()
    expected = [r for e in ENTRIES for r in space.enumerate(e, DEVICE)]
    assert generator.num_candidates == len(expected) == 3 * 360
    assert [generator.regime_at(i) for i in range(0, len(expected), 97)] == expected[::97]


def test_vectorized_times_equal_the_cost_model(generator):
    task = TaskMeta(num_classes=7, num_train=777, resolution=48, channels=1)
    times, _ = generator.candidates(task)
    for i in range(0, generator.num_candidates, 13):
        r = generator.regime_at(i)
        assert times[i] == predict_time_s(generator.all_entries[r.model], r, task, DEVICE)


@settings(max_examples=60, deadline=None)
@given(task=tasks, budget=budgets)
def test_answer_never_exceeds_the_budget(generator, task, budget):
    try:
        answer = generator.propose(task, budget, top_k=3)
    except NoFeasibleRegime as err:
        assert err.cheapest_time_s > budget
        return
    for option in (answer.best, *answer.alternatives):
        assert option.predicted_time_s <= budget
        entry = generator.all_entries[option.regime.model]
        assert predict_time_s(entry, option.regime, task, DEVICE) <= budget
    assert 0.0 <= answer.predicted_accuracy <= 1.0 and answer.predicted_std > 0
    assert len(answer.alternatives) == min(3, answer.num_feasible - 1)


@settings(max_examples=40, deadline=None)
@given(task=tasks, budget=budgets, shrink=st.floats(0.05, 0.95))
def test_tighter_budget_picks_a_cheaper_regime(generator, task, budget, shrink):
    try:
        tight = generator.propose(task, budget * shrink)
    except NoFeasibleRegime:
        return
    loose = generator.propose(task, budget)
    assert tight.predicted_time_s <= loose.predicted_time_s
    assert tight.predicted_accuracy <= loose.predicted_accuracy


def test_more_budget_buys_more_training(generator):
    times = [generator.propose(TASK, b).predicted_time_s for b in (3.0, 10.0, 30.0, 100.0)]
    accs = [generator.propose(TASK, b).predicted_accuracy for b in (3.0, 10.0, 30.0, 100.0)]
    assert times == sorted(times) and times[0] < times[-1]
    assert accs == sorted(accs) and accs[0] < accs[-1]


def test_no_feasible_regime(generator):
    cheapest = cheapest_time(TASK)
    with pytest.raises(NoFeasibleRegime, match=f"{cheapest:.4g} s") as info:
        generator.propose(TASK, cheapest * 0.99)
    assert isinstance(info.value, ValueError)
    assert info.value.cheapest_time_s == pytest.approx(cheapest, rel=1e-12)
    assert generator.propose(TASK, cheapest).predicted_time_s == pytest.approx(cheapest, rel=1e-12)


@pytest.mark.parametrize("budget", [0, 0.0, -1.0, math.nan, math.inf, -math.inf, "10", None, True])
def test_bad_budget(generator, budget):
    with pytest.raises(ValueError, match="budget_s"):
        generator.propose(TASK, budget)


@pytest.mark.parametrize(
    "task",
    [
        {"num_classes": 0, "num_train": 500, "resolution": 32, "channels": 3},
        {"num_classes": 10, "num_train": -5, "resolution": 32, "channels": 3},
        {"num_classes": 10, "num_train": 500, "resolution": 0, "channels": 3},
        {"num_classes": 10, "num_train": 500, "resolution": 32, "channels": 0},
        {"num_classes": 10, "num_train": 2.5, "resolution": 32, "channels": 3},
        {"num_classes": 10, "num_train": "many", "resolution": 32, "channels": 3},
        {"num_classes": 10, "resolution": 32, "channels": 3},
        {"num_classes": 10, "num_train": 500, "resolution": 32, "channels": 3, "colour": True},
        "not a task",
    ],
)
def test_bad_task(generator, task):
    with pytest.raises(ValueError):
        generator.propose(task, 60.0)


def test_bad_top_k(generator):
    with pytest.raises(ValueError, match="top_k"):
        generator.propose(TASK, 60.0, top_k=-1)


def test_answer_dict_and_determinism(train_rows):
    a = fitted_generator(train_rows).propose(TASK.to_dict(), 60.0, top_k=2)
    b = fitted_generator(train_rows).propose(TASK, 60.0, top_k=2)
    assert a == b
    d = a.to_dict()
    for key in ("model", "lr", "frozen_stages", "batch_size", "epochs", "predicted_accuracy", "predicted_time_s"):
        assert key in d
    assert d["regime_id"] == a.regime.regime_id and len(d["alternatives"]) == 2
    assert d["footprint"]["device_seconds"] == a.predicted_time_s
    assert a.footprint == DeviceCost().footprint(a.predicted_time_s)


def test_choice_is_sensible(generator):
    """Fitted on the simulator, the chosen regime is close to the simulator's best feasible regime."""
    budget = 40.0
    answer = generator.propose(TASK, budget)
    best = max(
        simulate(TASK, e, r)
        for e in ENTRIES
        for r in RegimeSpace().enumerate(e)
        if predict_time_s(e, r, TASK, DEVICE) <= budget
    )
    chosen = simulate(TASK, generator.all_entries[answer.regime.model], answer.regime)
    assert chosen >= best - 0.05


def test_exploration_bonus(train_rows):
    g = fitted_generator(train_rows, exploration=1.0)
    answer = g.propose(TASK, 60.0)
    assert answer.predicted_time_s <= 60.0
    with pytest.raises(ValueError, match="exploration"):
        RegimeGenerator(list(ENTRIES), MeanPredictor(), device=DEVICE, exploration=-1.0)


def test_cold_start_is_deterministic():
    g = RegimeGenerator(list(ENTRIES), BayesianLinearPredictor(), device=DEVICE)
    a = g.propose(TASK, 30.0)
    assert a == g.propose(TASK, 30.0)
    assert a.regime.model == "slow.t"  # ties go to the best zoo model, then to the longest run


def test_learn_updates_the_predictor(train_rows):
    g = fitted_generator(train_rows)
    regime = Regime("mid.t", 0.1, 1, 16, 12)
    task = TaskMeta(num_classes=3, num_train=200, resolution=32, channels=3)
    row = experience_row(task, regime, ENTRIES[1], accuracy=0.99, time_s=20.0, source="feedback", feedback_id="f1")
    before = g.score(task, regime).predicted_accuracy
    report = g.learn(row)
    print(f"generator.learn update: {report.update_s * 1e3:.3f} ms")
    assert report.predicted_before == pytest.approx(before)
    assert abs(report.predicted_after - 0.99) < abs(report.predicted_before - 0.99)
    assert g.score(task, regime).predicted_accuracy == pytest.approx(report.predicted_after)
    assert report.update_s > 0 and report.num_samples == len(train_rows) + 1  # its speed: BENCHMARKS.md


def test_learn_and_fit_errors(train_rows):
    g = RegimeGenerator(list(ENTRIES), BayesianLinearPredictor(), device=DEVICE)
    bad = {**train_rows[0], "model": "gone.t"}
    with pytest.raises(ValueError, match="unknown zoo model 'gone.t'"):
        g.learn(bad)
    with pytest.warns(UserWarning, match="1 experience row"):
        assert g.fit([bad, *train_rows[:5]]) == 5
    assert g.fit([]) == 0


def test_unprofiled_entries():
    lonely = replace(make_entry("lonely.t", "etnas", 1.0, 0.9, 1000), profiles=())
    with pytest.warns(UserWarning, match="lonely.t"):
        g = RegimeGenerator([*ENTRIES, lonely], MeanPredictor(), device=DEVICE)
    assert g.num_candidates == 3 * 360
    with pytest.warns(UserWarning), pytest.raises(ValueError, match="no zoo entry has profiles on device 'gpu'"):
        RegimeGenerator(list(ENTRIES), MeanPredictor(), device="gpu")
    with pytest.raises(ValueError, match="duplicate"):
        RegimeGenerator([*ENTRIES, ENTRIES[0]], MeanPredictor(), device=DEVICE)


def test_learn_from_an_unprofiled_regime_uses_the_measured_time():
    full = make_entry("part.t", "etnas", 4.0, 0.7, 1000)
    part = replace(full, profiles=tuple(p for p in full.profiles if p.frozen_stages == 0))
    g = RegimeGenerator([part], BayesianLinearPredictor(), device=DEVICE)
    assert g.num_candidates == 3 * 6 * 4  # only the profiled frozen count is proposed
    regime = Regime("part.t", 0.03, 2, 32, 2)
    row = experience_row(TASK, regime, part, accuracy=0.8, time_s=3.2, source="stream")
    assert g.learn(row).num_samples == 1
    x, _ = g.row_features(row)
    assert x[FEATURE_NAMES.index("log_step_ms")] == pytest.approx(
        math.log(1000 * 3.2 / regime.planned_steps(TASK.num_train))
    )
    with pytest.raises(ValueError, match="no measured time"):
        g.learn({**row, "time_s": 0.0})


def test_enumeration_is_fast(train_rows):
    g = fitted_generator(train_rows)
    rng = np.random.default_rng(1)
    tasks = [TaskMeta(int(rng.integers(2, 100)), int(rng.integers(100, 5000)), 32, 3) for _ in range(20)]
    start = time.perf_counter()
    for t in tasks:
        g.propose(t, 120.0)
    cold = (time.perf_counter() - start) / len(tasks)
    start = time.perf_counter()
    for t in tasks:
        g.propose(t, 120.0)
    warm = (time.perf_counter() - start) / len(tasks)
    print(
        f"propose over {g.num_candidates} regimes of 3 models: {cold * 1e3:.2f} ms uncached, {warm * 1e3:.2f} ms cached"
    )
    assert cold < 0.5
