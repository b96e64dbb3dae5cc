"""The persistent cache: warm runs make no request, listings revalidate after their TTL
with conditional requests, offline runs name what is missing, writes are atomic."""

from __future__ import annotations

import logging
import os
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from packaging.utils import canonicalize_name

from compat.errors import OfflineCacheMiss
from compat.index.cache import IndexCache, atomic_write
from compat.index.parse import FileRecord, make_file
from compat.index.pypi import PyPIIndex
from tests.helpers.index import FakeIndex, http_date, metadata_text, wheel_bytes

DEMO = canonicalize_name("demo")


class Clock:
    def __init__(self) -> None:
        self.now = 1_700_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def fake() -> FakeIndex:
    fake = FakeIndex()
    for version in ("1.0", "1.1"):
        text = metadata_text("demo", version, "numpy")
        fake.add("demo", f"demo-{version}-py3-none-any.whl", wheel_bytes("demo", version, text))
    fake.add("other", "other-1.0-py3-none-any.whl", wheel_bytes("other", "1.0", "Name: other\n"))
    return fake


def open_index(fake: FakeIndex, tmp_path: Path, clock: Clock, **options: Any) -> PyPIIndex:
    return fake.index(cache=IndexCache(tmp_path, ttl=600, clock=clock), **options)


def use(index: PyPIIndex) -> None:
    files = index.files(DEMO)
    index.prefetch(files)
    for file in files:
        assert index.metadata(file).requires_dist[0].name == "numpy"


def test_warm_run_makes_no_request(fake: FakeIndex, tmp_path: Path, clock: Clock) -> None:
    use(open_index(fake, tmp_path, clock))
    cold = len(fake.requests)
    assert cold == 3  # one listing, one range request per small wheel
    clock.now += 599
    warm = open_index(fake, tmp_path, clock)
    use(warm)
    assert len(fake.requests) == cold
    assert warm.requests == 0


def test_listing_is_revalidated_with_its_etag_after_the_ttl(
    fake: FakeIndex, tmp_path: Path, clock: Clock
) -> None:
    use(open_index(fake, tmp_path, clock))
    clock.now += 601
    index = open_index(fake, tmp_path, clock)
    use(index)
    [page, again] = fake.page_requests()
    assert "if-none-match" not in page.headers
    assert again.headers["if-none-match"] == '"demo-0"'
    assert index.requests == 1, "a 304 keeps the listing, metadata stays cached forever"
    # the 304 restarted the TTL
    clock.now += 599
    use(open_index(fake, tmp_path, clock))
    assert len(fake.page_requests()) == 2


def test_changed_listing_is_fetched_again(fake: FakeIndex, tmp_path: Path, clock: Clock) -> None:
    use(open_index(fake, tmp_path, clock))
    fake.add("demo", "demo-2.0.tar.gz", b"new sdist")
    fake.revision += 1
    assert len(open_index(fake, tmp_path, clock).files(DEMO)) == 2, "still fresh"
    clock.now += 601
    assert len(open_index(fake, tmp_path, clock).files(DEMO)) == 3
    clock.now += 1
    assert len(open_index(fake, tmp_path, clock).files(DEMO)) == 3
    assert len(fake.page_requests()) == 2


def test_last_modified_is_used_without_an_etag(
    fake: FakeIndex, tmp_path: Path, clock: Clock
) -> None:
    fake.etag = False
    fake.last_modified = http_date(clock.now)
    open_index(fake, tmp_path, clock).files(DEMO)
    clock.now += 601
    assert len(open_index(fake, tmp_path, clock).files(DEMO)) == 2
    revalidation = fake.page_requests()[-1]
    assert revalidation.headers["if-modified-since"] == fake.last_modified
    assert "if-none-match" not in revalidation.headers


def test_stale_listing_is_used_when_the_index_is_unreachable(
    fake: FakeIndex, tmp_path: Path, clock: Clock
) -> None:
    open_index(fake, tmp_path, clock).files(DEMO)
    clock.now += 3600

    def refuse(request: httpx.Request) -> None:
        raise httpx.ConnectError("down", request=request)

    fake.fail = refuse
    assert len(open_index(fake, tmp_path, clock).files(DEMO)) == 2


def test_offline_names_the_missing_listing(fake: FakeIndex, tmp_path: Path, clock: Clock) -> None:
    index = open_index(fake, tmp_path, clock, offline=True)
    with pytest.raises(OfflineCacheMiss) as caught:
        index.files(DEMO)
    assert caught.value.missing == ["project listing demo (from https://index.test/simple/)"]
    assert fake.requests == []


def test_offline_prefetch_names_every_missing_file(
    fake: FakeIndex, tmp_path: Path, clock: Clock
) -> None:
    online = open_index(fake, tmp_path, clock)
    files = online.files(DEMO)
    online.metadata(files[0])
    clock.now += 10 * 86400  # offline ignores the TTL
    before = len(fake.requests)
    offline = open_index(fake, tmp_path, clock, offline=True)
    files = offline.files(DEMO)
    assert offline.metadata(files[0]).name == "demo"
    with pytest.raises(OfflineCacheMiss) as caught:
        offline.metadata(files[1])
    assert caught.value.missing == ["metadata of file demo-1.1-py3-none-any.whl"]
    more = list(open_index(fake, tmp_path, clock).files(canonicalize_name("other")))
    with pytest.raises(OfflineCacheMiss) as caught:
        offline.prefetch([*files, *more])
    assert caught.value.missing == [
        "metadata of file demo-1.1-py3-none-any.whl",
        "metadata of file other-1.0-py3-none-any.whl",
    ]
    assert "2 item(s)" in str(caught.value)
    assert len(fake.requests) == before + 1  # only the online listing of "other"


