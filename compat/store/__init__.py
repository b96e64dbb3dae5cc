"""The results database: runs, combinations, results, checks, logs, built wheels
and image sizes, in SQLite by default or PostgreSQL for shared runs.

    with Store.open(default_db_url(os.environ, data_dir, explicit=db)) as store:
        run_id = store.start_run(target, backend="docker", matrix_name=...)
        for combo in store.filter_todo(plan.combos, target.image_id):
            ...
            store.record(run_id, target, result)      # committed at once
        store.finish_run(run_id, RunStatus.FINISHED)
"""

from __future__ import annotations

from compat.store.migrations import LATEST as SCHEMA_VERSION
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
from compat.store.store import DB_ENV, Store, default_db_url, sqlite_url

__all__ = [
    "DB_ENV",
    "SCHEMA_VERSION",
    "BuildRecord",
    "ImageSize",
    "Imported",
    "Incompatibility",
    "KnownGood",
    "ResultRow",
    "RunRecord",
    "RunStatus",
    "Store",
    "StoredResult",
    "default_db_url",
    "sqlite_url",
]
