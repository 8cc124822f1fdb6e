"""Clipart drawings from Debian's ``openclipart-png`` (public domain), one class per category folder.

The package holds about 8,100 PNG drawings under ``/usr/share/openclipart/png/<category>/<sub-category>/``. Labels
are folder names, and some folders are near duplicates of others (``computer/icons`` themes, ``shapes/stars``,
the ``flags`` tree, ``signs_and_symbols/map_symbols`` repeating ``transportation/aiga-symbols``) or hold series of
one drawing (``signs_and_symbols/clocks``, ``geography/astronomy`` moon phases, ``shapes/jigsaw``); none of those
is used. :data:`CLIPART_SETS` names fixed lists of folders with at least about 25 distinct drawings each, chosen by
looking at them; a folder's images include those of its sub-folders. ``recreation/games/cards`` (playing cards)
is in no set, so the cards domain stays separate.

Each drawing is composited on white (the PNGs have alpha), cropped to its non-white bounding box, padded to a
square and stored at 64x64 RGB in the nasoa cache (one .npz per folder, keyed by the folder's file list, sizes and
mtimes). Drawings over 200 Mpx (three files: two stop signs, a microchip) are skipped with a logged warning, as is
any unreadable or blank file.

Deduplication and groups: the pool behind every clipart task is the union of all set folders (plus any extra
``folders``), deduplicated by content hash (of the stored pixels, so re-encoded copies count too): a drawing in
two folders is dropped from both, copies within one folder are kept once. Inside a folder, files whose names
differ only by a ``bw`` token or a trailing number (``pizza_bw.png``/``pizza.png``, ``hummer_01``..``hummer_07``)
form a group that never straddles two splits or two shards.
"""

from __future__ import annotations

import logging
import re
import warnings
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path

import numpy as np
from PIL import Image, ImageChops
from PIL import __version__ as pil_version

from nasoa.data.augment import Augment
from nasoa.data.pool import ImagePool, pool_task
from nasoa.data.sources import apt_hint, cached_arrays, content_hashes, file_signature, require_path
from nasoa.data.task import Task

log = logging.getLogger(__name__)

CLIPART_ROOT = Path("/usr/share/openclipart/png")
#: Named class sets: each a fixed list of category folders (one class each), disjoint between sets.
CLIPART_SETS: dict[str, tuple[str, ...]] = {
    "animals": ("animals/mammals", "animals/birds", "animals/bugs", "animals/fish"),
    "food": ("food/fruit", "food/desserts", "food/beverages", "food/meats_and_eggs", "food/breads_and_carbs"),
    "leisure": ("recreation/music", "recreation/sports", "recreation/party", "recreation/toys"),
    "travel": ("transportation/vehicles", "transportation/boating", "transportation/roadsigns"),
    "people": ("people/stickmen", "people/smilies", "people/bodypart", "people/clothing"),
    "objects": (
        "computer/hardware",
        "tools/weapons",
        "buildings/homes",
        "signs_and_symbols/weather",
        "plants/flowers",
        "education/books",
    ),
}
#: Stored side in pixels (larger resolutions are upsampled).
STORE = 64
#: Larger drawings are skipped (decoding one takes gigabytes).
MAX_PIXELS = 200_000_000
#: Default training augmentation: pad-and-crop and flips.
CLIPART_AUGMENT = Augment(crop="pad", flip=True)
_HINT = apt_hint("openclipart-png")
_VERSION = "clipart-v1"


def _group_key(folder: str, path: Path) -> str:
    stem = re.sub(r"(^|_)bw(?=_|$)", "", path.stem.lower())
    stem = re.sub(r"[_\-\s\d]+[a-z]?$", "", stem) or stem
    return f"{folder}/{stem}"


