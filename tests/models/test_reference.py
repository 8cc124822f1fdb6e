"""Torchvision reference families as StagedNets: same function as torchvision, splits, published costs."""

import pytest
import torch
from torch import nn
from torchvision import models as tvm

from nasoa.models import REFERENCE_MODELS, ReferenceNet, create_model, model_complexity
from nasoa.models.reference import REFERENCE_SPECS, family, from_torchvision, group_at_strides, torchvision_model

from .conftest import HEAVY, LIGHT, REFERENCE, params

STAGES = {"resnet": 4, "regnet": 4, "efficientnet": 7, "mobilenet": 4}
PUBLISHED_PARAMS = {
    "resnet50": 25_557_032,
    "resnet18": 11_689_512,
    "efficientnet_b0": 5_288_548,
    "mobilenet_v3_large": 5_483_032,
    "regnet_y_400mf": 4_344_144,
}
PUBLISHED_GMACS = {"resnet50": 4.09, "efficientnet_b0": 0.39, "regnet_y_400mf": 0.40}


def test_registry_covers_the_families():
    assert set(REFERENCE_MODELS) == set(REFERENCE_SPECS)
    assert {family(n) for n in REFERENCE_MODELS} == set(STAGES)
    assert family("regnet_y_16gf") == "regnet"
    with pytest.raises(ValueError, match="resnet5"):
        family("resnet5")


@pytest.mark.parametrize("name", params(REFERENCE, slow=("regnet_y_16gf", "regnet_y_32gf")))
def test_wrapped_forward_equals_torchvision(name):
    torch.manual_seed(0)
    reference = torchvision_model(name, num_classes=7)
    size = 32 if name in HEAVY else 64
    x = torch.randn(2, 3, size, size)
    with torch.no_grad():
        reference.train()(x)  # non-trivial BatchNorm running statistics
    wrapped = create_model(name, 7)
    assert isinstance(wrapped, ReferenceNet) and wrapped.num_stages == STAGES[family(name)]
    wrapped.load_torchvision_state_dict(reference.state_dict())
    with torch.no_grad():
        torch.testing.assert_close(wrapped.eval()(x), reference.eval()(x), rtol=0, atol=0)


def test_state_dict_names_are_readable():
    net = create_model("resnet50", 10)
    keys = net.state_dict()
    assert {"stem.conv1.weight", "stem.bn1.running_mean", "stages.0.0.conv1.weight", "head.fc.weight"} <= set(keys)
    assert net.torchvision_keys["layer4.2.conv3.weight"] == "stages.3.2.conv3.weight"
    assert net.torchvision_keys["fc.bias"] == "head.fc.bias"
    assert len(net.torchvision_keys) == len(keys)
    with pytest.raises(ValueError, match="not in torchvision"):
        net.load_torchvision_state_dict({"nope": torch.zeros(1)})


def test_heads_keep_the_classifier_extras():
    eff = create_model("efficientnet_b0", 10, dropout=0.5)
    assert list(eff.head._modules) == ["conv", "avgpool", "flatten", "dropout", "fc"]
    assert eff.head.dropout.p == 0.5 and eff.head.conv[0].kernel_size == (1, 1)
    mob = create_model("mobilenet_v3_small", 10)
    assert list(mob.head._modules) == ["conv", "avgpool", "flatten", "pre_logits", "act", "dropout", "fc"]
    assert isinstance(mob.head.act, nn.Hardswish)


@pytest.mark.parametrize("name", ["mobilenet_v3_small", "mobilenet_v3_large", "efficientnet_b0", "regnet_y_400mf"])
def test_stages_end_at_the_usual_strides(name):
    net = create_model(name, 10).eval()
    x = net.stem(torch.zeros(1, 3, 64, 64))
    sizes = []
    with torch.no_grad():
        for stage in net.stages:
            x = stage(x)
            sizes.append(x.shape[-1])
    expected = {"efficientnet": [32, 16, 8, 4, 4, 2, 2]}.get(family(name), [16, 8, 4, 2])
    assert sizes == expected


def test_group_at_strides_keeps_leading_stride_1_blocks_in_the_first_stage():
    def conv(stride):
        return nn.Conv2d(1, 1, 3, stride)

    stages = group_at_strides([conv(1), conv(2), conv(1), conv(2), conv(2), conv(1)])
    assert [[m.stride[0] for m in s] for s in stages] == [[1, 2, 1], [2], [2, 1]]
    assert [len(s) for s in group_at_strides([conv(2), conv(1)])] == [2]


def test_from_torchvision_shares_modules():
    model = tvm.resnet18(weights=None, num_classes=3)
    wrapped = from_torchvision("resnet18", model)
    assert wrapped.stages[0] is model.layer1 and wrapped.classifier is model.fc


@pytest.mark.parametrize("name", PUBLISHED_PARAMS)
def test_params_match_published_counts(name):
    assert model_complexity(name).params == PUBLISHED_PARAMS[name]


@pytest.mark.parametrize("name", PUBLISHED_GMACS)
def test_macs_match_published_counts(name):
    assert model_complexity(name).macs / 1e9 == pytest.approx(PUBLISHED_GMACS[name], rel=0.03)


@pytest.mark.parametrize("name", params(REFERENCE))
def test_costs_match_torchvision_metadata(name):
    """Params exactly and MACs within 3% of torchvision's weight metadata, at the weights' resolution."""
    meta = tvm.get_model_weights(name).DEFAULT.meta
    cx = model_complexity(name, REFERENCE_SPECS[name].resolution)
    assert cx.params == meta["num_params"]
    assert cx.macs / 1e9 == pytest.approx(meta["_ops"], rel=0.03)


def test_light_and_heavy_cover_every_reference_model():
    assert sorted(LIGHT + HEAVY) == sorted(REFERENCE)
