"""Contract tests every model keeps: forward, backward, classifier reset, freezing, state_dict round trip."""

import copy

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from nasoa.models import StagedNet, create_model

from .conftest import ETNAS_SAMPLE, HEAVY, REFERENCE, params

NUM_CLASSES = 5
SIZE = 32


@pytest.fixture(scope="module", params=params(REFERENCE + ETNAS_SAMPLE))
def name(request):
    return request.param


@pytest.fixture(scope="module")
def pristine(name):
    """Built once per name; pytest groups the tests by this module-scoped parameter."""
    torch.manual_seed(0)
    return create_model(name, NUM_CLASSES)


@pytest.fixture
def model(pristine):
    return copy.deepcopy(pristine)


@pytest.fixture
def batch():
    torch.manual_seed(1)
    return torch.randn(2, 3, SIZE, SIZE), torch.tensor([0, NUM_CLASSES - 1])


def bns(modules):
    return [m for module in modules for m in module.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]


def check_freeze_flags(model: StagedNet) -> None:
    for k in range(model.num_stages + 1):
        model.freeze(k)
        frozen = {id(p) for m in [model.stem, *model.stages[:k]] if k for p in m.parameters()}
        for n, p in model.named_parameters():
            assert p.requires_grad == (id(p) not in frozen), (k, n)
        assert sum(1 for _ in model.trainable_parameters()) == sum(1 for _ in model.parameters()) - len(frozen)
    with pytest.raises(ValueError):
        model.freeze(model.num_stages + 1)
    model.freeze(0)


def test_is_staged_net_with_linear_classifier(model):
    assert isinstance(model, StagedNet)
    assert isinstance(model.head[-1], nn.Linear)
    assert model.num_classes == NUM_CLASSES
    assert model.num_stages >= 1


def test_forward_backward_without_nans(model, batch):
    x, y = batch
    out = model.train()(x)
    assert out.shape == (2, NUM_CLASSES)
    loss = F.cross_entropy(out, y)
    loss.backward()
    assert torch.isfinite(loss)
    for n, p in model.named_parameters():
        assert p.grad is not None, n
        assert torch.isfinite(p.grad).all(), n


def test_reset_classifier(model, batch):
    in_features = model.classifier.in_features
    model.reset_classifier(3)
    assert (model.classifier.in_features, model.num_classes) == (in_features, 3)
    with torch.no_grad():
        assert model.eval()(batch[0]).shape == (2, 3)


def test_freeze_every_k(model):
    check_freeze_flags(model)


def test_frozen_batchnorm_stays_in_eval_mode(model, batch):
    k = model.num_stages - 1
    model.freeze(k).train()
    frozen, live = [model.stem, *model.stages[:k]], [*model.stages[k:], model.head]
    assert all(not bn.training for bn in bns(frozen))
    assert all(bn.training for bn in bns(live))
    stats = [bn.running_mean.clone() for bn in bns(frozen)]
    F.cross_entropy(model(batch[0]), batch[1]).backward()
    assert all(torch.equal(s, bn.running_mean) for s, bn in zip(stats, bns(frozen), strict=True))
    assert all(p.grad is None for m in frozen for p in m.parameters())
    assert all(p.grad is not None for m in live for p in m.parameters())


def test_state_dict_round_trip(model, pristine, batch):
    with torch.no_grad():
        for p in model.parameters():
            p.normal_(std=0.01)
    model.load_state_dict(pristine.state_dict())
    with torch.no_grad():
        torch.testing.assert_close(model.eval()(batch[0]), pristine.eval()(batch[0]), rtol=0, atol=0)
    assert {k.split(".")[0] for k in model.state_dict()} == {"stem", "stages", "head"}


@pytest.mark.parametrize("name", HEAVY)
def test_heavy_models_forward_reset_and_freeze(name, batch):
    """The biggest models by default: build, forward at 32 px without grad, reset and freeze flags."""
    model = create_model(name, NUM_CLASSES)
    with torch.no_grad():
        assert model.eval()(batch[0]).shape == (2, NUM_CLASSES)
    model.reset_classifier(3)
    assert model.num_classes == 3
    check_freeze_flags(model)
