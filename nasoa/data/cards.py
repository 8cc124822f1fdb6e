"""Playing cards cut from the aisleriot card decks of Debian's ``gnome-cards-data``, split by deck.

Each ``/usr/share/aisleriot/cards/*.svgz`` deck is one SVG image holding a 13 x 5 grid: rows clubs, diamonds,
hearts, spades, then jokers and backs; columns A, 2..10, J, Q, K. A deck is rendered once with ``cairosvg`` (PyPI;
needs the system's libcairo2) at 900 px wide (0.2 to 12 s per deck, about two minutes for all on one core), its
52 cards are cut from the first four rows, composited on white, scaled to 64 px high, padded to 64 x 64 and cached
as one .npz per deck in the nasoa cache (keyed by the deck file and the cairosvg version; atomic writes).

Skipped with a logged warning: a deck that fails to render, whose grid cells are not card-shaped (width/height
outside 0.5..0.85) or whose cells are not all covered (not a deck in the usual grid), and the decks listed in
:data:`SKIP` (``swiss-xvii`` has Swiss suits: acorns, bells, roses, shields). Skipped decks are remembered in the
cache, so they are not rendered again.

Kind ``cards:target=suit|rank|face|color``: 4 suits, 13 ranks, face (``court`` J/Q/K vs ``pip`` A..10) or color
(red vs black). Splits are by deck *style*: decks of one family (:data:`FAMILIES`, e.g. ``anglo`` and
``anglo_bitmap``, or the three ``atlasnye`` decks) are one group, so validation and test decks are styles never
seen in training. ``shard`` deals whole families to tasks. Cards are never flipped in training (corner indices
would mirror); the default augmentation is a small pad-and-crop.
"""

from __future__ import annotations

import gzip
import logging
from collections.abc import Sequence
from functools import lru_cache
from io import BytesIO
from pathlib import Path

import numpy as np
from PIL import Image

from nasoa.data.augment import Augment
from nasoa.data.pool import ImagePool, pool_task
from nasoa.data.sources import (
    MissingSourceError,
    apt_hint,
    cached_arrays,
    content_hashes,
    file_signature,
    pip_hint,
    require_path,
)
from nasoa.data.task import Task

log = logging.getLogger(__name__)

CARDS_ROOT = Path("/usr/share/aisleriot/cards")
SUITS = ("clubs", "diamonds", "hearts", "spades")
RANKS = ("A", "2", "3", "4", "5", "6", "7", "8", "9", "10", "J", "Q", "K")
TARGETS: dict[str, tuple[str, ...]] = {
    "suit": SUITS,
    "rank": RANKS,
    "face": ("pip", "court"),
    "color": ("black", "red"),
}
#: Decks not used, with the reason (logged when skipped).
SKIP = {"swiss-xvii": "Swiss suits (acorns, bells, roses, shields), not the French suits of the grid rows"}
#: Decks that are versions of another deck's style (same drawings, other colours or rendering).
FAMILIES = {
    "anglo_bitmap": "anglo",
    "anglo_modern_4_color": "anglo_modern",
    "atlasnye_skat": "atlasnye",
    "Атласные": "atlasnye",
    "gnomangelo_bitmap": "gnomangelo",
    "neoclassical_4_color": "neoclassical",
}
RENDER_WIDTH = 900
#: Stored card height (and side of the stored square) in pixels.
STORE = 64
#: Default training augmentation: pad-and-crop, no flips.
CARDS_AUGMENT = Augment(crop="pad")
_VERSION = "cards-v1"


def _cairosvg():  # noqa: ANN202 - the module
    try:
        import cairosvg  # lazy: optional (pip cairosvg); only rendering needs it, a miss names the package
    except (ImportError, OSError) as exc:  # OSError: libcairo2 missing
        raise MissingSourceError(
            f"cards need cairosvg to render the decks ({exc}); install it with: {pip_hint('cairosvg')} "
            f"and the Cairo library with: {apt_hint('libcairo2')}"
        ) from exc
    return cairosvg


