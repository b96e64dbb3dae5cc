"""The results database: runs, combinations, results, checks, logs, image sizes,
seen versions and known incompatibilities, in SQLite by default or PostgreSQL for
shared runs.

    with Store.open(default_db_url(os.environ, data_dir, explicit=db)) as store:
        with store.run(target, backend="docker", matrix_name=...) as run_id:
            for combo in store.filter_todo(plan.combos, target.image_id):
                ...
                store.record(run_id, target, result)      # committed at once

    with Store.open(url, read_only=True) as store:       # readers: works on a read-only file
        rows = store.results(base="alpine")

``engine`` opens databases, ``store`` writes, ``queries`` reads, ``exchange``
exports, imports and merges, ``migrations`` moves old schemas forward.
"""

from __future__ import annotations

from compat.store.engine import DB_ENV, default_db_url, sqlite_url
from compat.store.exchange import export_json, import_json, merge
from compat.store.migrations import LATEST as SCHEMA_VERSION
from compat.store.queries import Reader
from compat.store.records import (
    ImageSize,
    Imported,
    KnownGood,
    ResultRow,
    RunStatus,
    StoredResult,
)
from compat.store.store import Store

__all__ = [
    "DB_ENV",
    "SCHEMA_VERSION",
    "ImageSize",
    "Imported",
    "KnownGood",
    "Reader",
    "ResultRow",
    "RunStatus",
    "Store",
    "StoredResult",
    "default_db_url",
    "export_json",
    "import_json",
    "merge",
    "sqlite_url",
]
