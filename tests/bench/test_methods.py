"""The regime choosers and the protocol's arithmetic on hand-made cells, with a fake evaluate (no training)."""

import pytest

from nasoa.bench import protocol
from nasoa.bench.methods import (
    Cell,
    Choice,
    ExhaustiveOracle,
    FixedRecipe,
    Grid,
    NasoaOneShot,
    RandomRegime,
    SeriesUpperBound,
    best_of,
)
from nasoa.data.meta import TaskMeta
from nasoa.jobs.benchmark.regime_quality import (
    StreamTask,
    check_stream_is_new,
    initial_experience,
    stream_tasks,
    summarize,
)
from nasoa.online.generator import RegimeGenerator
from nasoa.online.predictor import create_predictor
from nasoa.online.regime import CostModel, Regime
from nasoa.train.finetune import FinetuneResult
from nasoa.zoo import read_manifest

from ..helpers import make_tiny_zoo

META = TaskMeta(3, 90, 32, 3, "t")


def fake_result(regime: Regime) -> FinetuneResult:
    """Validation top-1 grows with steps, prefers lr 0.03 and model "tiny"; test is validation minus 0.01."""
    val = min(1.0, 0.4 + 0.001 * (regime.steps or 0) - abs(regime.lr - 0.03) + (0.1 if "tiny" in regime.model else 0))
    steps = regime.steps or 1
    return FinetuneResult(val, 1.0 + steps / 100, True, "done", steps, steps, 1.0, 1.0, 0.1, test_accuracy=val - 0.01)


class Counting:
    def __init__(self):
        self.calls = []

    def __call__(self, regimes):
        self.calls += list(regimes)
        return [fake_result(r) for r in regimes]


@pytest.fixture(scope="module")
def entries(tmp_path_factory):
    return tuple(read_manifest(make_tiny_zoo(tmp_path_factory.mktemp("zoo"))))


def cell(entries, budget=10.0, seed=0) -> Cell:
    return Cell("t", "spec", META, budget, budget / 2, seed, entries, "cpu:test", CostModel())


def test_best_of_keeps_the_best_validation_and_sums_the_compute(entries):
    c = cell(entries)
    regimes = [c.sized(r) for r in Grid(lrs=(0.01, 0.03)).regimes(c)]
    choice = best_of("x", c, regimes, Counting())
    assert choice.regime == max(regimes, key=lambda r: fake_result(r).accuracy)
    assert choice.fine_tunes == len(regimes)
    assert choice.compute_s == pytest.approx(sum(fake_result(r).time_s for r in regimes))
    assert best_of("x", c, [None], Counting()).regime is None


def test_every_regime_is_sized_to_fill_the_budget(entries):
    small, large = cell(entries, 4.0), cell(entries, 40.0)
    base = Regime(entries[0].key, 0.01, 0, 16, 1)
    a, b = small.sized(base), large.sized(base)
    assert a.steps < b.steps
    cost = CostModel()
    for c, r in ((small, a), (large, b)):
        assert cost.time_s(c.entry(r.model), r, META, "cpu:test") <= c.budget_s
    assert cell(entries, 0.5).sized(base) is None  # not even one step fits


def test_default_recipe_trains_until_the_budget_with_nothing_frozen(entries):
    c = cell(entries)
    choice = FixedRecipe("default", "mnv3s", 0.01, 16).choose(c, Counting())
    assert choice.regime.frozen_stages == 0 and choice.regime.schedule == "constant"
    assert choice.regime == c.sized(Regime(choice.regime.model, 0.01, 0, 16, 1, "constant"))
    assert "not in the zoo" in FixedRecipe("default", "nope", 0.01, 16).choose(c, Counting()).note


def test_series_upper_bound_tries_every_member_and_keeps_the_best(entries):
    ev = Counting()
    choice = SeriesUpperBound("s", ["mnv3s", "tiny"], 0.03, 16, "cosine").choose(cell(entries), ev)
    assert len(ev.calls) == 2 and choice.regime.model.startswith("tiny")


