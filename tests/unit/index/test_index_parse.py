"""Parsing PEP 691 pages (real recorded ones) and core metadata, leniently."""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

import pytest
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.tags import Tag
from packaging.utils import canonicalize_name
from packaging.version import Version

from compat.index.archive import sdist_metadata
from compat.index.parse import (
    html_page_to_json,
    metadata_from_json,
    metadata_to_json,
    parse_core_metadata,
    parse_project_page,
    parse_requirement,
    parse_requires_python,
    record_from_row,
    record_to_row,
    render_core_metadata,
    versions_of,
)
from compat.model import FileKind
from tests.helpers.index import DATA, metadata_text, sdist_bytes

SIX = canonicalize_name("six")
NUMPY = canonicalize_name("numpy")
PAGE_URL = "https://pypi.org/simple/six/"


def load_page(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((DATA / "pages" / f"{name}.json").read_text())
    return data


def test_real_page_of_six() -> None:
    page = load_page("six")
    records = parse_project_page(page, name=SIX, page_url=PAGE_URL)
    files = [r.file for r in records]
    assert len(files) == len(page["files"])  # every file of six is a wheel or an sdist
    wheel = next(f for f in files if f.filename == "six-1.17.0-py2.py3-none-any.whl")
    assert wheel.kind is FileKind.WHEEL
    assert wheel.version == Version("1.17.0")
    assert wheel.tags == {Tag("py2", "none", "any"), Tag("py3", "none", "any")}
    assert wheel.requires_python == SpecifierSet("!=3.0.*,!=3.1.*,!=3.2.*,>=2.7")
    assert wheel.sha256 == "4721f391ed90541fddacab5acf947aa0d3dc7d27b2e1e8eda2be8970586c3274"
    assert wheel.size == 11050
    sdist = next(f for f in files if f.filename == "six-1.17.0.tar.gz")
    assert sdist.kind is FileKind.SDIST
    assert sdist.tags == frozenset()
    record = next(r for r in records if r.file is wheel)
    assert record.uploaded is not None
    assert record.uploaded.year == 2024
    assert versions_of(files)[-1] == Version("1.17.0")
    versions = versions_of(files)
    assert versions.index(Version("1.9.0")) < versions.index(Version("1.10.0"))


def test_real_page_yanked_files_keep_their_reason() -> None:
    records = parse_project_page(
        load_page("numpy-2.4"), name=NUMPY, page_url="https://pypi.org/simple/numpy/"
    )
    yanked = [r for r in records if r.file.yanked]
    assert yanked, "numpy 2.4.0 was yanked"
    assert {r.file.version for r in yanked} == {Version("2.4.0")}
    assert {r.yanked_reason for r in yanked} == {"Backward compatibility bug"}
    files = [r.file for r in records]
    assert versions_of(files) == [Version("2.4.1")]
    assert versions_of(files, include_yanked=True) == [Version("2.4.0"), Version("2.4.1")]


def entry(filename: str, **fields: Any) -> dict[str, Any]:
    return {
        "filename": filename,
        "url": f"../../files/{filename}",
        "hashes": {"sha256": "AB" * 32},
        **fields,
    }


def test_page_filters_and_metadata_announcements() -> None:
    page = {
        "files": [
            entry("demo-1.0-py3-none-any.whl", **{"core-metadata": {"sha256": "cd" * 32}}),
            entry("demo-1.1-py3-none-any.whl", **{"dist-info-metadata": {"sha256": "ef" * 32}}),
            entry("demo-1.2-py3-none-any.whl", **{"core-metadata": True}),
            entry("demo-1.3.tar.gz", yanked="broken build", **{"requires-python": ">=3.9"}),
            entry("demo-1.4.zip", yanked=True),
            entry("demo-1.0.win32.exe"),
            entry("demo-1.0-py2.7.egg"),
            entry("demo-notaversion-py3-none-any.whl"),
            entry("other-1.0-py3-none-any.whl"),
            {"filename": "demo-2.0.tar.gz", "url": "x", "hashes": {"md5": "00"}},
        ]
    }
    records = parse_project_page(
        page, name=canonicalize_name("demo"), page_url="https://index.test/simple/demo/"
    )
    by_name = {r.file.filename: r for r in records}
    assert list(by_name) == [
        "demo-1.0-py3-none-any.whl",
        "demo-1.1-py3-none-any.whl",
        "demo-1.2-py3-none-any.whl",
        "demo-1.3.tar.gz",
        "demo-1.4.zip",
    ]
    first = by_name["demo-1.0-py3-none-any.whl"]
    assert first.file.has_metadata
    assert first.metadata_sha256 == "cd" * 32
    assert first.file.sha256 == "ab" * 32  # hashes compare lower-case
    assert first.file.url == "https://index.test/files/demo-1.0-py3-none-any.whl"
    legacy = by_name["demo-1.1-py3-none-any.whl"]
    assert legacy.file.has_metadata
    assert legacy.metadata_sha256 == "ef" * 32
    unhashed = by_name["demo-1.2-py3-none-any.whl"]
    assert unhashed.file.has_metadata
    assert unhashed.metadata_sha256 is None
    sdist = by_name["demo-1.3.tar.gz"]
    assert sdist.file.yanked
    assert sdist.yanked_reason == "broken build"
    assert sdist.file.requires_python == SpecifierSet(">=3.9")
    assert not sdist.file.has_metadata
    assert by_name["demo-1.4.zip"].file.yanked
    assert by_name["demo-1.4.zip"].yanked_reason is None


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (None, None),
        ("", None),
        (">=3.8", SpecifierSet(">=3.8")),
        (">=3.6.*", SpecifierSet(">=3.6")),
        (">= '2.7'", SpecifierSet(">=2.7")),
        (">=3.6,", SpecifierSet(">=3.6")),
        ("python3 only", None),
    ],
)
def test_requires_python_is_lenient(text: str | None, expected: SpecifierSet | None) -> None:
    assert parse_requires_python(text) == expected


