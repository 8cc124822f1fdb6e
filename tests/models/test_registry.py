"""The one model entry point: names, encodings, kinds, errors, registration and costs."""

import pytest
import torch
from torch import nn
from torchvision import models as tvm

from nasoa.models import StagedNet, count_complexity, create_model, list_models, model_complexity, model_kind
from nasoa.models import registry as reg
from nasoa.space import ETNAS, RESNET50_DEEP_STEM, complexity, parse


@pytest.fixture
def clean_registry(monkeypatch):
    """Registrations made by a test disappear after it."""
    monkeypatch.setattr(reg, "MODELS", reg.MODELS.copy())
    reg._complexity.cache_clear()
    yield
    reg._complexity.cache_clear()


def test_list_models_by_kind():
    etnas, reference = list_models("etnas"), list_models("reference")
    assert etnas == list(ETNAS)
    assert {"resnet18", "resnet50", "regnet_y_400mf", "efficientnet_b0", "mobilenet_v3_large"} <= set(reference)
    assert list_models() == etnas + reference
    with pytest.raises(ValueError, match="'bogus'"):
        list_models("bogus")


@pytest.mark.parametrize(
    ("name", "kind"),
    [
        ("ET-NAS-A", "etnas"),
        ("031-_64_1-1-221-11121", "etnas"),
        ("resnet50", "reference"),
        ("mobilenet_v3_small", "reference"),
    ],
)
def test_model_kind(name, kind):
    assert model_kind(name) == kind


def test_create_by_name_and_by_encoding():
    by_name = create_model("ET-NAS-A", 10)
    by_encoding = create_model(ETNAS["ET-NAS-A"], 10)
    assert isinstance(by_name, StagedNet) and isinstance(by_encoding, StagedNet)
    assert by_name.arch == by_encoding.arch == parse(ETNAS["ET-NAS-A"])
    assert by_name.num_classes == 10
    assert create_model("ET-NAS-A", 3, dropout=0.2).head[-2].p == 0.2


@pytest.mark.parametrize(
    ("bad", "suggestion"),
    [("resnet-50", "resnet50"), ("ET-NAS-Z", "ET-NAS-"), ("efficientnet-b0", "efficientnet_b0"), ("vgg16", None)],
)
def test_unknown_names_raise_with_suggestions(bad, suggestion):
    with pytest.raises(ValueError) as err:
        create_model(bad, 10)
    msg = str(err.value)
    assert repr(bad) in msg and "Known models:" in msg and "mobilenet_v3_large" in msg
    if suggestion:
        assert "Did you mean" in msg and suggestion in msg.split("Did you mean")[1].split("Known")[0]
    else:
        assert "Did you mean" not in msg


def test_bad_encoding_names_the_position():
    with pytest.raises(ValueError, match="position"):
        create_model("031-_64_1-1-9", 10)
    with pytest.raises(ValueError):
        model_complexity("031-_64_1-1-9")


def test_register_model(clean_registry):
    def tiny(num_classes: int, **kw) -> StagedNet:
        return StagedNet(
            nn.Conv2d(3, 4, 3),
            [nn.Conv2d(4, 8, 3, 2)],
            nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, num_classes)),
        )

    assert reg.register_model("tiny", tiny) is tiny
    assert "tiny" in list_models("reference") and model_kind("tiny") == "reference"
    assert create_model("tiny", 4)(torch.zeros(1, 3, 16, 16)).shape == (1, 4)
    cx = model_complexity("tiny", 16, 4)
    assert cx.params == sum(p.numel() for p in tiny(4).parameters())
    assert cx.macs == 3 * 4 * 9 * 14 * 14 + 4 * 8 * 9 * 6 * 6 + 8 * 4
    with pytest.raises(ValueError, match="'tiny' is already registered.*test_registry"):
        reg.register_model("tiny", tiny)
    with pytest.raises(ValueError, match="already registered"):
        reg.register_model("resnet50", tiny)
    with pytest.raises(ValueError, match="ET-NAS encoding"):
        reg.register_model("1-_32_1", tiny)
    with pytest.raises(ValueError, match="kind"):
        reg.register_model("tiny2", tiny, kind="other")


def test_complexity_is_cached(clean_registry):
    first = model_complexity("mobilenet_v3_small", 64, 10)
    hits = reg._complexity.cache_info().hits
    assert model_complexity("mobilenet_v3_small", 64, 10) is first
    assert reg._complexity.cache_info().hits == hits + 1


@pytest.mark.parametrize("name", ["ET-NAS-A", "ET-NAS-C", "02031-a02_32_2-11-12", "00000-c01_32_2-1"])
def test_etnas_complexity_is_analytic_and_matches_the_built_model(name):
    assert model_complexity(name, 64, 10) == complexity(ETNAS.get(name, name), 64, 10)
    torch.manual_seed(0)
    assert count_complexity(create_model(name, 10), 64) == model_complexity(name, 64, 10)


def conv_shapes(module: nn.Module) -> list[tuple[tuple[int, ...], tuple[int, int]]]:
    return [(tuple(m.weight.shape), m.stride) for m in module.modules() if isinstance(m, nn.Conv2d)]


def test_resnet50_in_the_etnas_grammar_matches_torchvision_stages():
    ours = create_model(RESNET50_DEEP_STEM, 1000)
    theirs = tvm.resnet50(weights=None)
    layers = [theirs.layer1, theirs.layer2, theirs.layer3, theirs.layer4]
    assert [len(s) for s in ours.stages] == [len(layer) for layer in layers] == [3, 4, 6, 3]
    for stage, layer in zip(ours.stages, layers, strict=True):
        for block, bottleneck in zip(stage, layer, strict=True):
            assert conv_shapes(block) == conv_shapes(bottleneck)
    stem = sum(p.numel() for p in ours.stem.parameters()) - sum(
        p.numel() for p in [*theirs.conv1.parameters(), *theirs.bn1.parameters()]
    )
    assert model_complexity(RESNET50_DEEP_STEM).params == pytest.approx(25.6e6, rel=0.01)
    assert model_complexity(RESNET50_DEEP_STEM).params - model_complexity("resnet50").params == stem
