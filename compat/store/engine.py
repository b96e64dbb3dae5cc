"""Where the results database is and how compat talks to it: URLs, engines, the
SQLite settings that let parallel writers wait their turn, and read-only opening.

SQLite runs in WAL mode with a busy timeout, and write transactions take the write
lock up front (``BEGIN IMMEDIATE``), so parallel workers and processes wait their
turn instead of failing: SQLite retries for up to ``BUSY_TIMEOUT``, and past that
bound the error says what held the lock and what to do. A reader opens the file
read-only, so a database on a read-only mount (or in a directory it may not write)
can still be read. A database server that stops answering (a restart) is waited for
up to ``RECONNECT_WAIT`` when connecting; a transaction that fails is not retried.
"""

from __future__ import annotations

import logging
import sqlite3
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Self

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.pool import StaticPool

from compat.errors import StoreError, UsageError

DB_ENV = "COMPAT_DB"
DB_FILENAME = "results.db"
BUSY_TIMEOUT = 60.0  # seconds a SQLite writer waits for the lock before giving up
RECONNECT_WAIT = 30.0  # seconds to wait for a database server that stopped answering
log = logging.getLogger("compat.store")


def default_db_url(environ: Mapping[str, str], data_dir: Path, explicit: str | None = None) -> str:
    """The database to use: ``explicit`` (``--db``), else ``COMPAT_DB``, else
    ``results.db`` in ``data_dir``. A value without ``://`` is a SQLite file path."""
    for value in (explicit, environ.get(DB_ENV)):
        if value and value.strip():
            text = value.strip()
            return text if "://" in text else sqlite_url(Path(text).expanduser())
    return sqlite_url(data_dir / DB_FILENAME)


def sqlite_url(path: Path) -> str:
    return f"sqlite:///{path}"


def parse_url(url: str) -> sa.URL:
    try:
        parsed = sa.make_url(url)
    except sa.exc.ArgumentError:
        raise UsageError(
            f"{url!r} is not a database URL: give e.g. sqlite:///path/to/results.db or "
            "postgresql+psycopg://user:password@host/dbname"
        ) from None
    if parsed.drivername in ("postgresql", "postgres"):
        # SQLAlchemy's default PostgreSQL driver is psycopg2; compat ships psycopg 3.
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed


def sqlite_file(url: sa.URL) -> Path | None:
    """The file of a SQLite URL; None for other databases, memory and ``file:`` URIs."""
    database = url.database or ""
    if url.get_backend_name() != "sqlite" or database in ("", ":memory:"):
        return None
    return None if database.startswith("file:") else Path(database)


def create_engine(url: sa.URL, *, read_only: bool = False) -> sa.Engine:
    """An engine for ``url``. A SQLite file is created (with its directory) unless
    ``read_only``; a read-only one must exist."""
    path = sqlite_file(url)
    try:
        if url.get_backend_name() != "sqlite":
            return sa.create_engine(url, pool_pre_ping=True)
        if read_only and path is not None:
            engine = sa.create_engine(url, creator=lambda: _read_only_connection(path))
        else:
            if path is not None:
                path.parent.mkdir(parents=True, exist_ok=True)
            engine = sa.create_engine(url)
    except (sa.exc.NoSuchModuleError, ModuleNotFoundError) as exc:
        raise UsageError(
            f"no database driver for {url.drivername!r} ({exc}): use sqlite:/// or "
            "postgresql+psycopg://"
        ) from None
    except OSError as exc:
        raise StoreError(f"cannot create the directory for {url.database}: {exc}") from None
    _listen(engine, read_only=read_only)
    return engine


def empty_engine() -> sa.Engine:
    """An empty SQLite database in memory, shared by every thread: what a reader
    sees where nothing was recorded yet, without creating a file."""
    engine = sa.create_engine(
        "sqlite://", poolclass=StaticPool, connect_args={"check_same_thread": False}
    )
    _listen(engine, read_only=False)
    return engine


def _read_only_connection(path: Path) -> sqlite3.Connection:
    uri = path.absolute().as_uri()
    conn = sqlite3.connect(f"{uri}?mode=ro", uri=True, check_same_thread=False)
    try:
        conn.execute("SELECT count(*) FROM sqlite_master")  # opening fails only here
        return conn
    except sqlite3.OperationalError:
        conn.close()
    # A WAL database whose directory cannot be written (a read-only mount): SQLite
    # cannot create the shared-memory file readers need, so it is read as a file
    # nobody changes. Nobody can: the mount is read-only. A write-ahead log holding
    # changes cannot be read that way (SQLite only says "unable to open"): say why.
    wal = path.with_name(path.name + "-wal")
    if wal.is_file() and wal.stat().st_size > 0:
        raise StoreError(
            f"the results database {path} cannot be read where it is: its directory is "
            f"read-only and {wal.name} holds changes not yet in the database. Open it "
            "once where it can be written (any compat command), or copy both files."
        )
    conn = sqlite3.connect(f"{uri}?immutable=1", uri=True, check_same_thread=False)
    try:
        conn.execute("SELECT count(*) FROM sqlite_master")
    except sqlite3.Error:
        conn.close()
        raise
    return conn


