"""The results database: every run, combination, result, check, log, built wheel
and image size, in SQLite (one file, the default) or any SQLAlchemy URL, notably
PostgreSQL for shared nightly runs.

Each result is committed in its own short transaction as it arrives, so a scan
that is killed keeps every result it finished. SQLite runs in WAL mode with a busy
timeout, and write transactions take the write lock up front (``BEGIN
IMMEDIATE``), so parallel workers and processes wait their turn instead of failing.
"""

from __future__ import annotations

import json
import uuid
import zlib
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from functools import cmp_to_key
from pathlib import Path
from types import TracebackType
from typing import IO, Any, Literal

import sqlalchemy as sa
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version
from sqlalchemy.dialects import postgresql, sqlite

from compat import __version__
from compat.errors import StoreError, UsageError
from compat.model import CheckResult, CheckVerdict, Combo, ComboResult, Verdict
from compat.store import migrations
from compat.store.records import (
    BuildRecord,
    ImageSize,
    Imported,
    Incompatibility,
    KnownGood,
    ResultRow,
    RunRecord,
    RunStatus,
    StoredResult,
)
from compat.store.schema import (
    builds,
    checks,
    combinations,
    image_sizes,
    incompatibilities,
    logs,
    pins,
    results,
    runs,
    seen_versions,
    targets,
)
from compat.targets.target import Target

DB_ENV = "COMPAT_DB"
DB_FILENAME = "results.db"
BUSY_TIMEOUT = 60.0  # seconds a SQLite writer waits for the lock before giving up
EXPORT_FORMAT = "compat-results"
EXPORT_VERSION = 1
_BATCH = 500  # rows per query or per import transaction

Prefer = Literal["newest", "oldest"]


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


def _now() -> datetime:
    return datetime.now(UTC)


def _utc(value: datetime) -> datetime:
    # SQLite hands back naive datetimes; everything was written in UTC.
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _uid() -> str:
    return uuid.uuid4().hex


def _text(value: str | None) -> str | None:
    # PostgreSQL text cannot hold NUL; a first error line loses nothing without it.
    return value.replace("\x00", "\ufffd") if value is not None else None


def _pack(log: str) -> tuple[int, bytes]:
    raw = log.encode("utf-8", "surrogatepass")
    return len(raw), zlib.compress(raw)


def _unpack(data: bytes) -> str:
    return zlib.decompress(data).decode("utf-8", "surrogatepass")


def _parse_url(url: str) -> sa.URL:
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


def _on_sqlite_connect(dbapi_connection: Any, _record: Any) -> None:
    # Let SQLAlchemy's "begin" event issue BEGIN (see _on_sqlite_begin): pysqlite's own
    # transaction handling starts transactions late and never as IMMEDIATE.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT * 1000)}")
    cursor.execute("PRAGMA journal_mode = WAL")  # readers never wait for writers
    cursor.execute("PRAGMA foreign_keys = ON")
    cursor.close()


def _on_sqlite_begin(conn: sa.Connection) -> None:
    # A deferred transaction that reads and then writes cannot wait for the lock in
    # WAL mode (SQLITE_BUSY at once); IMMEDIATE takes it up front and waits.
    write = conn.get_execution_options().get("compat_write", False)
    conn.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")


def _create_engine(url: sa.URL) -> sa.Engine:
    try:
        if url.get_backend_name() != "sqlite":
            return sa.create_engine(url, pool_pre_ping=True)
        database = url.database or ""
        if database and database != ":memory:" and not database.startswith("file:"):
            Path(database).parent.mkdir(parents=True, exist_ok=True)
        engine = sa.create_engine(url)
    except (sa.exc.NoSuchModuleError, ModuleNotFoundError) as exc:
        raise UsageError(
            f"no database driver for {url.drivername!r} ({exc}): use sqlite:/// or "
            "postgresql+psycopg://"
        ) from None
    except OSError as exc:
        raise StoreError(f"cannot create the directory for {url.database}: {exc}") from None
    sa.event.listen(engine, "connect", _on_sqlite_connect)
    sa.event.listen(engine, "begin", _on_sqlite_begin)
    return engine


