"""Writing the results database: runs, results with their checks and logs, image
sizes, seen versions and known incompatibilities, each in a short transaction.

Each result is committed in its own transaction as it arrives, so a scan that is
killed keeps every result it finished.
"""

from __future__ import annotations

import logging
import uuid
import zlib
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import sqlalchemy as sa
from packaging.specifiers import SpecifierSet

from compat import __version__
from compat.errors import StoreError
from compat.model import CheckResult, ComboResult, Verdict
from compat.store import migrations
from compat.store.deep import DeepCache
from compat.store.engine import (
    create_engine,
    empty_engine,
    insert_missing,
    parse_url,
    sqlite_file,
)
from compat.store.queries import Reader, inputs_text
from compat.store.records import RunStatus
from compat.store.schema import (
    checks,
    combinations,
    image_sizes,
    image_system_packages,
    incompatibilities,
    logs,
    pins,
    results,
    reuse_disagreements,
    runs,
    seen_versions,
    targets,
)
from compat.targets.target import Target

log = logging.getLogger("compat.store")

T = TypeVar("T")


class Store(Reader, DeepCache):
    """The results database. Open with ``Store.open(url)``; use as a context manager.
    One store may be shared by threads: each call takes its own connection."""

    @classmethod
    def open(cls, url: str, *, read_only: bool = False) -> Store:
        """Open the database at ``url`` and migrate its schema forward, creating it if
        needed. ``read_only`` opens it for reading only: a SQLite file is then neither
        created (where there is none, the store is empty) nor locked, and may sit on a
        read-only mount. Raises ``SchemaTooNew`` if a newer compat wrote it."""
        parsed = parse_url(url)
        shown = parsed.render_as_string(hide_password=True)
        path = sqlite_file(parsed)
        if read_only and path is not None and not path.exists():
            # Nothing recorded yet: an empty database answers every query as the
            # file would, and creates nothing.
            empty = cls(empty_engine(), url=shown)
            _opened(empty, empty._migrate)
            return cls(empty._engine, url=shown, read_only=True)
        store = cls(create_engine(parsed, read_only=read_only), url=shown, read_only=read_only)
        if not read_only:
            _opened(store, store._migrate)
            return store

        def version() -> int:
            found = store.schema_version
            migrations.check_version(found, shown)  # SchemaTooNew
            return found

        found = _opened(store, version)
        if found < migrations.LATEST:
            # What a reader reads must be at the latest schema: migrated forward as a
            # writer would, which needs write access once.
            store.close()
            with cls(create_engine(parsed), url=shown) as writer:
                try:
                    writer._migrate()
                except StoreError as exc:
                    raise StoreError(
                        f"the results database {shown} has schema version {found} and must "
                        f"be upgraded to {migrations.LATEST} before it can be read, which "
                        f"needs write access ({exc}): run any compat command once where it "
                        "can be written"
                    ) from exc
            store = cls(create_engine(parsed, read_only=True), url=shown, read_only=True)
        return store

    def _migrate(self) -> None:
        """Bring the schema to the latest version (see ``migrations``)."""
        with self.reading() as conn:
            found = migrations.current_version(conn)
        migrations.check_version(found, self.url)
        if found < migrations.LATEST:
            with self.writing() as conn:
                migrations.migrate(conn, url=self.url, now=now())

    # -- runs --------------------------------------------------------------------

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
        run_id = uid()
        with self.writing() as conn:
            insert_missing(conn, targets, target_row(target))
            conn.execute(
                sa.insert(runs).values(
                    id=run_id,
                    started=now(),
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
        with self.writing() as conn:
            done = conn.execute(
                sa.update(runs)
                .where(runs.c.id == run_id)
                .values(finished=now(), status=RunStatus(status).value)
            )
            if done.rowcount != 1:
                raise StoreError(f"no run {run_id} in {self.url}")

    @contextmanager
    def run(
        self,
        target: Target,
        *,
        backend: str,
        matrix_name: str | None = None,
        matrix_path: Path | str | None = None,
        strategy: str | None = None,
        shard: str | None = None,
    ) -> Iterator[str]:
        """A recorded run (its id for ``record``), finished with the status it
        deserves: interrupted by Ctrl-C, failed by an error, else finished."""
        run_id = self.start_run(
            target,
            backend=backend,
            matrix_name=matrix_name,
            matrix_path=matrix_path,
            strategy=strategy,
            shard=shard,
        )
        try:
            yield run_id
        except KeyboardInterrupt:
            self._finish_after_error(run_id, RunStatus.INTERRUPTED)
            raise
        except BaseException:
            self._finish_after_error(run_id, RunStatus.FAILED)
            raise
        self.finish_run(run_id, RunStatus.FINISHED)

    def _finish_after_error(self, run_id: str, status: RunStatus) -> None:
        # the database may be what failed (a full disk, a lost server): the error that
        # stopped the run is the one to report, not this one
        try:
            self.finish_run(run_id, status)
        except StoreError as exc:
            log.warning("could not mark run %s as %s: %s", run_id, status.value, exc)

    # -- results and measurements ------------------------------------------------

    def record(self, run_id: str, target: Target, result: ComboResult) -> int:
        """Store one result (its combination, pins, checks and logs) in its own
        transaction; returns its id. The image ID is the result's, else the target's."""
        with self.writing() as conn:
            insert_missing(conn, targets, target_row(target))
            return insert_result(
                conn,
                uid=uid(),
                run_id=run_id,
                image_id=target.image_id or result.image_id,  # the base the scan asked for
                created=now(),
                result=result,
            )

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
        with self.writing() as conn:
            row = conn.execute(
                sa.insert(image_sizes).values(
                    uid=uid(),
                    base=base,
                    image=image,
                    image_id=image_id,
                    total_size=total_size,
                    added_size=added_size,
                    lock_hash=lock_hash,
                    measured=now(),
                )
            )
            return inserted_id(row)

    def record_disagreement(self, kept: CheckResult, found: CheckResult) -> None:
        """A rerun of ``kept`` (a reused outcome) gave ``found``: nothing is reused
        under its key again."""
        assert kept.key is not None
        assert kept.reused_from is not None
        with self.writing() as conn:
            insert_missing(
                conn,
                reuse_disagreements,
                {
                    "reuse_key": kept.key,
                    "check_name": kept.name,
                    "kept_from": kept.reused_from,
                    "kept_verdict": kept.verdict.value,
                    "found_verdict": found.verdict.value,
                    "found": now(),
                },
            )

    # -- what nightly runs have seen, and known incompatibilities ------------------

    def record_seen(self, scope: str, versions: dict[str, Iterable[str]]) -> int:
        """Remember versions as seen for ``scope``; returns how many were new."""
        known = self.seen_versions(scope)
        rows = [
            {"scope": scope, "name": name, "version": v, "first_seen": now()}
            for name, vs in versions.items()
            for v in sorted(set(vs) - known.get(name, set()))
        ]
        if rows:
            with self.writing() as conn:
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
        ranges: Mapping[str, SpecifierSet] | None = None,
    ) -> int:
        """Store versions that fail together on ``base`` (and the ``ranges`` of
        releases around them that fail too); returns its id. The same packages, or
        the same ranges, on the same base are stored once (the newest evidence wins)."""
        widened = {n: str(s) for n, s in sorted((ranges or {}).items())} or None
        values: dict[str, Any] = {
            "verdict": verdict.value,
            "explanation": explanation,
            "evidence": list(evidence),
            "image_id": image_id,
        }
        if widened:  # a bisection that did not widen says nothing against a range
            values["ranges"] = widened
        with self.writing() as conn:
            for row in conn.execute(
                sa.select(
                    incompatibilities.c.id,
                    incompatibilities.c.packages,
                    incompatibilities.c.ranges,
                ).where(incompatibilities.c.base == base)
            ):
                if row.packages == packages or (widened and row.ranges == widened):
                    conn.execute(
                        sa.update(incompatibilities)
                        .where(incompatibilities.c.id == row.id)
                        .values(packages=packages, **values)
                    )
                    return int(row.id)
            inserted = conn.execute(
                sa.insert(incompatibilities).values(
                    uid=uid(), base=base, packages=packages, created=now(), **values
                )
            )
            return inserted_id(inserted)


def _opened(store: Store, first: Callable[[], T]) -> T:
    """``first()``, closing the store if it fails: nothing is left open."""
    try:
        return first()
    except BaseException:
        store.close()
        raise


# -- rows ------------------------------------------------------------------------


def now() -> datetime:
    return datetime.now(UTC)


def uid() -> str:
    return uuid.uuid4().hex


def _text(value: str | None) -> str | None:
    # PostgreSQL text cannot hold NUL; a first error line loses nothing without it.
    return value.replace("\x00", "\ufffd") if value is not None else None


def _pack(log: str) -> tuple[int, bytes]:
    raw = log.encode("utf-8", "surrogatepass")
    return len(raw), zlib.compress(raw)


def inserted_id(done: sa.CursorResult[Any]) -> int:
    key = done.inserted_primary_key
    if key is None:
        raise StoreError("the database did not report the id of a new row")
    return int(key[0])


def target_row(target: Target) -> dict[str, Any]:
    return {
        "key": target.key,
        "name": target.name,
        "image": target.image,
        "image_id": target.image_id,
        "python": str(target.python_version),
        "data": target.to_json(),
    }


def insert_result(
    conn: sa.Connection,
    *,
    uid: str,
    run_id: str,
    image_id: str | None,
    created: datetime,
    result: ComboResult,
) -> int:
    """One result with its combination (stored once), pins, checks and logs."""
    combo = result.combo
    new_combo = insert_missing(
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
            notes=list(result.notes) if result.notes else None,
        )
    )
    result_id = inserted_id(inserted)
    if image_id is not None:
        # it ran with these installed because the image lacked a library they provide:
        # what the image needs, for every later run on it
        for package in result.added_system_deps:
            insert_missing(
                conn,
                image_system_packages,
                {"image_id": image_id, "package": package, "learned": created, "result_uid": uid},
            )
    if result.checks:
        conn.execute(
            sa.insert(checks),
            [
                {
                    "result_id": result_id,
                    "position": position,
                    "name": _text(check.name),
                    "kind": check.kind.value,
                    "verdict": check.verdict.value,
                    "duration": check.duration,
                    "error": _text(check.error),
                    "inputs": inputs_text(check.inputs),
                    "reuse_key": check.key,
                    "reused_from": check.reused_from,
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


__all__ = ["Store"]
