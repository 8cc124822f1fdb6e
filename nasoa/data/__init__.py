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
    "make_test_loader": "task",
    "Augment": "augment",
    "MissingSourceError": "sources",
    "cache_dir": "sources",
    "ImagePool": "pool",
    "pool_task": "pool",
    "fashion_task": "fashion",
    "fashion_ft_task": "fashion",
    "mnist5k_task": "mnist5k",
    "CLIPART_SETS": "clipart",
    "clipart_task": "clipart",
    "cards_task": "cards",
    "emoji_task": "emoji",
    "Suite": "suite",
    "SuiteTask": "suite",
    "load_suite": "suite",
    "check_suite": "suite",
    "content_hashes": "suite",
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
    "CLIPART_SETS",
    "ArrayImageDataset",
    "Augment",
    "ImagePool",
    "MissingSourceError",
    "Preprocess",
    "Suite",
    "SuiteTask",
    "TASKS",
    "TORCHVISION_DATASETS",
    "Task",
    "TaskMeta",
    "cache_dir",
    "cards_task",
    "check_suite",
    "clipart_task",
    "content_hashes",
    "digits_task",
    "emoji_task",
    "fashion_ft_task",
    "fashion_task",
    "folder_task",
    "load_suite",
    "make_loaders",
    "make_task",
    "make_test_loader",
    "mnist5k_task",
    "parse_spec",
    "pool_task",
    "register_task",
    "select_classes",
    "stratified_split",
    "stratified_subsample",
    "synthetic_task",
    "torchvision_task",
]

if TYPE_CHECKING:
    from nasoa.data.arrays import ArrayImageDataset, Preprocess
    from nasoa.data.augment import Augment
    from nasoa.data.cards import cards_task
    from nasoa.data.clipart import CLIPART_SETS, clipart_task
    from nasoa.data.digits import digits_task
    from nasoa.data.emoji import emoji_task
    from nasoa.data.fashion import fashion_ft_task, fashion_task
    from nasoa.data.folders import folder_task
    from nasoa.data.meta import TaskMeta
    from nasoa.data.mnist5k import mnist5k_task
    from nasoa.data.pool import ImagePool, pool_task
    from nasoa.data.registry import TASKS, make_task, parse_spec, register_task
    from nasoa.data.sources import MissingSourceError, cache_dir
    from nasoa.data.split import select_classes, stratified_split, stratified_subsample
    from nasoa.data.suite import Suite, SuiteTask, check_suite, content_hashes, load_suite
    from nasoa.data.synthetic import synthetic_task
    from nasoa.data.task import Task, make_loaders, make_test_loader
    from nasoa.data.torchvision_sets import TORCHVISION_DATASETS, torchvision_task


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        value = getattr(importlib.import_module(f"nasoa.data.{_EXPORTS[name]}"), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'nasoa.data' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))
