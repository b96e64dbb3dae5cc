"""Moving results between databases: JSON-lines export and import, and merging
one database into another (the shards of a nightly run into one). Every record
carries an identity that survives the move (run ids, result and image uids, the
reuse keys a rerun contradicted), so what is already present is skipped and
doing it twice adds nothing."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from datetime import datetime
from typing import IO, Any

import sqlalchemy as sa

from compat import __version__
from compat.errors import StoreError
from compat.model import ComboResult
from compat.store.engine import insert_missing, parse_url, sqlite_file
from compat.store.queries import BATCH, Reader, chunks, load_results, utc
from compat.store.records import Imported, RunStatus
from compat.store.schema import image_sizes, results, reuse_disagreements, runs, targets
from compat.store.store import Store, insert_result, now, target_row
from compat.targets.target import Target

EXPORT_FORMAT = "compat-results"
EXPORT_VERSION = 1

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
_IMAGE_FIELDS = ("uid", "base", "image", "image_id", "total_size", "added_size", "lock_hash")
# what reading a record that is not what its kind says raises: a missing or
# mistyped field, a value out of range, a value the database cannot hold
_MALFORMED = (
    LookupError,
    TypeError,
    ValueError,
    AttributeError,
    ArithmeticError,
    sa.exc.IntegrityError,
    sa.exc.InterfaceError,
    sa.exc.DataError,
)
_DISAGREEMENT_FIELDS = ("reuse_key", "check_name", "kept_from", "kept_verdict", "found_verdict")


def export_json(store: Reader, stream: IO[str]) -> int:
    """Write everything as JSON lines (a header, then one record per line, in an
    order ``import_json`` can replay). Returns the number of records."""
    header = {
        "kind": "header",
        "format": EXPORT_FORMAT,
        "version": EXPORT_VERSION,
        "compat": __version__,
        "exported": now().isoformat(),
    }
    stream.write(json.dumps(header) + "\n")
    count = 0
    for record in _records(store):
        stream.write(json.dumps(record, sort_keys=True) + "\n")
        count += 1
    return count


def import_json(store: Store, stream: IO[str]) -> Imported:
    """Add what an export holds. Records already present (by run id, result and
    image uid) are skipped, so importing twice adds nothing."""

    def records() -> Iterator[dict[str, Any]]:
        header: dict[str, Any] | None = None
        for number, line in enumerate(stream, start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as exc:
                raise StoreError(f"line {number} of the import is not JSON: {exc}") from None
            if not isinstance(record, dict):
                raise StoreError(f"line {number} of the import is not a record (a JSON object)")
            if header is None:
                header = record
                _check_header(header)
                continue
            yield record
        if header is None:
            raise StoreError("the import is empty: expected a compat export")

    return _apply_all(store, records())


def merge(store: Store, other_url: str) -> Imported:
    """Copy another database's runs, results and image sizes into ``store``,
    skipping what is already there. The other database is only read."""
    path = sqlite_file(parse_url(other_url))
    if path is not None and not path.is_file():
        raise StoreError(f"no results database at {path} to merge")
    with Store.open(other_url, read_only=True) as other:
        return _apply_all(store, _records(other))


def _records(store: Reader) -> Iterator[dict[str, Any]]:
    """Everything, as export records, parents before children."""
    with store.reading() as conn:
        for row in conn.execute(sa.select(targets.c.data).order_by(targets.c.key)):
            yield {"kind": "target", "target": row.data}
        for row in conn.execute(sa.select(runs).order_by(runs.c.started, runs.c.id)):
            yield {"kind": "run", **_run_record(row)}
        ids = list(conn.execute(sa.select(results.c.id).order_by(results.c.id)).scalars())
        for chunk in chunks(ids):
            for stored in load_results(conn, chunk):
                yield {
                    "kind": "result",
                    "uid": stored.uid,
                    "run_id": stored.run_id,
                    "created": stored.created.isoformat(),
                    "result": stored.result.to_json(),
                }
        for row in conn.execute(sa.select(image_sizes).order_by(image_sizes.c.id)):
            yield {
                "kind": "image",
                **{c: row._mapping[c] for c in _IMAGE_FIELDS},
                "measured": utc(row.measured).isoformat(),
            }
        # a reuse key a rerun contradicted: the merged database reuses nothing under it
        order = reuse_disagreements.c.reuse_key
        for row in conn.execute(sa.select(reuse_disagreements).order_by(order)):
            yield {
                "kind": "disagreement",
                **{c: row._mapping[c] for c in _DISAGREEMENT_FIELDS},
                "found": utc(row.found).isoformat(),
            }


def _apply_all(store: Store, records: Iterable[dict[str, Any]]) -> Imported:
    counts = dict.fromkeys(("runs", "results", "images", "disagreements", "skipped"), 0)
    batch: list[dict[str, Any]] = []

    def flush() -> None:
        with store.writing() as conn:
            for record in batch:
                added = _apply(conn, record)
                if added is not None:
                    counts[added] += 1
                elif record["kind"] not in ("target", "build"):
                    counts["skipped"] += 1
        batch.clear()

    for record in records:
        batch.append(record)
        if len(batch) >= BATCH:
            flush()
    if batch:
        flush()
    return Imported(**counts)


def _check_header(header: dict[str, Any]) -> None:
    if header.get("kind") != "header" or header.get("format") != EXPORT_FORMAT:
        raise StoreError("not a compat export: the first line is not its header")
    version = header.get("version")
    if not isinstance(version, int) or version > EXPORT_VERSION:
        raise StoreError(
            f"the export has format version {version!r} (from compat {header.get('compat')}); "
            f"this compat reads up to {EXPORT_VERSION}: upgrade compat"
        )


def _run_record(row: sa.Row[Any]) -> dict[str, Any]:
    return {
        **{c: row._mapping[c] for c in _RUN_FIELDS},
        "started": utc(row.started).isoformat(),
        "finished": utc(row.finished).isoformat() if row.finished is not None else None,
    }


def _apply(conn: sa.Connection, record: dict[str, Any]) -> str | None:
    """Add one export record unless present; the count it adds to, or None."""
    kind = record.get("kind")
    try:
        if kind == "target":
            insert_missing(conn, targets, target_row(Target.from_json(record["target"])))
            return None
        if kind == "run":
            return "runs" if _apply_run(conn, record) else None
        if kind == "result":
            taken = conn.execute(sa.select(results.c.id).where(results.c.uid == record["uid"]))
            if taken.first() is not None:
                return None
            insert_result(
                conn,
                uid=record["uid"],
                run_id=record["run_id"],
                image_id=record["result"].get("image_id"),
                created=datetime.fromisoformat(record["created"]),
                result=ComboResult.from_json(record["result"]),
            )
            return "results"
        if kind == "build":
            return None  # older exports carry wheel builds; those live in the cache now
        if kind == "image":
            row = {c: record[c] for c in _IMAGE_FIELDS}
            row["measured"] = datetime.fromisoformat(record["measured"])
            return "images" if insert_missing(conn, image_sizes, row) else None
        if kind == "disagreement":
            row = {c: record[c] for c in _DISAGREEMENT_FIELDS}
            row["found"] = datetime.fromisoformat(record["found"])
            return "disagreements" if insert_missing(conn, reuse_disagreements, row) else None
    except _MALFORMED as exc:
        raise StoreError(f"a {kind} record of the import is malformed: {exc!r}") from None
    raise StoreError(f"the import holds a record of unknown kind {kind!r}")


def _apply_run(conn: sa.Connection, record: dict[str, Any]) -> bool:
    row = {c: record[c] for c in _RUN_FIELDS}
    row["started"] = datetime.fromisoformat(record["started"])
    row["finished"] = datetime.fromisoformat(record["finished"]) if record["finished"] else None
    if insert_missing(conn, runs, row):
        return True
    # Copied while it was still running and finished since: take the ending.
    if row["status"] != RunStatus.RUNNING:
        conn.execute(
            sa.update(runs)
            .where(runs.c.id == row["id"], runs.c.status == RunStatus.RUNNING.value)
            .values(status=row["status"], finished=row["finished"])
        )
    return False


__all__ = ["EXPORT_FORMAT", "EXPORT_VERSION", "export_json", "import_json", "merge"]
