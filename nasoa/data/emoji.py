"""Emoji icons rendered from Debian's ``fonts-noto-color-emoji``, labelled by Debian's ``unicode-data`` table.

Labels come from ``/usr/share/unicode/emoji/emoji-test.txt`` (its ``# group:`` and ``# subgroup:`` lines): every
``fully-qualified`` emoji except skin-tone variants (code points U+1F3FB..U+1F3FF), about 1,870 emoji in 9 groups and
99 subgroups. Each is drawn once with Pillow from ``NotoColorEmoji.ttf`` at size 109 (the font's only bitmap
strike; needs Pillow with libraqm for multi-code-point sequences), composited on white, cropped to its bounding
box, padded to a square and stored at 64x64 RGB in the nasoa cache, keyed by the font and table files and the
Pillow version. An emoji the font draws as nothing, or as several glyphs side by side, is skipped with a warning.

Kind ``emoji``: ``level=group`` (the 9 groups) or ``level=subgroup`` (the subgroups), optionally restricted with
``groups=[...]`` / ``subgroups=[...]`` (names or slugs such as ``smileys-emotion``) and ``min_per_class``. There is
one image per emoji, so tasks lean on training augmentation (a random resized crop, no flips: arrows and letters
have a direction). Variants that differ only by gender (``man cook``, ``woman cook``, ``cook``) form one group that
never straddles two splits or shards; ``min_per_class`` counts such groups.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont, features
from PIL import __version__ as pil_version

from nasoa.data.augment import Augment
from nasoa.data.pool import ImagePool, pool_task
from nasoa.data.sources import apt_hint, cached_arrays, content_hashes, file_signature, require_path, slug
from nasoa.data.task import Task

log = logging.getLogger(__name__)

EMOJI_FONT = Path("/usr/share/fonts/truetype/noto/NotoColorEmoji.ttf")
EMOJI_TABLE = Path("/usr/share/unicode/emoji/emoji-test.txt")
#: The font's bitmap strike: the only size it renders at.
FONT_SIZE = 109
#: Stored side in pixels.
STORE = 64
#: Default training augmentation: random resized crops, no flips.
EMOJI_AUGMENT = Augment(crop="resized", scale=(0.6, 1.0))
LEVELS = ("group", "subgroup")
_SKIN_TONES = range(0x1F3FB, 0x1F400)
_GENDER = re.compile(r"\b(man|woman|men|women|person|people|boy|girl)\b")
_VERSION = "emoji-v1"


@dataclass(frozen=True)
class Emoji:
    """One emoji of the table: its code points, group, subgroup and name."""

    codepoints: tuple[int, ...]
    group: str
    subgroup: str
    name: str

    @property
    def text(self) -> str:
        return "".join(map(chr, self.codepoints))


def read_emoji_table(path: str | Path = EMOJI_TABLE) -> list[Emoji]:
    """The fully-qualified emoji of emoji-test.txt without skin-tone variants, in file order.

    Raises:
        MissingSourceError: If the table is not installed.
    """
    path = require_path(path, "Unicode emoji-test.txt", apt_hint("unicode-data"))
    out, group, subgroup = [], "", ""
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.startswith("# group:"):
            group = line.split(":", 1)[1].strip()
        elif line.startswith("# subgroup:"):
            subgroup = line.split(":", 1)[1].strip()
        elif line.strip() and not line.startswith("#"):
            fields, _, comment = line.partition("#")
            points, _, status = fields.partition(";")
            codepoints = tuple(int(c, 16) for c in points.split())
            if status.strip() != "fully-qualified" or any(c in _SKIN_TONES for c in codepoints):
                continue
            name = re.sub(r"^\S+\s+E\d+\.\d+\s+", "", comment.strip())
            out.append(Emoji(codepoints, group, subgroup, name))
    return out


def _render(emojis: list[Emoji], font_path: Path) -> dict[str, np.ndarray]:

    log.info("emoji: rendering %d emoji (cached afterwards)", len(emojis))
    font = ImageFont.truetype(str(font_path), FONT_SIZE)
    images, kept = [], []
    canvas = 3 * FONT_SIZE
    for i, e in enumerate(emojis):
        im = Image.new("RGBA", (canvas, canvas), (255, 255, 255, 0))
        ImageDraw.Draw(im).text((canvas / 2, canvas / 2), e.text, font=font, embedded_color=True, anchor="mm")
        bbox = im.getbbox()
        if bbox is None or bbox[2] - bbox[0] > 1.5 * FONT_SIZE:
            log.warning("emoji: skipping %s (%s): the font draws it as %s", e.name, e.text, bbox and "several glyphs")
            continue
        white = Image.new("RGBA", im.size, (255, 255, 255, 255))
        rgb = Image.alpha_composite(white, im).convert("RGB").crop(bbox)
        side = max(rgb.size)
        square = Image.new("RGB", (side, side), "white")
        square.paste(rgb, ((side - rgb.width) // 2, (side - rgb.height) // 2))
        images.append(np.asarray(square.resize((STORE, STORE), Image.Resampling.LANCZOS)).transpose(2, 0, 1))
        kept.append(i)
    stack = np.stack(images) if images else np.zeros((0, 3, STORE, STORE), np.uint8)
    return {"images": stack, "index": np.array(kept, dtype=np.int64), "hashes": content_hashes(stack)}


@lru_cache(maxsize=2)
def load_emoji(font: str | Path = EMOJI_FONT, table: str | Path = EMOJI_TABLE) -> tuple[list[Emoji], dict]:
    """The table's emoji that rendered, and their stored images and hashes (one image per emoji).

    Raises:
        MissingSourceError: If the font or the table is not installed.
    """
    font = require_path(font, "Noto Color Emoji font", apt_hint("fonts-noto-color-emoji"))
    emojis = read_emoji_table(table)
    if not features.check("raqm"):
        log.warning("emoji: Pillow lacks libraqm; emoji sequences render as several glyphs and are skipped")
    signature = f"{file_signature([font, Path(table)])}|pillow {pil_version}|raqm {features.version('raqm')}|{STORE}"
    data = cached_arrays(_VERSION, "noto-color-emoji", signature, lambda: _render(emojis, font))
    return [emojis[i] for i in data["index"].tolist()], data


def _gender_free(name: str) -> str:
    return re.sub(r"[\s:,]+", " ", _GENDER.sub("", name.lower())).strip()


def _matches(value: str, wanted: Sequence[str] | str | None) -> bool:
    if wanted is None:
        return True
    wanted = [wanted] if isinstance(wanted, str) else wanted
    return slug(value) in {slug(str(w)) for w in wanted}


def _check_names(kind: str, wanted: Sequence[str] | str | None, known: Sequence[str]) -> None:
    if wanted is None:
        return
    wanted = [wanted] if isinstance(wanted, str) else wanted
    unknown = [w for w in wanted if slug(str(w)) not in {slug(k) for k in known}]
    if unknown:
        raise ValueError(f"unknown emoji {kind} {unknown}; known: {', '.join(dict.fromkeys(known))}")


@lru_cache(maxsize=4)
def emoji_pool(level: str = "group", font: str | Path = EMOJI_FONT, table: str | Path = EMOJI_TABLE) -> ImagePool:
    """All rendered emoji labelled by group or subgroup (classes in table order)."""
    if level not in LEVELS:
        raise ValueError(f"level must be one of {LEVELS}, got {level!r}")
    emojis, data = load_emoji(font, table)
    values = [getattr(e, level) for e in emojis]
    classes = tuple(dict.fromkeys(values))
    labels = np.array([classes.index(v) for v in values], dtype=np.int64)
    keys = [f"{e.subgroup}/{_gender_free(e.name)}" for e in emojis]
    _, groups = np.unique(np.array(keys, dtype=str), return_inverse=True)
    return ImagePool("emoji", data["images"], labels, classes, data["hashes"], groups.astype(np.int64))


def emoji_classes(
    level: str = "group",
    groups: Sequence[str] | str | None = None,
    subgroups: Sequence[str] | str | None = None,
    min_per_class: int = 3,
    font: str | Path = EMOJI_FONT,
    table: str | Path = EMOJI_TABLE,
) -> list[str]:
    """The classes an emoji task would have: groups or subgroups in the selection with enough distinct emoji.

    Args:
        level: ``"group"`` or ``"subgroup"``.
        groups: Keep emoji of these groups (names or slugs); all when None.
        subgroups: Keep emoji of these subgroups; all when None.
        min_per_class: Drop classes with fewer distinct emoji (gender variants counted once).
        font: The emoji font.
        table: The emoji-test.txt table.

    Returns:
        Class names in table order.
    """
    emojis, _ = load_emoji(font, table)
    _check_names("groups", groups, [e.group for e in emojis])
    _check_names("subgroups", subgroups, [e.subgroup for e in emojis])
    distinct: dict[str, set[str]] = {}
    for e in emojis:
        if _matches(e.group, groups) and _matches(e.subgroup, subgroups):
            distinct.setdefault(getattr(e, level), set()).add(f"{e.subgroup}/{_gender_free(e.name)}")
    return [c for c, members in distinct.items() if len(members) >= min_per_class]


def emoji_task(
    level: str = "group",
    groups: Sequence[str] | str | None = None,
    subgroups: Sequence[str] | str | None = None,
    min_per_class: int = 3,
    classes: Sequence[int | str] | None = None,
    num_train: int | None = None,
    resolution: int = 32,
    channels: int = 3,
    val_fraction: float = 0.2,
    test_fraction: float = 0.2,
    seed: int = 0,
    shard: str | None = None,
    augment: str | None = None,
    font: str | Path = EMOJI_FONT,
    table: str | Path = EMOJI_TABLE,
) -> Task:
    """An icon-classification task: emoji labelled by their group or subgroup.

    Args:
        level: ``"group"`` (9 classes) or ``"subgroup"`` (up to 99).
        groups: Keep emoji of these groups (names like ``"Smileys & Emotion"`` or slugs like ``smileys-emotion``).
        subgroups: Keep emoji of these subgroups.
        min_per_class: Drop classes with fewer distinct emoji than this (gender variants counted once).
        classes: Subset of the remaining classes, by number or name.
        num_train: Cap on training images (stratified pick); all when None.
        resolution: Image side in pixels (stored at 64).
        channels: Output channels (3: RGB, 1: luma).
        val_fraction: Share held out for validation.
        test_fraction: Share held out for test.
        seed: Seed of the split and of the cap.
        shard: ``"k/n"`` or ``"a-b/n"``: tasks on different shards share no image.
        augment: Training augmentation; None: random resized crops, no flips.
        font: The emoji font.
        table: The emoji-test.txt table.

    Returns:
        The task, named ``emoji-<level>``.
    """
    names = emoji_classes(level, groups, subgroups, min_per_class, font, table)
    if classes is not None:
        pick = [classes] if isinstance(classes, (str, int)) else classes
        by_slug = {slug(n): n for n in names}
        names = [names[c] if isinstance(c, int) else by_slug.get(slug(str(c)), str(c)) for c in pick]
    if not names:
        raise ValueError(f"no emoji class left (groups={groups!r}, subgroups={subgroups!r}, min={min_per_class})")
    pool = emoji_pool(level, font, table)
    if level == "group" and subgroups is not None:  # subgroups cut groups: keep only the selected emoji
        emojis, _ = load_emoji(font, table)
        keep = np.array([_matches(e.group, groups) and _matches(e.subgroup, subgroups) for e in emojis])
        labels = np.where(keep, pool.labels, -1)
        pool = _drop_unselected(pool, labels)
    return pool_task(
        pool,
        f"emoji-{level}",
        classes=names,
        num_train=num_train,
        resolution=resolution,
        channels=channels,
        val_fraction=val_fraction,
        test_fraction=test_fraction,
        seed=seed,
        shard=shard,
        augment=augment,
        default_augment=EMOJI_AUGMENT,
    )


def _drop_unselected(pool: ImagePool, labels: np.ndarray) -> ImagePool:
    keep = labels >= 0
    groups = None if pool.groups is None else pool.groups[keep]
    return ImagePool(pool.name, pool.images[keep], labels[keep], pool.classes, pool.hashes[keep], groups)
