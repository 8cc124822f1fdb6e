"""The model zoo: a manifest of pretrained, profiled models (``<arch>.<tag>`` keys) and their weights."""

from nasoa.zoo.manifest import MANIFEST_FILE, Profile, ZooEntry, read_manifest, write_manifest
from nasoa.zoo.store import Zoo, ZooError, save_weights, sha256_file

__all__ = [
    "MANIFEST_FILE",
    "Profile",
    "Zoo",
    "ZooEntry",
    "ZooError",
    "read_manifest",
    "save_weights",
    "sha256_file",
    "write_manifest",
]