def test_requirements_are_lenient() -> None:
    assert parse_requirement("numpy>=1.26") == Requirement("numpy>=1.26")
    junk = parse_requirement("pytz (>=2011k)")
    assert junk is not None
    assert junk.name == "pytz"
    assert not junk.specifier
    with_marker = parse_requirement('pytz (>=2011k) ; python_version < "3"')
    assert with_marker is not None
    assert str(with_marker.marker) == 'python_version < "3"'
    assert parse_requirement("???") is None


def test_core_metadata_from_junk() -> None:
    text = (
        "Metadata-Version: 2.1\nName: Demo_Pkg\nVersion: 1.0\nRequires-Python: >=3.6.*\n"
        "Provides-Extra: Test_Suite\n"
        "Requires-Dist: numpy>=1.26\nRequires-Dist: pytz (>=2011k)\n"
        'Requires-Dist: pytest; extra == "test-suite"\nRequires-Dist: ???\n\nbody\n'
    )
    meta = parse_core_metadata(text, name=canonicalize_name("x"), version=Version("9"))
    assert meta.name == "demo-pkg"
    assert meta.version == Version("1.0")
    assert meta.requires_python == SpecifierSet(">=3.6")
    assert meta.provides_extra == {"test-suite"}
    assert [r.name for r in meta.requires_dist] == ["numpy", "pytz", "pytest"]


def test_core_metadata_falls_back_to_the_files_name_and_version() -> None:
    meta = parse_core_metadata(
        "Metadata-Version: 1.0\nVersion: not a version\n",
        name=canonicalize_name("demo"),
        version=Version("2.0"),
    )
    assert (meta.name, meta.version, meta.requires_dist) == ("demo", Version("2.0"), ())


