"""The archive actor persists every result and comes back from its files when killed."""

import pytest
import ray

from nasoa.cluster.archive_actor import RemoteArchiveStore, start_archive_actor
from nasoa.search.archive import ParetoArchive, Record

pytestmark = [pytest.mark.ray]


def rec(i):
    return Record(f"id{i}", f"enc{i}", "block", 0, "ok", 0.5 + i / 100, 10.0 + i)


def test_killed_archive_actor_restarts_from_what_it_persisted(ray_session, tmp_path):
    actor = start_archive_actor(str(tmp_path))
    store = RemoteArchiveStore(actor)
    for i in range(5):
        assert store.add(rec(i)) is True
    assert store.add(rec(0)) is False  # a duplicate result is refused, not stored twice
    pid_before = ray.get(actor.__ray_call__.remote(lambda self: __import__("os").getpid()))
    ray.kill(actor, no_restart=False)
    records = store.get_many([f"id{i}" for i in range(6)])  # waits for the restarted actor
    assert sorted(records) == [f"id{i}" for i in range(5)]
    assert ray.get(actor.__ray_call__.remote(lambda self: __import__("os").getpid())) != pid_before
    assert len(ParetoArchive.load(tmp_path)) == 5
    ray.kill(actor, no_restart=True)


def test_wait_for_returns_partial_results_at_the_timeout(ray_session, tmp_path):
    actor = start_archive_actor(str(tmp_path))
    ray.get(actor.add.remote(rec(1)))
    got = ray.get(actor.wait_for.remote(["id1", "id2"], 0.2))
    assert list(got) == ["id1"]
    ray.kill(actor, no_restart=True)
