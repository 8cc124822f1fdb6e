import pytest

from ..helpers import fake_profiles, make_tiny_zoo

profiles = fake_profiles


@pytest.fixture()
def tiny_zoo(tmp_path):
    """A two-entry zoo on disk: one ET-NAS network, one reference model, random weights."""
    return make_tiny_zoo(tmp_path)
