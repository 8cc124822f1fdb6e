"""One entry point for every model in nasoa: published ET-NAS names, ET-NAS encodings and reference models.

``create_model("ET-NAS-A", 10)``, ``create_model("031-_64_1-1-221-11121", 10)`` and
``create_model("resnet50", 10)`` all return a :class:`~nasoa.models.staged.StagedNet`.
Registered names are looked up first; any other name is tried as an ET-NAS encoding.

Most models are built randomly initialised. A few reference models come with published weights, tagged with
their source: ``create_model("efficientnet_lite0", 10)`` is EfficientNet-Lite0 with its ImageNet-1k weights
(``pretrained=False`` for random ones). ``list_models()`` keeps listing the randomly initialised models only
(what the search, the zoo and the model contract tests iterate over); ``list_models(pretrained=True)`` lists the
pretrained ones and ``model_pretrained(name)`` gives a model's tag (``"imagenet"``, or ``""``).

Provenance: timm ``models/_registry.py`` / ``_factory.py`` (``register_model``, ``list_models``,
``create_model``); pycls ``core/builders.py`` (an error that names the bad key).
"""

from __future__ import annotations

import difflib
import functools
from dataclasses import dataclass
from typing import Any, Literal, Protocol, get_args

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from nasoa.common.registry import Registry, origin
from nasoa.models.etnas import build
from nasoa.models.reference import PRETRAINED_MODELS, REFERENCE_MODELS
from nasoa.models.staged import StagedNet
from nasoa.space import ETNAS, Complexity, complexity, parse

Kind = Literal["etnas", "reference"]
KINDS: tuple[str, ...] = get_args(Kind)


class ModelFactory(Protocol):
    """Builds a model: ``factory(num_classes, **kw) -> StagedNet``."""

    def __call__(self, num_classes: int, /, **kw: Any) -> StagedNet: ...


@dataclass(frozen=True)
class _Entry:
    factory: ModelFactory
    kind: Kind
    encoding: str | None = None  # ET-NAS entries: the canonical encoding, for analytic costs
    origin: str = ""  # where it was registered, for the duplicate error
    pretrained: str = ""  # the source of the weights the factory loads ("imagenet"); "" for random initialisation


#: Model name -> its entry (factory, kind, encoding, weights' source).
MODELS: Registry[_Entry] = Registry("model")


def _add(name: str, entry: _Entry) -> None:
    if name in MODELS:
        raise ValueError(f"model {name!r} is already registered (by {MODELS[name].origin})")
    MODELS.register(name, entry)


def _build_etnas(encoding: str, num_classes: int, /, **kw: Any) -> StagedNet:
    return build(encoding, num_classes, **kw)


def _etnas_entry(encoding: str) -> _Entry:
    canonical = str(parse(encoding))
    return _Entry(functools.partial(_build_etnas, canonical), "etnas", canonical, "nasoa.space.ETNAS")


def register_model(name: str, factory: ModelFactory, *, kind: Kind = "reference", pretrained: str = "") -> ModelFactory:
    """Register ``factory`` under ``name``; costs of non-ET-NAS kinds are counted on a built model.

    Args:
        name: The new model name; must not be registered yet nor parse as an ET-NAS encoding.
        factory: Called as ``factory(num_classes, **kw)``; returns a :class:`StagedNet`.
        kind: What :func:`model_kind` reports for it.
        pretrained: The source of the weights the factory loads (e.g. ``"imagenet"``); ``""`` when it builds
            the model randomly initialised.

    Returns:
        ``factory``, unchanged.
    """
    if kind not in KINDS:
        raise ValueError(f"unknown kind {kind!r}; expected one of {KINDS}")
    try:
        parse(name)
    except ValueError:
        pass
    else:
        raise ValueError(f"model name {name!r} is an ET-NAS encoding; pick another name")
    _add(name, _Entry(factory, kind, None, origin(factory), pretrained))
    return factory


for _name, _encoding in ETNAS.items():
    _add(_name, _etnas_entry(_encoding))
for _name, _factory in REFERENCE_MODELS.items():
    _add(_name, _Entry(_factory, "reference", None, "nasoa.models.reference.REFERENCE_MODELS"))
for _name, (_factory, _source) in PRETRAINED_MODELS.items():
    _add(_name, _Entry(_factory, "reference", None, "nasoa.models.reference.PRETRAINED_MODELS", _source))