def test_metadata_is_keyed_by_file_hash_across_indexes(
    fake: FakeIndex, tmp_path: Path, clock: Clock
) -> None:
    use(open_index(fake, tmp_path, clock))
    cache = IndexCache(tmp_path, ttl=600, clock=clock)
    for file in open_index(fake, tmp_path, clock).files(DEMO):
        assert cache.metadata_path(file.sha256).is_file()
        assert cache.metadata(file.sha256) is not None


def test_corrupt_entries_count_as_missing(
    fake: FakeIndex, tmp_path: Path, clock: Clock, caplog: pytest.LogCaptureFixture
) -> None:
    clean = open_index(fake, tmp_path, clock)
    use(clean)
    clean_files = clean.files(DEMO)
    clean_meta = [clean.metadata(f) for f in clean_files]
    cache = IndexCache(tmp_path, ttl=600, clock=clock)
    listing = cache.listing_path("https://index.test/simple/", DEMO)
    listing.write_text('{"format":1,"url"')
    files = open_index(fake, tmp_path, clock).files(DEMO)
    assert files == clean_files  # fetched again
    metadata = cache.metadata_path(files[0].sha256)
    metadata.write_bytes(b"\x00garbage")
    before = len(fake.requests)
    again = open_index(fake, tmp_path, clock)
    use(again)
    assert len(fake.requests) == before + 1  # the metadata; the listing was refetched above
    assert [again.metadata(f) for f in files] == clean_meta
    notices = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert notices == [
        f"ignoring a damaged index cache entry {listing}: it is fetched again",
        f"ignoring a damaged index cache entry {metadata}: it is fetched again",
    ]


def test_interrupted_write_leaves_the_old_entry(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "entry.json"
    atomic_write(target, b'{"old": true}')
    real_fdopen = os.fdopen

    class Interrupted:
        def __init__(self, fd: int, mode: str) -> None:
            self.out = real_fdopen(fd, mode)

        def __enter__(self) -> Interrupted:
            return self

        def __exit__(self, *exc: object) -> None:
            self.out.close()

        def write(self, data: bytes) -> None:
            self.out.write(data[: len(data) // 2])
            raise KeyboardInterrupt

    monkeypatch.setattr("compat.index.cache.os.fdopen", Interrupted)
    with pytest.raises(KeyboardInterrupt):
        atomic_write(target, b'{"new": "a much longer value than before"}')
    assert target.read_bytes() == b'{"old": true}'
    assert [p.name for p in tmp_path.iterdir()] == ["entry.json"], "no temporary file left"


def test_concurrent_writers_never_expose_a_partial_listing(tmp_path: Path) -> None:
    cache = IndexCache(tmp_path)
    records = synthetic_records(500)
    cache.store_listing("https://i/", DEMO, url="https://i/demo/", records=records)
    stop = threading.Event()

    def write() -> None:
        while not stop.is_set():
            cache.store_listing("https://i/", DEMO, url="https://i/demo/", records=records)

    writers = [threading.Thread(target=write) for _ in range(2)]
    for thread in writers:
        thread.start()
    try:
        for _ in range(30):
            listing = cache.listing("https://i/", DEMO)
            assert listing is not None
            assert len(listing.records) == 500
    finally:
        stop.set()
        for thread in writers:
            thread.join()


def synthetic_records(count: int) -> list[FileRecord]:
    """A listing shaped like numpy's: many versions times many wheels."""
    platforms = [
        "manylinux_2_17_x86_64.manylinux2014_x86_64",
        "musllinux_1_2_x86_64",
        "macosx_11_0_arm64",
        "win_amd64",
    ]
    records = []
    for i in range(count):
        version = f"1.{i // 40}.{i % 5}"
        py = f"cp3{8 + i % 6}"
        filename = f"demo-{version}-{py}-{py}-{platforms[i % 4]}.whl"
        file = make_file(
            project=DEMO,
            filename=filename,
            url=f"https://files.test/packages/{i:064x}/{filename}",
            sha256=f"{i:064x}",
            requires_python=">=3.8",
            size=10_000_000 + i,
        )
        assert file is not None
        records.append(FileRecord(file=file, upload_time="2024-01-01T00:00:00Z"))
    return records


def test_a_large_listing_loads_fast(tmp_path: Path) -> None:
    cache = IndexCache(tmp_path)
    records = synthetic_records(5000)
    cache.store_listing("https://i/", DEMO, url="https://i/demo/", records=records)
    start = time.perf_counter()
    listing = cache.listing("https://i/", DEMO)
    elapsed = time.perf_counter() - start
    assert listing is not None
    assert listing.records == tuple(records)
    # Measured about 30 ms here (numpy's real listing, 4400 files, likewise);
    # the bound only catches a regression to per-file re-parsing.
    assert elapsed < 0.5, f"loading 5000 cached files took {elapsed:.3f} s"


def test_an_unwritable_cache_does_not_fail_the_run(
    fake: FakeIndex, tmp_path: Path, clock: Clock
) -> None:
    (tmp_path / "index-v1").write_text("a file where a directory should be")
    index = open_index(fake, tmp_path, clock)
    use(index)
    assert index.requests == 3


def test_an_unwritable_cache_is_said_once_and_slows_nothing_else(
    fake: FakeIndex, tmp_path: Path, clock: Clock, caplog: pytest.LogCaptureFixture
) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    index = fake.index(cache=IndexCache(blocker / "cache", ttl=600, clock=clock))
    with caplog.at_level("WARNING"):
        use(index)
        index.files(canonicalize_name("other"))
    said = [r.getMessage() for r in caplog.records if "index cache" in r.getMessage()]
    assert len(said) == 1, said
    assert said[0].startswith("cannot write the index cache")
