"""Errors of the index layer, all within the ``IndexUnavailable`` family."""

from __future__ import annotations

from compat.errors import IndexUnavailable


class MetadataUnavailable(IndexUnavailable):
    """One file's core metadata could not be read: its hash does not match, the
    archive is broken, or it holds no METADATA/PKG-INFO."""

    def __init__(self, filename: str, problem: str) -> None:
        self.filename = filename
        self.problem = problem
        super().__init__(f"metadata of {filename}: {problem}")


class MetadataNotRecorded(IndexUnavailable):
    """A snapshot index has the file but no metadata for its release."""

    def __init__(self, name: str, version: str, directory: str) -> None:
        self.name = name
        self.version = version
        super().__init__(
            f"the snapshot in {directory} has no metadata recorded for {name} {version}: "
            "re-record it (tests/data/record_index.py) or use a version it has"
        )
