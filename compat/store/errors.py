"""What can go wrong with the results database, each with what to do next."""

from __future__ import annotations

from compat.errors import CompatError


class StoreError(CompatError):
    """The results database cannot be opened, read or written."""

    exit_code = 7


class SchemaTooNew(StoreError):
    """The database was written by a newer compat whose schema this one does not know."""

    def __init__(self, url: str, found: int, known: int) -> None:
        self.url = url
        self.found = found
        self.known = known
        super().__init__(
            f"the results database {url} has schema version {found}; this compat understands "
            f"versions up to {known}. Upgrade compat, or point --db (or COMPAT_DB) at another "
            "database."
        )
