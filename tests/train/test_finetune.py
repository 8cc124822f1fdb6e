import pytest

from nasoa.data import make_task
from nasoa.online.regime import Regime
from nasoa.train.finetune import finetune
from nasoa.zoo import Zoo

from ..helpers import make_tiny_zoo


@pytest.fixture(scope="module")
def zoo(tmp_path_factory):
    return Zoo(make_tiny_zoo(tmp_path_factory.mktemp("zoo"), models=(("tiny", "etnas", "011-_16_1-2-2-2"),)))


@pytest.fixture(scope="module")
def task():
    return make_task("digits:classes=0-2,num_train=90", resolution=32)


def test_finishes_within_a_generous_deadline(zoo, task):
    r = finetune(zoo, Regime("tiny.digits-32px", 0.05, 1, 16, 2), task, deadline_s=120)
    assert r.finished and r.stopped_by == "done"
    assert r.steps == r.planned_steps == 2 * 6
    assert 0.0 <= r.accuracy <= 1.0
    assert r.time_s == pytest.approx(r.train_s + r.eval_s)  # every second of the run is accounted for


def test_re_plans_to_end_annealed_before_the_deadline(zoo, task):
    deadline = 1.0
    r = finetune(zoo, Regime("tiny.digits-32px", 0.05, 0, 8, 10_000), task, deadline_s=deadline)
    assert r.finished and r.stopped_by == "done"  # the plan was shortened to fit: it ran to its end, annealed
    assert 0 < r.steps == r.final_planned_steps < r.planned_steps
    step_s = r.train_s / r.steps
    # never more than one step plus evaluation over the deadline (with slack for loading and timer noise)
    assert r.time_s <= deadline + 2 * step_s + r.eval_s + 0.25
    assert 0.0 <= r.accuracy <= 1.0


def test_the_curve_samples_the_plan_and_test_is_scored_off_the_clock(zoo):
    task = make_task("digits:classes=0-2,num_train=90,test_fraction=0.2", resolution=32)
    r = finetune(zoo, Regime("tiny.digits-32px", 0.05, 0, 8, 4), task, deadline_s=60, test=True)
    steps = [s for s, _ in r.curve]
    assert steps == sorted(steps) and steps[-1] == r.steps and len(steps) == 4  # 1/4, 1/2, 3/4 and the end
    assert all(0.0 <= a <= 1.0 for _, a in r.curve) and r.curve[-1][1] == r.accuracy
    assert r.test_accuracy is not None and 0.0 <= r.test_accuracy <= 1.0
    assert finetune(zoo, Regime("tiny.digits-32px", 0.05, 0, 8, 1), task, deadline_s=60).test_accuracy is None


def test_rejects_bad_deadlines(zoo, task):
    for bad in (0, -1, float("nan"), float("inf")):
        with pytest.raises(ValueError, match="deadline_s"):
            finetune(zoo, Regime("tiny.digits-32px", 0.05, 0, 8, 1), task, deadline_s=bad)


def test_on_epoch_reports_every_epoch_and_the_final_top1(zoo, task):
    seen = []
    r = finetune(
        zoo, Regime("tiny.digits-32px", 0.05, 0, 16, 3), task, deadline_s=120, on_epoch=lambda e, a: seen.append((e, a))
    )
    assert [e for e, _ in seen] == [1, 2, 3]
    assert all(0.0 <= a <= 1.0 for _, a in seen)
    assert seen[-1][1] == r.accuracy  # the last report is the run's own evaluation


def test_a_machine_slower_than_profiled_still_ends_within_the_deadline(tmp_path):
    """Profiles 50x too fast: the plan is re-planned, and the evaluation reserve grows with the measured slowdown."""
    from dataclasses import replace as copy

    from nasoa.train.device import device_name

    root = make_tiny_zoo(tmp_path / "zoo", models=(("tiny", "etnas", "011-_16_1-2-2-2"),))
    zoo = Zoo(root)
    entry = zoo.get("tiny.digits-32px")
    here = device_name("cpu")
    fast = [
        copy(p, device=here, train_step_ms=p.train_step_ms / 50, inference_ms=p.inference_ms / 50)
        for p in entry.profiles
    ]
    zoo.update([entry.with_profiles(fast)])
    task = make_task("digits:classes=0-4,num_train=200", resolution=32)  # 5 classes: a bigger validation split
    deadline = 2.0
    r = finetune(Zoo(root), Regime("tiny.digits-32px", 0.05, 0, 8, 1000), task, deadline_s=deadline)
    assert r.finished and r.steps < r.planned_steps
    assert r.time_s <= 1.05 * deadline + 0.1, r