class Store:
    """The results database. Open with ``Store.open(url)``; use as a context manager.
    One store may be shared by threads: each call takes its own connection."""

    def __init__(self, engine: sa.Engine, *, url: str) -> None:
        self._engine = engine
        self.url = url  # password hidden: fit for messages

    @classmethod
    def open(cls, url: str) -> Store:
        """Open (creating if needed) the database at ``url`` and migrate its schema
        forward. Raises ``SchemaTooNew`` if a newer compat wrote it."""
        parsed = _parse_url(url)
        store = cls(_create_engine(parsed), url=parsed.render_as_string(hide_password=True))
        try:
            store._migrate()
        except BaseException:
            store.close()
            raise
        return store

    def close(self) -> None:
        self._engine.dispose()

    def __enter__(self) -> Store:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # -- connections -------------------------------------------------------------

    @contextmanager
    def _errors(self) -> Iterator[None]:
        try:
            yield
        except sa.exc.SQLAlchemyError as exc:
            detail = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0]
            raise StoreError(f"results database {self.url}: {detail}") from exc

    @contextmanager
    def _read(self) -> Iterator[sa.Connection]:
        with self._errors(), self._engine.connect() as conn, conn.begin():
            yield conn

    @contextmanager
    def _write(self) -> Iterator[sa.Connection]:
        """One short transaction, committed on leaving."""
        with self._errors(), self._engine.connect() as conn:
            conn.execution_options(compat_write=True)
            with conn.begin():
                yield conn

    def _migrate(self) -> None:
        with self._read() as conn:
            found = migrations.current_version(conn)
        migrations.check_version(found, self.url)
        if found < migrations.LATEST:
            with self._write() as conn:
                migrations.migrate(conn, url=self.url, now=_now())

    @property
    def schema_version(self) -> int:
        with self._read() as conn:
            return migrations.current_version(conn)

    # -- writing -----------------------------------------------------------------

    def start_run(
        self,
        target: Target,
        *,
        backend: str,
        matrix_name: str | None = None,
        matrix_path: Path | str | None = None,
        strategy: str | None = None,
        shard: str | None = None,
    ) -> str:
        """Record that a run began on ``target``; returns its id for ``record``."""
        run_id = _uid()
        with self._write() as conn:
            _insert_missing(conn, targets, _target_row(target))
            conn.execute(
                sa.insert(runs).values(
                    id=run_id,
                    started=_now(),
                    finished=None,
                    status=RunStatus.RUNNING.value,
                    compat_version=__version__,
                    matrix_name=matrix_name,
                    matrix_path=str(matrix_path) if matrix_path is not None else None,
                    strategy=strategy,
                    base=target.name,
                    image=target.image,
                    image_id=target.image_id,
                    target_key=target.key,
                    backend=backend,
                    shard=shard,
                )
            )
        return run_id

    def finish_run(self, run_id: str, status: RunStatus = RunStatus.FINISHED) -> None:
        with self._write() as conn:
            done = conn.execute(
                sa.update(runs)
                .where(runs.c.id == run_id)
                .values(finished=_now(), status=RunStatus(status).value)
            )
            if done.rowcount != 1:
                raise StoreError(f"no run {run_id} in {self.url}")

    def record(self, run_id: str, target: Target, result: ComboResult) -> int:
        """Store one result (its combination, pins, checks and logs) in its own
        transaction; returns its id. The image ID is the result's, else the target's."""
        with self._write() as conn:
            _insert_missing(conn, targets, _target_row(target))
            return _insert_result(
                conn,
                uid=_uid(),
                run_id=run_id,
                image_id=target.image_id or result.image_id,  # the base the scan asked for
                created=_now(),
                result=result,
            )

    def record_build(
        self,
        *,
        name: str,
        version: Version,
        sdist_sha256: str,
        image_id: str,
        ok: bool,
        duration: float,
        wheel_sha256: str | None = None,
        error: str | None = None,
        run_id: str | None = None,
    ) -> int:
        """Store one attempt to build a wheel from an sdist; returns its id."""
        with self._write() as conn:
            row = conn.execute(
                sa.insert(builds).values(
                    uid=_uid(),
                    run_id=run_id,
                    name=canonicalize_name(name),
                    version=str(version),
                    sdist_sha256=sdist_sha256,
                    image_id=image_id,
                    wheel_sha256=wheel_sha256,
                    ok=ok,
                    duration=duration,
                    error=_text(error),
                    created=_now(),
                )
            )
            return _inserted_id(row)

    def record_image(
        self,
        *,
        base: str,
        image: str,
        image_id: str,
        total_size: int,
        added_size: int,
        lock_hash: str | None = None,
    ) -> int:
        """Store the size of an image built for ``base``; returns its id."""
        with self._write() as conn:
            row = conn.execute(
                sa.insert(image_sizes).values(
                    uid=_uid(),
                    base=base,
                    image=image,
                    image_id=image_id,
                    total_size=total_size,
                    added_size=added_size,
                    lock_hash=lock_hash,
                    measured=_now(),
                )
            )
            return _inserted_id(row)

    # -- what nightly runs have seen, and known incompatibilities ------------------

    def seen_versions(self, scope: str) -> dict[str, set[str]]:
        """Versions recorded as seen for ``scope`` (name -> versions); empty at first."""
        found: dict[str, set[str]] = {}
        with self._read() as conn:
            query = sa.select(seen_versions.c.name, seen_versions.c.version).where(
                seen_versions.c.scope == scope
            )
            for name, version in conn.execute(query):
                found.setdefault(name, set()).add(version)
        return found

    def record_seen(self, scope: str, versions: dict[str, Iterable[str]]) -> int:
        """Remember versions as seen for ``scope``; returns how many were new."""
        known = self.seen_versions(scope)
        rows = [
            {"scope": scope, "name": name, "version": v, "first_seen": _now()}
            for name, vs in versions.items()
            for v in sorted(set(vs) - known.get(name, set()))
        ]
        if rows:
            with self._write() as conn:
                conn.execute(sa.insert(seen_versions), rows)
        return len(rows)

    def record_incompatibility(
        self,
        *,
        base: str,
        image_id: str | None,
        packages: dict[str, str],
        verdict: Verdict,
        explanation: str,
        evidence: Sequence[int] = (),
    ) -> int:
        """Store versions that fail together on ``base``; returns its id. The same
        packages on the same base are stored once (the newest evidence wins)."""
        with self._write() as conn:
            for row in conn.execute(
                sa.select(incompatibilities.c.id, incompatibilities.c.packages).where(
                    incompatibilities.c.base == base
                )
            ):
                if row.packages == packages:
                    conn.execute(
                        sa.update(incompatibilities)
                        .where(incompatibilities.c.id == row.id)
                        .values(
                            verdict=verdict.value,
                            explanation=explanation,
                            evidence=list(evidence),
                            image_id=image_id,
                        )
                    )
                    return int(row.id)
            inserted = conn.execute(
                sa.insert(incompatibilities).values(
                    uid=_uid(),
                    base=base,
                    image_id=image_id,
                    packages=packages,
                    verdict=verdict.value,
                    explanation=explanation,
                    evidence=list(evidence),
                    created=_now(),
                )
            )
            return _inserted_id(inserted)

    def incompatibilities(self, base: str | None = None) -> list[Incompatibility]:
        query = sa.select(incompatibilities).order_by(incompatibilities.c.id)
        if base is not None:
            query = query.where(incompatibilities.c.base == base)
        with self._read() as conn:
            return [
                Incompatibility(
                    id=row.id,
                    base=row.base,
                    image_id=row.image_id,
                    packages=dict(row.packages),
                    verdict=Verdict(row.verdict),
                    explanation=row.explanation,
                    evidence=tuple(row.evidence),
                    created=row.created,
                )
                for row in conn.execute(query)
            ]

    # -- skipping done work ------------------------------------------------------

    def is_done(self, combo_id: str, image_id: str | None) -> bool:
        """Whether the combination has a result (any verdict) on this image ID. Without
        an image ID nothing proves it is the same environment, so never."""
        if image_id is None:
            return False
        with self._read() as conn:
            found = conn.execute(
                sa.select(results.c.id)
                .where(results.c.combination_id == combo_id, results.c.image_id == image_id)
                .limit(1)
            ).first()
        return found is not None

    def filter_todo(
        self, combos: Iterable[Combo], image_id: str | None, *, retest: bool = False
    ) -> list[Combo]:
        """``combos`` without those already tested on ``image_id`` (all with ``retest``),
        in their order."""
        todo = list(combos)
        if retest or image_id is None or not todo:
            return todo
        done: set[str] = set()
        with self._read() as conn:
            for chunk in _chunks([c.id for c in todo]):
                done.update(
                    conn.execute(
                        sa.select(results.c.combination_id).where(
                            results.c.image_id == image_id,
                            results.c.combination_id.in_(chunk),
                        )
                    ).scalars()
                )
        return [c for c in todo if c.id not in done]

    # -- queries -----------------------------------------------------------------

    def runs(self, *, limit: int | None = 20) -> list[RunRecord]:
        """Runs, most recently started first."""
        query = sa.select(runs).order_by(runs.c.started.desc(), runs.c.id).limit(limit)
        with self._read() as conn:
            rows = conn.execute(query).all()
        return [
            RunRecord(
                **{c: row._mapping[c] for c in _RUN_FIELDS if c != "status"},
                status=RunStatus(row.status),
                started=_utc(row.started),
                finished=_utc(row.finished) if row.finished is not None else None,
            )
            for row in rows
        ]

    def results(
        self,
        *,
        base: str | None = None,
        verdict: Verdict | None = None,
        image: str | None = None,
        run_id: str | None = None,
        limit: int | None = 100,
    ) -> list[ResultRow]:
        """Results, newest first. ``image`` matches an image reference or image ID."""
        query = _ROWS.order_by(results.c.created.desc(), results.c.id.desc()).limit(limit)
        if base is not None:
            query = query.where(runs.c.base == base)
        if verdict is not None:
            query = query.where(results.c.verdict == Verdict(verdict).value)
        if image is not None:
            query = query.where(sa.or_(runs.c.image == image, results.c.image_id == image))
        if run_id is not None:
            query = query.where(results.c.run_id == run_id)
        with self._read() as conn:
            return [_result_row(row) for row in conn.execute(query)]

    def latest_results(self, combo_ids: Iterable[str], image_id: str) -> dict[str, ResultRow]:
        """The latest result of each combination on the image ID, for those that have
        one: what a scan that skips done work shows for the combinations it skipped."""
        latest: dict[str, ResultRow] = {}
        with self._read() as conn:
            for chunk in _chunks(list(dict.fromkeys(combo_ids))):
                query = _ROWS.where(
                    results.c.image_id == image_id, results.c.combination_id.in_(chunk)
                ).order_by(results.c.created, results.c.id)
                for row in conn.execute(query):
                    latest[row.combination_id] = _result_row(row)  # later rows win
        return latest

    def target(self, image_id: str) -> Target | None:
        """The target probed for an image ID, as an earlier run recorded it."""
        with self._read() as conn:
            data = conn.execute(
                sa.select(targets.c.data).where(targets.c.image_id == image_id).limit(1)
            ).scalar()
        return Target.from_json(data) if data is not None else None

    def latest_by_target(self) -> list[tuple[Target, list[ComboResult]]]:
        """Every target with the latest result of each combination tested on it, in
        the order the targets were first used: what a report shows."""
        found: list[tuple[Target, list[ComboResult]]] = []
        with self._read() as conn:
            keyed = conn.execute(
                sa.select(targets.c.key, targets.c.data, sa.func.min(runs.c.started))
                .join(runs, runs.c.target_key == targets.c.key)
                .group_by(targets.c.key, targets.c.data)
                .order_by(sa.func.min(runs.c.started))
            ).all()
            for key, data, _first in keyed:
                latest: dict[str, int] = {}
                query = (
                    sa.select(results.c.id, results.c.combination_id)
                    .join(runs, runs.c.id == results.c.run_id)
                    .where(runs.c.target_key == key)
                    .order_by(results.c.created, results.c.id)
                )
                for rid, combination_id in conn.execute(query):
                    latest[combination_id] = rid  # later rows win
                loaded = _load_results(conn, list(latest.values()))
                found.append((Target.from_json(data), [r.result for r in loaded]))
        return found

    def get(self, result_id: int) -> StoredResult | None:
        """One result with its checks and decompressed logs; None if there is none."""
        with self._read() as conn:
            found = _load_results(conn, [result_id])
        return found[0] if found else None

    def known_good(
        self,
        target_or_image: Target | str,
        *,
        prefer: Prefer = "newest",
        constraints: Sequence[Requirement] = (),
        limit: int | None = None,
    ) -> list[KnownGood]:
        """Combinations whose latest verdict on the image passed, best first.

        A Target selects its image ID (its image reference when unprobed); a string
        matches a base name, an image reference or an image ID. ``constraints`` must
        all be met by the combination's pins (markers and extras are not looked at).
        ``newest`` ranks by the highest versions of the requested packages, compared
        package by package: first the packages the constraints name, in their order,
        then the combinations' requested packages; ``oldest`` ranks the other way.
        Ties go to the most recently tested.
        """
        if prefer not in ("newest", "oldest"):
            raise UsageError(f"prefer must be 'newest' or 'oldest', not {prefer!r}")
        if isinstance(target_or_image, Target):
            scope = (
                results.c.image_id == target_or_image.image_id
                if target_or_image.image_id
                else runs.c.image == target_or_image.image
            )
        else:
            name = target_or_image
            scope = sa.or_(runs.c.base == name, runs.c.image == name, results.c.image_id == name)
        query = (
            sa.select(
                results.c.id,
                results.c.combination_id,
                results.c.verdict,
                results.c.image_id,
                results.c.created,
                runs.c.base,
                runs.c.image,
            )
            .join(runs, runs.c.id == results.c.run_id)
            .where(scope)
            .order_by(results.c.created, results.c.id)
        )
        with self._read() as conn:
            latest: dict[str, Any] = {}
            for row in conn.execute(query):
                latest[row.combination_id] = row  # later rows win: the latest verdict
            passing = {cid: row for cid, row in latest.items() if row.verdict == Verdict.PASS}
            combos = _load_combos(conn, list(passing))
        wanted = [(canonicalize_name(r.name), r.specifier) for r in constraints]
        good = [
            KnownGood(
                combo=combo,
                result_id=passing[cid].id,
                base=passing[cid].base,
                image=passing[cid].image,
                image_id=passing[cid].image_id,
                tested=_utc(passing[cid].created),
            )
            for cid, combo in combos.items()
            if all(_meets(combo, name, spec) for name, spec in wanted)
        ]
        order = list(dict.fromkeys([name for name, _ in wanted]))
        for entry in sorted(good, key=lambda g: (g.tested, g.combo.id)):
            order += [n for n in entry.combo.requested if n not in order]
        good.sort(key=cmp_to_key(_ranking(order, newest=prefer == "newest")))
        return good[:limit] if limit is not None else good

    def builds(
        self, *, sdist_sha256: str | None = None, image_id: str | None = None
    ) -> list[BuildRecord]:
        """Build attempts, newest first."""
        query = sa.select(builds).order_by(builds.c.created.desc(), builds.c.id.desc())
        if sdist_sha256 is not None:
            query = query.where(builds.c.sdist_sha256 == sdist_sha256)
        if image_id is not None:
            query = query.where(builds.c.image_id == image_id)
        with self._read() as conn:
            rows = conn.execute(query).all()
        return [
            BuildRecord(
                id=row.id,
                run_id=row.run_id,
                name=canonicalize_name(row.name),
                version=Version(row.version),
                sdist_sha256=row.sdist_sha256,
                image_id=row.image_id,
                wheel_sha256=row.wheel_sha256,
                ok=bool(row.ok),
                duration=row.duration,
                error=row.error,
                created=_utc(row.created),
            )
            for row in rows
        ]

    def image_sizes(self, *, base: str | None = None) -> list[ImageSize]:
        """Measured image sizes, newest first."""
        query = sa.select(image_sizes).order_by(
            image_sizes.c.measured.desc(), image_sizes.c.id.desc()
        )
        if base is not None:
            query = query.where(image_sizes.c.base == base)
        with self._read() as conn:
            rows = conn.execute(query).all()
        return [
            ImageSize(
                id=row.id,
                base=row.base,
                image=row.image,
                image_id=row.image_id,
                total_size=row.total_size,
                added_size=row.added_size,
                lock_hash=row.lock_hash,
                measured=_utc(row.measured),
            )
            for row in rows
        ]

    # -- exchange ----------------------------------------------------------------

    def export_json(self, stream: IO[str]) -> int:
        """Write everything as JSON lines (a header, then one record per line, in an
        order ``import_json`` can replay). Returns the number of records."""
        stream.write(
            json.dumps(
                {
                    "kind": "header",
                    "format": EXPORT_FORMAT,
                    "version": EXPORT_VERSION,
                    "compat": __version__,
                    "exported": _now().isoformat(),
                }
            )
            + "\n"
        )
        count = 0
        for record in self._records():
            stream.write(json.dumps(record, sort_keys=True) + "\n")
            count += 1
        return count

    def import_json(self, stream: IO[str]) -> Imported:
        """Add what an export holds. Records already present (by run id, result,
        build and image uid) are skipped, so importing twice adds nothing."""

        def records() -> Iterator[dict[str, Any]]:
            header: dict[str, Any] | None = None
            for number, line in enumerate(stream, start=1):
                if not line.strip():
                    continue
                try:
                    record = json.loads(line)
                except json.JSONDecodeError as exc:
                    raise StoreError(f"line {number} of the import is not JSON: {exc}") from None
                if header is None:
                    header = record
                    _check_header(header)
                    continue
                yield record
            if header is None:
                raise StoreError("the import is empty: expected a compat export")

        return self._apply_all(records())

    def merge(self, other_url: str) -> Imported:
        """Copy another database's runs, results, builds and image sizes into this
        one, skipping what is already here. The other database is migrated forward
        first, like any database compat opens."""
        with Store.open(other_url) as other:
            return self._apply_all(other._records())

    def _records(self) -> Iterator[dict[str, Any]]:
        """Everything, as export records, parents before children."""
        with self._read() as conn:
            for row in conn.execute(sa.select(targets.c.data).order_by(targets.c.key)):
                yield {"kind": "target", "target": row.data}
            for row in conn.execute(sa.select(runs).order_by(runs.c.started, runs.c.id)):
                yield {"kind": "run", **_run_record(row)}
            ids = list(conn.execute(sa.select(results.c.id).order_by(results.c.id)).scalars())
            for chunk in _chunks(ids):
                for stored in _load_results(conn, chunk):
                    yield {
                        "kind": "result",
                        "uid": stored.uid,
                        "run_id": stored.run_id,
                        "created": stored.created.isoformat(),
                        "result": stored.result.to_json(),
                    }
            for row in conn.execute(sa.select(builds).order_by(builds.c.id)):
                yield {
                    "kind": "build",
                    **{c: row._mapping[c] for c in _BUILD_FIELDS},
                    "created": _utc(row.created).isoformat(),
                }
            for row in conn.execute(sa.select(image_sizes).order_by(image_sizes.c.id)):
                yield {
                    "kind": "image",
                    **{c: row._mapping[c] for c in _IMAGE_FIELDS},
                    "measured": _utc(row.measured).isoformat(),
                }

    def _apply_all(self, records: Iterable[dict[str, Any]]) -> Imported:
        counts = dict.fromkeys(("runs", "results", "builds", "images", "skipped"), 0)
        batch: list[dict[str, Any]] = []

        def flush() -> None:
            with self._write() as conn:
                for record in batch:
                    added = _apply(conn, record)
                    if added is not None:
                        counts[added] += 1
                    elif record["kind"] != "target":
                        counts["skipped"] += 1
            batch.clear()

        for record in records:
            batch.append(record)
            if len(batch) >= _BATCH:
                flush()
        if batch:
            flush()
        return Imported(**counts)