def test_random_regime_is_from_the_grid_and_seeded(entries):
    grid = Grid(lrs=(0.01, 0.03, 0.1), frozen_fractions=(0.0, 1.0), batch_sizes=(16,))
    picks = {RandomRegime(grid, 0).choose(cell(entries, seed=s), Counting()).regime for s in range(8)}
    assert len(picks) > 1
    again = RandomRegime(grid, 0).choose(cell(entries, seed=3), Counting()).regime
    assert again == RandomRegime(grid, 0).choose(cell(entries, seed=3), Counting()).regime


def test_oracle_is_at_least_as_good_on_validation_as_every_grid_member(entries):
    grid = Grid(lrs=(0.01, 0.03), frozen_fractions=(0.0, 0.5))
    c = cell(entries)
    oracle = ExhaustiveOracle(grid).choose(c, Counting())
    for r in grid.regimes(c):
        assert fake_result(oracle.regime).accuracy >= fake_result(c.sized(r)).accuracy


def test_nasoa_proposes_one_regime_within_the_budget_and_learns(entries):
    from nasoa.online.experience import experience_row

    gen = RegimeGenerator(list(entries), create_predictor("bayes_linear"), device="cpu:test")
    method = NasoaOneShot(gen)
    ev = Counting()
    choice = method.choose(cell(entries, 30.0), ev)
    assert choice.fine_tunes == 1 and len(ev.calls) == 1 and choice.predicted["time_s"] <= 30.0
    entry = next(e for e in entries if e.key == choice.regime.model)
    row = experience_row(META, choice.regime, entry, accuracy=0.7, time_s=2.0, budget_s=30.0, source="stream")
    before = gen.predictor.num_samples
    method.learn([row])
    assert gen.predictor.num_samples == before + 1


def test_a_methods_plan_is_exactly_what_its_choice_fine_tunes(entries):
    gen = RegimeGenerator(list(entries), create_predictor("bayes_linear"), device="cpu:test")
    grid = Grid(lrs=(0.01, 0.03), frozen_fractions=(0.0, 1.0))
    methods = [
        NasoaOneShot(gen),
        NasoaOneShot(gen, lambda c: ({e.key: 0.5 for e in entries}, 0.25), "nasoa"),
        FixedRecipe("default", "mnv3s", 0.03, 16),
        SeriesUpperBound("s", ["tiny", "mnv3s"], 0.03, 16, "cosine"),
        RandomRegime(grid, 3),
        ExhaustiveOracle(grid),
    ]
    c = cell(entries, 30.0)
    for method in methods:
        ev = Counting()
        choice = method.choose(c, ev)
        assert method.plan(c) == ev.calls and choice.regime in ev.calls, method.name
    assert methods[1].choose(c, Counting()).probe_s == 0.25


def test_the_guard_refuses_a_stream_task_the_experience_holds():
    stream = stream_tasks([{"name": "cards-suit", "spec": "cards:target=suit", "domain": "cards"}, "digits"])
    assert [t.name for t in stream] == ["cards-suit", "digits"] and isinstance(stream[0], StreamTask)
    assert [t.domain for t in stream] == ["cards", "digits"]
    check_stream_is_new(stream, [{"task_name": "clipart-food"}])
    with pytest.raises(ValueError, match="cards-suit"):
        check_stream_is_new(stream, [{"task_name": '{"name": "cards-suit", "spec": "cards:target=suit"}'}])
    with pytest.raises(ValueError, match="digits"):
        check_stream_is_new(stream, [{"task_name": "digits"}])
    feedback = {"task_name": "cards-suit", "source": "feedback"}  # a main job's stream played this task
    assert initial_experience(stream, [feedback, {"task_name": "x", "source": "feedback"}]) == [
        {"task_name": "x", "source": "feedback"}
    ]
    with pytest.raises(ValueError, match="cards-suit"):  # a collected past task is the suite's mistake
        check_stream_is_new(stream, initial_experience(stream, [{"task_name": "cards-suit", "source": "collect"}]))


