import math
import time

import pytest
import torch
from torch.utils.data import DataLoader, TensorDataset

from nasoa.models import build
from nasoa.train import evaluate, lr_at, recalibrate_bn, set_threads, train, warm_up

from .conftest import SMALL, separable_data


def test_train_reduces_loss_and_evaluate_beats_chance(small_net, loaders):
    train_loader, val_loader = loaders
    seen = []
    res = train(small_net, train_loader, epochs=3, lr=0.05, on_step=lambda s, loss, lr: seen.append((s, loss, lr)))
    assert res.stopped_by == "done" and res.finished
    assert res.steps == 3 * len(train_loader) == len(seen)
    assert res.epochs_done == pytest.approx(3.0)
    assert [s for s, _, _ in seen] == list(range(1, res.steps + 1))
    assert seen[0][2] == pytest.approx(0.05) and seen[-1][2] < 0.01  # cosine per step
    first = sum(loss for _, loss, _ in seen[: len(train_loader)]) / len(train_loader)
    assert res.mean_loss_last_epoch < 0.7 * first
    assert res.final_loss == seen[-1][1]
    assert res.step_ms_median > 0 and res.seconds > 0
    recalibrate_bn(small_net, train_loader, batches=4)
    ev = evaluate(small_net, val_loader)
    assert ev.n == 128
    assert ev.top1 > 0.5  # chance is 0.25
    assert math.isfinite(ev.loss) and ev.seconds > 0
    assert small_net.training  # mode restored


def test_max_steps(small_net, loaders):
    res = train(small_net, loaders[0], epochs=5, max_steps=3)
    assert (res.steps, res.stopped_by, res.finished) == (3, "max_steps", True)
    assert res.epochs_done == pytest.approx(3 / len(loaders[0]))
    n = len(loaders[0])
    res = train(small_net, loaders[0], epochs=2, max_steps=n)  # stops at the top of epoch 2
    assert (res.steps, res.stopped_by) == (n, "max_steps")
    assert math.isfinite(res.mean_loss_last_epoch)


def test_max_steps_on_a_loader_without_length(small_net):
    ds = separable_data(64)

    def batches():
        for i in range(0, 64, 16):
            yield ds.tensors[0][i : i + 16], ds.tensors[1][i : i + 16]

    class Gen:
        def __iter__(self):
            return batches()

    res = train(small_net, Gen(), epochs=2, max_steps=100)
    assert (res.steps, res.stopped_by, res.finished, res.epochs_done) == (8, "done", True, 2.0)
    with pytest.raises(ValueError, match="max_steps"):
        train(small_net, Gen(), epochs=2)


def test_deadline_respected(small_net, loaders):
    stamps = [time.perf_counter()]
    deadline = 0.5
    res = train(
        small_net, loaders[0], epochs=1000, deadline_s=deadline, on_step=lambda *_: stamps.append(time.perf_counter())
    )
    assert (res.stopped_by, res.finished) == ("deadline", False)
    assert res.steps >= 1
    longest = max(b - a for a, b in zip(stamps, stamps[1:], strict=False))
    assert res.seconds <= deadline + longest + 0.05


def test_deadline_zero_runs_no_step(small_net, loaders):
    before = [p.clone() for p in small_net.parameters()]
    res = train(small_net, loaders[0], deadline_s=0.0)
    assert (res.steps, res.stopped_by) == (0, "deadline")
    assert math.isnan(res.final_loss) and math.isnan(res.step_ms_median)
    assert all(torch.equal(a, b) for a, b in zip(before, small_net.parameters(), strict=True))


def test_nan_loss_stops_without_raising(small_net):
    x = torch.randn(48, 3, 32, 32)
    x[20] = float("nan")  # in the second batch of 16
    loader = DataLoader(TensorDataset(x, torch.zeros(48, dtype=torch.long)), batch_size=16)
    res = train(small_net, loader, epochs=2)
    assert (res.stopped_by, res.finished, res.steps) == ("nan", False, 1)
    assert math.isnan(res.final_loss)


def test_huge_lr_ends_in_nan(small_net, loaders):
    res = train(small_net, loaders[0], epochs=3, lr=1e12, schedule="constant", weight_decay=0.0)
    assert res.stopped_by == "nan" and not res.finished


