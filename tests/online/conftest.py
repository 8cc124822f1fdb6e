"""Fixtures of the online tests: the fake zoo, simulated experience, a fitted generator."""

import pytest

from nasoa.online import RegimeGenerator
from nasoa.zoo.manifest import ZooEntry

from .fakes import ENTRIES, fitted_generator, random_rows


@pytest.fixture(scope="module")
def entries() -> tuple[ZooEntry, ...]:
    return ENTRIES


@pytest.fixture(scope="module")
def train_rows() -> list[dict]:
    return random_rows(300, seed=0)


@pytest.fixture(scope="module")
def generator(train_rows) -> RegimeGenerator:
    """A generator whose predictor is fitted on simulated runs (module-scoped: do not update it in tests)."""
    return fitted_generator(train_rows)
