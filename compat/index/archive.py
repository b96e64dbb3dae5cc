"""Core metadata read from the distribution files themselves, for indexes that serve
no PEP 658 ``.metadata`` files: METADATA from a wheel (through a sparse, on-demand
reader, so only the zip's tail is fetched) and PKG-INFO from an sdist."""

from __future__ import annotations

import io
import re
import tarfile
import zipfile
from collections.abc import Callable
from typing import IO, cast

from packaging.metadata import parse_email
from packaging.utils import canonicalize_name

from compat.errors import MetadataUnavailable

# The dist-info METADATA of a real package is a few kB to a few hundred; anything
# far larger is not metadata we want to hold in memory.
MAX_METADATA_BYTES = 16 * 1024 * 1024

RangeFetch = Callable[[int, int], bytes]  # (start, end) -> bytes [start, end)


class SparseFile(io.RawIOBase):
    """A read-only, seekable view of a remote file of known size that fetches only the
    byte ranges read from it, at least ``min_fetch`` bytes at a time. zipfile reads
    the end record, the central directory and one member: two or three fetches."""

    def __init__(
        self,
        size: int,
        fetch: RangeFetch,
        *,
        min_fetch: int = 64 * 1024,
        chunks: list[tuple[int, bytes]] | None = None,
    ) -> None:
        super().__init__()
        self._size = size
        self._fetch = fetch
        self._min_fetch = min_fetch
        self._chunks: list[tuple[int, bytes]] = list(chunks or [])
        self._pos = 0
        self.fetches = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._pos, io.SEEK_END: self._size}[whence]
        self._pos = max(0, base + offset)
        return self._pos

    def _missing(self, start: int, end: int) -> list[tuple[int, int]]:
        gaps: list[tuple[int, int]] = []
        pos = start
        for chunk_start, data in sorted(self._chunks, key=lambda c: c[0]):
            chunk_end = chunk_start + len(data)
            if chunk_end <= pos:
                continue
            if chunk_start >= end:
                break
            if chunk_start > pos:
                gaps.append((pos, chunk_start))
            pos = max(pos, chunk_end)
            if pos >= end:
                break
        if pos < end:
            gaps.append((pos, end))
        return gaps

    def _slice(self, start: int, end: int) -> bytes:
        out = bytearray()
        pos = start
        while pos < end:
            for chunk_start, data in self._chunks:
                if chunk_start <= pos < chunk_start + len(data):
                    piece = data[pos - chunk_start : end - chunk_start]
                    out += piece
                    pos += len(piece)
                    break
            else:  # pragma: no cover - _missing() guarantees coverage
                raise OSError(f"byte {pos} was never fetched")
        return bytes(out)

    def read(self, size: int | None = -1) -> bytes:
        start = self._pos
        end = self._size if size is None or size < 0 else min(self._size, start + size)
        if start >= end:
            return b""
        for gap_start, gap_end in self._missing(start, end):
            fetch_end = min(self._size, max(gap_end, gap_start + self._min_fetch))
            data = self._fetch(gap_start, fetch_end)
            self.fetches += 1
            if len(data) != fetch_end - gap_start:
                raise OSError(
                    f"asked for bytes {gap_start}-{fetch_end - 1}, received {len(data)} bytes"
                )
            self._chunks.append((gap_start, data))
        out = self._slice(start, end)
        self._pos = end
        return out

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        data = self.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)


def _read_limited(member: IO[bytes], filename: str) -> bytes:
    data = member.read(MAX_METADATA_BYTES + 1)
    if len(data) > MAX_METADATA_BYTES:
        raise MetadataUnavailable(filename, "the metadata file is implausibly large")
    return data


