import pytest
import torch
from hypothesis import HealthCheck, given, settings

from nasoa.models import build
from nasoa.space import ETNAS, parse

from ..space.strategies import encodings, with_edge_cases


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.filter_too_much, HealthCheck.too_slow])
@given(arch=encodings())
@with_edge_cases()
def test_random_encodings_train_without_nans(arch):
    torch.manual_seed(0)
    model = build(arch, num_classes=3)
    x = torch.randn(2, 3, 32, 32)
    out = model(x)
    assert out.shape == (2, 3)
    loss = torch.nn.functional.cross_entropy(out, torch.tensor([0, 2]))
    loss.backward()
    assert torch.isfinite(loss)
    assert all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None)


def test_stages_follow_the_macro():
    arch = parse(ETNAS["ET-NAS-C"])  # 011-_32_2-211-2-111122
    model = build(arch, num_classes=10)
    assert model.num_stages == 4
    assert [len(s) for s in model.stages] == [1, 3, 1, 6]
    x = model.stem(torch.zeros(1, 3, 64, 64))
    assert x.shape[1:] == (32, 16, 16)
    widths = []
    for stage in model.stages:
        x = stage(x)
        widths.append((x.shape[1], x.shape[2]))
    assert widths == [(64, 16), (128, 8), (256, 4), (1024, 2)]


def test_stride_sits_on_first_non_1x1_layer():
    model = build("10001-_64_411-2111-211111-211", num_classes=10)
    first = model.stages[1][0].layers  # the stride-2 block of stage 2
    strides = [layer[0][0].stride for layer in first]
    assert strides == [(1, 1), (2, 2), (1, 1)]
    all_1x1 = build("11111-_32_1-1", num_classes=2).stages[1][0].layers
    assert [layer[0][0].stride for layer in all_1x1] == [(1, 1), (1, 1), (2, 2)]


def test_concat_widens_the_next_layer_input():
    model = build("00000-c01_32_1", num_classes=2)
    layers = model.stages[0][0].layers
    assert layers[0][0][0].out_channels == 8  # C/4
    assert layers[1][0][0].in_channels == 8 + 32  # concat of the block input


def test_separable_op_is_depthwise_then_pointwise():
    model = build("6-_32_2", num_classes=2)
    dw, pw = (m[0] for m in model.stages[0][0].layers[0])
    assert dw.groups == 32 and dw.kernel_size == (3, 3)
    assert pw.kernel_size == (1, 1) and pw.out_channels == 64


@pytest.mark.parametrize("k", [0, 1, 2, 4])
def test_freeze_stem_and_first_k_stages(k):
    model = build(ETNAS["ET-NAS-A"], num_classes=10).freeze(k)
    frozen = [model.stem, *model.stages[:k]] if k else []
    for module in [model.stem, *model.stages, model.head]:
        grads = {p.requires_grad for p in module.parameters()}
        assert grads == ({False} if any(module is f for f in frozen) else {True})
    model.train()
    assert all(not m.training for f in frozen for m in f.modules())


def test_build_rejects_bad_inputs():
    with pytest.raises(ValueError, match="num_classes"):
        build(ETNAS["ET-NAS-A"], num_classes=0)
    with pytest.raises(ValueError, match="position"):
        build("031-_64_1-1-3")