# -- rows ------------------------------------------------------------------------

_RUN_FIELDS = (
    "id",
    "status",
    "compat_version",
    "matrix_name",
    "matrix_path",
    "strategy",
    "base",
    "image",
    "image_id",
    "target_key",
    "backend",
    "shard",
)
_BUILD_FIELDS = (
    "uid",
    "run_id",
    "name",
    "version",
    "sdist_sha256",
    "image_id",
    "wheel_sha256",
    "ok",
    "duration",
    "error",
)
_IMAGE_FIELDS = ("uid", "base", "image", "image_id", "total_size", "added_size", "lock_hash")


_ROWS = (
    sa.select(
        results.c.id,
        results.c.run_id,
        results.c.combination_id,
        results.c.image_id,
        results.c.verdict,
        results.c.failed_check,
        results.c.error,
        results.c.duration,
        results.c.backend,
        results.c.created,
        runs.c.base,
        runs.c.image,
        combinations.c.data,
    )
    .join(runs, runs.c.id == results.c.run_id)
    .join(combinations, combinations.c.id == results.c.combination_id)
)


def _result_row(row: Any) -> ResultRow:  # a row of _ROWS
    return ResultRow(
        id=row.id,
        run_id=row.run_id,
        combination_id=row.combination_id,
        label=Combo.from_json(row.data).label(),
        base=row.base,
        image=row.image,
        image_id=row.image_id,
        verdict=Verdict(row.verdict),
        failed_check=row.failed_check,
        error=row.error,
        duration=row.duration,
        backend=row.backend,
        created=_utc(row.created),
    )


