"""The one model interface every network in nasoa has: a stem, a list of stages, a classifier head.

ET-NAS networks and torchvision reference families alike are :class:`StagedNet` objects, so that
freezing "the stem and the first k stages", swapping the classifier and profiling treat them alike.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import torch
from torch import nn


class StagedNet(nn.Module):
    """``head(stages(stem(x)))``; ``head`` is a Sequential whose last module is the ``nn.Linear`` classifier."""

    def __init__(self, stem: nn.Module, stages: Sequence[nn.Module], head: nn.Sequential) -> None:
        super().__init__()
        if not isinstance(head[-1], nn.Linear):
            raise TypeError("the head must end with an nn.Linear classifier")
        self.stem = stem
        self.stages = nn.ModuleList(stages)
        self.head = head
        self.frozen_stages = 0  # 0: nothing frozen; k > 0: the stem and the first k stages frozen

    @property
    def num_stages(self) -> int:
        return len(self.stages)

    @property
    def classifier(self) -> nn.Linear:
        return self.head[-1]  # type: ignore[return-value]

    @property
    def num_classes(self) -> int:
        return self.classifier.out_features

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stem(x)
        for stage in self.stages:
            x = stage(x)
        return x

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.forward_features(x))

    def frozen_modules(self) -> list[nn.Module]:
        """The stem and the frozen stages (empty when nothing is frozen)."""
        if self.frozen_stages == 0:
            return []
        return [self.stem, *self.stages[: self.frozen_stages]]

    def freeze(self, k: int) -> StagedNet:
        """Freeze the stem and the first ``k`` stages; ``k=0`` unfreezes everything (a regime's ``frozen_stages``).

        Frozen parts get ``requires_grad=False`` and keep their BatchNorm statistics (eval mode).
        """
        if not 0 <= k <= self.num_stages:
            raise ValueError(f"can freeze 0..{self.num_stages} stages, got {k}")
        for p in self.parameters():
            p.requires_grad_(True)
        self.frozen_stages = k
        for module in self.frozen_modules():
            for p in module.parameters():
                p.requires_grad_(False)
        return self.train(self.training)

    def train(self, mode: bool = True) -> StagedNet:
        super().train(mode)
        for module in self.frozen_modules():
            module.eval()
        return self

    def reset_classifier(self, num_classes: int) -> StagedNet:
        """Replace the classifier with a fresh one for ``num_classes`` classes."""
        if num_classes < 1:
            raise ValueError(f"num_classes must be positive, got {num_classes}")
        old = self.classifier
        self.head[-1] = nn.Linear(old.in_features, num_classes)
        return self

    def trainable_parameters(self) -> Iterable[nn.Parameter]:
        return (p for p in self.parameters() if p.requires_grad)


def classifier_head(in_features: int, num_classes: int, dropout: float = 0.0) -> nn.Sequential:
    """Global average pooling, flatten, optional dropout, linear."""
    layers: list[nn.Module] = [nn.AdaptiveAvgPool2d(1), nn.Flatten(1)]
    if dropout > 0:
        layers.append(nn.Dropout(dropout))
    layers.append(nn.Linear(in_features, num_classes))
    return nn.Sequential(*layers)