del _name, _encoding, _factory, _source


def _unknown(name: str, why: str) -> ValueError:
    lowered = {n.lower(): n for n in MODELS}
    close = [lowered[n] for n in difflib.get_close_matches(name.lower(), lowered, n=5, cutoff=0.6)]
    hint = f" Did you mean: {', '.join(close)}?" if close else ""
    return ValueError(
        f"unknown model {name!r}: not a registered name, nor an ET-NAS encoding ({why}).{hint}"
        f" Known models: {', '.join(MODELS)}."
    )


def _resolve(name: str) -> _Entry:
    if not isinstance(name, str):
        raise ValueError(f"a model name is a string, got {type(name).__name__}")
    if name in MODELS:
        return MODELS[name]
    try:
        return _etnas_entry(name)
    except ValueError as err:
        raise _unknown(name, str(err)) from None


def create_model(name: str, num_classes: int, **kw: Any) -> StagedNet:
    """Build a model by published ET-NAS name, ET-NAS encoding or reference name.

    Args:
        name: ``"ET-NAS-A"``, an encoding such as ``"031-_64_1-1-221-11121"``, or a name from
            :func:`list_models` such as ``"resnet50"``.
        num_classes: Outputs of the classifier.
        **kw: Passed to the factory (ET-NAS: ``in_chans``, ``dropout``; reference: the torchvision constructor;
            ``efficientnet_lite0``: ``pretrained``, ``dropout``, ``drop_connect_rate``).

    Returns:
        The model, randomly initialised unless :func:`model_pretrained` names its weights' source.
    """
    return _resolve(name).factory(num_classes, **kw)


def list_models(kind: str | None = None, pretrained: bool | str = False) -> list[str]:
    """Registered model names in registration order.

    Args:
        kind: Only those of this kind (``etnas``, ``reference``); all kinds when None.
        pretrained: False: the models built randomly initialised; True: those built with published weights;
            a string: those whose weights come from that source (``"imagenet"``).

    Returns:
        The names.
    """
    if kind is not None and kind not in KINDS:
        raise ValueError(f"unknown kind {kind!r}; expected one of {KINDS} or None")

    def wanted(e: _Entry) -> bool:
        if isinstance(pretrained, str):
            return e.pretrained == pretrained
        return bool(e.pretrained) == pretrained

    return [n for n, e in MODELS.items() if (kind is None or e.kind == kind) and wanted(e)]


def model_pretrained(name: str) -> str:
    """The source of the weights ``create_model(name, ...)`` loads (``"imagenet"``), or ``""`` (random init)."""
    return _resolve(name).pretrained


def model_kind(name: str) -> Kind:
    """``"etnas"`` for ET-NAS names and encodings, else the kind the model was registered with."""
    return _resolve(name).kind


def count_complexity(model: nn.Module, resolution: int = 224, in_chans: int = 3) -> Complexity:
    """Params (all parameters) and MACs (FLOPs / 2 of one image, by ``FlopCounterMode``) of a built model.

    The forward runs in eval mode on the model's device (``meta`` works and costs nothing); the mode is restored.
    """
    params = sum(p.numel() for p in model.parameters())
    device = next(model.parameters(), torch.empty(0)).device
    x = torch.zeros(1, in_chans, resolution, resolution, device=device)
    training = model.training
    counter = FlopCounterMode(display=False)
    try:
        with counter, torch.no_grad():
            model.eval()(x)
    finally:
        model.train(training)
    return Complexity(params, counter.get_total_flops() // 2)


@functools.lru_cache(maxsize=1024)
def _complexity(name: str, resolution: int, num_classes: int) -> Complexity:
    entry = _resolve(name)
    if entry.encoding is not None:
        return complexity(entry.encoding, resolution, num_classes)
    model = entry.factory(num_classes)
    return count_complexity(model.to("meta"), resolution)


def model_complexity(name: str, resolution: int = 224, num_classes: int = 1000) -> Complexity:
    """Params and MACs of a model at ``resolution`` (one square RGB image); results are cached.

    ET-NAS models use the analytic :func:`nasoa.space.complexity`; other models are built once per
    ``(name, resolution, num_classes)`` and counted by :func:`count_complexity`.
    """
    return _complexity(name, resolution, num_classes)