def _render(path: Path) -> np.ndarray | None:
    """One drawing as 3 x STORE x STORE uint8 on white, or None (logged) when it cannot be used."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # palette-transparency and decompression-bomb warnings
            limit, Image.MAX_IMAGE_PIXELS = Image.MAX_IMAGE_PIXELS, MAX_PIXELS // 2  # open() refuses over twice this
            try:
                with Image.open(path) as im:
                    factor = max(1, min(im.size) // (4 * STORE))
                    rgba = im.convert("RGBA")
            finally:
                Image.MAX_IMAGE_PIXELS = limit
        if factor > 1:
            rgba = rgba.reduce(factor)
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        rgb = Image.alpha_composite(white, rgba).convert("RGB")
    except Image.DecompressionBombError:
        log.warning("clipart: skipping %s (over %d pixels)", path, MAX_PIXELS)
        return None
    except (OSError, ValueError, SyntaxError) as exc:
        log.warning("clipart: skipping unreadable %s: %s", path, exc)
        return None
    bbox = ImageChops.difference(rgb, Image.new("RGB", rgb.size, "white")).getbbox()
    if bbox is None:
        log.warning("clipart: skipping blank %s", path)
        return None
    rgb = rgb.crop(bbox)
    side = max(rgb.size)
    square = Image.new("RGB", (side, side), "white")
    square.paste(rgb, ((side - rgb.width) // 2, (side - rgb.height) // 2))
    return np.asarray(square.resize((STORE, STORE), Image.Resampling.LANCZOS)).transpose(2, 0, 1).copy()


def _decode_folder(root: Path, folder: str, files: list[Path]) -> dict[str, np.ndarray]:
    log.info("clipart: decoding %d drawings of %s (cached afterwards)", len(files), folder)
    images, names, groups = [], [], []
    for f in files:
        x = _render(f)
        if x is not None:
            images.append(x)
            names.append(str(f.relative_to(root)))
            groups.append(_group_key(folder, f))
    stack = np.stack(images) if images else np.zeros((0, 3, STORE, STORE), np.uint8)
    return {
        "images": stack,
        "files": np.array(names, dtype=str),
        "groups": np.array(groups, dtype=str),
        "hashes": content_hashes(stack),
    }


@lru_cache(maxsize=64)
def load_folder(folder: str, root: str | Path = CLIPART_ROOT) -> dict[str, np.ndarray]:
    """The stored drawings of one folder (and its sub-folders): images, files, groups, hashes.

    Raises:
        MissingSourceError: If openclipart-png is not installed or the folder does not exist.
    """
    root = require_path(root, "openclipart PNG folder", _HINT)
    path = require_path(root / folder, f"openclipart folder {folder!r}", _HINT)
    files = sorted(p for p in path.rglob("*.png") if p.is_file())
    signature = f"{file_signature(files)}|pillow {pil_version}|{STORE}"
    return cached_arrays(_VERSION, folder, signature, lambda: _decode_folder(root, folder, files))


@lru_cache(maxsize=8)
def clipart_pool(folders: tuple[str, ...], root: str | Path = CLIPART_ROOT) -> ImagePool:
    """The pool over some folders (one class each, labelled in the order given).

    Raises:
        MissingSourceError: If openclipart-png is not installed or a folder does not exist.
    """
    parts = [load_folder(f, root) for f in folders]
    images = np.concatenate([p["images"] for p in parts])
    labels = np.concatenate([np.full(len(p["images"]), i, dtype=np.int64) for i, p in enumerate(parts)])
    _, groups = np.unique(np.concatenate([p["groups"] for p in parts]), return_inverse=True)
    hashes = np.concatenate([p["hashes"] for p in parts])
    return ImagePool("clipart", images, labels, tuple(folders), hashes, groups.astype(np.int64))


def _universe(extra: Sequence[str]) -> tuple[str, ...]:
    named = [f for folders in CLIPART_SETS.values() for f in folders]
    return tuple(named + [f for f in extra if f not in named])


def _pick(folders: Sequence[str], classes: Sequence[int | str] | None) -> list[str]:
    if classes is None:
        return list(folders)
    if isinstance(classes, (str, int)):
        classes = [classes]
    by_name = {**{f.rsplit("/", 1)[-1]: f for f in folders}, **{f: f for f in folders}}
    picked = []
    for c in classes:
        if isinstance(c, int) and not isinstance(c, bool) and 0 <= c < len(folders):
            picked.append(folders[c])
        elif str(c) in by_name:
            picked.append(by_name[str(c)])
        else:
            raise ValueError(f"unknown clipart class {c!r}; this set's classes: {', '.join(folders)}")
    return picked


def clipart_task(
    set: str | None = "animals",  # noqa: A002 - the spec option is `set=`
    folders: Sequence[str] | None = None,
    classes: Sequence[int | str] | None = None,
    num_train: int | None = None,
    resolution: int = 32,
    channels: int = 3,
    val_fraction: float = 0.2,
    test_fraction: float = 0.2,
    seed: int = 0,
    shard: str | None = None,
    augment: str | None = None,
    root: str | Path = CLIPART_ROOT,
) -> Task:
    """A drawing-classification task, one class per clipart folder.

    Args:
        set: Name of a class set in CLIPART_SETS (ignored when folders is given).
        folders: Folders under root to use as classes instead of a named set.
        classes: Subset of the set's classes, by number or folder name (``"birds"`` or ``"animals/birds"``).
        num_train: Cap on training images (stratified pick); all when None.
        resolution: Image side in pixels (stored at 64).
        channels: Output channels (3: RGB, 1: luma).
        val_fraction: Share held out for validation (whole near-duplicate groups).
        test_fraction: Share held out for test.
        seed: Seed of the split and of the cap.
        shard: ``"k/n"`` or ``"a-b/n"``: tasks on different shards share no image.
        augment: Training augmentation; None: pad-and-crop plus flips.
        root: The openclipart PNG folder.

    Returns:
        The task, named ``clipart-<set>`` (``clipart`` with explicit folders).
    """
    if folders is None:
        if set not in CLIPART_SETS:
            raise ValueError(f"unknown clipart set {set!r}; sets: {', '.join(CLIPART_SETS)}")
        chosen = list(CLIPART_SETS[set])
        name = f"clipart-{set}"
    else:
        chosen = [folders] if isinstance(folders, str) else [str(f).strip("/") for f in folders]
        name = "clipart"
    chosen = _pick(chosen, classes)
    return pool_task(
        clipart_pool(_universe(chosen), root),
        name,
        classes=chosen,
        num_train=num_train,
        resolution=resolution,
        channels=channels,
        val_fraction=val_fraction,
        test_fraction=test_fraction,
        seed=seed,
        shard=shard,
        augment=augment,
        default_augment=CLIPART_AUGMENT,
    )
