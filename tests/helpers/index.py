"""Shared by the index tests: a fake PEP 691 index served through
httpx.MockTransport, and tiny real archives."""

from __future__ import annotations

import email.utils
import hashlib
import io
import random
import re
import tarfile
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from compat.index.parse import JSON_CONTENT_TYPE
from compat.index.pypi import PyPIIndex
from compat.settings import NetworkSettings

BASE = "https://index.test/simple/"
FILES = "https://files.test/packages/"


def wheel_bytes(
    name: str, version: str, metadata: str, *, padding: int = 0, metadata_first: bool = True
) -> bytes:
    """A real wheel zip. ``padding`` bytes of incompressible data make it large, so
    that a range reader has to fetch more than the zip's tail."""
    dist_info = f"{name.replace('-', '_')}-{version}.dist-info"
    members: list[tuple[str, bytes]] = [
        (f"{dist_info}/METADATA", metadata.encode()),
        (f"{dist_info}/WHEEL", b"Wheel-Version: 1.0\nRoot-Is-Purelib: true\n"),
    ]
    payload = (f"{name.replace('-', '_')}/data.bin", random.Random(0).randbytes(padding))
    members = [*members, payload] if metadata_first else [payload, *members]
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for member, data in members:
            archive.writestr(member, data)
        archive.writestr(f"{dist_info}/RECORD", "")
    return out.getvalue()


def sdist_bytes(
    name: str, version: str, pkg_info: str, *, requires_txt: str | None = None
) -> bytes:
    root = f"{name}-{version}"
    entries = {f"{root}/PKG-INFO": pkg_info, f"{root}/setup.py": "raise SystemExit\n"}
    if requires_txt is not None:
        entries[f"{root}/{name}.egg-info/requires.txt"] = requires_txt
    return _tar_bytes(entries, mode="w:gz")


def write_tar(path: Path, members: dict[str, str]) -> Path:
    """A .tar.gz (or .tar.bz2, .tar by its name) at ``path`` holding ``members``
    (path -> text)."""
    path.write_bytes(_tar_bytes(members, mode="w:gz" if path.name.endswith("gz") else "w"))
    return path


def _tar_bytes(members: dict[str, str], *, mode: str) -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode=mode) as archive:  # type: ignore[call-overload]
        for member, text in members.items():
            data = text.encode()
            info = tarfile.TarInfo(member)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return out.getvalue()


def metadata_text(name: str, version: str, *requires: str, python: str | None = None) -> str:
    lines = ["Metadata-Version: 2.1", f"Name: {name}", f"Version: {version}"]
    if python:
        lines.append(f"Requires-Python: {python}")
    lines += [f"Requires-Dist: {r}" for r in requires]
    return "\n".join(lines) + "\n\nA long description that nobody reads.\n"


class FakeIndex:
    """Project pages with ETags, files with Range support, and a log of requests."""

    def __init__(self) -> None:
        self.pages: dict[str, list[dict[str, Any]]] = {}
        self.blobs: dict[str, bytes] = {}
        self.requests: list[httpx.Request] = []
        self.etag = True
        self.last_modified: str | None = None
        self.ranges = True
        self.page_content_type = JSON_CONTENT_TYPE
        self.fail: Callable[[httpx.Request], None] | None = None
        self.revision = 0  # part of the ETag: bump it to change every page

    def add(
        self,
        project: str,
        filename: str,
        content: bytes,
        *,
        metadata: str | None = None,
        metadata_hash: str | None = None,
        legacy_key: bool = False,
        **fields: Any,
    ) -> dict[str, Any]:
        url = f"{FILES}{hashlib.sha256(content).hexdigest()[:8]}/{filename}"
        self.blobs[url] = content
        entry: dict[str, Any] = {
            "filename": filename,
            "url": url,
            "hashes": {"sha256": hashlib.sha256(content).hexdigest()},
            "requires-python": None,
            "yanked": False,
            "size": len(content),
            "upload-time": "2024-01-01T00:00:00.000000Z",
            **fields,
        }
        if metadata is not None:
            self.blobs[f"{url}.metadata"] = metadata.encode()
            digest = metadata_hash or hashlib.sha256(metadata.encode()).hexdigest()
            entry["dist-info-metadata" if legacy_key else "core-metadata"] = {"sha256": digest}
        self.pages.setdefault(project, []).append(entry)
        return entry

    def page_requests(self) -> list[httpx.Request]:
        return [r for r in self.requests if r.url.host == "index.test"]

    def file_requests(self) -> list[httpx.Request]:
        return [r for r in self.requests if r.url.host == "files.test"]

    def handler(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        if self.fail is not None:
            self.fail(request)
        url = str(request.url)
        if url.startswith(BASE):
            project = url[len(BASE) :].strip("/")
            if project not in self.pages:
                return httpx.Response(404)
            etag = f'"{project}-{self.revision}"'
            if self.etag and request.headers.get("if-none-match") == etag:
                return httpx.Response(304, headers={"etag": etag})
            if (
                self.last_modified
                and request.headers.get("if-modified-since") == self.last_modified
            ):
                return httpx.Response(304)
            headers = {"content-type": self.page_content_type}
            if self.etag:
                headers["etag"] = etag
            if self.last_modified:
                headers["last-modified"] = self.last_modified
            body = {"meta": {"api-version": "1.1"}, "name": project, "files": self.pages[project]}
            return httpx.Response(200, json=body, headers=headers)
        data = self.blobs.get(url)
        if data is None:
            return httpx.Response(404)
        wanted = request.headers.get("range")
        if not wanted or not self.ranges:
            return httpx.Response(200, content=data)
        match = re.fullmatch(r"bytes=(\d*)-(\d*)", wanted)
        assert match is not None, wanted
        if match.group(1) == "":
            start, end = max(0, len(data) - int(match.group(2))), len(data) - 1
        else:
            start, end = int(match.group(1)), min(len(data) - 1, int(match.group(2)))
        return httpx.Response(
            206,
            content=data[start : end + 1],
            headers={"content-range": f"bytes {start}-{end}/{len(data)}"},
        )

    def index(self, *, ca_bundle: Path | None = None, **options: Any) -> PyPIIndex:
        network = NetworkSettings(index_url=BASE, ca_bundle=ca_bundle)
        return PyPIIndex(network, transport=httpx.MockTransport(self.handler), **options)


def http_date(timestamp: float) -> str:
    return email.utils.formatdate(timestamp, usegmt=True)


DATA = Path(__file__).parent.parent / "data" / "index"
