"""PyPIIndex against a fake index (httpx.MockTransport): listings, PEP 658 metadata
and its hash, metadata read out of wheels and sdists, errors, memo and prefetch."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path
from typing import Any

import httpx
import pytest
from packaging.specifiers import SpecifierSet
from packaging.utils import canonicalize_name
from packaging.version import Version

from compat.errors import IndexUnavailable, MetadataUnavailable, ProjectNotFound
from compat.index.pypi import WHEEL_TAIL_BYTES, PyPIIndex
from compat.model import FileKind
from compat.settings import NetworkSettings
from tests.helpers.index import FakeIndex, metadata_text, sdist_bytes, wheel_bytes

DEMO = canonicalize_name("demo")


@pytest.fixture
def fake() -> FakeIndex:
    return FakeIndex()


def test_files_and_versions(fake: FakeIndex) -> None:
    python: dict[str, Any] = {"requires-python": ">=3.8"}
    fake.add("demo", "demo-1.0-py3-none-any.whl", b"w1", **python)
    fake.add("demo", "demo-1.0.tar.gz", b"s1")
    fake.add("demo", "demo-2.0-py3-none-any.whl", b"w2", yanked="oops")
    index = fake.index()
    files = index.files(canonicalize_name("Demo"))
    assert [f.filename for f in files] == [
        "demo-1.0-py3-none-any.whl",
        "demo-1.0.tar.gz",
        "demo-2.0-py3-none-any.whl",
    ]
    assert files[0].requires_python == SpecifierSet(">=3.8")
    assert files[1].kind is FileKind.SDIST
    assert files[2].yanked
    assert index.record(files[2]).yanked_reason == "oops"
    assert index.versions(DEMO) == [Version("1.0")]
    assert index.versions(DEMO, include_yanked=True) == [Version("1.0"), Version("2.0")]
    request = fake.page_requests()[0]
    assert str(request.url) == "https://index.test/simple/demo/"
    assert request.headers["accept"].startswith("application/vnd.pypi.simple.v1+json,")
    index.files(DEMO)
    assert len(fake.requests) == 1, "the listing is memoised"


def test_unknown_project(fake: FakeIndex) -> None:
    with pytest.raises(
        ProjectNotFound, match=re.escape("'nope' is not on https://index.test/simple/")
    ):
        fake.index().files(canonicalize_name("nope"))


def test_a_misspelled_project_gets_the_closest_known_name(fake: FakeIndex, tmp_path: Path) -> None:
    with pytest.raises(
        ProjectNotFound,
        match=re.escape("'nunpy' is not on https://index.test/simple/: did you mean 'numpy'?"),
    ):
        fake.index().files(canonicalize_name("nunpy"))
    fake.add("demo-kit", "demo_kit-1.0-py3-none-any.whl", b"w1")
    cached = fake.index(cache_dir=tmp_path)
    cached.files(canonicalize_name("demo-kit"))  # fetched once: a name it knows now
    with pytest.raises(ProjectNotFound, match="did you mean 'demo-kit'"):
        cached.files(canonicalize_name("demo-kits"))
    with pytest.raises(ProjectNotFound) as far:
        cached.files(canonicalize_name("zzzzzz"))
    assert "did you mean" not in str(far.value)


def test_unreachable_index_says_what_to_check(fake: FakeIndex) -> None:
    def refuse(request: httpx.Request) -> None:
        raise httpx.ConnectError("connection refused", request=request)

    fake.fail = refuse
    with pytest.raises(IndexUnavailable) as caught:
        fake.index(ca_bundle=Path("/corp/ca.pem")).files(DEMO)
    message = str(caught.value)
    assert "https://index.test/simple/demo/" in message
    assert "/corp/ca.pem" in message
    assert "proxy" in message
    assert "index URL" in message


def test_transient_failures_are_retried(fake: FakeIndex, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("compat.index.pypi.time.sleep", lambda _s: None)
    fake.add("demo", "demo-1.0.tar.gz", b"s1")
    failures = [503, "reset"]

    def flaky(request: httpx.Request) -> None:
        if failures:
            what = failures.pop(0)
            if what == "reset":
                raise httpx.ReadError("connection reset", request=request)
            fake.fail = None
            raise _Respond(httpx.Response(503))

    class _Respond(Exception):
        def __init__(self, response: httpx.Response) -> None:
            self.response = response

    def handler(request: httpx.Request) -> httpx.Response:
        try:
            flaky(request)
        except _Respond as r:
            return r.response
        return fake.handler(request)

    network = NetworkSettings(index_url="https://index.test/simple")
    index = PyPIIndex(network, transport=httpx.MockTransport(handler))
    assert len(index.files(DEMO)) == 1
    assert index.requests == 3


def test_an_unknown_page_type_is_reported(fake: FakeIndex) -> None:
    fake.add("demo", "demo-1.0.tar.gz", b"s1")
    fake.page_content_type = "text/plain"
    with pytest.raises(IndexUnavailable, match=r"not a simple API page \(PEP 691 JSON or PEP 503"):
        fake.index().files(DEMO)


def test_an_html_only_index_is_read(fake: FakeIndex) -> None:
    entry = fake.add("demo", "demo-1.0.tar.gz", b"s1")
    sha = entry["hashes"]["sha256"]
    html = f'<a href="{entry["url"]}#sha256={sha}">demo-1.0.tar.gz</a>'

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.host == "index.test":
            assert "text/html" in request.headers["accept"]
            return httpx.Response(200, text=html, headers={"content-type": "text/html"})
        return fake.handler(request)

    network = NetworkSettings(index_url="https://index.test/simple/")
    index = PyPIIndex(network, transport=httpx.MockTransport(handler))
    [file] = index.files(DEMO)
    assert file.sha256 == sha


@pytest.mark.parametrize("legacy_key", [False, True])
def test_pep658_metadata_is_verified(fake: FakeIndex, legacy_key: bool) -> None:
    text = metadata_text("demo", "1.0", "numpy>=1.26", python=">=3.10")
    fake.add("demo", "demo-1.0-py3-none-any.whl", b"not read", metadata=text, legacy_key=legacy_key)
    index = fake.index()
    [file] = index.files(DEMO)
    assert file.has_metadata
    meta = index.metadata(file)
    assert [str(r) for r in meta.requires_dist] == ["numpy>=1.26"]
    assert meta.requires_python == SpecifierSet(">=3.10")
    assert [str(r.url) for r in fake.file_requests()] == [f"{file.url}.metadata"]
    index.metadata(file)
    assert len(fake.file_requests()) == 1, "metadata is memoised"


def test_pep658_hash_mismatch_is_refused(fake: FakeIndex) -> None:
    text = metadata_text("demo", "1.0")
    fake.add("demo", "demo-1.0-py3-none-any.whl", b"x", metadata=text, metadata_hash="00" * 32)
    index = fake.index()
    [file] = index.files(DEMO)
    with pytest.raises(MetadataUnavailable, match="the index announced 0000"):
        index.metadata(file)


def test_announced_but_missing_metadata_falls_back_to_the_wheel(fake: FakeIndex) -> None:
    text = metadata_text("demo", "1.0", "scipy")
    wheel = wheel_bytes("demo", "1.0", text)
    fake.add("demo", "demo-1.0-py3-none-any.whl", wheel, metadata=text)
    del fake.blobs[f"{fake.pages['demo'][0]['url']}.metadata"]
    index = fake.index()
    [file] = index.files(DEMO)
    assert [r.name for r in index.metadata(file).requires_dist] == ["scipy"]


def test_metadata_read_from_a_small_wheel_in_one_request(fake: FakeIndex) -> None:
    text = metadata_text("demo", "1.0", "numpy<2")
    fake.add(
        "demo", "demo-1.0-cp312-cp312-manylinux_2_17_x86_64.whl", wheel_bytes("demo", "1.0", text)
    )
    index = fake.index()
    [file] = index.files(DEMO)
    assert not file.has_metadata
    assert [str(r) for r in index.metadata(file).requires_dist] == ["numpy<2"]
    [request] = fake.file_requests()
    assert request.headers["range"] == f"bytes=-{WHEEL_TAIL_BYTES}"


@pytest.mark.parametrize("metadata_first", [True, False])
def test_metadata_read_from_a_large_wheel_with_range_requests(
    fake: FakeIndex, metadata_first: bool
) -> None:
    text = metadata_text("demo", "1.0", "pandas>=2")
    wheel = wheel_bytes("demo", "1.0", text, padding=1_000_000, metadata_first=metadata_first)
    fake.add("demo", "demo-1.0-py3-none-any.whl", wheel)
    index = fake.index()
    [file] = index.files(DEMO)
    assert [str(r) for r in index.metadata(file).requires_dist] == ["pandas>=2"]
    requests = fake.file_requests()
    assert all("range" in r.headers for r in requests)
    # the tail (end record and central directory), then the member if it is not in it
    assert len(requests) == (2 if metadata_first else 1)


def test_metadata_from_a_wheel_when_the_server_ignores_ranges(fake: FakeIndex) -> None:
    fake.ranges = False
    text = metadata_text("demo", "1.0", "pandas>=2")
    fake.add("demo", "demo-1.0-py3-none-any.whl", wheel_bytes("demo", "1.0", text, padding=300_000))
    index = fake.index()
    [file] = index.files(DEMO)
    assert [r.name for r in index.metadata(file).requires_dist] == ["pandas"]
    assert len(fake.file_requests()) == 1


def test_whole_downloads_are_checked_against_their_sha256(fake: FakeIndex) -> None:
    fake.ranges = False
    wheel = wheel_bytes("demo", "1.0", metadata_text("demo", "1.0"))
    entry = fake.add("demo", "demo-1.0-py3-none-any.whl", wheel)
    entry["hashes"]["sha256"] = hashlib.sha256(b"something else").hexdigest()
    index = fake.index()
    [file] = index.files(DEMO)
    with pytest.raises(MetadataUnavailable, match="downloaded sha256"):
        index.metadata(file)


def test_a_wheel_without_metadata_is_reported(fake: FakeIndex) -> None:
    fake.add("demo", "demo-1.0-py3-none-any.whl", b"PK not a zip at all")
    index = fake.index()
    [file] = index.files(DEMO)
    with pytest.raises(MetadataUnavailable, match=re.escape("demo-1.0-py3-none-any.whl")):
        index.metadata(file)


def test_metadata_from_an_sdist(fake: FakeIndex) -> None:
    sdist = sdist_bytes("demo", "1.0", metadata_text("demo", "1.0", "six"))
    fake.add("demo", "demo-1.0.tar.gz", sdist)
    index = fake.index()
    [file] = index.files(DEMO)
    assert [r.name for r in index.metadata(file).requires_dist] == ["six"]


def test_prefetch_fetches_in_parallel_and_skips_broken_files(fake: FakeIndex) -> None:
    for minor in range(40):
        version = f"1.{minor}"
        text = metadata_text("demo", version, f"dep{minor}")
        fake.add("demo", f"demo-{version}-py3-none-any.whl", wheel_bytes("demo", version, text))
    fake.add("demo", "demo-9.0-py3-none-any.whl", b"broken")
    index = fake.index(workers=8)
    files = index.files(DEMO)
    index.prefetch(files)
    fetched = len(fake.file_requests())
    assert fetched == 41
    for file in files[:-1]:
        assert index.metadata(file).requires_dist[0].name == f"dep{file.version.minor}"
    assert len(fake.file_requests()) == fetched, "prefetched metadata is not fetched again"
    with pytest.raises(MetadataUnavailable):
        index.metadata(files[-1])


def test_prefetch_raises_when_the_index_is_unreachable(fake: FakeIndex) -> None:
    for minor in range(3):
        fake.add("demo", f"demo-1.{minor}-py3-none-any.whl", b"x%d" % minor)
    index = fake.index()
    files = index.files(DEMO)

    def refuse(request: httpx.Request) -> None:
        raise httpx.ConnectError("down", request=request)

    fake.fail = refuse
    with pytest.raises(IndexUnavailable, match="cannot reach"):
        index.prefetch(files)


def test_the_settings_normalise_the_index_url() -> None:
    settings = NetworkSettings(index_url="https://mirror.test/pypi/simple")
    index = PyPIIndex(settings)
    assert index.index_url == "https://mirror.test/pypi/simple/"
    assert index.project_url(DEMO) == "https://mirror.test/pypi/simple/demo/"


def test_a_file_gone_from_the_file_host_is_that_files_problem(fake: FakeIndex) -> None:
    fake.add("demo", "demo-1.0-py3-none-any.whl", b"gone")
    fake.add(
        "demo",
        "demo-1.1-py3-none-any.whl",
        wheel_bytes("demo", "1.1", metadata_text("demo", "1.1")),
    )
    fake.blobs.pop(fake.pages["demo"][0]["url"])
    index = fake.index()
    files = index.files(DEMO)
    index.prefetch(files)  # does not raise: the other file is still usable
    assert index.metadata(files[1]).version == Version("1.1")
    with pytest.raises(MetadataUnavailable, match="HTTP 404"):
        index.metadata(files[0])
