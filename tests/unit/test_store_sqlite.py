"""What is particular to SQLite: the file, WAL mode, waiting for the write lock,
and how the database is chosen."""

from __future__ import annotations

import io
import sqlite3
import threading
import time
from pathlib import Path

import pytest

from compat.errors import UsageError
from compat.store import Store, default_db_url, sqlite_url
from compat.store.store import _parse_url
from tests.unit.test_store import failed, make_combo, make_target, passed


def test_the_database_file_and_its_directory_are_created(tmp_path: Path) -> None:
    path = tmp_path / "data" / "compat" / "results.db"
    with Store.open(sqlite_url(path)) as store:
        assert store.url == sqlite_url(path)
    assert path.is_file()
    raw = sqlite3.connect(path)
    try:
        assert raw.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    finally:
        raw.close()


def test_default_db_url_honours_the_flag_then_the_environment(tmp_path: Path) -> None:
    data = tmp_path / "data"
    pg = "postgresql+psycopg://compat@db.example/results"
    assert default_db_url({}, data) == f"sqlite:///{data}/results.db"
    assert default_db_url({"COMPAT_DB": pg}, data) == pg
    assert default_db_url({"COMPAT_DB": pg}, data, explicit="sqlite:///x.db") == "sqlite:///x.db"
    assert default_db_url({"COMPAT_DB": "  "}, data, explicit="") == f"sqlite:///{data}/results.db"
    # a path is a SQLite file
    assert default_db_url({}, data, explicit="/srv/compat.db") == "sqlite:////srv/compat.db"
    assert default_db_url({"COMPAT_DB": "runs.db"}, data) == "sqlite:///runs.db"


def test_urls_that_cannot_work_are_usage_errors(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="not a database URL") as bad:
        Store.open("results")
    assert bad.value.exit_code == 2
    with pytest.raises(UsageError, match="no database driver"):
        Store.open("nosuchdb://host/db")
    # SQLAlchemy would pick psycopg2 for a bare postgresql:// URL; compat ships psycopg 3
    assert _parse_url("postgresql://u:p@h/db").drivername == "postgresql+psycopg"
    assert _parse_url("postgres://u:p@h/db").drivername == "postgresql+psycopg"


def test_the_password_stays_out_of_messages() -> None:
    assert "secret" not in _parse_url("postgresql://u:secret@h/db").render_as_string(
        hide_password=True
    )


def _hold_write_lock(path: Path, seconds: float) -> threading.Thread:
    """Another process's writer: takes the lock, writes, commits ``seconds`` later."""
    ready = threading.Event()

    def hold() -> None:
        raw = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        raw.execute("BEGIN IMMEDIATE")
        raw.execute("UPDATE runs SET strategy = 'held'")
        ready.set()
        time.sleep(seconds)
        raw.execute("COMMIT")
        raw.close()

    thread = threading.Thread(target=hold)
    thread.start()
    ready.wait()
    return thread


def test_readers_do_not_wait_for_a_writer(tmp_path: Path) -> None:
    path = tmp_path / "results.db"
    with Store.open(sqlite_url(path)) as store:
        target = make_target()
        run_id = store.start_run(target, backend="docker")
        store.record(run_id, target, passed(target, make_combo(target, {"numpy": "2.0.2"})))
        holder = _hold_write_lock(path, 1.0)
        started = time.monotonic()
        assert len(store.results()) == 1
        assert store.is_done(make_combo(target, {"numpy": "2.0.2"}).id, target.image_id)
        assert time.monotonic() - started < 0.5
        holder.join()


def test_a_writer_waits_for_the_lock_instead_of_failing(tmp_path: Path) -> None:
    """An import reads (is this result here?) before it writes: such a transaction
    must take the lock first, or SQLite refuses it once the other writer commits."""
    source, path = tmp_path / "source.db", tmp_path / "results.db"
    with Store.open(sqlite_url(source)) as origin:
        target = make_target()
        run_id = origin.start_run(target, backend="docker")
        origin.record(run_id, target, failed(target, make_combo(target, {"lightgbm": "4.5.0"})))
        exported = io.StringIO()
        origin.export_json(exported)
    header, target_line, run_line, result_line = exported.getvalue().splitlines()

    with Store.open(sqlite_url(path)) as store:
        store.import_json(io.StringIO(f"{header}\n{target_line}\n{run_line}\n"))
        holder = _hold_write_lock(path, 0.5)
        started = time.monotonic()
        added = store.import_json(io.StringIO(f"{header}\n{result_line}\n"))
        waited = time.monotonic() - started
        holder.join()
        assert added.results == 1
        assert waited >= 0.4
        assert store.runs()[0].strategy == "held"  # the other writer's change is kept
        store.record(run_id, target, passed(target, make_combo(target, {"numpy": "2.0.2"})))
        assert len(store.results()) == 2
