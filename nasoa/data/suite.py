"""The suite of fine-tuning tasks: `past` tasks (the experience the predictor learns from) and `stream` tasks.

The suite is a plain mapping, the `tasks` Hydra config group (``conf/tasks/suite.yaml``)::

    past:
      - {name: clipart-animals, spec: "clipart:set=animals,resolution=48", domain: drawings, subdomain: animals}
    stream:
      - {name: cards-suit, spec: "cards:target=suit,shard=0/3", domain: cards, subdomain: suit}

:func:`check_suite` enforces the rules (nothing is loaded):

- every task has a name, a spec, a domain and a sub-domain; names are unique across past and stream;
- every spec parses to a registered kind whose factory takes all of its options (see `nasoa.data.registry`);
- hold-out: no (domain, sub-domain) pair appears in both past and stream, and at least one domain of the stream
  has no past task at all, so the stream is new to the predictor by whole domains and by sub-domains.

That no image is shared between any two tasks, between the splits of a task, or with the pretraining source is
a property of the specs (disjoint classes, sets or ``shard`` values of each source); it is checked on the loaded
tasks with :func:`content_hashes` (``tests/data/test_suite.py``).
"""

from __future__ import annotations

import dataclasses
import inspect
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import yaml
from torch.utils.data import Dataset

from nasoa.data.registry import TASKS, parse_spec
from nasoa.data.sources import content_hash
from nasoa.data.split import parse_shard
from nasoa.data.task import Task

#: The suite shipped with the repository.
DEFAULT_SUITE = Path(__file__).resolve().parents[2] / "conf" / "tasks" / "suite.yaml"
SPLITS = ("train", "val", "test")
_FIELDS = ("name", "spec", "domain", "subdomain")


@dataclass(frozen=True)
class SuiteTask:
    """One task of the suite.

    Attributes:
        name: Stable task name (the built task carries it).
        spec: Task spec for `make_task`.
        domain: Image domain, e.g. ``drawings``, ``cards``, ``icons``, ``handwriting``, ``products``.
        subdomain: Finer domain, e.g. the clipart set.
    """

    name: str
    spec: str
    domain: str
    subdomain: str

    def build(self, **overrides: Any) -> Task:
        """Loads the task (named after the suite entry); keyword overrides go to the factory."""
        from nasoa.data.registry import make_task  # lazy: the registry imports this module (the suite checks kinds)

        task = make_task(self.spec, **overrides)
        return dataclasses.replace(task, name=self.name, meta=dataclasses.replace(task.meta, name=self.name))


@dataclass(frozen=True)
class Suite:
    """Past tasks (experience) and stream tasks (the benchmark)."""

    past: tuple[SuiteTask, ...]
    stream: tuple[SuiteTask, ...]

    @property
    def tasks(self) -> tuple[SuiteTask, ...]:
        """Past then stream tasks."""
        return self.past + self.stream

    def get(self, name: str) -> SuiteTask:
        """The task of that name."""
        for t in self.tasks:
            if t.name == name:
                return t
        raise KeyError(f"no suite task {name!r}; tasks: {', '.join(t.name for t in self.tasks)}")


def _entry(item: Any, where: str) -> SuiteTask:
    if not isinstance(item, Mapping):
        raise ValueError(f"{where}: a suite task is a mapping with keys {list(_FIELDS)}, got {item!r}")
    data = {str(k): v for k, v in item.items()}
    missing = [k for k in _FIELDS if not str(data.get(k) or "").strip()]
    unknown = sorted(set(data) - set(_FIELDS))
    if missing or unknown:
        raise ValueError(f"{where}: missing or empty {missing}, unknown keys {unknown} in {data}")
    return SuiteTask(*(str(data[k]).strip() for k in _FIELDS))


