"""Two processes that share a cache directory (two shards, a scan beside a nightly)
download each file, unpack each wheel and build each sdist once: the second waits
for the first and takes its work; and they share one SQLite results database, each
writer waiting its turn. The slow tests start two real processes at a barrier; the
work they race for is slowed down so that, without the locks, both would do it."""

from __future__ import annotations

import fcntl
import hashlib
import multiprocessing
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from compat.config import RunConfig
from compat.errors import BuildFailed
from compat.harness import Pipeline
from compat.harness.backend import ImageInfo
from compat.harness.docker_backend import DockerBackend
from compat.harness.installs import Installs
from compat.harness.toolchain import TOOLCHAIN_READY, ToolchainChoice
from compat.harness.wheelhouse import FileRef, Wheelhouse
from compat.model import FileKind, Pin
from compat.reporter import Reporter
from compat.store import Store, sqlite_url
from tests.helpers.container import FakeEngine
from tests.helpers.harness import (
    FakeBackend,
    exec_result,
    image_info,
    pin_for,
    sha256_of,
    write_wheel,
)
from tests.helpers.results import make_combo, make_target, passed


def _note(log: str) -> None:
    """Note one piece of real work in ``log``, and take long enough over it that the
    other process arrives meanwhile."""
    with open(log, "a") as f:
        f.write(f"{os.getpid()}\n")
    time.sleep(0.5)


def _race(work: Callable[..., None], *args: Any) -> list[int | None]:
    """Run ``work(*args, ready)`` in two processes that start it together; their exit
    codes."""
    context = multiprocessing.get_context("spawn")
    ready = context.Barrier(2)
    processes = [context.Process(target=work, args=(*args, ready)) for _ in range(2)]
    for process in processes:
        process.start()
    for process in processes:
        process.join(timeout=60)
    return [p.exitcode for p in processes]


def _unpack(cache: str, wheel: str, sha: str, log: str, ready: Any) -> None:
    real = Installs._unpack_into

    def counting(self: Installs, target: Path, wheel: Path, sha256: str) -> None:
        _note(log)
        real(self, target, wheel, sha256)

    Installs._unpack_into = counting  # type: ignore[method-assign]
    ready.wait()
    Installs(Path(cache)).unpack(Path(wheel), sha)


@pytest.mark.slow
def test_two_processes_sharing_a_cache_unpack_a_wheel_once(tmp_path: Path) -> None:
    wheel = write_wheel(tmp_path, "shared", "1.0", {"shared/__init__.py": "S = 1\n"})
    sha, log = sha256_of(wheel), tmp_path / "unpacks.log"
    assert _race(_unpack, str(tmp_path / "cache"), str(wheel), sha, str(log)) == [0, 0]
    assert len(log.read_text().splitlines()) == 1  # the second took the first one's tree
    store = Installs(tmp_path / "cache")
    assert store.has(sha)
    assert (store.dir_for(sha) / "shared" / "__init__.py").read_text() == "S = 1\n"
    assert [p.name for p in store.installs_dir.iterdir()] == [sha]  # nothing half left


def _fetch(cache: str, body: bytes, log: str, ready: Any) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        _note(log)
        return httpx.Response(200, content=body)

    ref = FileRef(
        filename="shared-1.0-py3-none-any.whl",
        url="https://files.example/shared-1.0-py3-none-any.whl",
        sha256=hashlib.sha256(body).hexdigest(),
    )
    with httpx.Client(transport=httpx.MockTransport(handler)) as client:
        ready.wait()
        assert Wheelhouse(Path(cache), client).fetch_one(ref).read_bytes() == body


@pytest.mark.slow
def test_two_processes_sharing_a_cache_download_a_file_once(tmp_path: Path) -> None:
    body, log = b"wheel bytes" * 1000, tmp_path / "downloads.log"
    assert _race(_fetch, str(tmp_path / "cache"), body, str(log)) == [0, 0]
    assert len(log.read_text().splitlines()) == 1  # the second found the first one's file
    assert [p.name for p in (tmp_path / "cache" / "files").rglob("*") if p.is_file()] == [
        "shared-1.0-py3-none-any.whl"
    ]


