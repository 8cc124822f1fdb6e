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

Provenance: torchvision ``models/{resnet,regnet,efficientnet,mobilenetv3}.py``.
"""

from __future__ import annotations

import functools
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
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
    """Build reference model ``name`` with a ``num_classes`` classifier; ``kw`` go to the torchvision constructor."""
    return ReferenceNet(name, torchvision_model(name, num_classes, **kw))


#: Reference name -> factory, called as ``factory(num_classes, **torchvision_kwargs)``.
REFERENCE_MODELS: dict[str, Callable[..., ReferenceNet]] = {
    name: functools.partial(create_reference, name) for name in REFERENCE_SPECS
}