def _chunks(items: Sequence[Any], size: int = _BATCH) -> Iterator[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _inserted_id(done: sa.CursorResult[Any]) -> int:
    key = done.inserted_primary_key
    if key is None:
        raise StoreError("the database did not report the id of a new row")
    return int(key[0])


def _target_row(target: Target) -> dict[str, Any]:
    return {
        "key": target.key,
        "name": target.name,
        "image": target.image,
        "image_id": target.image_id,
        "python": str(target.python_version),
        "data": target.to_json(),
    }


def _run_record(row: sa.Row[Any]) -> dict[str, Any]:
    return {
        **{c: row._mapping[c] for c in _RUN_FIELDS},
        "started": _utc(row.started).isoformat(),
        "finished": _utc(row.finished).isoformat() if row.finished is not None else None,
    }


def _insert_missing(conn: sa.Connection, table: sa.Table, row: dict[str, Any]) -> bool:
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


def _insert_result(
    conn: sa.Connection,
    *,
    uid: str,
    run_id: str,
    image_id: str | None,
    created: datetime,
    result: ComboResult,
) -> int:
    combo = result.combo
    new_combo = _insert_missing(
        conn, combinations, {"id": combo.id, "target_key": combo.target, "data": combo.to_json()}
    )
    if new_combo and combo.pins:
        conn.execute(
            sa.insert(pins),
            [
                {
                    "combination_id": combo.id,
                    "name": p.name,
                    "version": str(p.version),
                    "sha256": p.sha256,
                    "filename": p.filename,
                    "kind": p.kind.value,
                }
                for p in combo.pins
            ],
        )
    inserted = conn.execute(
        sa.insert(results).values(
            uid=uid,
            run_id=run_id,
            combination_id=combo.id,
            image_id=image_id,
            verdict=result.verdict.value,
            duration=result.duration,
            failed_check=_text(result.failed_check),
            error=_text(result.error),
            system_deps=list(result.system_deps),
            added_system_deps=list(result.added_system_deps),
            backend=result.backend,
            created=created,
        )
    )
    result_id = _inserted_id(inserted)
    if result.checks:
        conn.execute(
            sa.insert(checks),
            [
                {
                    "result_id": result_id,
                    "position": position,
                    "name": _text(check.name),
                    "verdict": check.verdict.value,
                    "duration": check.duration,
                    "error": _text(check.error),
                }
                for position, check in enumerate(result.checks, start=1)
            ],
        )
    parts = [(0, result.log)] + [(i, c.log) for i, c in enumerate(result.checks, start=1)]
    packed = [(part, *_pack(log)) for part, log in parts if log]
    if packed:
        conn.execute(
            sa.insert(logs),
            [{"result_id": result_id, "part": p, "size": n, "data": d} for p, n, d in packed],
        )
    return result_id


def _load_combos(conn: sa.Connection, ids: Sequence[str]) -> dict[str, Combo]:
    found: dict[str, Combo] = {}
    for chunk in _chunks(ids):
        query = sa.select(combinations.c.data).where(combinations.c.id.in_(chunk))
        for data in conn.execute(query).scalars():
            combo = Combo.from_json(data)
            found[combo.id] = combo
    return found


def _load_results(conn: sa.Connection, ids: Sequence[int]) -> list[StoredResult]:
    """Whole results, checks and logs included, in ``ids`` order."""
    rows = conn.execute(
        sa.select(results, runs.c.base, runs.c.image, combinations.c.data)
        .join(runs, runs.c.id == results.c.run_id)
        .join(combinations, combinations.c.id == results.c.combination_id)
        .where(results.c.id.in_(ids))
    ).all()
    check_rows: dict[int, list[sa.Row[Any]]] = {}
    for row in conn.execute(
        sa.select(checks).where(checks.c.result_id.in_(ids)).order_by(checks.c.position)
    ):
        check_rows.setdefault(row.result_id, []).append(row)
    log_text: dict[tuple[int, int], str] = {
        (row.result_id, row.part): _unpack(row.data)
        for row in conn.execute(sa.select(logs).where(logs.c.result_id.in_(ids)))
    }
    loaded: dict[int, StoredResult] = {}
    for row in rows:
        result = ComboResult(
            combo=Combo.from_json(row.data),
            verdict=Verdict(row.verdict),
            checks=tuple(
                CheckResult(
                    name=c.name,
                    verdict=CheckVerdict(c.verdict),
                    duration=c.duration,
                    error=c.error,
                    log=log_text.get((row.id, c.position), ""),
                )
                for c in check_rows.get(row.id, [])
            ),
            error=row.error,
            failed_check=row.failed_check,
            duration=row.duration,
            system_deps=tuple(row.system_deps),
            added_system_deps=tuple(row.added_system_deps),
            backend=row.backend,
            image_id=row.image_id,
            log=log_text.get((row.id, 0), ""),
        )
        loaded[row.id] = StoredResult(
            id=row.id,
            uid=row.uid,
            run_id=row.run_id,
            base=row.base,
            image=row.image,
            created=_utc(row.created),
            result=result,
        )
    return [loaded[i] for i in ids if i in loaded]


def _meets(combo: Combo, name: str, specifier: Any) -> bool:
    try:
        version = combo.version_of(name)
    except KeyError:
        return False
    return bool(specifier.contains(version, prereleases=True))


def _version_or_none(combo: Combo, name: str) -> Version | None:
    try:
        return combo.version_of(name)
    except KeyError:
        return None


def _ranking(order: Sequence[str], *, newest: bool) -> Callable[[KnownGood, KnownGood], int]:
    """Compares package by package in ``order``; a combination lacking a package
    loses to one that has it; then the most recently tested wins."""

    def compare(a: KnownGood, b: KnownGood) -> int:
        for name in order:
            va, vb = _version_or_none(a.combo, name), _version_or_none(b.combo, name)
            if va == vb:
                continue
            if va is None or vb is None:
                return 1 if va is None else -1
            return -1 if (va > vb) == newest else 1
        if a.tested != b.tested:
            return -1 if a.tested > b.tested else 1
        return -1 if a.combo.id < b.combo.id else int(a.combo.id > b.combo.id)

    return compare


def _check_header(header: dict[str, Any]) -> None:
    if header.get("kind") != "header" or header.get("format") != EXPORT_FORMAT:
        raise StoreError("not a compat export: the first line is not its header")
    version = header.get("version")
    if not isinstance(version, int) or version > EXPORT_VERSION:
        raise StoreError(
            f"the export has format version {version!r} (from compat {header.get('compat')}); "
            f"this compat reads up to {EXPORT_VERSION}: upgrade compat"
        )


def _apply(conn: sa.Connection, record: dict[str, Any]) -> str | None:
    """Add one export record unless present; the count it adds to, or None."""
    kind = record.get("kind")
    try:
        if kind == "target":
            _insert_missing(conn, targets, _target_row(Target.from_json(record["target"])))
            return None
        if kind == "run":
            return "runs" if _apply_run(conn, record) else None
        if kind == "result":
            taken = conn.execute(sa.select(results.c.id).where(results.c.uid == record["uid"]))
            if taken.first() is not None:
                return None
            _insert_result(
                conn,
                uid=record["uid"],
                run_id=record["run_id"],
                image_id=record["result"].get("image_id"),
                created=datetime.fromisoformat(record["created"]),
                result=ComboResult.from_json(record["result"]),
            )
            return "results"
        if kind == "build":
            row = {c: record[c] for c in _BUILD_FIELDS}
            row["created"] = datetime.fromisoformat(record["created"])
            return "builds" if _insert_missing(conn, builds, row) else None
        if kind == "image":
            row = {c: record[c] for c in _IMAGE_FIELDS}
            row["measured"] = datetime.fromisoformat(record["measured"])
            return "images" if _insert_missing(conn, image_sizes, row) else None
    except (KeyError, TypeError, ValueError) as exc:
        raise StoreError(f"a {kind} record of the import is malformed: {exc!r}") from None
    raise StoreError(f"the import holds a record of unknown kind {kind!r}")


def _apply_run(conn: sa.Connection, record: dict[str, Any]) -> bool:
    row = {c: record[c] for c in _RUN_FIELDS}
    row["started"] = datetime.fromisoformat(record["started"])
    row["finished"] = datetime.fromisoformat(record["finished"]) if record["finished"] else None
    if _insert_missing(conn, runs, row):
        return True
    # Copied while it was still running and finished since: take the ending.
    if row["status"] != RunStatus.RUNNING:
        conn.execute(
            sa.update(runs)
            .where(runs.c.id == row["id"], runs.c.status == RunStatus.RUNNING.value)
            .values(status=row["status"], finished=row["finished"])
        )
    return False


__all__ = [
    "DB_ENV",
    "Store",
    "default_db_url",
    "sqlite_url",
]
