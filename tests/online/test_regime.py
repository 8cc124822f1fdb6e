import math

import pytest

from nasoa.data.meta import TaskMeta
from nasoa.online import CostModel, DeviceCost, Regime, RegimeSpace, num_steps, predict_time_s
from nasoa.zoo.manifest import Profile, ZooEntry

from .fakes import DEVICE, ENTRIES, make_entry


def one_profile_entry() -> ZooEntry:
    """One profile: batch 32 at 32 px, 10 ms a training step, 4 ms an inference batch."""
    return ZooEntry(
        key="one.t",
        name="one",
        kind="etnas",
        arch="one",
        source="test",
        num_classes=10,
        top1=0.5,
        params=1000,
        macs=10000,
        num_stages=4,
        resolution=32,
        weights="weights/one.t.pt",
        sha256="0" * 64,
        profiles=(Profile(DEVICE, 32, 32, 0, 10.0, 4.0),),
    )


def test_regime_round_trip_and_stable_id():
    r = Regime("mid.t", 0.01, 2, 32, 5)
    assert Regime.from_dict(r.to_dict()) == r
    assert r.to_dict() == {"model": "mid.t", "lr": 0.01, "frozen_stages": 2, "batch_size": 32, "epochs": 5,
                           "schedule": "cosine"}  # fmt: skip
    assert len(r.regime_id) == 12 and int(r.regime_id, 16) >= 0
    assert r.regime_id == Regime("mid.t", 0.01, 2, 32, 5, "cosine").regime_id
    assert r.regime_id == "35724a4a257a"  # sha1 of the sorted compact JSON: the canonical form must not drift
    assert r.regime_id != Regime("mid.t", 0.03, 2, 32, 5).regime_id
    assert Regime("m.t", 1, 0, 16.0, 1).lr == 1.0 and isinstance(Regime("m.t", 1, 0, 16.0, 1).batch_size, int)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"lr": 0.0}, "lr"),
        ({"lr": -0.1}, "lr"),
        ({"lr": math.nan}, "lr"),
        ({"lr": math.inf}, "lr"),
        ({"batch_size": 0}, "batch_size"),
        ({"batch_size": True}, "batch_size"),
        ({"batch_size": 16.5}, "batch_size"),
        ({"epochs": 0}, "epochs"),
        ({"frozen_stages": -1}, "frozen_stages"),
        ({"model": ""}, "model"),
        ({"schedule": "linear"}, "schedule"),
    ],
)
def test_regime_validation(kwargs, match):
    base = {"model": "mid.t", "lr": 0.01, "frozen_stages": 0, "batch_size": 32, "epochs": 1}
    with pytest.raises(ValueError, match=match):
        Regime(**{**base, **kwargs})


def test_regime_from_dict_errors():
    with pytest.raises(ValueError, match="unknown Regime key"):
        Regime.from_dict({"model": "a.b", "lr": 0.1, "frozen_stages": 0, "batch_size": 8, "epochs": 1, "x": 1})
    with pytest.raises(ValueError, match="missing Regime key"):
        Regime.from_dict({"model": "a.b", "lr": 0.1})


def test_space_enumerate():
    space = RegimeSpace()
    entry = ENTRIES[0]
    regimes = list(space.enumerate(entry))
    assert len(regimes) == 5 * 3 * 6 * 4 == len(set(regimes))
    assert regimes[0] == Regime(entry.key, 0.003, 0, 16, 1)
    assert {r.frozen_stages for r in regimes} == {0, 1, 2, 3, 4}
    half = RegimeSpace(max_frozen_fraction=0.5)
    assert half.frozen_options(entry) == [0, 1, 2]
    assert half.frozen_options(entry, device="elsewhere") == []
    assert RegimeSpace.from_dict(space.to_dict()) == space
    assert RegimeSpace(lrs=[0.1], batch_sizes=[8], epochs=[1]).lrs == (0.1,)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"lrs": ()},
        {"lrs": (0.1, -1.0)},
        {"batch_sizes": (0,)},
        {"epochs": (1, 1)},
        {"max_frozen_fraction": 1.5},
        {"schedule": "nope"},
        {"lrs": "0.1"},
        {"max_epochs": 0},
        {"fallback": {"model": ""}},
        {"fallback": {"lr": -1}},
        {"fallback": {"optimizer": "adam"}},
        {"fallback": "resnet18"},
    ],  # fmt: skip
)
def test_space_validation(kwargs):
    with pytest.raises(ValueError):
        RegimeSpace(**kwargs)


