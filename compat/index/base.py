"""The small interface the resolver is handed: it never fetches by itself."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Protocol

from packaging.utils import NormalizedName

from compat.model import CoreMetadata, DistFile


class Index(Protocol):
    def files(self, name: NormalizedName) -> Sequence[DistFile]:
        """Every file of every release of ``name`` (yanked ones included, marked).
        Raises ``ProjectNotFound`` if the index has no such project."""
        ...

    def metadata(self, file: DistFile) -> CoreMetadata:
        """The core metadata of one file (from PEP 658 metadata, or the file itself)."""
        ...

    def prefetch(self, files: Iterable[DistFile]) -> None:
        """Fetch the metadata of many files at once (in parallel); a hint only."""
        ...