def _build(cache: str, wheel: str, pin: Pin, log: str, ready: Any) -> None:
    class Counting(FakeBackend):
        def build_wheel(
            self, info: ImageInfo, pin: Pin, sdist: Path, out_dir: Path, **_: object
        ) -> Path:
            _note(log)
            return super().build_wheel(info, pin, sdist, out_dir)

    backend = Counting(lambda argv: exec_result(""), builds={pin.filename: Path(wheel)})
    with Pipeline(backend, RunConfig(), cache_dir=Path(cache)) as pipeline:
        ready.wait()
        record = pipeline.builder.build_one(
            backend.info, pipeline._wheelhouse(), pin, Reporter(), "one"
        )
    assert record.ok


@pytest.mark.slow
def test_two_processes_sharing_a_cache_build_an_sdist_once(tmp_path: Path) -> None:
    sdist = tmp_path / "gamma-3.0.tar.gz"
    sdist.write_bytes(b"gamma sources")
    pin = pin_for(sdist, kind=FileKind.SDIST)
    wheel = write_wheel(tmp_path, "gamma", "3.0")
    cache, log = tmp_path / "cache", tmp_path / "builds.log"
    assert _race(_build, str(cache), str(wheel), pin, str(log)) == [0, 0]
    assert len(log.read_text().splitlines()) == 1  # the second took the first one's wheel
    (record,) = (cache / "builds" / pin.sha256).glob("*.json")
    assert '"ok": true' in record.read_text()


def _held(lock: Path) -> bool:
    """Whether someone holds the lock on ``lock`` now."""
    fd = os.open(lock, os.O_RDWR | os.O_CREAT)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)  # releases it if taken here
    return False


def test_a_build_that_installs_the_pypi_toolchain_holds_its_lock(tmp_path: Path) -> None:
    """The PyPI toolchain is one venv per image in the cache: the build that installs
    it keeps other processes' builds out until it is ready; once it is, builds share
    it without waiting for each other."""
    engine = FakeEngine()
    home = tmp_path / "cache" / "toolchains" / "sha256_base"
    held: list[bool] = []
    start = engine.containers.run

    def run(**kwargs: Any) -> Any:
        held.append(_held(home.with_name(f"{home.name}.lock")))
        return start(**kwargs)

    engine.containers.run = run  # type: ignore[method-assign]
    config = RunConfig(toolchain=ToolchainChoice.PYPI)
    backend = DockerBackend(config, cache_dir=tmp_path / "cache", client=engine)
    sdist = tmp_path / "gamma-3.0.tar.gz"
    sdist.write_bytes(b"gamma sources")
    pin = pin_for(sdist, kind=FileKind.SDIST)
    for _ in range(2):
        out = tmp_path / f"out-{len(held)}"
        out.mkdir()
        with pytest.raises(BuildFailed):  # the fake builds no wheel
            backend.build_wheel(image_info(), pin, sdist, out)
        (home / TOOLCHAIN_READY).touch()  # as the first build's script leaves it
    assert held == [True, False]


def _record(url: str, versions: list[str], ready: Any) -> None:
    with Store.open(url) as store:
        target = make_target()
        run_id = store.start_run(target, backend="docker")
        ready.wait()
        for version in versions:
            store.record(run_id, target, passed(target, make_combo(target, {"numpy": version})))


@pytest.mark.slow
def test_two_processes_record_into_one_sqlite_file_each_result_once(tmp_path: Path) -> None:
    url = sqlite_url(tmp_path / "results.db")
    Store.open(url).close()  # created beforehand, as a first scan would
    versions = [f"2.0.{n}" for n in range(40)]
    assert _race(_record, url, versions) == [0, 0]  # no "database is locked"
    with Store.open(url, read_only=True) as store:
        rows = store.results(limit=None)
    assert len({r.run_id for r in rows}) == 2
    # each process's every result, once
    assert sorted(r.label for r in rows) == sorted(f"numpy {v}" for v in versions * 2)
