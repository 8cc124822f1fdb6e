"""Shared settings for the model tests: two CPU threads and the names to parametrize over."""

import pytest
import torch

from nasoa.models import list_models

#: The biggest reference models: built and run forward at 32 px by default, trained only in slow tests.
HEAVY = ("resnet101", "regnet_y_8gf", "regnet_y_16gf", "regnet_y_32gf")
#: A few ET-NAS models: published names, an encoding with a skip add and one with a concat.
ETNAS_SAMPLE = ("ET-NAS-A", "ET-NAS-D", "02031-a02_32_2-11-12", "00000-c01_32_2-1")
REFERENCE = tuple(list_models("reference"))
LIGHT = tuple(n for n in REFERENCE if n not in HEAVY)


def params(names, slow=HEAVY):
    """``names`` as pytest params, those in ``slow`` marked slow."""
    return [pytest.param(n, marks=pytest.mark.slow) if n in slow else n for n in names]


@pytest.fixture(autouse=True, scope="module")
def _two_threads():
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    yield
    torch.set_num_threads(before)
