"""The zoo build: pick the entries, pretrain and profile them on Ray Train workers, write the zoo.

``launch/build_zoo.py`` composes the Hydra config and calls :func:`run_zoo_job`. Each finished entry is written to
``manifest.parquet`` at once by a sink actor, so a crash loses only the entries in flight, and entries already in
the manifest (same key, weights verified) are not trained again.
"""

from __future__ import annotations

import functools
import logging
import math
import os
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import ray

from nasoa.analysis.zoo_plot import plot_zoo
from nasoa.cluster.pool import ResultSink, TrainPool
from nasoa.cluster.runtime import RuntimeSettings
from nasoa.cluster.session import on_driver_node, ray_session
from nasoa.common.io import write_json_atomic
from nasoa.search.archive import ParetoArchive
from nasoa.train.recipe import Recipe
from nasoa.zoo.manifest import MANIFEST_FILE, ZooEntry, read_manifest, write_manifest
from nasoa.zoo.pretrain import ZooItem, item_key, pretrain_entry, resolve_item, spread_front
from nasoa.zoo.store import Zoo, ZooError

log = logging.getLogger("nasoa.zoo")


@dataclass(frozen=True)
class ZooSettings:
    """The ``zoo`` config: which models the zoo holds."""

    front_members: int = 5
    etnas: tuple[str, ...] = ("ET-NAS-A", "ET-NAS-B", "ET-NAS-C", "ET-NAS-D", "ET-NAS-E")
    references: tuple[str, ...] = ()
    fair_margin: float = 0.15  # every pretrained entry's source top-1 within this of the best, or the build warns


@ray.remote(num_cpus=0)
class ZooSink(ResultSink):
    """Collects finished entries and rewrites the manifest after each one (atomically); errors are not kept."""

    def __init__(self, root: str, entries: Sequence[ZooEntry]) -> None:
        super().__init__()
        self.root = root
        self.results = {e.key: e for e in entries}

    def store(self, result: ZooEntry | Exception) -> None:
        if isinstance(result, ZooEntry):
            super().store(result)
            write_manifest(list(self.results.values()), self.root)


def pick_items(zoo: ZooSettings, search_dir: str | None) -> list[ZooItem]:
    """The ET-NAS entries (a spread of a search front, and named models) and the reference entries."""
    items: list[ZooItem] = []
    if search_dir:
        archive = ParetoArchive.load(search_dir)
        if not len(archive):
            raise FileNotFoundError(f"search_dir={search_dir}: no archive.parquet with results there")
        for i, r in enumerate(spread_front(archive.records, zoo.front_members)):
            items.append(ZooItem(name=f"front-{i}", kind="etnas", arch=r.encoding))
    items += [resolve_item(n) for n in (*zoo.etnas, *zoo.references)]
    unique: dict[str, ZooItem] = {}
    for it in items:
        unique.setdefault(it.arch, it)
    return list(unique.values())


def _already_built(root: Path, keys: Sequence[str]) -> list[ZooEntry]:
    """Manifest entries whose weights are intact: kept, not retrained."""
    if not (root / MANIFEST_FILE).exists():
        return []
    zoo = Zoo(root)
    kept = []
    for key in keys:
        if key in zoo:
            try:
                zoo.verify(key)
                kept.append(zoo.get(key))
            except ZooError as err:
                log.warning("retraining %s: %s", key, err)
    return kept


def _pretrain_or_error(item: ZooItem, recipe: Recipe, worker: str, *, root: str) -> ZooEntry | Exception:
    try:
        return pretrain_entry(item, recipe, worker, root=root)
    except Exception as err:  # noqa: BLE001 - reported, the other entries go on
        log.exception("pretraining %s failed", item.name)
        return RuntimeError(f"{item.name}: {type(err).__name__}: {err}")


def _worker_died(item: ZooItem, attempts: int, reason: str) -> Exception:
    """The error that stands for an entry whose workers died on every attempt."""
    return RuntimeError(f"{item.name}: worker died {attempts} times while pretraining it (last: {reason})")


@dataclass
class _Build:
    """What a zoo build works on."""

    root: Path
    recipe: Recipe
    items: list[ZooItem]
    todo: list[ZooItem] = field(default_factory=list)


def run_zoo_job(cfg: Mapping[str, Any], out_dir: str | os.PathLike) -> dict[str, Any]:
    """Build (or complete) the zoo in ``zoo_root`` (default: ``out_dir/zoo``); returns the summary."""
    runtime: RuntimeSettings = cfg["runtime"]
    build = _plan(cfg, out_dir, runtime)
    t0 = time.time()
    with ray_session(runtime):
        entries, efficiency = _pretrain_on_ray(build, runtime)
    failed = [it.name for it in build.items if it.key not in {e.key for e in entries}]
    summary = {
        "root": str(build.root),
        "entries": [{"key": e.key, "name": e.name, "kind": e.kind, "top1": _finite(e.top1)} for e in entries],
        "failed": failed,
        "fairness": fairness(entries, cfg["zoo"].fair_margin),
        "seconds": time.time() - t0,
        "plot": plot_zoo(entries, build.root / "zoo.png") if entries else None,
        "settings": build.recipe.to_dict(),
        "worker_efficiency": efficiency,
    }
    write_json_atomic(summary, build.root / "build_summary.json")
    _log_done(entries, failed, build.root, summary["plot"])
    return summary


