"""An ``Index`` over recorded data, for unit tests and reproducible offline runs.

A snapshot is a directory with one ``<project>.json`` (or ``.json.gz``) per project::

    {"name": "six", "source": "https://pypi.org/simple/",
     "files": [{"filename": ..., "url": ..., "sha256": ..., "requires_python": ...,
                "yanked": ..., "has_metadata": ..., "size": ...,
                "upload_time": "2024-06-16T18:45:43.071416Z"}, ...],
     "metadata": {"1.17.0": "Metadata-Version: 2.1\\nName: six\\n...", ...}}

Files are ``DistFile.to_json()`` plus the index's ``upload_time`` (PEP 700; what
``--as-of`` reads, absent in snapshots recorded without it); name, version, kind and
tags come back from the filename. Metadata is per release (keyed by version) and
trimmed to the fields resolution reads: ``metadata(file)`` answers with its release's.
"""

from __future__ import annotations

import gzip
import json
import logging
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from packaging.utils import NormalizedName, canonicalize_name
from packaging.version import Version

from compat.errors import MetadataNotRecorded, MetadataUnavailable, ProjectNotFound
from compat.index.asof import DatedIndex
from compat.index.base import Index
from compat.index.cache import atomic_write
from compat.index.parse import make_file, parse_core_metadata, render_core_metadata, versions_of
from compat.model import CoreMetadata, DistFile, FileKind

log = logging.getLogger(__name__)


class SnapshotIndex:
    """``Index`` over a snapshot directory; each project is loaded on first use."""

    def __init__(self, directory: Path) -> None:
        self.directory = Path(directory)
        self._files: dict[NormalizedName, tuple[DistFile, ...]] = {}
        self._texts: dict[NormalizedName, dict[str, str]] = {}
        self._metadata: dict[tuple[NormalizedName, Version], CoreMetadata] = {}
        self._uploaded: dict[str, datetime] = {}  # by file URL

    def projects(self) -> list[NormalizedName]:
        """Every project the snapshot records, sorted."""
        names = {
            canonicalize_name(p.name.split(".json")[0])
            for p in self.directory.iterdir()
            if p.name.endswith((".json", ".json.gz"))
        }
        return sorted(names)

    def _load(self, name: NormalizedName) -> None:
        for path in (self.directory / f"{name}.json", self.directory / f"{name}.json.gz"):
            if path.is_file():
                raw = path.read_bytes()
                data = json.loads(gzip.decompress(raw) if path.suffix == ".gz" else raw)
                break
        else:
            raise ProjectNotFound(name, f"the snapshot in {self.directory}")
        files = []
        for entry in data["files"]:
            file = make_file(
                project=name,
                filename=entry["filename"],
                url=entry["url"],
                sha256=entry["sha256"],
                requires_python=entry.get("requires_python"),
                yanked=bool(entry.get("yanked", False)),
                has_metadata=bool(entry.get("has_metadata", False)),
                size=entry.get("size"),
            )
            if file is not None:
                files.append(file)
                when = entry.get("upload_time")
                if isinstance(when, str):
                    self._uploaded[file.url] = datetime.fromisoformat(when)
        self._texts[name] = dict(data.get("metadata", {}))
        self._files[name] = tuple(files)

    def files(self, name: NormalizedName) -> Sequence[DistFile]:
        project = canonicalize_name(name)
        if project not in self._files:
            self._load(project)
        return self._files[project]

    def uploaded(self, file: DistFile) -> datetime | None:
        self.files(file.name)
        return self._uploaded.get(file.url)

    def versions(self, name: NormalizedName, *, include_yanked: bool = False) -> list[Version]:
        return versions_of(self.files(name), include_yanked=include_yanked)

    def metadata(self, file: DistFile) -> CoreMetadata:
        key = (file.name, file.version)
        meta = self._metadata.get(key)
        if meta is not None:
            return meta
        self.files(file.name)
        texts = self._texts[file.name]
        # Recorded under str(version); tolerate non-normalised keys written by hand.
        text = texts.get(str(file.version))
        if text is None:
            text = next((t for v, t in texts.items() if Version(v) == file.version), None)
        if text is None:
            raise MetadataNotRecorded(file.name, str(file.version), str(self.directory))
        meta = parse_core_metadata(text, name=file.name, version=file.version)
        self._metadata[key] = meta
        return meta

    def prefetch(self, files: Iterable[DistFile]) -> None:
        """Nothing to fetch: everything is on disk."""


