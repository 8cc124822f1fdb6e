"""Shared fixtures: one local Ray instance per session, started only by the tests that need it."""

import os
import shutil
import tempfile

os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
os.environ.setdefault("RAY_AUTH_MODE", "disabled")
os.environ.setdefault("RAY_TRAIN_HEALTH_CHECK_INTERVAL_S", "0.2")
os.environ.setdefault("RAY_DEDUP_LOGS", "0")
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # 2 busy cores: spinning OpenMP threads waste them

import pytest  # noqa: E402
import torch  # noqa: E402
from hypothesis import settings  # noqa: E402

# Reproducible property tests: the "ci" profile (the default) derives every draw from the test itself, so a failure
# seen once is seen on every run, and prints the @reproduce_failure blob to replay it. HYPOTHESIS_PROFILE=explore
# draws at random (hypothesis's own default) to look for new failures; its failures print their blob too.
settings.register_profile("ci", derandomize=True, database=None, print_blob=True, deadline=None)
settings.register_profile("explore", print_blob=True, deadline=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))

torch.set_num_threads(1)  # 2 threads on 2 busy cores (Ray workers beside) thrash


@pytest.fixture(scope="session")
def ray_session():
    """A private local Ray with 2 CPUs; shut down after the session."""
    import ray

    tmp = tempfile.mkdtemp(prefix="nasoa-ray-", dir="/tmp")  # Ray's socket paths must stay under 107 bytes
    ray.init(
        address="local",
        num_cpus=2,
        include_dashboard=False,
        log_to_driver=False,
        object_store_memory=200 * 1024**2,
        _temp_dir=tmp,
    )
    try:
        yield ray
    finally:
        ray.shutdown()
        shutil.rmtree(tmp, ignore_errors=True)
