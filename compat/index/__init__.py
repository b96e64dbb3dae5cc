"""PyPI metadata: the files of each project and their core metadata."""

from __future__ import annotations

from compat.index.base import Index
from compat.index.cache import IndexCache
from compat.index.parse import FileRecord
from compat.index.pypi import PyPIIndex
from compat.index.snapshot import SnapshotIndex, record_snapshot

__all__ = [
    "FileRecord",
    "Index",
    "IndexCache",
    "PyPIIndex",
    "SnapshotIndex",
    "record_snapshot",
]