def _representative(files: Sequence[DistFile]) -> DistFile:
    """The file whose metadata stands for its release: a wheel (its metadata is
    static, and usually served as PEP 658), else the sdist."""
    return min(
        files,
        key=lambda f: (f.kind is not FileKind.WHEEL, not f.has_metadata, f.yanked, f.filename),
    )


def write_snapshot_project(
    directory: Path,
    name: NormalizedName,
    files: Sequence[DistFile],
    metadata: dict[Version, CoreMetadata],
    *,
    source: str = "",
    uploaded: Callable[[DistFile], str | None] = lambda _f: None,
) -> Path:
    """One project's snapshot file: compact, one file or release per line, so that
    re-recording shows as a readable diff. ``uploaded`` gives each file's upload
    time as the index wrote it (ISO 8601)."""
    dump: Callable[[Any], str] = lambda v: json.dumps(v, separators=(",", ":"))  # noqa: E731

    def entry(file: DistFile) -> dict[str, Any]:
        data = file.to_json()
        when = uploaded(file)
        if when is not None:
            data["upload_time"] = when
        return data

    lines = [f'{{"name":{dump(name)},"source":{dump(source)},', '"files":[']
    lines.append(",\n".join(dump(entry(f)) for f in files))
    lines.append('],\n"metadata":{')
    lines.append(
        ",\n".join(
            f"{dump(str(v))}:{dump(render_core_metadata(metadata[v]))}" for v in sorted(metadata)
        )
    )
    lines.append("}}\n")
    path = Path(directory) / f"{name}.json"
    atomic_write(path, "\n".join(lines).encode())
    return path


def record_snapshot(
    index: Index,
    names: Iterable[str],
    directory: Path,
    *,
    keep_version: Callable[[NormalizedName, Version], bool] = lambda _n, _v: True,
    keep_file: Callable[[DistFile], bool] = lambda _f: True,
    source: str = "",
) -> dict[NormalizedName, dict[Version, CoreMetadata]]:
    """Record ``names`` from ``index`` into ``directory``: the files that pass both
    filters and the metadata of each kept release. Returns the recorded metadata
    (callers follow its dependencies to record a closure)."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    kept: dict[NormalizedName, list[DistFile]] = {}
    for raw in names:
        name = canonicalize_name(raw)
        kept[name] = [
            f for f in index.files(name) if keep_version(name, f.version) and keep_file(f)
        ]
    chosen: dict[NormalizedName, dict[Version, DistFile]] = {}
    for name, files in kept.items():
        by_version: dict[Version, list[DistFile]] = {}
        for f in files:
            by_version.setdefault(f.version, []).append(f)
        chosen[name] = {v: _representative(fs) for v, fs in by_version.items()}
    index.prefetch(f for reps in chosen.values() for f in reps.values())
    recorded: dict[NormalizedName, dict[Version, CoreMetadata]] = {}
    for name, reps in chosen.items():
        metas: dict[Version, CoreMetadata] = {}
        for version, file in reps.items():
            try:
                metas[version] = index.metadata(file)
            except MetadataUnavailable as exc:
                log.warning("not recording metadata of %s %s: %s", name, version, exc)
        write_snapshot_project(
            directory, name, kept[name], metas, source=source, uploaded=upload_text(index)
        )
        recorded[name] = metas
    return recorded


def upload_text(index: Index) -> Callable[[DistFile], str | None]:
    """Each file's upload time as ISO 8601 text (UTC, ``Z``), when ``index`` knows it."""
    if not isinstance(index, DatedIndex):
        return lambda _f: None

    def text(file: DistFile) -> str | None:
        when = index.uploaded(file)
        return None if when is None else when.isoformat().replace("+00:00", "Z")

    return text
