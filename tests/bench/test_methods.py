"""The regime choosers on a hand-made cell with a fake, deterministic evaluate (no training)."""

import dataclasses
import math

import pytest

from nasoa.bench.methods import (
    Cell,
    DefaultFinetune,
    ExhaustiveOracle,
    NasoaOneShot,
    RandomRegime,
    SeriesUpperBound,
    best_of,
    recipe_regime,
)
from nasoa.data.meta import TaskMeta
from nasoa.jobs.benchmark.regime_quality import compute_to_match, select_entries, summarize
from nasoa.online.generator import RegimeGenerator
from nasoa.online.predictor import create_predictor
from nasoa.online.regime import CostModel, Regime, RegimeSpace, feasible_regimes
from nasoa.train.finetune import FinetuneResult
from nasoa.zoo import read_manifest

from ..helpers import make_tiny_zoo

META = TaskMeta(3, 90, 32, 3, "t")


def fake_result(regime: Regime) -> FinetuneResult:
    """Accuracy grows with epochs and prefers lr 0.03 and model "b"; time grows with epochs."""
    acc = 0.5 + 0.05 * regime.epochs - abs(regime.lr - 0.03) + (0.1 if regime.model == "b" else 0.0)
    return FinetuneResult(min(acc, 1.0), 1.0 + regime.epochs, True, "done", 1, 1, 1.0, 1.0, 0.1)


class Counting:
    def __init__(self):
        self.calls = []

    def __call__(self, regimes):
        self.calls += list(regimes)
        return [fake_result(r) for r in regimes]


def cell(max_epochs=3) -> Cell:
    feasible = tuple(
        Regime(m, lr, 0, 32, e) for m in ("a", "b") for lr in (0.01, 0.03) for e in range(1, max_epochs + 1)
    )
    return Cell("spec", META, 10.0, feasible, {r.regime_id: 1.0 + r.epochs for r in feasible})


def test_best_of_keeps_the_most_accurate_and_sums_the_compute():
    ev = Counting()
    regimes = list(cell().feasible)
    choice = best_of("x", cell(), regimes, ev)
    assert choice.regime == Regime("b", 0.03, 0, 32, 3)
    assert choice.fine_tunes == len(regimes)
    assert choice.choose_s == pytest.approx(sum(1.0 + r.epochs for r in regimes))
    accs = [fake_result(r).accuracy for _, r in choice.trace]
    assert accs == sorted(accs) and choice.trace[-1][1] == choice.regime  # the trace only ever improves


def test_default_recipe_takes_as_many_epochs_as_fit_and_nothing_frozen():
    regime, note = recipe_regime(cell(3), "a", 0.03, 32)
    assert regime == Regime("a", 0.03, 0, 32, 3) and not note
    none, note = recipe_regime(cell(3), "a", 0.1, 32)
    assert none is None and "no a regime" in note
    choice = DefaultFinetune("a", 0.1, 32).choose(cell(), Counting())
    assert choice.regime is None and choice.fine_tunes == 0 and choice.note
    spaced = dataclasses.replace(cell(), space=RegimeSpace(lrs=(0.1,), batch_sizes=(32,), epochs=(2, 5)))
    choice = DefaultFinetune("a", 0.1, 32).choose(spaced, Counting())  # runs anyway; the deadline stops it
    assert (
        choice.regime == Regime("a", 0.1, 0, 32, 2) and choice.fine_tunes == 1 and "until the deadline" in choice.note
    )


def test_series_upper_bound_tries_every_member_and_keeps_the_best():
    ev = Counting()
    choice = SeriesUpperBound("s", ["a", "b"], 0.03, 32).choose(cell(), ev)
    assert [r.model for r in ev.calls] == ["a", "b"]
    assert choice.regime.model == "b" and choice.fine_tunes == 2
    with pytest.raises(ValueError, match="no models"):
        SeriesUpperBound("s", [], 0.03, 32)


def test_random_regime_is_feasible_and_seeded():
    c = cell()
    picks = {RandomRegime(seed).choose(c, Counting()).regime for seed in range(20)}
    assert picks <= set(c.feasible) and len(picks) > 1
    assert RandomRegime(3).choose(c, Counting()).regime == RandomRegime(3).choose(c, Counting()).regime


def test_oracle_is_at_least_as_good_as_every_other_method():
    c = cell()
    best = ExhaustiveOracle().choose(c, Counting())
    assert best.fine_tunes == len(c.feasible)
    for method in (DefaultFinetune("a", 0.03, 32), RandomRegime(1), SeriesUpperBound("s", ["a", "b"], 0.01, 32)):
        assert fake_result(method.choose(c, Counting()).regime).accuracy <= fake_result(best.regime).accuracy


