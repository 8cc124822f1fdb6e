"""Typed settings from composed Hydra configs: unknown keys and wrong types fail at start, naming the key."""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Mapping
from typing import Any, TypeVar

T = TypeVar("T")


def _matches(value: Any, hint: Any) -> bool:
    origin = typing.get_origin(hint)
    if hint is Any:
        return True
    if origin in (typing.Union, types.UnionType):
        return any(_matches(value, h) for h in typing.get_args(hint))
    if hint is type(None):
        return value is None
    if hint is float:
        return isinstance(value, int | float) and not isinstance(value, bool)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if origin is tuple:
        args = typing.get_args(hint)
        if not isinstance(value, tuple | list):
            return False
        if len(args) == 2 and args[1] is Ellipsis:
            return all(_matches(v, args[0]) for v in value)
        return len(args) == len(value) and all(_matches(v, a) for v, a in zip(value, args))
    if origin in (dict, Mapping) or hint in (dict, Mapping):
        return isinstance(value, Mapping)
    if origin in (list,) or hint is list:
        return isinstance(value, list | tuple)
    if isinstance(hint, type):
        return isinstance(value, hint)
    return True


def typed_settings(cls: type[T], values: Mapping[str, Any], where: str) -> T:
    """Build the settings dataclass ``cls`` from ``values``; raise ``ValueError`` naming any bad key or type."""
    fields = {f.name: f for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    unknown = sorted(set(values) - set(fields))
    if unknown:
        raise ValueError(f"{where}: unknown key(s) {unknown}; known: {sorted(fields)}")
    hints = typing.get_type_hints(cls)
    coerced = {}
    for name, value in values.items():
        hint = hints.get(name, Any)
        if not _matches(value, hint):
            shown = getattr(hint, "__name__", None) or str(hint).replace("typing.", "")
            raise ValueError(f"{where}.{name}: expected {shown}, got {type(value).__name__} {value!r}")
        if isinstance(value, list) and typing.get_origin(hint) is tuple:
            value = tuple(value)
        coerced[name] = value
    missing = [
        n
        for n, f in fields.items()
        if n not in coerced and f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
    ]
    if missing:
        raise ValueError(f"{where}: missing key(s) {missing}")
    return cls(**coerced)