def _cut(sheet: np.ndarray, deck: str) -> np.ndarray | str:
    """The 52 cards of a rendered RGBA sheet as 52 x 3 x STORE x STORE uint8, or why the sheet is not a deck."""
    height, width = sheet.shape[:2]
    cw, ch = width / 13, height / 5
    if not 0.5 <= cw / ch <= 0.85:
        return f"grid cells of {cw:.0f}x{ch:.0f} px are not card-shaped (not a 13 x 5 deck)"
    cards = []
    for row in range(4):
        for col in range(13):
            cell = sheet[int(row * ch) : int((row + 1) * ch), int(col * cw) : int((col + 1) * cw)]
            if (cell[..., 3] > 0).mean() < 0.7:
                return f"grid cell row {row} column {col} is mostly empty (not a 13 x 5 deck)"
            rgba = Image.fromarray(cell, "RGBA")
            white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
            rgb = Image.alpha_composite(white, rgba).convert("RGB")
            w = max(1, round(rgb.width * STORE / rgb.height))
            rgb = rgb.resize((min(w, STORE), STORE), Image.Resampling.LANCZOS)
            square = Image.new("RGB", (STORE, STORE), "white")
            square.paste(rgb, ((STORE - rgb.width) // 2, 0))
            cards.append(np.asarray(square).transpose(2, 0, 1))
    return np.stack(cards)


def _render_deck(path: Path, deck: str) -> dict[str, np.ndarray]:

    empty = np.zeros((0, 3, STORE, STORE), np.uint8)
    if deck in SKIP:
        reason = SKIP[deck]
    else:
        log.info("cards: rendering deck %s (cached afterwards)", deck)
        try:
            png = _cairosvg().svg2png(bytestring=gzip.open(path).read(), output_width=RENDER_WIDTH)
            cut = _cut(np.asarray(Image.open(BytesIO(png)).convert("RGBA")), deck)
        except MissingSourceError:
            raise
        except Exception as exc:  # noqa: BLE001 - cairosvg and gzip raise many kinds on odd files
            cut = f"cannot render it: {type(exc).__name__}: {exc}"
        if not isinstance(cut, str):
            return {"images": cut, "hashes": content_hashes(cut), "skipped": np.array("")}
        reason = cut
    return {"images": empty, "hashes": np.zeros(0, dtype=str), "skipped": np.array(reason)}


def deck_files(root: str | Path = CARDS_ROOT) -> list[Path]:
    """The deck files, sorted by name.

    Raises:
        MissingSourceError: If gnome-cards-data is not installed.
    """
    root = require_path(root, "aisleriot card decks", apt_hint("gnome-cards-data"))
    files = sorted(root.glob("*.svgz"))
    if not files:
        raise MissingSourceError(f"no *.svgz card decks in {root}; install them with: {apt_hint('gnome-cards-data')}")
    return files


@lru_cache(maxsize=64)
def load_deck(path: str | Path) -> tuple[np.ndarray, np.ndarray, str]:
    """The 52 stored cards of one deck (suit-major: clubs A..K, diamonds, hearts, spades), hashes, skip reason."""
    path = Path(path)
    deck = path.name[: -len(".svgz")]
    try:
        import cairosvg  # lazy: optional (pip cairosvg); only rendering needs it, a miss names the package

        tool = f"cairosvg {cairosvg.__version__}"
    except (ImportError, OSError):
        tool = "cairosvg missing"
    signature = f"{file_signature([path])}|{tool}|{RENDER_WIDTH}|{STORE}|skip={SKIP.get(deck, '')}"
    data = cached_arrays(_VERSION, deck, signature, lambda: _render_deck(path, deck))
    reason = str(data["skipped"])
    if reason:
        log.warning("cards: skipping deck %s: %s", deck, reason)
    return data["images"], data["hashes"], reason


def _labels(target: str) -> np.ndarray:
    suit, rank = np.repeat(np.arange(4), 13), np.tile(np.arange(13), 4)
    return {"suit": suit, "rank": rank, "face": (rank >= 10).astype(np.int64), "color": np.isin(suit, [1, 2])}[
        target
    ].astype(np.int64)


@lru_cache(maxsize=8)
def cards_pool(target: str = "suit", root: str | Path = CARDS_ROOT) -> ImagePool:
    """Every card of every usable deck, labelled by target, grouped by deck family."""
    if target not in TARGETS:
        raise ValueError(f"target must be one of {sorted(TARGETS)}, got {target!r}")
    images, hashes, families, decks = [], [], [], []
    for path in deck_files(root):
        x, h, reason = load_deck(path)
        if reason:
            continue
        deck = path.name[: -len(".svgz")]
        images.append(x)
        hashes.append(h)
        families.append(FAMILIES.get(deck, deck))
        decks.append(deck)
    if not images:
        raise MissingSourceError(f"no usable card deck under {root}; install: {apt_hint('gnome-cards-data')}")
    _, family_ids = np.unique(np.array(families, dtype=str), return_inverse=True)
    return ImagePool(
        "cards",
        np.concatenate(images),
        np.tile(_labels(target), len(images)),
        TARGETS[target],
        np.concatenate(hashes),
        np.repeat(family_ids.astype(np.int64), 52),
    )


def cards_task(
    target: str = "suit",
    classes: Sequence[int | str] | None = None,
    num_train: int | None = None,
    resolution: int = 32,
    channels: int = 3,
    val_fraction: float = 0.2,
    test_fraction: float = 0.2,
    seed: int = 0,
    shard: str | None = None,
    augment: str | None = None,
    root: str | Path = CARDS_ROOT,
) -> Task:
    """A playing-card task, split by deck style.

    Args:
        target: ``"suit"`` (4 classes), ``"rank"`` (13), ``"face"`` (pip vs court) or ``"color"`` (black vs red).
        classes: Subset of the target's classes, by number or name (e.g. ``[J, Q, K]`` for rank).
        num_train: Cap on training images (stratified pick); all when None.
        resolution: Image side in pixels (stored at 64).
        channels: Output channels (3: RGB, 1: luma).
        val_fraction: Share of the cards (whole deck families) held out for validation.
        test_fraction: Share held out for test.
        seed: Seed of the split and of the cap.
        shard: ``"k/n"`` or ``"a-b/n"``: whole deck families dealt to shards; tasks on different shards share none.
        augment: Training augmentation; None: pad-and-crop, no flips.
        root: The folder of .svgz decks.

    Returns:
        The task, named ``cards-<target>``.
    """
    return pool_task(
        cards_pool(target, root),
        f"cards-{target}",
        classes=classes,
        num_train=num_train,
        resolution=resolution,
        channels=channels,
        val_fraction=val_fraction,
        test_fraction=test_fraction,
        seed=seed,
        shard=shard,
        augment=augment,
        default_augment=CARDS_AUGMENT,
    )