def _listen(engine: sa.Engine, *, read_only: bool) -> None:
    def on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let the "begin" event below issue BEGIN: pysqlite's own transaction
        # handling starts transactions late and never as IMMEDIATE.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT * 1000)}")
        if not read_only:  # switching to WAL writes the file
            _to_wal(cursor)  # readers never wait for writers
        cursor.execute("PRAGMA foreign_keys = ON")
        cursor.close()

    def on_begin(conn: sa.Connection) -> None:
        # A deferred transaction that reads and then writes cannot wait for the lock
        # in WAL mode (SQLITE_BUSY at once); IMMEDIATE takes it up front and waits.
        write = conn.get_execution_options().get("compat_write", False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")

    sa.event.listen(engine, "connect", on_connect)
    sa.event.listen(engine, "begin", on_begin)


def _to_wal(cursor: sqlite3.Cursor) -> None:
    """Switch the database to WAL mode. The switch needs the file to itself, and
    while another connection writes in the old mode (a second process opening a
    database the first is creating) SQLite refuses it at once, without the busy
    timeout's wait: try again until the other is done (then the switch, or the
    other's, goes through) or ``BUSY_TIMEOUT`` has passed."""
    deadline = time.monotonic() + BUSY_TIMEOUT
    delay = 0.01
    while True:
        try:
            cursor.execute("PRAGMA journal_mode = WAL")
            return
        except sqlite3.OperationalError as exc:
            if str(exc) != "database is locked" or time.monotonic() + delay > deadline:
                raise
        time.sleep(delay)
        delay = min(delay * 2, 0.5)


class Database:
    """An engine and the two kinds of transaction compat uses: reads, and short
    writes committed on leaving. Shared by threads: each call takes a connection."""

    def __init__(self, engine: sa.Engine, *, url: str, read_only: bool = False) -> None:
        self._engine = engine
        self.url = url  # password hidden: fit for messages
        self.read_only = read_only

    def close(self) -> None:
        self._engine.dispose()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    @contextmanager
    def errors(self) -> Iterator[None]:
        """The database's errors as ``StoreError`` naming the database."""
        try:
            yield
        except sa.exc.SQLAlchemyError as exc:
            detail = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0]
            if isinstance(exc, sa.exc.OperationalError) and detail == "database is locked":
                # SQLite waited for the lock as long as BUSY_TIMEOUT allows, then gave up
                raise StoreError(
                    f"results database {self.url} stayed locked for {BUSY_TIMEOUT:g} s: "
                    "another process held its write lock all that time. Run again when it "
                    "has finished, or give each run a database of its own (--db) and "
                    "combine them with `compat db merge`"
                ) from exc
            if "disk is full" in detail or "No space left" in detail:
                raise StoreError(
                    f"results database {self.url}: the disk is full ({detail}). The "
                    "transaction was rolled back whole; free space there and run again"
                ) from exc
            raise StoreError(f"results database {self.url}: {detail}") from exc

    def _connect(self) -> sa.Connection:
        """A connection, waiting up to RECONNECT_WAIT for a database server that does
        not answer (restarting): the pool's pre-ping replaces a connection the server
        dropped. Only connecting is retried: a transaction that failed is never run
        again, so nothing is written twice."""
        wait = 0.0 if self._engine.dialect.name == "sqlite" else RECONNECT_WAIT
        deadline = time.monotonic() + wait
        delay = 0.25
        while True:
            try:
                return self._engine.connect()
            except sa.exc.OperationalError as exc:
                if time.monotonic() + delay > deadline:
                    raise
                detail = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0]
                log.warning(
                    "results database %s does not answer (%s): trying again", self.url, detail
                )
                time.sleep(delay)
                delay = min(delay * 2, 2.0)

    @contextmanager
    def reading(self) -> Iterator[sa.Connection]:
        with self.errors(), self._connect() as conn, conn.begin():
            yield conn

    @contextmanager
    def writing(self) -> Iterator[sa.Connection]:
        """One short transaction, committed on leaving."""
        if self.read_only:
            raise StoreError(f"results database {self.url} was opened read-only")
        with self.errors(), self._connect() as conn:
            conn.execution_options(compat_write=True)
            with conn.begin():
                yield conn


__all__ = [
    "DB_ENV",
    "Database",
    "create_engine",
    "default_db_url",
    "empty_engine",
    "parse_url",
    "sqlite_file",
    "sqlite_url",
]


def insert_missing(conn: sa.Connection, table: sa.Table, row: dict[str, Any]) -> bool:
    """Insert ``row`` unless its key (or another unique column) is taken, without
    racing a concurrent writer. Whether it was inserted."""
    name = conn.dialect.name
    if name == "sqlite":
        return conn.execute(sqlite.insert(table).values(row).on_conflict_do_nothing()).rowcount == 1
    if name == "postgresql":
        # psycopg reports no row count here; the returned key says it was inserted.
        insert = postgresql.insert(table).values(row).on_conflict_do_nothing()
        return conn.execute(insert.returning(*table.primary_key.columns)).first() is not None
    # Elsewhere: check first; a concurrent writer may still make this fail.
    keys = [table.c.uid] if "uid" in table.c else list(table.primary_key.columns)
    if conn.execute(sa.select(*keys).where(*(k == row[k.name] for k in keys))).first():
        return False
    conn.execute(sa.insert(table).values(row))
    return True
