"""The persistent index cache.

Layout under the directory handed in (the CLI gives ``user_cache_dir("compat")``)::

    index-v1/listings/<index key>/<project>.json   one project's files, revalidated
    index-v1/metadata/<sha[:2]>/<sha256>.json      one file's core metadata, forever

A listing file is two lines: a small JSON header (URL, ETag, Last-Modified, fetch
time) and the compact rows of its files, so that a 304 rewrites only the header and
a large listing (numpy: thousands of files) loads with one ``json.loads``.
Metadata is keyed by the sha256 of the file it came from: that file cannot change.
Every write goes to a temporary file in the same directory and is renamed into
place, so parallel runs and Ctrl-C never leave a half-written entry; an entry that
does not parse (damaged on disk) is treated as missing, with a one-line notice, and
fetched again.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import secrets
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from packaging.utils import NormalizedName, canonicalize_name

from compat.index.parse import (
    FileRecord,
    metadata_from_json,
    metadata_to_json,
    record_from_row,
    record_to_row,
)
from compat.model import CoreMetadata

log = logging.getLogger(__name__)

FORMAT = 1
DEFAULT_TTL = 600.0  # seconds a listing is used without asking the index again


def atomic_write(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` so that readers see the old or the new content,
    never a part: a temporary file beside it, then ``os.replace``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    # Not mkstemp: its files are private (0600); this one honours the umask.
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(8)}.tmp")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        with os.fdopen(fd, "wb") as out:
            out.write(data)
        tmp.replace(path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _damaged(path: Path) -> None:
    log.warning("ignoring a damaged index cache entry %s: it is fetched again", path)


def _dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


@dataclass(frozen=True, kw_only=True, slots=True)
class CachedListing:
    url: str
    records: tuple[FileRecord, ...]
    fetched: float  # time.time() of the last fetch or successful revalidation
    etag: str | None = None
    last_modified: str | None = None


class IndexCache:
    """Listings and metadata on disk. ``clock`` is injectable for TTL tests."""

    def __init__(
        self,
        directory: Path,
        *,
        ttl: float = DEFAULT_TTL,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.directory = Path(directory)
        self.ttl = ttl
        self.clock = clock
        self._root = self.directory / f"index-v{FORMAT}"

    # Listings ------------------------------------------------------------------

    def listing_path(self, index_url: str, name: NormalizedName) -> Path:
        key = hashlib.sha256(index_url.encode()).hexdigest()[:16]
        return self._root / "listings" / key / f"{name}.json"

    def names(self, index_url: str) -> list[str]:
        """The projects whose listing is cached for the index (names to suggest)."""
        return [
            p.stem
            for p in self.listing_path(index_url, canonicalize_name("x")).parent.glob("*.json")
        ]

    def listing(self, index_url: str, name: NormalizedName) -> CachedListing | None:
        """The cached listing, fresh or not; None if absent or unreadable."""
        path = self.listing_path(index_url, name)
        try:
            text = path.read_text(encoding="utf-8")
        except OSError:
            return None
        try:
            header_line, _, rows_line = text.partition("\n")
            header = json.loads(header_line)
            if header.get("format") != FORMAT or header.get("url") is None:
                return None
            rows = json.loads(rows_line)
            records = tuple(record_from_row(name, row) for row in rows)
            return CachedListing(
                url=header["url"],
                records=records,
                fetched=float(header["fetched"]),
                etag=header.get("etag"),
                last_modified=header.get("last_modified"),
            )
        except (ValueError, KeyError, TypeError, IndexError, AttributeError):
            _damaged(path)
            return None

    def is_fresh(self, listing: CachedListing) -> bool:
        age = self.clock() - listing.fetched
        return 0 <= age < self.ttl

    @staticmethod
    def _header(url: str, fetched: float, etag: str | None, last_modified: str | None) -> str:
        return _dumps(
            {
                "format": FORMAT,
                "url": url,
                "fetched": fetched,
                "etag": etag,
                "last_modified": last_modified,
            }
        )

    def store_listing(
        self,
        index_url: str,
        name: NormalizedName,
        *,
        url: str,
        records: Sequence[FileRecord],
        etag: str | None = None,
        last_modified: str | None = None,
    ) -> CachedListing:
        fetched = self.clock()
        rows = _dumps([record_to_row(r) for r in records])
        header = self._header(url, fetched, etag, last_modified)
        atomic_write(self.listing_path(index_url, name), f"{header}\n{rows}\n".encode())
        return CachedListing(
            url=url,
            records=tuple(records),
            fetched=fetched,
            etag=etag,
            last_modified=last_modified,
        )

    def revalidated(
        self, index_url: str, name: NormalizedName, listing: CachedListing
    ) -> CachedListing:
        """Record that the index confirmed ``listing`` unchanged (HTTP 304) now."""
        path = self.listing_path(index_url, name)
        fetched = self.clock()
        header = self._header(listing.url, fetched, listing.etag, listing.last_modified)
        # Best effort: if this fails the next run simply revalidates again.
        with contextlib.suppress(OSError):
            _old, _, rows = path.read_text(encoding="utf-8").partition("\n")
            atomic_write(path, f"{header}\n{rows}".encode())
        return CachedListing(
            url=listing.url,
            records=listing.records,
            fetched=fetched,
            etag=listing.etag,
            last_modified=listing.last_modified,
        )

    # Metadata ------------------------------------------------------------------

    def metadata_path(self, sha256: str) -> Path:
        return self._root / "metadata" / sha256[:2] / f"{sha256}.json"

    def metadata(self, sha256: str) -> CoreMetadata | None:
        path = self.metadata_path(sha256)
        try:
            data = path.read_bytes()
        except OSError:
            return None
        try:
            return metadata_from_json(json.loads(data))
        except (ValueError, KeyError, TypeError, AttributeError):
            _damaged(path)
            return None

    def store_metadata(self, sha256: str, meta: CoreMetadata) -> None:
        atomic_write(self.metadata_path(sha256), _dumps(metadata_to_json(meta)).encode())
