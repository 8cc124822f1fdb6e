import json
import math

import pyarrow.parquet as pq
import pytest

from nasoa.common.io import write_parquet_atomic
from nasoa.data.meta import TaskMeta
from nasoa.online import EXPERIENCE_SCHEMA, ExperienceStore, Regime, experience_row, validate_row
from nasoa.online.experience import JOURNAL_FILE, PARQUET_FILE

from .fakes import ENTRIES

TASK = TaskMeta(num_classes=10, num_train=500, resolution=32, channels=3, name="digits")


def row(i: int, **kw) -> dict:
    regime = Regime("mid.t", 0.01, i % 5, 32, 1 + i % 3)
    return experience_row(TASK, regime, ENTRIES[1], accuracy=0.5 + i / 100, time_s=10.0 + i, budget_s=30.0, **kw)


def test_append_and_read(tmp_path):
    with ExperienceStore(tmp_path / "exp") as store:
        assert len(store) == 0 and store.rows() == []
        for i in range(3):
            assert store.append(row(i, source="collect"))
        rows = store.rows()
        assert len(store) == 3 and [r["accuracy"] for r in rows] == [0.5, 0.51, 0.52]
        first = rows[0]
        assert first["model"] == "mid.t" and first["model_kind"] == "etnas" and first["model_num_stages"] == 4
        assert first["task_name"] == "digits" and first["regime_id"] == Regime("mid.t", 0.01, 0, 32, 1).regime_id
        assert first["finished"] is True and first["feedback_id"] is None and len(first["run_id"]) == 32
        reader = ExperienceStore(tmp_path / "exp", readonly=True)  # readable while written
        assert reader.rows() == rows
        store.append(row(3))
        assert len(reader) == 4
        with pytest.raises(RuntimeError, match="read-only"):
            reader.append(row(4))
        table = store.to_table()
        assert table.schema == EXPERIENCE_SCHEMA and table.num_rows == 4
    with pytest.raises(RuntimeError, match="closed"):
        store.append(row(5))
    assert len(ExperienceStore(tmp_path / "exp", readonly=True)) == 4


def test_one_writer(tmp_path):
    with ExperienceStore(tmp_path):
        with pytest.raises(RuntimeError, match="another writer"):
            ExperienceStore(tmp_path)
    ExperienceStore(tmp_path).close()


def test_feedback_id_is_idempotent(tmp_path):
    with ExperienceStore(tmp_path) as store:
        assert store.append(row(0, feedback_id="fb-1"))
        assert not store.append(row(1, feedback_id="fb-1"))
        assert store.append(row(2, feedback_id="fb-2"))
        assert store.append(row(3))  # no feedback id: never a duplicate
        assert store.append(row(3))
        assert len(store) == 4 and store.duplicates == 1 and "fb-1" in store
    with ExperienceStore(tmp_path) as store:  # remembered across a restart
        assert not store.append(row(5, feedback_id="fb-2"))
        assert len(store) == 4 and store.duplicates == 1


