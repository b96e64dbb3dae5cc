"""The host-side wheelhouse: every file a plan needs, downloaded once, checked
against its sha256, stored by content.

A stored file is checked against its hash each time it is read, not only when it was
written: a file truncated by a killed copy or altered since is never used, it is
replaced, with a notice, by a new download (or build), as pip's ``--require-hashes``
never installs a file that does not match. A file is written under a lock of its
own, so that processes sharing the cache download it once, and what a killed
download left beside it is cleared then."""

from __future__ import annotations

import hashlib
import logging
import os
import tempfile
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor, as_completed
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

from compat.effects.locks import file_lock
from compat.errors import DiskFull, FetchFailed, OfflineCacheMiss, out_of_space

log = logging.getLogger("compat.harness")

_CHUNK = 1 << 20


@dataclass(frozen=True, kw_only=True, slots=True)
class FileRef:
    """What the wheelhouse needs to know to fetch one file."""

    filename: str
    url: str
    sha256: str


def stored_path(root: Path, sha256: str, filename: str) -> Path:
    """Where a wheelhouse rooted at ``root`` keeps a file: by its content hash."""
    return root / "files" / sha256[:2] / sha256 / filename


class Wheelhouse:
    """Files stored as ``<root>/files/<sha256[:2]>/<sha256>/<filename>``; with
    ``cache_only`` (``--offline``), only those: a missing one is named in
    ``OfflineCacheMiss``, never downloaded."""

    def __init__(
        self, root: Path, client: httpx.Client, *, parallel: int = 8, cache_only: bool = False
    ) -> None:
        self.root = root
        self._client = client
        self._parallel = parallel
        self.cache_only = cache_only

    def path(self, sha256: str, filename: str) -> Path:
        return stored_path(self.root, sha256, filename)

    def has(self, sha256: str, filename: str) -> bool:
        """Whether the file is stored and matches its hash (a damaged one says so)."""
        return intact(self.path(sha256, filename), sha256)

    def add(self, source: Path, *, filename: str | None = None) -> tuple[str, Path]:
        """Copy a local file (a wheel we built) in; returns its sha256 and stored path."""
        digest = _sha256_of(source)
        dest = self.path(digest, filename or source.name)
        with self._storing(digest, dest) as store:
            if store:
                with source.open("rb") as src:
                    _write_beside(dest, iter(lambda: src.read(_CHUNK), b""))
        return digest, dest

    def fetch_one(self, ref: FileRef) -> Path:
        """Download ``ref`` unless present; raises FetchFailed, leaves no partial file
        (OfflineCacheMiss, cache only)."""
        dest = self.path(ref.sha256, ref.filename)
        with self._storing(ref.sha256, dest) as store:
            if store:
                if self.cache_only:
                    raise OfflineCacheMiss([f"file {ref.filename} ({ref.url})"])
                self._download(ref, dest)
                log.debug("fetched %s", ref.filename)
        return dest

    @contextmanager
    def _storing(self, sha256: str, dest: Path) -> Iterator[bool]:
        """Whether ``dest`` must be written (it is missing or damaged), said while
        holding its lock: a process that shares the cache and wants the same file
        waits, then finds it there. Parts that a killed writer left go first."""
        seen = _identity(dest)
        if seen is not None and intact(dest, sha256):
            yield False
            return
        with file_lock(self.root / "locks" / f"file-{sha256}"):
            # changed while this one waited: checked again (else judged already)
            if _identity(dest) not in (seen, None) and intact(dest, sha256):
                yield False
                return
            if dest.parent.is_dir():
                for part in dest.parent.glob(".part-*"):
                    part.unlink(missing_ok=True)
            yield True

    def _download(self, ref: FileRef, dest: Path) -> None:
        digest = hashlib.sha256()

        def chunks() -> Iterator[bytes]:
            try:
                with self._client.stream("GET", ref.url, follow_redirects=True) as response:
                    if response.status_code != 200:
                        raise FetchFailed(ref.filename, ref.url, f"HTTP {response.status_code}")
                    for chunk in response.iter_bytes(_CHUNK):
                        digest.update(chunk)
                        yield chunk
            except httpx.HTTPError as exc:
                raise FetchFailed(ref.filename, ref.url, f"download failed: {exc}") from exc
            got = digest.hexdigest()
            if got != ref.sha256.lower():
                raise FetchFailed(
                    ref.filename, ref.url, f"sha256 mismatch: expected {ref.sha256}, got {got}"
                )

        _write_beside(dest, chunks())

    def fetch(
        self,
        refs: Iterable[FileRef],
        *,
        progress: Callable[[int, int], None] | None = None,
    ) -> tuple[dict[str, Path], dict[str, FetchFailed]]:
        """Fetch every distinct file in parallel. Returns (sha256 -> path, sha256 -> error):
        a failure of one file does not stop the others. Cache only, every file missing
        is named in one OfflineCacheMiss before any is read."""
        unique = {r.sha256: r for r in refs}
        if self.cache_only:
            missing = [r for r in unique.values() if not self.path(r.sha256, r.filename).is_file()]
            if missing:
                raise OfflineCacheMiss([f"file {r.filename} ({r.url})" for r in missing])
        done: dict[str, Path] = {}
        failed: dict[str, FetchFailed] = {}
        # stored files too: each is checked against its hash, in parallel
        todo = list(unique.values())
        total = len(unique)
        if progress:
            progress(0, total)
        if not todo:
            return done, failed
        with ThreadPoolExecutor(max_workers=self._parallel) as pool:
            futures = {pool.submit(self.fetch_one, ref): ref for ref in todo}
            try:
                for future in as_completed(futures):
                    ref = futures[future]
                    try:
                        done[ref.sha256] = future.result()
                    except FetchFailed as exc:
                        failed[ref.sha256] = exc
                    if progress:
                        progress(len(done) + len(failed), total)
            except BaseException:
                for f in futures:
                    f.cancel()
                raise
        return done, failed


def _write_beside(dest: Path, chunks: Iterator[bytes]) -> None:
    """Write ``chunks`` to a part file beside ``dest``, then rename it into place: a
    reader sees the whole file or none. An exception from ``chunks`` leaves nothing."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=".part-")
    try:
        with os.fdopen(fd, "wb") as out:
            for chunk in chunks:
                out.write(chunk)
            # mkstemp's 0600 would hide it from the unprivileged builder that reads it
            os.fchmod(out.fileno(), 0o644)
        Path(tmp).replace(dest)
    except BaseException as exc:
        Path(tmp).unlink(missing_ok=True)
        if out_of_space(exc):
            raise DiskFull(dest.parent, exc) from exc
        raise


def _identity(path: Path) -> tuple[int, int, int] | None:
    try:
        st = path.stat()
    except (FileNotFoundError, NotADirectoryError):
        return None
    return st.st_ino, st.st_mtime_ns, st.st_size


def intact(path: Path, sha256: str) -> bool:
    """Whether ``path`` exists with the content whose hash is ``sha256``; a file that
    does not match says so in a one-line notice. It is left for the fetch or build
    that replaces it (atomically): removing it here could remove the good file
    another process has just put in its place."""
    try:
        got = _sha256_of(path)
    except (FileNotFoundError, NotADirectoryError):
        return False
    if got == sha256.lower():
        return True
    log.warning(
        "%s in the cache does not match its sha256 (truncated or altered): "
        "it is fetched or built again",
        path.name,
    )
    return False


def _sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()
