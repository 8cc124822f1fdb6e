"""One registry shape for every role (models, predictors, task kinds, benchmark methods).

``registry.register(name)`` (a decorator, or a direct call with the object), ``registry.create(name, ...)``,
``registry.get(name)``, ``registry.list()``. A duplicate name names where the first registration came from; an
unknown name names the known ones and the closest match.

Provenance: timm ``models/_registry.py`` (``register_model``, ``list_models``, ``create_model``); ClassyVision's
duplicate-registration error.
"""

from __future__ import annotations

import difflib
import functools
import inspect
from collections.abc import Callable, Iterator, Mapping
from typing import Any, TypeVar

T = TypeVar("T")


def origin(obj: object) -> str:
    """Where ``obj`` was defined (module, qualified name and file), for error messages."""
    target = obj.func if isinstance(obj, functools.partial) else obj
    module = getattr(target, "__module__", None) or "?"
    name = getattr(target, "__qualname__", None) or type(target).__name__
    try:
        return f"{module}.{name} ({inspect.getsourcefile(target)})"  # type: ignore[arg-type]
    except TypeError:
        return f"{module}.{name}"


class Registry(Mapping[str, T]):
    """Name -> factory (a class or a function) for one role; a read-only mapping besides ``register``.

    Args:
        role: What the registry holds, for messages (``"predictor"``, ``"task kind"``, ...).
    """

    def __init__(self, role: str) -> None:
        self.role = role
        self._items: dict[str, T] = {}

    def register(self, name: str, obj: T | None = None, *, replace: bool = False) -> Any:
        """Register ``obj`` under ``name``; without ``obj``, a decorator that registers what it decorates."""

        def add(item: T) -> T:
            if name in self._items and not replace:
                raise ValueError(f"{self.role} {name!r} is already registered (by {origin(self._items[name])})")
            self._items[name] = item
            return item

        return add if obj is None else add(obj)

    def get(self, name: str) -> T:
        """The factory registered as ``name``; an unknown name raises ``ValueError`` listing the known ones."""
        if name not in self._items:
            close = difflib.get_close_matches(str(name), list(self._items), n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise ValueError(f"unknown {self.role} {name!r}{hint}; known: {', '.join(sorted(self._items))}")
        return self._items[name]

    def create(self, name: str, *args: Any, **kwargs: Any) -> Any:
        """Call the factory registered as ``name`` with the arguments."""
        factory: Callable[..., Any] = self.get(name)  # type: ignore[assignment]
        return factory(*args, **kwargs)

    def list(self) -> list[str]:
        """The registered names, sorted."""
        return sorted(self._items)

    def copy(self) -> Registry[T]:
        """A registry with the same entries (registering in one does not change the other)."""
        twin: Registry[T] = Registry(self.role)
        twin._items = dict(self._items)
        return twin

    def __getitem__(self, name: str) -> T:
        return self._items[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._items)

    def __len__(self) -> int:
        return len(self._items)