def _finite(x: float) -> float | None:
    return x if math.isfinite(x) else None


def fairness(entries: Sequence[ZooEntry], margin: float) -> dict[str, Any]:
    """Whether every entry pretrained here lands within ``margin`` of the best source top-1 (published ones skipped)."""
    scored = {e.name: e.top1 for e in entries if math.isfinite(e.top1)}
    if not scored:
        return {"margin": margin, "best": None, "best_top1": None, "outside": {}, "met": True}
    best = max(scored, key=scored.__getitem__)
    outside = {n: round(scored[best] - t, 4) for n, t in scored.items() if scored[best] - t > margin}
    if outside:
        log.warning("zoo fairness: %s more than %.2f below %s (%.3f)", outside, margin, best, scored[best])
    return {"margin": margin, "best": best, "best_top1": scored[best], "outside": outside, "met": not outside}


def _plan(cfg: Mapping[str, Any], out_dir: str | os.PathLike, runtime: RuntimeSettings) -> _Build:
    """The zoo folder, the recipe on the runtime's device, the entries and those still to pretrain."""
    root = Path(cfg.get("zoo_root") or Path(out_dir) / "zoo").resolve()
    root.mkdir(parents=True, exist_ok=True)
    recipe = replace(cfg["pretrain"], device=runtime.device)
    items = [replace(it, key=item_key(it, recipe.tag)) for it in pick_items(cfg["zoo"], cfg.get("search_dir"))]
    kept = {e.key for e in _already_built(root, [it.key for it in items])}
    build = _Build(root, recipe, items, [it for it in items if it.key not in kept])
    log.info(
        "zoo %s: %d entries (%d to pretrain, %d kept), source %s at %dpx, %d epochs",
        root,
        len(items),
        len(build.todo),
        len(kept),
        recipe.source,
        recipe.resolution,
        recipe.epochs,
    )
    return build


def _pretrain_on_ray(build: _Build, runtime: RuntimeSettings) -> tuple[list[ZooEntry], float | None]:
    """Pretrain what is left on a Ray Train pool; every entry of the zoo, and the workers' efficiency."""
    existing = read_manifest(build.root) if (build.root / MANIFEST_FILE).exists() else []
    sink = ZooSink.options(**on_driver_node()).remote(str(build.root), existing)  # writes where the driver reads
    efficiency = None
    if build.todo:
        pool = TrainPool(
            functools.partial(_pretrain_or_error, root=str(build.root)),
            build.recipe,
            sink,
            runtime,
            num_workers=min(runtime.num_workers, len(build.todo)),
            storage_path=runtime.storage(build.root, "ray_train"),
            name="zoo-build",
            on_give_up=_worker_died,
        )
        try:
            _run_with_progress(pool, sink, build.todo)
        finally:
            pool.close()
        efficiency = pool.stats().efficiency
    return list(ray.get(sink.wait_for.remote([it.key for it in build.items], 0.1)).values()), efficiency


def _log_done(entries: Sequence[ZooEntry], failed: Sequence[str], root: Path, plot: str | None) -> None:
    for e in sorted(entries, key=lambda e: e.profile(e.devices()[0]).train_step_ms):
        p = e.profile(e.devices()[0])
        log.info(
            "  %-28s %-9s top1 %.3f  step %.1f ms (batch %d)  %.2f M params",
            e.name,
            e.kind,
            e.top1,
            p.train_step_ms,
            p.batch_size,
            e.params / 1e6,
        )
    if failed:
        log.error("failed entries: %s (see the log above)", ", ".join(failed))
    log.info("zoo written: %s, plot %s", root / MANIFEST_FILE, plot)


def _run_with_progress(pool: TrainPool, sink: ray.actor.ActorHandle, todo: Sequence[ZooItem]) -> None:
    """Queue every item and log each one as it lands."""
    keys = [it.key for it in todo]
    ray.get(pool.queue.put.remote(list(todo)))
    done: set[str] = set()
    while True:
        got = ray.get(sink.wait_for.remote(keys, 5.0))
        for key in got.keys() - done:
            log.info("  pretrained %s (%d/%d)", got[key].name, len(done) + 1, len(keys))
            done.add(key)
        stats = ray.get(pool.queue.stats.remote())
        finished = stats["evaluated"] + len(stats["given_up"])
        if len(done) == len(keys) or (finished >= len(keys) and not stats["in_flight"]):
            return
        if pool.error is not None or not pool.thread.is_alive():
            raise RuntimeError(f"the Ray Train run stopped: {pool.error!r}") from pool.error


__all__ = ["ZooSettings", "ZooSink", "pick_items", "run_zoo_job"]
