"""The zoo on disk: list entries, load one safely with a new head and frozen stages, save weights.

Weights are plain ``state_dict`` files read with ``torch.load(weights_only=True)`` (no arbitrary
pickle), checked against the manifest's SHA-256 before loading, and always inside the zoo folder.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path

from nasoa.zoo.manifest import ZooEntry, read_manifest, write_manifest


class ZooError(ValueError):
    """A zoo entry cannot be used: unknown key, missing or tampered weights, or a path outside the zoo."""


def sha256_file(path: str | os.PathLike) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


class Zoo:
    """A zoo directory: ``manifest.parquet`` and one weights file per entry."""

    def __init__(self, root: str | os.PathLike) -> None:
        self.root = Path(root).resolve()
        self._entries = {e.key: e for e in read_manifest(self.root)}

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, key: object) -> bool:
        return key in self._entries

    def keys(self) -> list[str]:
        return list(self._entries)

    def entries(self, kind: str | None = None) -> list[ZooEntry]:
        return [e for e in self._entries.values() if kind is None or e.kind == kind]

    def get(self, key: str) -> ZooEntry:
        if key not in self._entries:
            raise ZooError(f"unknown zoo key {key!r}; known: {', '.join(sorted(self._entries)) or 'none'}")
        return self._entries[key]

    def weights_path(self, entry: ZooEntry) -> Path:
        """The entry's weights file, refused if it would resolve outside the zoo folder."""
        path = (self.root / entry.weights).resolve()
        if self.root not in path.parents:
            raise ZooError(f"{entry.key}: weights path {entry.weights!r} escapes the zoo folder {self.root}")
        return path

    def verify(self, key: str) -> Path:
        """Check that the entry's weights exist and match the manifest's SHA-256; returns the path."""
        entry = self.get(key)
        path = self.weights_path(entry)
        if not path.is_file():
            raise ZooError(f"{key}: weights file {path} is missing")
        actual = sha256_file(path)
        if actual != entry.sha256:
            raise ZooError(
                f"{key}: weights file {path} does not match the manifest (sha256 {actual[:12]}..., "
                f"expected {entry.sha256[:12]}...): it was modified or corrupted; refusing to load it"
            )
        return path

    def load(self, key: str, num_classes: int | None = None, frozen_stages: int = 0, device: str = "cpu"):  # noqa: ANN201
        """Build the entry's model, load its verified weights, put a fresh ``num_classes`` head on, freeze."""
        import torch  # lazy: the service reads zoo manifests without torch

        from nasoa.models import create_model  # lazy: as above

        entry = self.get(key)
        path = self.verify(key)
        model = create_model(entry.arch, entry.num_classes)
        state = torch.load(path, map_location="cpu", weights_only=True)
        model.load_state_dict(state)
        if num_classes is not None and num_classes != entry.num_classes:
            model.reset_classifier(num_classes)
        if frozen_stages:
            model.freeze(frozen_stages)
        return model.to(device)

    def update(self, entries: list[ZooEntry]) -> None:
        """Replace entries with the same key (e.g. new device profiles) and rewrite the manifest."""
        for e in entries:
            self._entries[e.key] = e
        write_manifest(list(self._entries.values()), self.root)


def save_weights(model, root: str | os.PathLike, key: str) -> tuple[str, str]:  # noqa: ANN001
    """Save a model's ``state_dict`` as ``weights/<key>.pt`` atomically; returns (relative path, sha256)."""
    import torch  # lazy: the service reads zoo manifests without torch

    rel = Path("weights") / f"{key}.pt"
    path = Path(root) / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    os.close(fd)
    try:
        torch.save({k: v.detach().cpu() for k, v in model.state_dict().items()}, tmp)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return str(rel), sha256_file(path)


__all__ = ["Zoo", "ZooEntry", "ZooError", "save_weights", "sha256_file", "write_manifest"]
