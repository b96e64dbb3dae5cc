"""Pure parsing: PEP 691 project pages into files, core metadata into values, and the
compact forms both are cached and recorded in. No I/O here."""

from __future__ import annotations

import contextlib
import functools
import logging
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from html.parser import HTMLParser
from typing import Any
from urllib.parse import urldefrag, urljoin

from packaging.metadata import parse_email
from packaging.requirements import InvalidRequirement, Requirement
from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.tags import Tag, parse_tag
from packaging.utils import (
    InvalidSdistFilename,
    InvalidWheelFilename,
    NormalizedName,
    canonicalize_name,
    parse_sdist_filename,
    parse_wheel_filename,
)
from packaging.version import InvalidVersion, Version

from compat.errors import IndexUnavailable
from compat.model import CoreMetadata, DistFile, FileKind

log = logging.getLogger(__name__)

_HEX = re.compile(r"[0-9a-fA-F]+")

JSON_CONTENT_TYPE = "application/vnd.pypi.simple.v1+json"
HTML_CONTENT_TYPES = frozenset({"application/vnd.pypi.simple.v1+html", "text/html"})
# JSON first; HTML (PEP 503) for indexes that have no JSON API, as pip asks.
ACCEPT = f"{JSON_CONTENT_TYPE}, application/vnd.pypi.simple.v1+html;q=0.2, text/html;q=0.01"


@dataclass(frozen=True, kw_only=True, slots=True)
class FileRecord:
    """A ``DistFile`` with what the index says about it that the model does not keep."""

    file: DistFile
    metadata_sha256: str | None = None  # PEP 658/714 hash of the .metadata file
    upload_time: str | None = None  # ISO 8601 as the index gave it (API 1.1)
    yanked_reason: str | None = None

    @property
    def uploaded(self) -> datetime | None:
        if not self.upload_time:
            return None
        try:
            return datetime.fromisoformat(self.upload_time)
        except ValueError:
            return None


# Thousands of files share a few dozen versions, tag sets and specifiers: parse each once.
@functools.cache
def _version(text: str) -> Version:
    return Version(text)


@functools.cache
def _requirement(text: str) -> Requirement:
    # Requirement is mutable in principle; nothing in compat mutates one.
    return Requirement(text)


@functools.cache
def _tags(text: str) -> frozenset[Tag]:
    return parse_tag(text)


_STAR_AFTER_ORDERING = re.compile(r"(>=|<=|>|<|~=)\s*([^,\s]+?)\.\*")


@functools.cache
def parse_requires_python(text: str | None) -> SpecifierSet | None:
    """A Requires-Python value, leniently: old releases carry junk such as ``>=3.6.*``
    or ``>= '2.7'``. Like pip, an unrepairable value means no restriction."""
    if text is None:
        return None
    text = text.strip()
    if not text:
        return None
    try:
        return SpecifierSet(text)
    except InvalidSpecifier:
        pass
    repaired = _STAR_AFTER_ORDERING.sub(r"\1\2", text).replace("'", "").replace('"', "")
    repaired = repaired.rstrip(",").strip()
    try:
        return SpecifierSet(repaired)
    except InvalidSpecifier:
        log.debug("ignoring unparseable Requires-Python %r", text)
        return None


def _tag_part(filename: str) -> str:
    # name-version[-build]-python-abi-platform.whl: the last three fields are the tags
    return "-".join(filename[:-4].split("-")[-3:])


def make_file(
    *,
    project: NormalizedName,
    filename: str,
    url: str,
    sha256: str,
    requires_python: str | None = None,
    yanked: bool = False,
    has_metadata: bool = False,
    size: int | None = None,
) -> DistFile | None:
    """A ``DistFile`` from its filename, or None for other kinds of file, unparseable
    names and files that belong to another project."""
    try:
        if filename.endswith(".whl"):
            name, version, _build, tags = parse_wheel_filename(filename)
            kind = FileKind.WHEEL
        elif filename.endswith((".tar.gz", ".zip")):
            name, version = parse_sdist_filename(filename)
            tags = frozenset()
            kind = FileKind.SDIST
        else:
            return None
    except (InvalidWheelFilename, InvalidSdistFilename, InvalidVersion):
        return None
    if name != project:
        return None
    return DistFile(
        name=project,
        version=_version(str(version)),
        filename=filename,
        url=url,
        sha256=sha256,
        kind=kind,
        tags=tags,
        requires_python=parse_requires_python(requires_python),
        yanked=yanked,
        has_metadata=has_metadata,
        size=size,
    )