def test_torn_last_line_after_a_crash(tmp_path):
    with ExperienceStore(tmp_path) as store:
        for i in range(5):
            store.append(row(i, feedback_id=f"fb-{i}"))
        expected = store.rows()
    whole = json.dumps(row(9)).encode()
    with open(tmp_path / JOURNAL_FILE, "ab") as fh:  # the crash: half a line, no newline
        fh.write(whole[: len(whole) // 2])
    with pytest.warns(RuntimeWarning, match="torn last line"):
        assert ExperienceStore(tmp_path, readonly=True).rows() == expected
    with pytest.warns(RuntimeWarning, match="torn"):
        store = ExperienceStore(tmp_path)
    with store:
        assert store.rows() == expected
        assert store.append(row(6, feedback_id="fb-6"))  # not glued onto the torn fragment
    reopened = ExperienceStore(tmp_path, readonly=True)
    assert [r["feedback_id"] for r in reopened.rows()] == [f"fb-{i}" for i in (0, 1, 2, 3, 4, 6)]


def test_compact_keeps_everything(tmp_path):
    with ExperienceStore(tmp_path) as store:
        for i in range(5):
            store.append(row(i, feedback_id=f"fb-{i}"))
        before = store.rows()
        assert store.compact() == 5
        assert (tmp_path / JOURNAL_FILE).stat().st_size == 0
        assert pq.read_table(tmp_path / PARQUET_FILE).num_rows == 5
        assert store.rows() == before
        store.append(row(5, feedback_id="fb-5"))
        store.append(row(6))
    with ExperienceStore(tmp_path) as store:
        rows = store.rows()
        assert rows[:5] == before and len(rows) == 7
        assert not store.append(row(7, feedback_id="fb-1"))
        assert store.compact() == 7
    with ExperienceStore(tmp_path) as store:
        assert store.rows() == rows


def test_interrupted_compaction_duplicates_nothing(tmp_path):
    with ExperienceStore(tmp_path) as store:
        for i in range(3):
            store.append(row(i))
        rows = store.rows()
        # A crash between writing the Parquet file and emptying the journal.
        write_parquet_atomic(store.to_table(), tmp_path / PARQUET_FILE)
    assert ExperienceStore(tmp_path, readonly=True).rows() == rows


def test_nan_budget_and_unfinished_runs_round_trip(tmp_path):
    r = experience_row(
        TASK, Regime("fast.t", 0.1, 4, 64, 12), ENTRIES[0], accuracy=0.3, time_s=5.0, finished=False,
        stopped_by="deadline", source="stream",
    )  # fmt: skip
    with ExperienceStore(tmp_path) as store:
        store.append(r)
        store.compact()
    (got,) = ExperienceStore(tmp_path, readonly=True).rows()
    assert math.isnan(got["budget_s"]) and got["finished"] is False and got["stopped_by"] == "deadline"


@pytest.mark.parametrize(
    "change",
    [
        {"accuracy": 1.5},
        {"accuracy": math.nan},
        {"time_s": -1.0},
        {"source": "elsewhere"},
        {"lr": 0.0},
        {"num_train": 0},
        {"finished": "yes"},
        {"feedback_id": ""},
        {"regime_id": "000000000000"},
        {"surprise": 1},
        {"steps": -1},
        {"steps": 2.5},
        {"planned_steps": 0},
        {"curve": [[1, 0.5, 3]]},
        {"curve": [[1, 1.5]]},
        {"curve": "[[1, 0.5]]"},
        {"curve": [[1, 0.5]] * 65},
        {"probes": {"mid.t": 1.2}},
        {"probes": "not json"},
        {"probe_s": -1.0},
        {"step_ms": -3.0},
    ],
)
def test_invalid_rows(tmp_path, change):
    with pytest.raises(ValueError):
        validate_row({**row(0), **change})
    with ExperienceStore(tmp_path) as store, pytest.raises(ValueError):
        store.append({**row(0), **change})
    assert len(ExperienceStore(tmp_path, readonly=True)) == 0


def test_duplicate_run_id(tmp_path):
    r = row(0)
    with ExperienceStore(tmp_path) as store:
        store.append(r)
        with pytest.raises(ValueError, match="run_id"):
            store.append(r)


def test_what_ran_round_trips_through_the_journal_and_parquet(tmp_path):
    regime = Regime("mid.t", 0.03, 1, 32, 3, steps=40)
    r = experience_row(
        TASK, regime, ENTRIES[1], accuracy=0.8, time_s=9.5, budget_s=10.0, finished=True, steps=37,
        epochs_done=37 / 16, step_ms=21.5, curve=[[9, 0.4], [18, 0.6], [28, 0.7], [37, 0.8]],
        probes={"mid.t": 0.55, "fast.t": 0.5}, probe_s=1.25,
    )  # fmt: skip
    assert r["planned_steps"] == 40 and r["steps"] == 37 and r["regime_id"] == regime.regime_id
    with ExperienceStore(tmp_path) as store:
        store.append(r)
        assert store.rows() == [r]
        store.compact()
    (got,) = ExperienceStore(tmp_path, readonly=True).rows()
    assert got == r and got["probes"] == {"fast.t": 0.5, "mid.t": 0.55}
    from nasoa.online.experience import row_regime

    assert row_regime(got) == regime


def test_an_older_store_without_the_new_columns_reads_with_defaults(tmp_path):
    old = [row(i) for i in range(3)]
    names = [n for n in EXPERIENCE_SCHEMA.names if n not in ("planned_steps", "steps", "epochs_done", "step_ms",
                                                               "curve", "probes", "probe_s")]  # fmt: skip
    import pyarrow as pa

    table = pa.Table.from_pylist([{k: r[k] for k in names} for r in old], schema=pa.schema(
        [EXPERIENCE_SCHEMA.field(n) for n in names]))  # fmt: skip
    write_parquet_atomic(table, tmp_path / PARQUET_FILE)
    rows = ExperienceStore(tmp_path, readonly=True).rows()
    assert [r["accuracy"] for r in rows] == [r["accuracy"] for r in old]
    assert all(r["steps"] is None and r["curve"] == [] and r["probes"] == {} and r["probe_s"] == 0 for r in rows)
