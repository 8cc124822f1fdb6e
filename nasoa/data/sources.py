"""Offline image sources: finding installed files, naming what to install, and the on-disk array cache.

Every real image source is installed from a package registry (Debian or PyPI); nothing is downloaded at run time.
When a source is missing, :class:`MissingSourceError` names the package and the exact command that installs it.

Decoded or rendered sources are cached as compressed ``.npz`` files under :func:`cache_dir` (``$NASOA_CACHE``,
default ``~/.cache/nasoa``), one file per source part, keyed by the source name and a format version, and
stamped with a signature of the source files (path, size, mtime) and of the tools that decoded them: a changed
source file or tool version rebuilds the entry. Entries are written to a temporary file and moved into place
with ``os.replace``, so a crash never leaves a torn cache file; an unreadable entry is rebuilt.
"""

from __future__ import annotations

import hashlib
import importlib.util
import logging
import os
import re
import zipfile
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path

import numpy as np

log = logging.getLogger(__name__)

#: Environment variable naming the cache folder.
CACHE_ENV = "NASOA_CACHE"


class MissingSourceError(FileNotFoundError):
    """An image source is not installed; the message names the package and the command that installs it."""


def apt_hint(package: str) -> str:
    """The install command of a Debian package, for error messages."""
    return f"apt-get install -y {package}  (Debian package {package!r})"


def pip_hint(package: str) -> str:
    """The install command of a PyPI package, for error messages."""
    return f"pip install {package}  (PyPI package {package!r}; `.venv/bin/pip install {package}` in this repository)"


def require_path(path: str | os.PathLike, what: str, hint: str) -> Path:
    """Returns path if it exists, else raises MissingSourceError.

    Args:
        path: The file or folder the source needs.
        what: What it is, e.g. "Fashion-MNIST t10k images".
        hint: How to install it (see :func:`apt_hint` and :func:`pip_hint`).

    Raises:
        MissingSourceError: If the path does not exist.
    """
    path = Path(path).expanduser()
    if not path.exists():
        raise MissingSourceError(f"{what} not found at {path}; install it with: {hint}")
    return path


def package_file(package: str, relative: str, what: str, hint: str | None = None) -> Path:
    """A data file shipped inside an installed Python package, found without importing the package.

    Raises:
        MissingSourceError: If the package is not installed or lacks the file.
    """
    hint = hint or pip_hint(package)
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise MissingSourceError(f"{what}: Python package {package!r} is not installed; install it with: {hint}")
    return require_path(Path(next(iter(spec.submodule_search_locations))) / relative, what, hint)


def cache_dir() -> Path:
    """The cache folder: ``$NASOA_CACHE`` or ``~/.cache/nasoa``."""
    return Path(os.environ.get(CACHE_ENV) or Path.home() / ".cache" / "nasoa").expanduser()


def file_signature(paths: Iterable[str | os.PathLike]) -> str:
    """A stamp of files' paths, sizes and modification times (changes when any file does)."""
    parts = []
    for p in paths:
        st = os.stat(p)
        parts.append(f"{os.fspath(p)}:{st.st_size}:{st.st_mtime_ns}")
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()


def slug(text: str) -> str:
    """Lowercase letters, digits and single dashes (``"Smileys & Emotion"`` -> ``"smileys-emotion"``)."""
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


def content_hash(image: np.ndarray) -> str:
    """Hash of an image's pixels and shape (hex, 20 digits): equal pixels give equal hashes."""
    arr = np.ascontiguousarray(image)
    h = hashlib.blake2b(digest_size=10)
    h.update(str((arr.dtype.str, arr.shape)).encode())
    h.update(arr.tobytes())
    return h.hexdigest()


def content_hashes(images: np.ndarray) -> np.ndarray:
    """:func:`content_hash` of every image in a batch, as an array of strings."""
    return np.array([content_hash(x) for x in images], dtype=str)


def _entry_path(source: str, key: str) -> Path:
    name = re.sub(r"[^A-Za-z0-9_.-]+", "_", key).strip("_") or "all"
    if len(name) > 80:
        name = f"{name[:60]}-{hashlib.sha1(key.encode()).hexdigest()[:12]}"
    return cache_dir() / source / f"{name}.npz"


def _read(path: Path, signature: str) -> dict[str, np.ndarray] | None:
    try:
        with np.load(path, allow_pickle=False) as data:
            if str(data["__signature__"]) != signature:
                return None
            return {k: data[k] for k in data.files if k != "__signature__"}
    except FileNotFoundError:
        return None
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as exc:
        log.warning("cache entry %s is unreadable (%s); rebuilding it", path, exc)
        return None


def write_npz(path: Path, arrays: Mapping[str, np.ndarray]) -> None:
    """Writes arrays as a compressed .npz atomically (temporary file in the same folder, then os.replace)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "wb") as f:
            np.savez_compressed(f, **arrays)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def cached_arrays(
    source: str, key: str, signature: str, build: Callable[[], Mapping[str, np.ndarray]]
) -> dict[str, np.ndarray]:
    """Arrays from the cache entry ``<cache>/<source>/<key>.npz``, built (and stored) when absent or stale.

    Args:
        source: Source name with its format version, e.g. ``"fashion-v1"``; a new version never reads old entries.
        key: The part of the source, e.g. a file or folder name.
        signature: Stamp of the inputs (see :func:`file_signature`); a different stamp rebuilds the entry.
        build: Makes the arrays (no object arrays: strings as fixed-width unicode arrays).

    Returns:
        The arrays by name.
    """
    path = _entry_path(source, key)
    arrays = _read(path, signature)
    if arrays is not None:
        return arrays
    arrays = {k: np.asarray(v) for k, v in build().items()}
    try:
        write_npz(path, {**arrays, "__signature__": np.array(signature)})
    except OSError as exc:  # a read-only or full cache only costs time
        log.warning("cannot write cache entry %s: %s", path, exc)
    return arrays