def rows_of(accuracy):
    """Rows of three methods on two tasks x two seeds x two budgets; ``accuracy(method, task, seed, x)``."""
    out = []
    for method in ("oracle", "nasoa", "default"):
        for task, domain in (("a", "d1"), ("b", "d2")):
            for seed in (0, 1):
                for x in (1.0, 16.0):
                    acc = accuracy(method, task, seed, x)
                    out.append(
                        {
                            "method": method,
                            "task": task,
                            "domain": domain,
                            "seed": seed,
                            "multiple": x,
                            "budget_s": 2.0 * x,
                            "time_s": 1.9 * x,
                            "val_accuracy": acc + 0.01,
                            "test_accuracy": acc,
                            "compute_s": 1.9 * x,
                            "fine_tunes": 1,
                            "predicted_accuracy": acc + 0.02 if method == "nasoa" else None,
                            "position": 0 if task == "a" else 1,
                            "stream_length": 2,
                        }
                    )
    return out


def test_summary_measures_the_targets_from_the_rows():
    good = rows_of(lambda m, t, s, x: {"oracle": 0.9, "nasoa": 0.89, "default": 0.8}[m] + (0.05 if x > 1 else 0))
    t = summarize(good, {"series": {}})["targets"]
    assert t["beats_default_by_5_points"]["met"] and t["beats_default_by_5_points"]["mean"] == pytest.approx(0.09)
    assert t["regret_at_most_2_points"]["met"] and t["accuracy_grows_with_budget"]["share"] == 1.0
    assert t["prediction_error_at_most_0.05"]["val"] == pytest.approx(0.01)
    assert t["no_run_over_budget_by_5pct"]["met"]
    bad = rows_of(lambda m, t, s, x: {"oracle": 0.9, "nasoa": 0.7, "default": 0.8}[m] - (0.05 if x > 1 else 0))
    t = summarize(bad, {"series": {}})["targets"]
    assert not t["beats_default_by_5_points"]["met"] and t["beats_default_by_5_points"]["hi"] < 0
    assert not t["regret_at_most_2_points"]["met"] and t["accuracy_grows_with_budget"]["share"] == 0.0


def test_bootstrap_interval_covers_the_mean_and_shrinks_with_agreement():
    noisy = protocol.bootstrap_ci({("a", 0): 0.1, ("a", 1): -0.1, ("b", 0): 0.3, ("b", 1): 0.0})
    steady = protocol.bootstrap_ci({("a", 0): 0.1, ("a", 1): 0.1, ("b", 0): 0.1, ("b", 1): 0.1})
    assert noisy["lo"] <= noisy["mean"] <= noisy["hi"] and noisy["hi"] - noisy["lo"] > 0.1
    assert steady["lo"] == steady["hi"] == pytest.approx(0.1)


def test_over_budget_and_stream_thirds():
    rows = rows_of(lambda m, t, s, x: 0.9 if m == "oracle" else (0.7 if t == "a" else 0.85))
    rows[0]["time_s"] = 2.2  # 10% over a 2 s budget
    assert protocol.over_budget(rows)["over"] == 1
    thirds = protocol.stream_thirds(rows, "nasoa")  # task a first (regret 0.2), task b last (regret 0.05)
    assert thirds["first"] == pytest.approx(0.2) and thirds["last"] == pytest.approx(0.05)


def test_bohb_reuses_a_journaled_cell_search_without_ray(tmp_path, entries):
    from nasoa.jobs.benchmark.bohb import BOHBSearch

    grid = Grid(lrs=(0.01, 0.03))
    search = BOHBSearch("zoo", tmp_path / "tune", grid, {"tasks": 1, "multiples": [5.0], "seeds": [0]})
    search.task_order = ["t"]
    c = cell(entries)
    regime = c.sized(grid.regimes(c)[1])
    done = Choice("bohb", regime, 4, 12.5, ((12.5, regime),), "2 of 4 trials trained fully")
    search._record(search._cell_key(c, 40 * c.budget_s), done)
    with open(tmp_path / "tune" / "bohb_choices.jsonl", "a") as f:
        f.write('{"key": "torn')
    assert search.choose(c, Counting()) == done  # no Tune run: the journal answers
    assert "not one of BOHB's cells" in search.choose(cell(entries, seed=1), Counting()).note