def test_predict_time_arithmetic():
    entry = one_profile_entry()
    task = TaskMeta(num_classes=10, num_train=500, resolution=32, channels=3)
    r = Regime("one.t", 0.01, 0, 32, 2)
    assert num_steps(500, 32, 2) == r.planned_steps(500) == 32
    # 32 steps x 10 ms + forward batches of 4 ms: ceil(100 val images / 32) = 4, three curve points of 4 batches,
    # 5 BN batches (21 in all) + 1 s overhead
    assert CostModel().eval_batches(500, 32) == 4 + 3 * 4 + 5
    assert predict_time_s(entry, r, task, DEVICE) == pytest.approx(0.32 + 21 * 0.004 + 1.0, rel=1e-12)
    # Twice the resolution: 4x the pixels, every step and batch 4x dearer.
    task64 = TaskMeta(num_classes=10, num_train=500, resolution=64, channels=3)
    assert predict_time_s(entry, r, task64, DEVICE) == pytest.approx(1.28 + 21 * 0.016 + 1.0, rel=1e-12)
    # Batch 64 from the batch-32 profile: 20 ms a step, 8 steps an epoch; 2 val batches of 8 ms (and the rest).
    r64 = Regime("one.t", 0.01, 0, 64, 3)
    cost = CostModel(val_fraction=0.0, overhead_s=0.5, bn_batches=0)
    assert predict_time_s(entry, r64, task, DEVICE, cost) == pytest.approx(24 * 0.020 + 0.5, rel=1e-12)
    batches = 2 + 3 * 2 + 5
    assert predict_time_s(entry, r64, task, DEVICE) == pytest.approx(24 * 0.020 + batches * 0.008 + 1.0, rel=1e-12)
    with pytest.raises(KeyError, match="frozen"):
        predict_time_s(entry, Regime("one.t", 0.01, 1, 32, 1), task, DEVICE)
    with pytest.raises(ValueError, match="not for"):
        predict_time_s(entry, Regime("other.t", 0.01, 0, 32, 1), task, DEVICE)


def test_freezing_is_cheaper():
    task = TaskMeta(num_classes=10, num_train=1000, resolution=32, channels=3)
    times = [predict_time_s(ENTRIES[1], Regime("mid.t", 0.01, k, 32, 3), task, DEVICE) for k in range(5)]
    assert times == sorted(times, reverse=True)


def test_footprint():
    fp = DeviceCost(watts=100.0, usd_per_hour=3.6, kg_co2e_per_kwh=0.5).footprint(36.0)
    assert fp.device_seconds == 36.0
    assert fp.energy_kwh == pytest.approx(0.001)
    assert fp.cost_usd == pytest.approx(0.036)
    assert fp.co2e_kg == pytest.approx(0.0005)
    with pytest.raises(ValueError):
        DeviceCost(watts=-1.0)
    with pytest.raises(ValueError):
        DeviceCost().footprint(math.nan)
    with pytest.raises(ValueError):
        CostModel(overhead_s=-1.0)


def test_a_regime_sized_to_a_budget_fills_it_and_no_more():
    from nasoa.online.regime import CostModel, sized_to_budget

    entry = make_entry("m.t", "etnas", base_ms=40.0, top1=0.5, params=10_000)
    task = TaskMeta(num_classes=10, num_train=500, resolution=32, channels=3)
    base = Regime("m.t", 0.01, 1, 32, 1)
    cost = CostModel()
    previous = 0
    for budget in (2.0, 5.0, 20.0, 80.0):
        sized = sized_to_budget(entry, base, task, budget, DEVICE, cost, max_epochs=1000)
        assert cost.time_s(entry, sized, task, DEVICE) <= budget  # fits ...
        longer = Regime("m.t", 0.01, 1, 32, sized.epochs + 1, steps=sized.steps + 1)
        assert cost.time_s(entry, longer, task, DEVICE) > budget  # ... and one more step would not
        assert sized.steps > previous and sized.planned_steps(task.num_train) == sized.steps
        previous = sized.steps
    assert sized_to_budget(entry, base, task, 1.0, DEVICE, cost) is None  # not one step fits after the overhead
    capped = sized_to_budget(entry, base, task, 1e6, DEVICE, cost, max_epochs=3)
    assert capped.steps == 3 * 16 and capped.epochs == 3


def test_the_fallback_spec_fills_in_defaults():
    space = RegimeSpace(fallback={"model": "mid", "lr": 0.03})
    assert space.fallback == {"model": "mid", "lr": 0.03, "frozen_stages": 0, "batch_size": 32}
    assert RegimeSpace().fallback["model"] == "resnet18" and RegimeSpace.from_dict(space.to_dict()) == space


def test_the_cost_model_counts_what_finetune_runs():
    """The cost model's evaluation constants are those of nasoa.train.finetune (its learning curve)."""
    import nasoa.train.finetune as ft

    cost = CostModel()
    assert cost.curve_points == len(ft.CURVE_AT) and cost.curve_images == ft.CURVE_IMAGES
