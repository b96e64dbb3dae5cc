"""The index client for PyPI and any index speaking the PEP 691 JSON simple API."""

from __future__ import annotations

import hashlib
import io
import logging
import re
import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from pathlib import Path
from types import TracebackType
from urllib.parse import urlsplit

import httpx
from packaging.utils import NormalizedName, canonicalize_name
from packaging.version import Version

from compat.effects.http import http_client
from compat.errors import (
    CompatError,
    IndexUnavailable,
    MetadataUnavailable,
    OfflineCacheMiss,
    ProjectNotFound,
)
from compat.index.archive import SparseFile, sdist_metadata, wheel_metadata
from compat.index.cache import DEFAULT_TTL, CachedListing, IndexCache
from compat.index.parse import (
    ACCEPT,
    HTML_CONTENT_TYPES,
    JSON_CONTENT_TYPE,
    FileRecord,
    html_page_to_json,
    parse_core_metadata,
    parse_project_page,
    versions_of,
)
from compat.model import CoreMetadata, DistFile, FileKind
from compat.settings import NetworkSettings

log = logging.getLogger(__name__)

DEFAULT_WORKERS = 16
# The first range request of a wheel: enough for the end record, the central
# directory and the dist-info files (written last) of most wheels in one go.
WHEEL_TAIL_BYTES = 128 * 1024
_RETRIES = 3
_RETRY_STATUS = frozenset({429, 500, 502, 503, 504})
_CONTENT_RANGE = re.compile(r"bytes (\d+)-(\d+)/(\d+|\*)")

# project names a misspelling is most likely of, beside those fetched before
WELL_KNOWN = (
    "numpy", "scipy", "scikit-learn", "pandas", "matplotlib", "lightgbm", "statsmodels",
    "seaborn", "xgboost", "pyarrow", "numba", "scikit-image", "polars", "shap", "catboost",
    "plotly", "torch", "tensorflow", "pillow", "python-dateutil", "pytz", "tzdata", "joblib",
    "threadpoolctl", "numexpr", "bottleneck", "tables", "contourpy", "kiwisolver",
)  # fmt: skip


