"""The journaled archive store: results durable before they are acknowledged, compacted to Parquet, replayed on open."""

import json
import threading

import pyarrow.parquet as pq
import pytest

from nasoa.search.archive import ARCHIVE_FILE, COMPACTING_FILE, FRONT_FILE, JOURNAL_FILE, ParetoArchive, Record
from nasoa.search.evaluator import LocalArchiveStore


def rec(i, acc=None):
    return Record(f"id{i}", f"enc{i}", "block", 0, "ok", 0.5 + i / 1000 if acc is None else acc, 10.0 + i)


def journal_lines(run_dir):
    path = run_dir / JOURNAL_FILE
    return path.read_bytes().count(b"\n") if path.exists() else 0


def test_a_batch_is_one_journal_append_and_readers_see_it_before_compaction(tmp_path):
    store = LocalArchiveStore(tmp_path, compact_rows=100, compact_s=1e9)
    assert store.add_many([rec(1), rec(2), rec(1)]) == [True, True, False]  # the first result wins
    assert store.add(rec(2)) is False and store.duplicates == 2
    assert journal_lines(tmp_path) == 2 and not (tmp_path / ARCHIVE_FILE).exists()
    assert [r.archid for r in ParetoArchive.load(tmp_path).records] == ["id1", "id2"]
    store.compact()
    assert pq.read_table(tmp_path / ARCHIVE_FILE).column("archid").to_pylist() == ["id1", "id2"]
    assert pq.read_table(tmp_path / FRONT_FILE).num_rows >= 1 and journal_lines(tmp_path) == 0
    store.close()


def test_compaction_runs_in_the_background_every_compact_rows(tmp_path):
    store = LocalArchiveStore(tmp_path, compact_rows=10, compact_s=1e9)
    for i in range(25):
        store.add(rec(i))
        if store.compactor is not None:
            store.compactor.join()  # one at a time: a compaction still running defers the next one
    assert store.compactions == 2
    assert pq.read_table(tmp_path / ARCHIVE_FILE).num_rows == 20  # two compactions of ten
    assert journal_lines(tmp_path) == 5 and not (tmp_path / COMPACTING_FILE).exists()
    assert len(ParetoArchive.load(tmp_path)) == 25
    store.close()


def test_compaction_is_due_after_compact_s_too(tmp_path):
    store = LocalArchiveStore(tmp_path, compact_rows=1000, compact_s=0.0)
    store.add(rec(1))
    store.compactor.join()
    assert pq.read_table(tmp_path / ARCHIVE_FILE).num_rows == 1
    store.close()


def test_reopening_replays_the_journal_skips_a_torn_line_and_compacts(tmp_path):
    store = LocalArchiveStore(tmp_path, compact_rows=1000, compact_s=1e9)
    store.add_many([rec(i) for i in range(5)])  # acknowledged, never compacted: the process "dies" here
    with open(tmp_path / JOURNAL_FILE, "ab") as f:
        f.write(b'{"archid": "id9", "enc')  # an append torn by the crash (never acknowledged)
    with pytest.warns(UserWarning, match="unreadable line"), pytest.warns(RuntimeWarning, match="torn last line"):
        again = LocalArchiveStore(tmp_path)
    assert sorted(r.archid for r in again.snapshot().records) == [f"id{i}" for i in range(5)]
    assert pq.read_table(tmp_path / ARCHIVE_FILE).num_rows == 5 and journal_lines(tmp_path) == 0
    assert again.add(rec(3)) is False and again.add(rec(5)) is True
    again.close()


def test_a_compaction_cut_short_loses_nothing(tmp_path):
    """Killed after moving the journal aside, before the Parquet file was rewritten: all three files are read."""
    ParetoArchive().add(rec(0)).save(tmp_path)
    store = LocalArchiveStore(tmp_path, compact_rows=1000, compact_s=1e9)
    store.add_many([rec(1), rec(2)])
    store.journal.close()
    (tmp_path / JOURNAL_FILE).rename(tmp_path / COMPACTING_FILE)
    (tmp_path / JOURNAL_FILE).write_text(json.dumps(rec(3).to_dict()) + "\n")  # appended after the move
    assert [r.archid for r in ParetoArchive.load(tmp_path).records] == ["id0", "id1", "id2", "id3"]
    reopened = LocalArchiveStore(tmp_path)
    assert len(reopened.snapshot()) == 4 and not (tmp_path / COMPACTING_FILE).exists()
    reopened.close()


def test_readers_never_lose_a_result_while_the_writer_compacts(tmp_path):
    store = LocalArchiveStore(tmp_path, compact_rows=20, compact_s=1e9)
    stop, seen_sizes, lost = threading.Event(), [], []

    def reader():
        seen: set[str] = set()
        while not stop.is_set():
            now = {r.archid for r in ParetoArchive.load(tmp_path).records}
            lost.extend(seen - now)
            seen = now
            seen_sizes.append(len(now))

    thread = threading.Thread(target=reader)
    thread.start()
    try:
        for i in range(0, 600, 3):
            store.add_many([rec(i), rec(i + 1), rec(i + 2)])
    finally:
        stop.set()
        thread.join()
    store.close()
    assert not lost and store.compactions >= 5 and max(seen_sizes) > 0
    assert len(ParetoArchive.load(tmp_path)) == 600