def wheel_metadata(fp: IO[bytes] | SparseFile, filename: str) -> bytes:
    """The ``*.dist-info/METADATA`` of the wheel in ``fp``. The dist-info directory
    named after the wheel's own project wins if a wheel (wrongly) carries several."""
    try:
        with zipfile.ZipFile(cast("IO[bytes]", fp)) as archive:
            candidates = [
                n for n in archive.namelist() if re.fullmatch(r"[^/]+\.dist-info/METADATA", n)
            ]
            if not candidates:
                raise MetadataUnavailable(filename, "the wheel has no .dist-info/METADATA")
            project = canonicalize_name(filename.split("-", 1)[0])
            candidates.sort(key=lambda n: canonicalize_name(n.split("-", 1)[0]) != project)
            with archive.open(candidates[0]) as member:
                return _read_limited(member, filename)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, ValueError) as exc:
        raise MetadataUnavailable(filename, f"not a readable wheel ({exc})") from exc


def _requires_txt_to_metadata(text: str) -> list[str]:
    """setuptools' ``egg-info/requires.txt`` as Requires-Dist and Provides-Extra lines:
    sections are ``[extra]``, ``[:marker]`` or ``[extra:marker]``."""
    lines: list[str] = []
    extras: list[str] = []
    marker = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("[") and line.endswith("]"):
            extra, _, condition = line[1:-1].partition(":")
            parts = []
            if condition.strip():
                parts.append(f"({condition.strip()})")
            if extra.strip():
                extras.append(extra.strip())
                parts.append(f'extra == "{extra.strip()}"')
            marker = " and ".join(parts)
            continue
        lines.append(f"Requires-Dist: {line}; {marker}" if marker else f"Requires-Dist: {line}")
    return [f"Provides-Extra: {e}" for e in dict.fromkeys(extras)] + lines


def _with_legacy_requirements(pkg_info: bytes, requires_txt: bytes | None) -> bytes:
    """Old setuptools wrote dependencies only to ``requires.txt``; a PKG-INFO without
    Requires-Dist gets them from there, so that the sdist's dependencies are known."""
    if requires_txt is None:
        return pkg_info
    raw, _ = parse_email(pkg_info)
    if raw.get("requires_dist"):
        return pkg_info
    headers, sep, body = pkg_info.replace(b"\r\n", b"\n").partition(b"\n\n")
    extra = "\n".join(_requires_txt_to_metadata(requires_txt.decode("utf-8", "replace")))
    if not extra:
        return pkg_info
    return headers.rstrip(b"\n") + b"\n" + extra.encode() + b"\n" + sep + body


def sdist_metadata(data: bytes, filename: str) -> bytes:
    """The top-level ``PKG-INFO`` of an sdist (.tar.gz or .zip)."""
    try:
        if filename.endswith(".zip"):
            with zipfile.ZipFile(io.BytesIO(data)) as zipped:
                names = zipped.namelist()

                def read_zip(name: str) -> bytes:
                    with zipped.open(name) as member:
                        return _read_limited(member, filename)

                return _pick_pkg_info(names, read_zip, filename)
        with tarfile.open(fileobj=io.BytesIO(data), mode="r:*") as tar:
            members = {m.name: m for m in tar.getmembers() if m.isfile()}

            def read_tar(name: str) -> bytes:
                member = tar.extractfile(members[name])
                if member is None:  # pragma: no cover - isfile() members always extract
                    raise MetadataUnavailable(filename, f"cannot read {name}")
                return _read_limited(member, filename)

            return _pick_pkg_info(list(members), read_tar, filename)
    except (tarfile.TarError, zipfile.BadZipFile, EOFError, OSError) as exc:
        raise MetadataUnavailable(filename, f"not a readable sdist ({exc})") from exc


def _pick_pkg_info(names: list[str], read: Callable[[str], bytes], filename: str) -> bytes:
    top = [n for n in names if re.fullmatch(r"[^/]+/PKG-INFO", n)]
    if not top:
        raise MetadataUnavailable(filename, "the sdist has no top-level PKG-INFO")
    root = top[0].split("/", 1)[0]
    requires = sorted(
        (
            n
            for n in names
            if re.fullmatch(rf"{re.escape(root)}/(src/)?[^/]+\.egg-info/requires\.txt", n)
        ),
        key=len,
    )
    return _with_legacy_requirements(read(top[0]), read(requires[0]) if requires else None)
