"""Every model in nasoa behind one interface (:class:`StagedNet`) and one registry (:func:`create_model`)."""

from nasoa.models.etnas import ETNASNet, build
from nasoa.models.reference import REFERENCE_MODELS, ReferenceNet
from nasoa.models.registry import (
    count_complexity,
    create_model,
    list_models,
    model_complexity,
    model_kind,
    register_model,
)
from nasoa.models.staged import StagedNet

__all__ = [
    "REFERENCE_MODELS",
    "ETNASNet",
    "ReferenceNet",
    "StagedNet",
    "build",
    "count_complexity",
    "create_model",
    "list_models",
    "model_complexity",
    "model_kind",
    "register_model",
]
