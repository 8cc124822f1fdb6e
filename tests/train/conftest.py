import os

import pytest
import torch
from torch.utils.data import DataLoader, TensorDataset

from nasoa.models import build
from nasoa.train import warm_up

SMALL = "011-_16_1-2-2"  # three stages, ~21 k params


# One intra-op thread by default: on the shared 2-core machine another process running beside the tests made
# 2-thread steps 10-100x slower and erratic (OpenMP barriers), while 1-thread steps stayed near 20 ms.
THREADS = int(os.environ.get("NASOA_TEST_THREADS", "1"))


@pytest.fixture(autouse=True, scope="session")
def _threads():
    old = torch.get_num_threads()
    torch.set_num_threads(THREADS)
    warm_up()  # the first optimizer in a process imports torch._dynamo (seconds): keep it out of deadline tests
    yield
    torch.set_num_threads(old)


@pytest.fixture
def small_net():
    torch.manual_seed(0)
    return build(SMALL, 4)


def separable_data(n: int = 256, classes: int = 4, res: int = 32, seed: int = 0) -> TensorDataset:
    """Each class is a fixed random pattern plus noise: easy to separate."""
    g = torch.Generator().manual_seed(seed)
    patterns = torch.randn(classes, 3, res, res, generator=g)
    y = torch.arange(n) % classes
    x = patterns[y] + 0.5 * torch.randn(n, 3, res, res, generator=g)
    return TensorDataset(x, y)


@pytest.fixture
def loaders():
    train = DataLoader(
        separable_data(256, seed=0), batch_size=32, shuffle=True, generator=torch.Generator().manual_seed(0)
    )
    val = DataLoader(separable_data(128, seed=0), batch_size=64)
    return train, val