def test_compute_to_match_walks_the_trace():
    c = cell()
    choice = best_of("x", c, list(c.feasible), Counting())
    acc = {r.regime_id: fake_result(r).accuracy for r in c.feasible}
    first = choice.trace[0]
    assert compute_to_match(choice, acc[first[1].regime_id], acc) == first[0]
    assert compute_to_match(choice, max(acc.values()), acc) == choice.trace[-1][0]
    assert compute_to_match(choice, 2.0, acc) is None


def test_nasoa_proposes_a_feasible_regime_with_one_fine_tune_and_learns(tmp_path):
    entries = read_manifest(make_tiny_zoo(tmp_path / "zoo"))
    space = RegimeSpace(lrs=(0.01, 0.03), batch_sizes=(16,), epochs=(1, 2, 4), max_frozen_fraction=0.0)
    gen = RegimeGenerator(entries, create_predictor("bayes_linear"), space=space, device="cpu:test")
    feasible, predicted = feasible_regimes(entries, space, META, 3.0, "cpu:test", CostModel())
    assert feasible and all(t <= 3.0 for t in predicted.values())
    c = Cell("spec", META, 3.0, feasible, predicted)
    ev = Counting()
    method = NasoaOneShot(gen)
    choice = method.choose(c, ev)
    assert choice.regime in feasible and choice.fine_tunes == 1 and len(ev.calls) == 1
    from nasoa.online.experience import experience_row

    entry = next(e for e in entries if e.key == choice.regime.model)
    row = experience_row(META, choice.regime, entry, accuracy=0.7, time_s=2.0, budget_s=3.0, source="stream")
    before = gen.predictor.num_samples
    method.learn([row])
    assert gen.predictor.num_samples == before + 1
    with pytest.raises(ValueError, match="not in the zoo"):
        select_entries(entries, ["nope"])
    assert [e.name for e in select_entries(entries, ["mnv3s"])] == ["mnv3s"]


def test_summary_checks_the_targets_from_the_rows():
    def row(method, acc, choose_s, budget=4.0, match=None):
        return {
            "method": method,
            "task": "t",
            "budget_s": budget,
            "accuracy": acc,
            "regret": 0.9 - acc,
            "fine_tunes": 1,
            "choose_s": choose_s,
            "compute_to_match_nasoa_s": match,
        }

    rows = [
        row("oracle", 0.9, 100.0),
        row("nasoa", 0.895, 2.0),
        row("default", 0.8, 2.0),
        row("regnet_series", 0.85, 4.0),
        row("bohb", 0.89, 120.0, match=100.0),
    ]
    s = summarize(rows, {"budgets": [4.0], "series": {"regnet_series": []}})
    t = s["targets"]
    assert t["beats_default"]["met"] and t["beats_regnet_series"]["met"]
    assert t["within_1pct_of_oracle"]["met"]
    b = t["bohb_accuracy_at_40x_less_compute"]
    assert b["met"] and b["compute_ratio_total"] == 60.0 and b["median_compute_ratio_to_match_nasoa"] == 50.0
    rows[1] = row("nasoa", 0.80, 2.0)
    t = summarize(rows, {"budgets": [4.0], "series": {"regnet_series": []}})["targets"]
    assert not t["beats_regnet_series"]["met"] and not t["within_1pct_of_oracle"]["met"]
    assert not t["bohb_accuracy_at_40x_less_compute"]["met"]
    assert math.isclose(s["methods"]["nasoa"]["mean_regret"], 0.005)


def test_bohb_reuses_a_journaled_cell_search_without_ray(tmp_path):
    from nasoa.bench.methods import Choice
    from nasoa.jobs.benchmark.bohb import BOHBSearch

    search = BOHBSearch("zoo", tmp_path / "tune", num_samples=4)
    c = cell()
    regime = c.feasible[3]
    done = Choice("bohb", regime, 4, 12.5, ((3.0, c.feasible[0]), (12.5, regime)), "2 of 4 trials trained fully")
    search._record(search._cell_key(c), done)
    with open(tmp_path / "tune" / "bohb_choices.jsonl", "a") as f:
        f.write('{"key": "torn')
    assert search.choose(c, Counting()) == done  # no Tune run: the journal answers
    other = BOHBSearch("zoo", tmp_path / "tune", num_samples=8)
    assert other._cell_key(c) != search._cell_key(c)  # a different search is not reused