def load_suite(source: str | Path | Mapping[str, Any] = DEFAULT_SUITE, check: bool = True) -> Suite:
    """Reads a suite from a YAML file or a mapping (a Hydra config node works), then checks it.

    Args:
        source: Path of a YAML file, or a mapping with ``past`` and ``stream`` lists (also accepted under a
            top-level ``tasks`` key); a ``stream_budgets`` list (the main job's stream setting) may sit beside them.
        check: Run :func:`check_suite`.

    Returns:
        The suite.
    """
    if isinstance(source, (str, Path)):
        with open(source, encoding="utf-8") as f:
            source = yaml.safe_load(f)
    if not isinstance(source, Mapping):
        raise ValueError(f"a suite is a mapping with 'past' and 'stream' lists, got {type(source).__name__}")
    if "tasks" in source and "past" not in source:
        source = source["tasks"]
    unknown = sorted(set(map(str, source)) - {"past", "stream", "stream_budgets"})
    if unknown:
        raise ValueError(f"a suite has keys 'past', 'stream' and 'stream_budgets' only, got also {unknown}")
    parts = []
    for part in ("past", "stream"):
        items = source.get(part) or []
        if isinstance(items, (str, bytes, Mapping)) or not isinstance(items, Iterable):
            raise ValueError(f"suite '{part}' must be a list of tasks")
        parts.append(tuple(_entry(item, f"{part}[{i}]") for i, item in enumerate(items)))
    suite = Suite(*parts)
    if check:
        check_suite(suite)
    return suite


def _spec_problem(task: SuiteTask) -> str | None:
    try:
        kind, kwargs = parse_spec(task.spec)
    except (ValueError, TypeError) as exc:
        return f"{task.name}: spec {task.spec!r} does not parse: {exc}"
    if kind not in TASKS:
        return f"{task.name}: unknown task kind {kind!r} in {task.spec!r}"
    params = inspect.signature(TASKS[kind]).parameters
    unknown = sorted(set(kwargs) - set(params))
    if unknown:
        return f"{task.name}: kind {kind!r} takes no option(s) {unknown}"
    try:
        parse_shard(kwargs.get("shard"))
    except ValueError as exc:
        return f"{task.name}: {exc}"
    return None


def check_suite(suite: Suite) -> None:
    """Checks the rules of the module docstring.

    Raises:
        ValueError: Listing every broken rule.
    """
    problems = []
    names = [t.name for t in suite.tasks]
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        problems.append(f"task names are not unique: {repeated}")
    if not suite.past or not suite.stream:
        problems.append(f"need past and stream tasks, got {len(suite.past)} and {len(suite.stream)}")
    problems += [p for p in map(_spec_problem, suite.tasks) if p]
    past_pairs = {(t.domain, t.subdomain) for t in suite.past}
    shared = sorted({(t.domain, t.subdomain) for t in suite.stream} & past_pairs)
    if shared:
        problems.append(f"(domain, subdomain) pairs in both past and stream: {shared}")
    past_domains = {t.domain for t in suite.past}
    if suite.stream and all(t.domain in past_domains for t in suite.stream):
        problems.append("no stream domain is held out whole: every stream domain also has past tasks")
    if problems:
        raise ValueError("invalid task suite:\n- " + "\n- ".join(problems))


def _item_hash(dataset: Dataset, index: int) -> str:
    image = dataset[index][0]
    return content_hash(image.numpy() if isinstance(image, torch.Tensor) else np.asarray(image))


def dataset_hashes(dataset: Dataset | None) -> list[str]:
    """Content hash of every item of a dataset, in order (empty for None).

    Datasets of real-image kinds carry the hashes of their source images (`dataset.hashes`); for others (digits,
    synthetic, folder) the network-input tensors are hashed instead.
    """
    if dataset is None:
        return []
    hashes = getattr(dataset, "hashes", None)
    if hashes is not None:
        return list(hashes)
    return [_item_hash(dataset, i) for i in range(len(dataset))]  # type: ignore[arg-type]


def content_hashes(task: Task, split: str | None = None) -> set[str]:
    """The content hashes of a task's images: of one split (``train``, ``val``, ``test``), or of all when None."""
    if split is None:
        return set().union(*(content_hashes(task, s) for s in SPLITS))
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS} or None, got {split!r}")
    return set(dataset_hashes(getattr(task, split)))


def split_hashes(task: Task) -> dict[str, set[str]]:
    """The content hashes of every split of a task."""
    return {s: content_hashes(task, s) for s in SPLITS}
