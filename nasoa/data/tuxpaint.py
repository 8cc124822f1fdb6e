"""Tux Paint stamps (Debian ``tuxpaint-stamps-default``, GPL): artwork kept apart as an unseen check.

Nothing in the pretraining, the experience or the task suite uses this package: its tasks are the "tasks the
project never saw" on which the regime service's picks are checked against a plain default
(``conf/tasks/unseen.yaml``, ``launch/benchmark.py --unseen``). About 800 PNG stamps under
``/usr/share/tuxpaint/stamps/<category>/[<sub-category>/]``, one class per folder; each is composited on white,
cropped, padded to a square and stored at 64x64 like the clipart drawings (cached), and deduplicated by content.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path

import numpy as np
from PIL import __version__ as pil_version

from nasoa.data.augment import Augment
from nasoa.data.clipart import STORE, _decode_folder
from nasoa.data.pool import ImagePool, pool_task
from nasoa.data.sources import apt_hint, cached_arrays, file_signature, require_path
from nasoa.data.task import Task

TUXPAINT_ROOT = Path("/usr/share/tuxpaint/stamps")
#: Named class sets of the unseen check: each a list of stamp folders (one class each).
TUXPAINT_SETS: dict[str, tuple[str, ...]] = {
    "animals": ("animals/birds", "animals/fish", "animals/insects", "animals/mammals"),
    "things": ("food", "plants", "vehicles", "household"),
    "town": ("town/flags", "town/roadsigns", "town/monuments", "town/houses"),
    "symbols": ("symbols/alphabets", "symbols/chess", "seasonal", "space"),
}
_HINT = apt_hint("tuxpaint-stamps-default")
_VERSION = "tuxpaint-v1"


@lru_cache(maxsize=32)
def load_stamps(folder: str, root: str | Path = TUXPAINT_ROOT) -> dict[str, np.ndarray]:
    """The stored stamps of one folder (and its sub-folders): images, files, groups, hashes.

    Raises:
        MissingSourceError: If tuxpaint-stamps-default is not installed or the folder does not exist.
    """
    root = require_path(root, "Tux Paint stamps folder", _HINT)
    path = require_path(root / folder, f"Tux Paint stamps folder {folder!r}", _HINT)
    files = sorted(p for p in path.rglob("*.png") if p.is_file())
    signature = f"{file_signature(files)}|pillow {pil_version}|{STORE}"
    return cached_arrays(_VERSION, folder.replace("/", "_"), signature, lambda: _decode_folder(root, folder, files))


def tuxpaint_task(
    set: str = "animals",  # noqa: A002 - the spec option is `set=`
    num_train: int | None = None,
    resolution: int = 32,
    channels: int = 3,
    val_fraction: float = 0.2,
    test_fraction: float = 0.2,
    seed: int = 0,
    augment: str | None = None,
    root: str | Path = TUXPAINT_ROOT,
) -> Task:
    """A stamp-classification task of a named set (one class per folder), for the unseen check only.

    Returns:
        The task, named ``tuxpaint-<set>``.
    """
    if set not in TUXPAINT_SETS:
        raise ValueError(f"unknown Tux Paint set {set!r}; sets: {', '.join(TUXPAINT_SETS)}")
    folders = TUXPAINT_SETS[set]
    return pool_task(
        _pool(folders, str(root)),
        f"tuxpaint-{set}",
        num_train=num_train,
        resolution=resolution,
        channels=channels,
        val_fraction=val_fraction,
        test_fraction=test_fraction,
        seed=seed,
        augment=augment,
        default_augment=Augment(crop="pad", flip=True),
    )


@lru_cache(maxsize=8)
def _pool(folders: Sequence[str], root: str) -> ImagePool:
    parts = [load_stamps(f, root) for f in folders]
    images = np.concatenate([p["images"] for p in parts])
    labels = np.concatenate([np.full(len(p["images"]), i, dtype=np.int64) for i, p in enumerate(parts)])
    _, groups = np.unique(np.concatenate([p["groups"] for p in parts]), return_inverse=True)
    hashes = np.concatenate([p["hashes"] for p in parts])
    return ImagePool("tuxpaint", images, labels, tuple(folders), hashes, groups.astype(np.int64))
