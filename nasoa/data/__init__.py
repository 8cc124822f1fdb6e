"""Image classification tasks for fine-tuning: offline data sources, splits, meta-features and loaders.

Names are imported lazily, so `from nasoa.data import TaskMeta` does not import torch or torchvision.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

_EXPORTS = {
    "TaskMeta": "meta",
    "Task": "task",
    "make_loaders": "task",
    "ArrayImageDataset": "arrays",
    "Preprocess": "arrays",
    "select_classes": "split",
    "stratified_split": "split",
    "stratified_subsample": "split",
    "digits_task": "digits",
    "synthetic_task": "synthetic",
    "folder_task": "folders",
    "TORCHVISION_DATASETS": "torchvision_sets",
    "torchvision_task": "torchvision_sets",
    "TASKS": "registry",
    "make_task": "registry",
    "parse_spec": "registry",
    "register_task": "registry",
}

__all__ = [
    "ArrayImageDataset",
    "Preprocess",
    "TASKS",
    "TORCHVISION_DATASETS",
    "Task",
    "TaskMeta",
    "digits_task",
    "folder_task",
    "make_loaders",
    "make_task",
    "parse_spec",
    "register_task",
    "select_classes",
    "stratified_split",
    "stratified_subsample",
    "synthetic_task",
    "torchvision_task",
]

if TYPE_CHECKING:
    from nasoa.data.arrays import ArrayImageDataset, Preprocess
    from nasoa.data.digits import digits_task
    from nasoa.data.folders import folder_task
    from nasoa.data.meta import TaskMeta
    from nasoa.data.registry import TASKS, make_task, parse_spec, register_task
    from nasoa.data.split import select_classes, stratified_split, stratified_subsample
    from nasoa.data.synthetic import synthetic_task
    from nasoa.data.task import Task, make_loaders
    from nasoa.data.torchvision_sets import TORCHVISION_DATASETS, torchvision_task


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        value = getattr(importlib.import_module(f"nasoa.data.{_EXPORTS[name]}"), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'nasoa.data' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))