def parse_project_page(data: Any, *, name: NormalizedName, page_url: str) -> tuple[FileRecord, ...]:
    """The files of a PEP 691 JSON project page, in the page's order. A file entry
    that is not well formed is left out (with a notice); a page that is not a
    project page at all is an ``IndexUnavailable``."""
    files = data.get("files") if isinstance(data, Mapping) else None
    if not isinstance(files, list):
        raise IndexUnavailable(
            f"{page_url}: the page of {name} is not a PEP 691 project page (no list of files)"
        )
    records: list[FileRecord] = []
    no_hash = malformed = 0
    for entry in files:
        filename = entry.get("filename") if isinstance(entry, Mapping) else None
        url = entry.get("url") if isinstance(entry, Mapping) else None
        if not isinstance(filename, str) or not isinstance(url, str):
            malformed += 1
            continue
        hashes = entry.get("hashes")
        sha256 = hashes.get("sha256") if isinstance(hashes, Mapping) else None
        if not isinstance(sha256, str) or not _HEX.fullmatch(sha256):
            # Every later step checks files against their sha256: a file without one
            # could never be fetched safely.
            no_hash += 1
            continue
        # PEP 714 renamed dist-info-metadata to core-metadata; old servers send the
        # former. Either is true/false or a dict of hashes of the .metadata file.
        meta = entry.get("core-metadata", entry.get("dist-info-metadata", False))
        meta_hash = meta.get("sha256") if isinstance(meta, dict) else None
        yanked = entry.get("yanked", False)
        size = entry.get("size")
        requires_python = entry.get("requires-python")
        file = make_file(
            project=name,
            filename=filename,
            url=urljoin(page_url, url),
            sha256=sha256.lower(),
            requires_python=requires_python if isinstance(requires_python, str) else None,
            yanked=bool(yanked) or isinstance(yanked, str),
            has_metadata=bool(meta),
            size=size if isinstance(size, int) else None,
        )
        if file is None:
            continue
        upload_time = entry.get("upload-time")
        records.append(
            FileRecord(
                file=file,
                metadata_sha256=meta_hash.lower() if isinstance(meta_hash, str) else None,
                upload_time=upload_time if isinstance(upload_time, str) else None,
                yanked_reason=yanked if isinstance(yanked, str) and yanked else None,
            )
        )
    if no_hash:
        log.warning("%s: skipped %d file(s) the index gives no sha256 for", name, no_hash)
    if malformed:
        log.warning("%s: skipped %d file entries without a file name and URL", name, malformed)
    return tuple(records)


