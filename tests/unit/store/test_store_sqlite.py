"""What is particular to SQLite: the file, WAL mode, waiting for the write lock,
and how the database is chosen."""

from __future__ import annotations

import io
import os
import shutil
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from compat.errors import StoreError, UsageError
from compat.store import SCHEMA_VERSION, Store, default_db_url, export_json, import_json, sqlite_url
from compat.store.engine import parse_url
from tests.helpers.results import failed, make_combo, make_target, passed, recorded_runs


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
    assert parse_url("postgresql://u:p@h/db").drivername == "postgresql+psycopg"
    assert parse_url("postgres://u:p@h/db").drivername == "postgresql+psycopg"


def test_the_password_stays_out_of_messages() -> None:
    assert "secret" not in parse_url("postgresql://u:secret@h/db").render_as_string(
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


@pytest.mark.slow
def test_readers_do_not_wait_for_a_writer(tmp_path: Path) -> None:
    path = tmp_path / "results.db"
    with Store.open(sqlite_url(path)) as store:
        target = make_target()
        run_id = store.start_run(target, backend="docker")
        store.record(run_id, target, passed(target, make_combo(target, {"numpy": "2.0.2"})))
        holder = _hold_write_lock(path, 1.0)
        started = time.monotonic()
        assert len(store.results()) == 1
        assert store.filter_todo([make_combo(target, {"numpy": "2.0.2"})], target.image_id) == []
        with Store.open(sqlite_url(path), read_only=True) as reader:  # opened read-only too
            assert len(reader.results()) == 1
        assert time.monotonic() - started < 0.5
        holder.join()


@pytest.mark.slow
def test_a_writer_waits_for_the_lock_instead_of_failing(tmp_path: Path) -> None:
    """An import reads (is this result here?) before it writes: such a transaction
    must take the lock first, or SQLite refuses it once the other writer commits."""
    source, path = tmp_path / "source.db", tmp_path / "results.db"
    with Store.open(sqlite_url(source)) as origin:
        target = make_target()
        run_id = origin.start_run(target, backend="docker")
        origin.record(run_id, target, failed(target, make_combo(target, {"lightgbm": "4.5.0"})))
        exported = io.StringIO()
        export_json(origin, exported)
    header, target_line, run_line, result_line = exported.getvalue().splitlines()

    with Store.open(sqlite_url(path)) as store:
        import_json(store, io.StringIO(f"{header}\n{target_line}\n{run_line}\n"))
        holder = _hold_write_lock(path, 0.5)
        started = time.monotonic()
        added = import_json(store, io.StringIO(f"{header}\n{result_line}\n"))
        waited = time.monotonic() - started
        holder.join()
        assert added.results == 1
        assert waited >= 0.4
        assert recorded_runs(sqlite_url(path))[0].strategy == "held"  # the other writer's kept
        store.record(run_id, target, passed(target, make_combo(target, {"numpy": "2.0.2"})))
        assert len(store.results()) == 2


def test_opening_a_database_another_process_is_writing_in_the_old_mode_waits(
    tmp_path: Path,
) -> None:
    # As when two scans create one database at once: the switch to WAL mode needs
    # the file to itself, and SQLite refuses it at once (no busy wait) while the
    # other connection writes.
    path = tmp_path / "results.db"
    other = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    other.execute("CREATE TABLE held (x)")
    other.execute("BEGIN IMMEDIATE")
    other.execute("INSERT INTO held VALUES (1)")
    release = threading.Timer(0.5, other.execute, ("COMMIT",))
    release.start()
    started = time.monotonic()
    try:
        with Store.open(sqlite_url(path)) as store:
            assert store.results() == []
    finally:
        release.join()
        other.close()
    assert time.monotonic() - started >= 0.4
    raw = sqlite3.connect(path)
    try:
        assert raw.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    finally:
        raw.close()


@pytest.mark.slow
def test_a_writer_that_waited_its_bound_says_why_and_what_to_do(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "results.db"
    monkeypatch.setattr("compat.store.engine.BUSY_TIMEOUT", 0.3)
    with Store.open(sqlite_url(path)) as store:
        target = make_target()
        run_id = store.start_run(target, backend="docker")
        holder = _hold_write_lock(path, 2.0)
        started = time.monotonic()
        with pytest.raises(StoreError) as info:
            store.record(run_id, target, passed(target, make_combo(target, {"numpy": "2.0.2"})))
        waited = time.monotonic() - started
        holder.join()
        assert 0.25 <= waited < 1.5  # waited its bound, not the holder out
        assert str(info.value) == (
            f"results database {sqlite_url(path)} stayed locked for 0.3 s: another process "
            "held its write lock all that time. Run again when it has finished, or give "
            "each run a database of its own (--db) and combine them with `compat db merge`"
        )
        # nothing half written: once the lock is free, the same result is recorded once
        store.record(run_id, target, passed(target, make_combo(target, {"numpy": "2.0.2"})))
        assert len(store.results()) == 1


ROOT = Path(__file__).resolve().parents[3]


def _unwritable(directory: Path) -> list[str]:
    """Make ``directory`` unwritable for what runs with the returned command prefix.
    chmod stops other users but never root: as root, the command runs in its own
    mount namespace where the directory is a read-only bind mount (EROFS), which is
    what a read-only volume gives."""
    if os.geteuid() != 0:
        for path in (*directory.iterdir(), directory):
            path.chmod(0o555 if path.is_dir() else 0o444)
        return []
    unshare = shutil.which("unshare")
    if unshare is None:
        pytest.skip("running as root without unshare: cannot make a directory read-only")
    mount = f"mount --bind {directory} {directory} && mount -o remount,ro,bind {directory}"
    probe = subprocess.run(
        [unshare, "-rm", "sh", "-c", f"{mount} && ! touch {directory}/probe 2>/dev/null"],
        capture_output=True,
        check=False,
    )
    if probe.returncode != 0:
        pytest.skip(f"no read-only bind mount here: {probe.stderr.decode().strip()}")
    return [unshare, "-rm", "sh", "-c", f'{mount} && exec "$0" "$@"']


def _compat_unwritable(
    directory: Path, tmp_path: Path, *commands: tuple[str, ...]
) -> list[subprocess.CompletedProcess[str]]:
    """Run compat commands against ``directory/results.db`` while the directory is
    unwritable for them; its permissions are restored afterwards."""
    prefix = _unwritable(directory)
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "COMPAT_DATA_DIR": str(tmp_path / "data"),
        "XDG_CACHE_HOME": str(tmp_path / "cache"),
    }
    db = str(directory / "results.db")
    try:
        return [
            subprocess.run(
                [*prefix, sys.executable, "-m", "compat", "--db", db, *command],
                capture_output=True,
                text=True,
                env=env,
                cwd=tmp_path,
                check=False,
            )
            for command in commands
        ]
    finally:
        for path in (directory, *directory.iterdir()):
            path.chmod(0o755 if path.is_dir() else 0o644)


@pytest.mark.slow
def test_readers_work_on_a_database_nobody_may_write(tmp_path: Path) -> None:
    """results, show, report and lock (at smoke depth: deep records its verdict) on a
    WAL database in a read-only directory, where opening it for writing fails with
    "unable to open database file"."""
    directory = tmp_path / "ro"
    with Store.open(sqlite_url(directory / "results.db")) as store:
        target = make_target()
        with store.run(target, backend="docker") as run_id:
            good = store.record(
                run_id, target, passed(target, make_combo(target, {"numpy": "2.0.2"}))
            )
    assert sorted(p.name for p in directory.iterdir()) == ["results.db"]  # WAL checkpointed
    out = tmp_path / "out"
    shown, one, report, locked, write = _compat_unwritable(
        directory,
        tmp_path,
        ("results",),
        ("show", str(good)),
        ("report", "-o", str(out / "report.html")),
        ("lock", "--base", "alpine", "--depth", "smoke", "-o", str(out / "lock")),
        ("db", "import", os.devnull),
    )
    assert shown.returncode == 0, shown.stderr
    assert "numpy 2.0.2" in shown.stdout
    assert one.returncode == 0, one.stderr
    assert "numpy 2.0.2" in one.stdout
    assert report.returncode == 0, report.stderr
    assert "numpy" in (out / "report.html").read_text()
    assert locked.returncode == 0, locked.stderr
    assert "numpy==2.0.2" in (out / "lock" / "requirements.txt").read_text()
    # the directory really is unwritable: a writer cannot even open the database
    assert write.returncode == StoreError.exit_code, write.stderr
    assert "unable to open database file" in write.stderr
    assert sorted(p.name for p in directory.iterdir()) == ["results.db"]  # nothing left


@pytest.mark.slow
def test_a_log_that_cannot_be_read_is_said_not_ignored(tmp_path: Path) -> None:
    """A database copied with its write-ahead log (changes not yet checkpointed) onto
    a read-only mount cannot be read there: compat says why and what to do."""
    source = tmp_path / "source" / "results.db"
    with Store.open(sqlite_url(source)) as store:
        target = make_target()
        run_id = store.start_run(target, backend="docker")
        holder = sqlite3.connect(source)  # a reader keeps the log from being checkpointed
        holder.execute("SELECT count(*) FROM results").fetchone()
        store.record(run_id, target, passed(target, make_combo(target, {"numpy": "2.0.2"})))
        directory = tmp_path / "ro"
        directory.mkdir()
        for name in ("results.db", "results.db-wal"):
            shutil.copy(source.with_name(name), directory / name)
        holder.close()
    assert (directory / "results.db-wal").stat().st_size > 0
    (shown,) = _compat_unwritable(directory, tmp_path, ("results",))
    assert shown.returncode == StoreError.exit_code, shown.stderr
    assert "results.db-wal holds changes" in shown.stderr


@pytest.mark.slow
def test_an_older_database_nobody_may_write_says_it_needs_upgrading(tmp_path: Path) -> None:
    directory = tmp_path / "ro"
    db = directory / "results.db"
    with Store.open(sqlite_url(db)):
        pass
    raw = sqlite3.connect(db)
    raw.execute("DELETE FROM schema_version WHERE version = ?", (SCHEMA_VERSION,))
    raw.commit()
    raw.close()
    (shown,) = _compat_unwritable(directory, tmp_path, ("results",))
    assert shown.returncode == StoreError.exit_code, shown.stderr
    assert "must be upgraded" in shown.stderr
    assert "run any compat command once where it can be written" in shown.stderr


def test_a_reader_creates_no_database(tmp_path: Path) -> None:
    path = tmp_path / "none" / "results.db"
    with Store.open(sqlite_url(path), read_only=True) as store:
        assert store.results() == []
        assert store.known_good("alpine") == []
        with pytest.raises(StoreError, match="read-only"):
            store.start_run(make_target(), backend="docker")
    assert not path.parent.exists()