def test_frozen_stages_stay_fixed(small_net, loaders):
    stem = [p.clone() for p in small_net.stem.parameters()]
    stage0 = [p.clone() for p in small_net.stages[0].parameters()]
    bn_mean = next(m for m in small_net.stem.modules() if isinstance(m, torch.nn.BatchNorm2d)).running_mean.clone()
    head = small_net.classifier.weight.clone()
    res = train(small_net, loaders[0], epochs=1, frozen_stages=1)
    assert res.finished and small_net.frozen_stages == 1
    assert all(torch.equal(a, b) for a, b in zip(stem, small_net.stem.parameters(), strict=True))
    assert all(torch.equal(a, b) for a, b in zip(stage0, small_net.stages[0].parameters(), strict=True))
    frozen_bn = next(m for m in small_net.stem.modules() if isinstance(m, torch.nn.BatchNorm2d))
    assert torch.equal(bn_mean, frozen_bn.running_mean)
    assert not torch.equal(head, small_net.classifier.weight)


def test_recalibrate_bn_only_touches_trainable_layers(small_net, loaders):
    small_net.freeze(1)
    bns = {n: m for n, m in small_net.named_modules() if isinstance(m, torch.nn.BatchNorm2d)}
    for m in bns.values():
        m.running_mean.fill_(5.0)
        m.running_var.fill_(7.0)
    momenta = {n: m.momentum for n, m in bns.items()}
    small_net.eval()
    seconds = recalibrate_bn(small_net, loaders[0], batches=3)
    assert seconds > 0
    frozen = [n for n in bns if n.startswith(("stem.", "stages.0."))]
    trainable = [n for n in bns if n not in frozen]
    assert frozen and trainable
    for n in frozen:
        assert torch.all(bns[n].running_mean == 5.0) and torch.all(bns[n].running_var == 7.0)
    for n in trainable:
        assert not torch.all(bns[n].running_mean == 5.0)
        assert not torch.all(bns[n].running_var == 7.0)
        assert bns[n].num_batches_tracked.item() == 3
    assert momenta == {n: m.momentum for n, m in bns.items()}
    assert not small_net.training and not any(m.training for m in small_net.modules())


def test_recalibrate_bn_empty_loader_changes_nothing(small_net):
    bn = next(m for m in small_net.modules() if isinstance(m, torch.nn.BatchNorm2d))
    bn.running_mean.fill_(3.0)
    recalibrate_bn(small_net, [], batches=5)
    assert torch.all(bn.running_mean == 3.0)


def test_evaluate_empty_loader_raises(small_net):
    with pytest.raises(ValueError):
        evaluate(small_net, [])


def test_lr_schedules():
    assert lr_at(0, 100, 0.1, "cosine") == pytest.approx(0.1)
    assert lr_at(50, 100, 0.1, "cosine") == pytest.approx(0.05)
    assert lr_at(100, 100, 0.1, "cosine") == pytest.approx(0.0)
    assert [lr_at(s, 100, 1.0, "step") for s in (0, 49, 50, 74, 75, 99)] == pytest.approx([1, 1, 0.1, 0.1, 0.01, 0.01])
    assert lr_at(77, 100, 0.3, "constant") == 0.3
    with pytest.raises(ValueError):
        lr_at(1, 10, 0.1, "linear")  # type: ignore[arg-type]


def test_bad_train_args(small_net, loaders):
    with pytest.raises(ValueError):
        train(small_net, loaders[0], schedule="linear")  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        train(small_net, loaders[0], frozen_stages=9)
    plain = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3 * 32 * 32, 4))
    with pytest.raises(ValueError):
        train(plain, loaders[0], frozen_stages=1)
    assert train(plain, loaders[0], max_steps=2).steps == 2


def test_set_threads():
    old = torch.get_num_threads()
    try:
        assert set_threads(1) == 1
        assert set_threads(2) == 2
    finally:
        torch.set_num_threads(old)
    with pytest.raises(ValueError):
        set_threads(0)


def test_build_used_directly():
    net = build(SMALL, 3)
    assert net.num_stages == 3


def test_warm_up_is_cheap_once_done():
    warm_up()
    assert warm_up() < 1.0