class _AnchorParser(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.anchors: list[dict[str, str | None]] = []
        self._current: dict[str, str | None] | None = None
        self._text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "a":
            self._current = dict(attrs)
            self._text = []

    def handle_data(self, data: str) -> None:
        if self._current is not None:
            self._text.append(data)

    def handle_endtag(self, tag: str) -> None:
        if tag == "a" and self._current is not None:
            self._current["#text"] = "".join(self._text).strip()
            self.anchors.append(self._current)
            self._current = None


def _hashes_attr(value: str | None) -> bool | dict[str, str]:
    # data-core-metadata is "true" or "<algorithm>=<hexdigest>"
    if value is None:
        return False
    algorithm, sep, digest = value.partition("=")
    return {algorithm: digest} if sep else True


def html_page_to_json(html: str) -> dict[str, Any]:
    """A PEP 503 HTML project page (with PEP 592/658/714 attributes) as the PEP 691
    JSON page it stands for, so that one parser reads both."""
    parser = _AnchorParser()
    parser.feed(html)
    files = []
    for anchor in parser.anchors:
        href = anchor.get("href")
        if not href:
            continue
        url, fragment = urldefrag(href)
        algorithm, _, digest = fragment.partition("=")
        entry: dict[str, Any] = {
            "filename": anchor.get("#text") or url.rsplit("/", 1)[-1],
            "url": url,
            "hashes": {algorithm: digest} if digest else {},
            "requires-python": anchor.get("data-requires-python"),
        }
        if "data-yanked" in anchor:
            entry["yanked"] = anchor["data-yanked"] or True
        meta = anchor.get("data-core-metadata", anchor.get("data-dist-info-metadata"))
        entry["core-metadata"] = _hashes_attr(meta)
        files.append(entry)
    return {"meta": {"api-version": "1.0"}, "files": files}


# The compact row the cache stores a file as: positional, so that a listing of
# thousands of files loads with one json.loads and no per-field dict lookups.
def record_to_row(record: FileRecord) -> list[Any]:
    file = record.file
    return [
        file.filename,
        file.url,
        file.sha256,
        str(file.version),
        _tag_part(file.filename) if file.kind is FileKind.WHEEL else None,
        str(file.requires_python) if file.requires_python is not None else None,
        record.yanked_reason if record.yanked_reason else file.yanked,
        file.has_metadata,
        record.metadata_sha256,
        file.size,
        record.upload_time,
    ]


def record_from_row(name: NormalizedName, row: list[Any]) -> FileRecord:
    (filename, url, sha256, version, tags, requires_python, yanked) = row[:7]
    (has_metadata, metadata_sha256, size, upload_time) = row[7:11]
    file = DistFile(
        name=name,
        version=_version(version),
        filename=filename,
        url=url,
        sha256=sha256,
        kind=FileKind.SDIST if tags is None else FileKind.WHEEL,
        tags=frozenset() if tags is None else _tags(tags),
        requires_python=parse_requires_python(requires_python),
        yanked=bool(yanked),
        has_metadata=has_metadata,
        size=size,
    )
    return FileRecord(
        file=file,
        metadata_sha256=metadata_sha256,
        upload_time=upload_time,
        yanked_reason=yanked if isinstance(yanked, str) else None,
    )


_NAME = re.compile(r"^\s*([A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?)")


def parse_requirement(text: str) -> Requirement | None:
    """One Requires-Dist value, leniently. Old releases carry junk such as
    ``pytz (>=2011k)``; keeping the name and marker of such a requirement loses a
    version bound that no modern release needs, dropping it would lose a dependency."""
    try:
        return _requirement(text)
    except InvalidRequirement:
        pass
    head, _, marker = text.partition(";")
    match = _NAME.match(head)
    if match is None:
        log.debug("dropping unparseable requirement %r", text)
        return None
    for candidate in (f"{match.group(1)}; {marker}" if marker.strip() else None, match.group(1)):
        if candidate is None:
            continue
        try:
            requirement = Requirement(candidate)
        except InvalidRequirement:
            continue
        log.debug("requirement %r read as %r", text, str(requirement))
        return requirement
    return None


def parse_core_metadata(
    data: bytes | str, *, name: NormalizedName, version: Version
) -> CoreMetadata:
    """METADATA or PKG-INFO, leniently: fields that do not parse are dropped one value
    at a time, and the file's own name and version stand in for junk ones."""
    raw, _unparsed = parse_email(data)
    meta_name = canonicalize_name(raw["name"]) if raw.get("name") else name
    meta_version = version
    if raw.get("version"):
        with contextlib.suppress(InvalidVersion):
            meta_version = _version(raw["version"].strip())
    requirements = tuple(
        r for r in (parse_requirement(t) for t in raw.get("requires_dist", ())) if r is not None
    )
    return CoreMetadata(
        name=meta_name,
        version=meta_version,
        requires_dist=requirements,
        requires_python=parse_requires_python(raw.get("requires_python")),
        provides_extra=frozenset(canonicalize_name(e) for e in raw.get("provides_extra", ())),
    )


def render_core_metadata(meta: CoreMetadata) -> str:
    """The METADATA text of ``meta``, only the fields resolution reads: what snapshots
    record, parsed back by ``parse_core_metadata`` to the same value."""
    lines = ["Metadata-Version: 2.1", f"Name: {meta.name}", f"Version: {meta.version}"]
    if meta.requires_python is not None:
        lines.append(f"Requires-Python: {meta.requires_python}")
    lines.extend(f"Provides-Extra: {extra}" for extra in sorted(meta.provides_extra))
    lines.extend(f"Requires-Dist: {req}" for req in meta.requires_dist)
    return "\n".join(lines) + "\n"


def metadata_to_json(meta: CoreMetadata) -> dict[str, Any]:
    return {
        "name": meta.name,
        "version": str(meta.version),
        "requires_dist": [str(r) for r in meta.requires_dist],
        "requires_python": str(meta.requires_python) if meta.requires_python else None,
        "provides_extra": sorted(meta.provides_extra),
    }


def metadata_from_json(data: Mapping[str, Any]) -> CoreMetadata:
    return CoreMetadata(
        name=canonicalize_name(data["name"]),
        version=_version(data["version"]),
        requires_dist=tuple(_requirement(r) for r in data["requires_dist"]),
        requires_python=parse_requires_python(data["requires_python"]),
        provides_extra=frozenset(canonicalize_name(e) for e in data["provides_extra"]),
    )


def versions_of(files: Iterable[DistFile], *, include_yanked: bool = False) -> list[Version]:
    """The distinct versions among ``files``, oldest first. A version counts as yanked
    only when every one of its files is (PEP 592 yanks files, usually all of a release)."""
    seen = {f.version for f in files if include_yanked or not f.yanked}
    return sorted(seen)
