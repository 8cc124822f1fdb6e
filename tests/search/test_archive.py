import math

import pyarrow.parquet as pq
import pytest

from nasoa.common.pareto import dominates, spread
from nasoa.search.archive import (
    ARCHIVE_FILE,
    FRONT_FILE,
    ParetoArchive,
    Record,
    hypervolume,
    non_dominated,
)


def rec(i, acc, ms, status="ok"):
    return Record(f"id{i}", f"enc{i}", "block", 0, status, acc, ms)


def test_add_returns_a_new_archive_and_keeps_the_first_result():
    a = ParetoArchive()
    b = a.add(rec(1, 0.5, 10.0))
    c = b.add(rec(1, 0.9, 1.0), rec(2, 0.6, 20.0))
    assert len(a) == 0 and len(b) == 1 and len(c) == 2
    assert c.get("id1").accuracy == 0.5
    assert "id2" in c and "id3" not in c


def test_front_is_non_dominated_and_excludes_failures():
    records = [rec(1, 0.5, 10), rec(2, 0.6, 20), rec(3, 0.55, 25), rec(4, 0.7, 30), rec(5, 0.99, 1, "failed")]
    front = non_dominated(records)
    assert [r.archid for r in front] == ["id1", "id2", "id4"]
    for f in front:
        assert not any(dominates(o.objectives(), f.objectives()) for o in records if o.ok)


def test_hypervolume_of_a_staircase():
    records = [rec(1, 0.5, 10), rec(2, 0.8, 50)]
    # (0.5 x (1 - 10/100)) + ((0.8 - 0.5) x (1 - 50/100))
    assert hypervolume(records, 100.0) == pytest.approx(0.45 + 0.15)
    assert hypervolume([], 100.0) == 0.0


def test_save_and_load_round_trip(tmp_path):
    archive = ParetoArchive().add(
        rec(1, 0.5, 10), rec(2, 0.4, 20), Record("id3", "e", "macro", 2, "failed", error="boom")
    )
    archive.save(tmp_path)
    loaded = ParetoArchive.load(tmp_path)
    assert [r.archid for r in loaded.records] == ["id1", "id2", "id3"]
    assert loaded.get("id3").error == "boom" and math.isnan(loaded.get("id3").accuracy)
    assert pq.read_table(tmp_path / FRONT_FILE).column("archid").to_pylist() == ["id1"]
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


def test_corrupt_archive_names_the_file(tmp_path):
    ParetoArchive().add(rec(1, 0.5, 10)).save(tmp_path)
    path = tmp_path / ARCHIVE_FILE
    path.write_bytes(path.read_bytes()[:40])
    with pytest.raises(ValueError, match="archive.parquet is corrupt or truncated"):
        ParetoArchive.load(tmp_path)


def test_reads_never_see_a_file_being_replaced(tmp_path):
    import threading

    stop = threading.Event()

    def writer():
        n = 1
        while not stop.is_set():  # archives of changing size, replaced atomically, as fast as possible
            n = n % 40 + 1
            ParetoArchive(tuple(rec(i, 0.5 + i / 100, 10 + i) for i in range(n))).save(tmp_path)

    ParetoArchive().add(rec(1, 0.5, 10)).save(tmp_path)
    thread = threading.Thread(target=writer)
    thread.start()
    try:
        sizes = {len(ParetoArchive.load(tmp_path)) for _ in range(300)}  # a mixed read would raise ValueError
    finally:
        stop.set()
        thread.join()
    assert sizes <= set(range(1, 41))


def test_duplicate_archids_are_refused():
    with pytest.raises(ValueError, match="unique"):
        ParetoArchive((rec(1, 0.5, 1), rec(1, 0.6, 2)))


def test_spread_keeps_both_ends_and_evenly_spaced_members():
    front = [rec(i, 0.5 + i / 100, 10 + i) for i in range(9)]
    assert [r.archid for r in spread(front, 3)] == ["id0", "id4", "id8"]
    assert [r.archid for r in spread(front, 1)] == ["id8"]
    assert spread(front[:2], 5) == front[:2]