def test_rendered_metadata_and_json_round_trip() -> None:
    text = metadata_text(
        "demo", "1.0", "numpy>=1.26", 'pytest; extra == "test"', python=">=3.10"
    ).replace("Requires-Dist", "Provides-Extra: test\nRequires-Dist", 1)
    meta = parse_core_metadata(text, name=canonicalize_name("demo"), version=Version("1.0"))
    assert meta.provides_extra == {"test"}
    again = parse_core_metadata(render_core_metadata(meta), name=meta.name, version=meta.version)
    assert again == meta
    assert metadata_from_json(json.loads(json.dumps(metadata_to_json(meta)))) == meta


def test_cache_rows_round_trip_every_field() -> None:
    records = parse_project_page(
        load_page("numpy-2.4"), name=NUMPY, page_url="https://pypi.org/simple/numpy/"
    )
    for record in records:
        row = json.loads(json.dumps(record_to_row(record)))
        assert record_from_row(NUMPY, row) == record


def test_sdist_pkg_info_and_legacy_requires_txt() -> None:
    pkg_info = "Metadata-Version: 2.1\nName: old\nVersion: 1.0\n\nlong text\n"
    requires = "six>=1.5\n\n[test]\npytest\n\n[:python_version < '3.8']\nimportlib-metadata\n"
    data = sdist_bytes("old", "1.0", pkg_info, requires_txt=requires)
    raw = sdist_metadata(data, "old-1.0.tar.gz")
    meta = parse_core_metadata(raw, name=canonicalize_name("old"), version=Version("1.0"))
    assert [str(r) for r in meta.requires_dist] == [
        "six>=1.5",
        'pytest; extra == "test"',
        'importlib-metadata; python_version < "3.8"',
    ]
    assert meta.provides_extra == {"test"}


def test_sdist_requires_dist_in_pkg_info_wins_over_requires_txt() -> None:
    pkg_info = metadata_text("new", "2.0", "numpy")
    data = sdist_bytes("new", "2.0", pkg_info, requires_txt="scipy\n")
    meta = parse_core_metadata(
        sdist_metadata(data, "new-2.0.tar.gz"),
        name=canonicalize_name("new"),
        version=Version("2.0"),
    )
    assert [r.name for r in meta.requires_dist] == ["numpy"]


def test_html_page_reads_like_the_json_page() -> None:
    html = (DATA / "pages" / "six.html").read_text()
    from_html = parse_project_page(html_page_to_json(html), name=SIX, page_url=PAGE_URL)
    from_json = parse_project_page(load_page("six"), name=SIX, page_url=PAGE_URL)
    # HTML pages carry no sizes or upload times; everything else is the same
    assert len(from_html) == len(from_json)
    html_files = {r.file.filename: r.file for r in from_html}
    assert {r.file.filename: replace(r.file, size=None) for r in from_json} == html_files


def test_html_attributes() -> None:
    html = """<html><body>
    <a href="../../f/demo-1.0-py3-none-any.whl#sha256=ABAB" data-requires-python="&gt;=3.9"
       data-core-metadata="sha256=cdcd">demo-1.0-py3-none-any.whl</a>
    <a href="/f/demo-1.1.tar.gz#sha256=efef" data-yanked="">demo-1.1.tar.gz</a>
    <a href="/f/demo-1.2.tar.gz#sha256=0101" data-yanked="bad" data-dist-info-metadata="true"
       >demo-1.2.tar.gz</a>
    <a href="/f/demo-1.3.tar.gz#md5=0101">demo-1.3.tar.gz</a>
    </body></html>"""
    records = parse_project_page(
        html_page_to_json(html),
        name=canonicalize_name("demo"),
        page_url="https://index.test/simple/demo/",
    )
    wheel, yanked, reason = records
    assert wheel.file.url == "https://index.test/f/demo-1.0-py3-none-any.whl"
    assert wheel.file.sha256 == "abab"
    assert wheel.file.requires_python == SpecifierSet(">=3.9")
    assert wheel.file.has_metadata
    assert wheel.metadata_sha256 == "cdcd"
    assert yanked.file.yanked
    assert yanked.yanked_reason is None
    assert not yanked.file.has_metadata
    assert reason.yanked_reason == "bad"
    assert reason.file.has_metadata
    assert reason.metadata_sha256 is None