class PyPIIndex:
    """``Index`` over the PEP 691 JSON simple API, with an in-memory memo and an
    optional persistent cache (``cache_dir``): a listing is reused for ``ttl`` seconds,
    then revalidated with a conditional request; a file's metadata is kept forever.

    ``offline=True`` answers from the cache only and raises ``OfflineCacheMiss`` naming
    what is missing. ``transport`` replaces the network (tests use httpx.MockTransport).
    Thread-safe: ``prefetch`` fetches metadata on ``workers`` threads over one client.
    """

    def __init__(
        self,
        settings: NetworkSettings | None = None,
        *,
        cache_dir: Path | None = None,
        ttl: float = DEFAULT_TTL,
        offline: bool = False,
        workers: int = DEFAULT_WORKERS,
        transport: httpx.BaseTransport | None = None,
        cache: IndexCache | None = None,
    ) -> None:
        self.settings = settings or NetworkSettings()  # index URL, CA bundle, proxy
        self.index_url = self.settings.index_url
        self.offline = offline
        self.workers = workers
        if cache is None and cache_dir is not None:
            cache = IndexCache(cache_dir, ttl=ttl)
        self.cache = cache
        self._transport = transport
        self._client: httpx.Client | None = None
        self._lock = threading.Lock()
        self._listings: dict[NormalizedName, tuple[FileRecord, ...]] = {}
        self._files: dict[NormalizedName, tuple[DistFile, ...]] = {}
        self._records_by_url: dict[str, FileRecord] = {}
        self._metadata: dict[str, CoreMetadata] = {}  # keyed by the file's sha256
        self._cache_warned = False
        self.requests = 0  # HTTP requests made, for tests and measurements

    # Lifecycle -----------------------------------------------------------------

    def __enter__(self) -> PyPIIndex:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None

    # HTTP ------------------------------------------------------------------------

    def _advice(self) -> str:
        ca = self.settings.ca_bundle or "the system trust store"
        proxy = self.settings.proxy or "none"
        return (
            f"check the index URL ({self.index_url}), the CA bundle ({ca}; --cert or "
            f"SSL_CERT_FILE) and the proxy ({proxy}; HTTPS_PROXY), or use --offline "
            "with a filled cache"
        )

    def _make_client(self) -> httpx.Client:
        return http_client(self.settings, connections=self.workers + 4, transport=self._transport)

    def _http(self) -> httpx.Client:
        if self._client is None:
            with self._lock:
                if self._client is None:
                    self._client = self._make_client()
        return self._client

    def _get(self, url: str, headers: Mapping[str, str] | None = None) -> httpx.Response:
        """GET with retries on transient failures; any other failure becomes
        ``IndexUnavailable`` saying what to check. Statuses are the caller's."""
        client = self._http()
        delay = 0.5
        for attempt in range(1, _RETRIES + 1):
            try:
                with self._lock:
                    self.requests += 1
                response = client.get(url, headers=headers)
            except httpx.TransportError as exc:
                if attempt < _RETRIES and not isinstance(exc, httpx.ConnectError):
                    time.sleep(delay)
                    delay *= 2
                    continue
                what = "a TLS certificate check failed" if "CERTIFICATE" in str(exc) else exc
                raise IndexUnavailable(f"cannot reach {url}: {what}; {self._advice()}") from exc
            if response.status_code in _RETRY_STATUS and attempt < _RETRIES:
                time.sleep(delay)
                delay *= 2
                continue
            return response
        raise AssertionError("unreachable")  # pragma: no cover

    def _unexpected(self, url: str, response: httpx.Response) -> IndexUnavailable:
        if not url.startswith(self.index_url) and response.status_code in (403, 404, 410):
            # One file gone from the file host: that file's problem, not the index's.
            filename = url.rsplit("/", 1)[-1].removesuffix(".metadata")
            return MetadataUnavailable(filename, f"{url} answered HTTP {response.status_code}")
        return IndexUnavailable(
            f"{url} answered HTTP {response.status_code} {response.reason_phrase}; {self._advice()}"
        )

    # Listings ----------------------------------------------------------------------

    def project_url(self, name: NormalizedName) -> str:
        return f"{self.index_url}{name}/"

    def records(self, name: str) -> tuple[FileRecord, ...]:
        """The files of ``name`` with what the index says beyond ``DistFile``
        (metadata hash, upload time, yank reason)."""
        project = canonicalize_name(name)
        listing = self._listings.get(project)
        if listing is None:
            listing = self._load_listing(project)
            with self._lock:
                self._listings[project] = listing
                self._files[project] = tuple(r.file for r in listing)
                self._records_by_url.update((r.file.url, r) for r in listing)
        return listing

    def files(self, name: NormalizedName) -> Sequence[DistFile]:
        project = canonicalize_name(name)
        files = self._files.get(project)
        if files is None:
            self.records(project)
            files = self._files[project]
        return files

    def versions(self, name: NormalizedName, *, include_yanked: bool = False) -> list[Version]:
        """The versions of ``name`` that have files, oldest first."""
        return versions_of(self.files(name), include_yanked=include_yanked)

    def record(self, file: DistFile) -> FileRecord:
        """What the index said about ``file`` (a file of a listing this index loaded)."""
        record = self._records_by_url.get(file.url)
        return record if record is not None else FileRecord(file=file)

    def uploaded(self, file: DistFile) -> datetime | None:
        """When ``file`` was uploaded (PEP 700), if the index says."""
        self.records(file.name)
        return self.record(file).uploaded

    def _load_listing(self, name: NormalizedName) -> tuple[FileRecord, ...]:
        cached = self.cache.listing(self.index_url, name) if self.cache else None
        if self.offline:
            if cached is None:
                raise OfflineCacheMiss([f"project listing {name} (from {self.index_url})"])
            return cached.records
        if cached is not None and self.cache is not None and self.cache.is_fresh(cached):
            return cached.records
        try:
            return self._fetch_listing(name, cached)
        except ProjectNotFound:
            raise
        except IndexUnavailable as exc:
            if cached is None:
                raise
            # A stale listing beats no answer; the next run revalidates again.
            log.warning("using the cached listing of %s: %s", name, exc)
            return cached.records

    def _fetch_listing(
        self, name: NormalizedName, cached: CachedListing | None
    ) -> tuple[FileRecord, ...]:
        url = self.project_url(name)
        headers = {"Accept": ACCEPT}
        if cached is not None:
            if cached.etag:
                headers["If-None-Match"] = cached.etag
            if cached.last_modified:
                headers["If-Modified-Since"] = cached.last_modified
        response = self._get(url, headers)
        if response.status_code == 304 and cached is not None and self.cache is not None:
            return self.cache.revalidated(self.index_url, name, cached).records
        if response.status_code in (404, 410):
            cached_names = self.cache.names(self.index_url) if self.cache is not None else []
            raise ProjectNotFound(name, self.index_url, known=(*WELL_KNOWN, *cached_names))
        if response.status_code != 200:
            raise self._unexpected(url, response)
        content_type = response.headers.get("content-type", "").split(";")[0].strip().lower()
        if content_type == JSON_CONTENT_TYPE:
            try:
                page = response.json()
            except ValueError as exc:
                raise IndexUnavailable(f"{url} sent invalid JSON: {exc}") from exc
        elif content_type in HTML_CONTENT_TYPES:
            page = html_page_to_json(response.text)
        else:
            raise IndexUnavailable(
                f"{url} answered {content_type or 'no content type'}, not a simple API page "
                f"(PEP 691 JSON or PEP 503 HTML); {self._advice()}"
            )
        records = parse_project_page(page, name=name, page_url=str(response.url))
        if self.cache is not None:
            try:
                self.cache.store_listing(
                    self.index_url,
                    name,
                    url=url,
                    records=records,
                    etag=response.headers.get("etag"),
                    last_modified=response.headers.get("last-modified"),
                )
            except OSError as exc:  # a full or read-only cache slows runs, never fails them
                self._cache_unwritable(exc)
        return records

    def _cache_unwritable(self, exc: OSError) -> None:
        """Said once per run: every later write fails the same way."""
        if not self._cache_warned:
            self._cache_warned = True
            log.warning("cannot write the index cache (runs will be slower): %s", exc)

    # Metadata ----------------------------------------------------------------------

    def metadata(self, file: DistFile) -> CoreMetadata:
        meta = self._metadata.get(file.sha256)
        if meta is not None:
            return meta
        meta = self.cache.metadata(file.sha256) if self.cache else None
        if meta is None:
            if self.offline:
                raise OfflineCacheMiss([f"metadata of file {file.filename}"])
            return self._fetch_and_keep(file)
        self._metadata[file.sha256] = meta
        return meta

    def _fetch_and_keep(self, file: DistFile) -> CoreMetadata:
        """Metadata from the index, kept in the memo and the cache."""
        meta = self._fetch_metadata(file)
        if self.cache is not None:
            try:
                self.cache.store_metadata(file.sha256, meta)
            except OSError as exc:
                self._cache_unwritable(exc)
        self._metadata[file.sha256] = meta
        return meta

    def prefetch(self, files: Iterable[DistFile]) -> None:
        """Fill the memo for ``files``: from the cache, then from the index in
        parallel. Offline, every missing item is named in one ``OfflineCacheMiss``.
        Online, a file whose metadata is broken is left for ``metadata()`` to report
        if it is ever asked for; an unreachable index raises."""
        todo: dict[str, DistFile] = {}
        for file in files:
            if file.sha256 not in self._metadata:
                todo.setdefault(file.sha256, file)
        missing: list[DistFile] = []
        for sha, file in todo.items():
            meta = self.cache.metadata(sha) if self.cache else None
            if meta is None:
                missing.append(file)
            else:
                self._metadata[sha] = meta
        if not missing:
            return
        if self.offline:
            raise OfflineCacheMiss([f"metadata of file {f.filename}" for f in missing])
        if len(missing) == 1:
            outcomes = [self._prefetch_one(missing[0])]
        else:
            with ThreadPoolExecutor(
                max_workers=min(self.workers, len(missing)), thread_name_prefix="compat-index"
            ) as pool:
                outcomes = list(pool.map(self._prefetch_one, missing))
        errors = [e for e in outcomes if e is not None]
        if errors:
            raise errors[0]

    def _prefetch_one(self, file: DistFile) -> CompatError | None:
        try:
            self._fetch_and_keep(file)  # the cache was read (and missed) just before
        except MetadataUnavailable as exc:
            log.debug("prefetch: %s", exc)
        except CompatError as exc:
            return exc
        return None

    def _fetch_metadata(self, file: DistFile) -> CoreMetadata:
        data: bytes | None = None
        if file.has_metadata:
            data = self._fetch_metadata_file(file)
        if data is None:
            if file.kind is FileKind.WHEEL:
                data = self._fetch_wheel_metadata(file)
            else:
                data = sdist_metadata(self._download(file), file.filename)
        try:
            return parse_core_metadata(data, name=file.name, version=file.version)
        except ValueError as exc:
            raise MetadataUnavailable(file.filename, f"unparseable metadata ({exc})") from exc

    def _fetch_metadata_file(self, file: DistFile) -> bytes | None:
        """PEP 658: ``<url>.metadata``, checked against its hash when the index gave one.
        None when the index claims one but does not serve it."""
        url = f"{file.url}.metadata"
        response = self._get(url)
        if response.status_code == 404:
            log.debug("%s: announced but absent, reading the file itself", url)
            return None
        if response.status_code != 200:
            raise self._unexpected(url, response)
        expected = self.record(file).metadata_sha256
        if expected is not None:
            actual = hashlib.sha256(response.content).hexdigest()
            if actual != expected:
                raise MetadataUnavailable(
                    file.filename,
                    f"{url} has sha256 {actual}, the index announced {expected}: "
                    "a proxy or mirror may be altering files",
                )
        return response.content

    def _fetch_range(self, url: str, start: int, end: int) -> bytes:
        response = self._get(url, {"Range": f"bytes={start}-{end - 1}"})
        if response.status_code == 206:
            return response.content
        if response.status_code == 200:  # the server ignores ranges: slice the whole
            return response.content[start:end]
        raise self._unexpected(url, response)

    def _fetch_wheel_metadata(self, file: DistFile) -> bytes:
        """METADATA out of the wheel, fetching only the zip's tail and whatever the
        central directory points to (HTTP range requests)."""
        response = self._get(file.url, {"Range": f"bytes=-{WHEEL_TAIL_BYTES}"})
        if response.status_code == 200:
            self._check_sha256(file, response.content)
            return wheel_metadata(_bytes_file(response.content), file.filename)
        if response.status_code == 416:  # shorter than the tail asked for: fetch it all
            return wheel_metadata(_bytes_file(self._download(file)), file.filename)
        if response.status_code != 206:
            raise self._unexpected(file.url, response)
        match = _CONTENT_RANGE.fullmatch(response.headers.get("content-range", "").strip())
        if match is None or match.group(3) == "*":
            return wheel_metadata(_bytes_file(self._download(file)), file.filename)
        start, size = int(match.group(1)), int(match.group(3))
        sparse = SparseFile(
            size,
            lambda a, b: self._fetch_range(file.url, a, b),
            chunks=[(start, response.content)],
        )
        return wheel_metadata(sparse, file.filename)

    def _download(self, file: DistFile) -> bytes:
        response = self._get(file.url)
        if response.status_code != 200:
            raise self._unexpected(file.url, response)
        self._check_sha256(file, response.content)
        return response.content

    @staticmethod
    def _check_sha256(file: DistFile, content: bytes) -> None:
        actual = hashlib.sha256(content).hexdigest()
        if actual != file.sha256:
            raise MetadataUnavailable(
                file.filename, f"downloaded sha256 {actual}, the index announced {file.sha256}"
            )

    def __repr__(self) -> str:
        host = urlsplit(self.index_url).netloc
        return f"PyPIIndex({host!r}, offline={self.offline}, cache={self.cache is not None})"


def _bytes_file(data: bytes) -> io.BytesIO:
    return io.BytesIO(data)
