"""A full disk loses nothing finished: the cache and the SQLite results database on a
real size-limited filesystem (a tmpfs) that fills up, once while a wheel is unpacked
and once while a result is committed. compat stops with a clear error and its exit
code, records no verdict for what it could not finish, and the results recorded
before are intact (``PRAGMA integrity_check``).

The runs go through the real pipeline (fetch, unpack, record) over a fake backend:
the point is where the bytes land, not what runs in a container."""

from __future__ import annotations

import errno
import importlib
import os
import sqlite3
import subprocess
import threading
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from compat.config import RunConfig
from compat.effects.container import ExecResult
from compat.errors import CompatError, DiskFull, ExitCode, StoreError
from compat.harness import Pipeline
from compat.model import Combo, Verdict
from compat.reporter import Reporter
from compat.store import Store, sqlite_url
from compat.workflows.session import Session
from tests.helpers.harness import (
    FakeBackend,
    Served,
    combo_of_pins,
    exec_result,
    glibc_target,
    passing_suite,
    write_wheel,
)
from tests.helpers.index import FakeIndex

pytestmark = pytest.mark.slow  # mounts a filesystem, fills it

DISK_SIZE = "8m"


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A tmpfs of DISK_SIZE, unmounted afterwards."""
    if os.geteuid() != 0:
        if os.environ.get("CI") == "true":
            pytest.fail("CI runs as root: the full-disk test mounts a tmpfs")
        pytest.skip("mounting a size-limited tmpfs needs root")
    where = tmp_path / "disk"
    where.mkdir()
    subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={DISK_SIZE}", "tmpfs", str(where)], check=True
    )
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], check=False)


def _fill(disk: Path) -> Path:
    """A file taking every free byte of ``disk``."""
    filler = disk / "filler"
    with filler.open("wb", buffering=0) as out:
        try:
            while True:
                out.write(b"\0" * 65536)
        except OSError:
            pass
    return filler


def _results(db: Path) -> tuple[str, list[tuple[str, str]]]:
    """The database's integrity check and its (combination, verdict) rows."""
    with sqlite3.connect(db) as conn:
        (integrity,) = conn.execute("PRAGMA integrity_check").fetchone()
        rows = conn.execute("SELECT combination_id, verdict FROM results ORDER BY id").fetchall()
    return integrity, [(str(c), str(v)) for c, v in rows]


def _session(store: Store, backend: FakeBackend, served: Served, cache: Path) -> Session:
    pipeline = Pipeline(backend, RunConfig(), cache_dir=cache, client=served.client())
    return Session(
        pipeline=pipeline,
        store=store,
        index=FakeIndex(),  # type: ignore[arg-type]
        reporter=Reporter(),
        config=RunConfig(),
        target=glibc_target(),
    )


def _stopped(exc: CompatError, code: ExitCode, cause: str) -> None:
    """``exc`` stops compat with ``code``, naming ``cause`` and what was kept."""
    assert exc.exit_code is code
    assert cause in str(exc)
    assert "the 0 results that finished are kept" in str(exc)


def _run(session: Session, combos: list[Combo]) -> None:
    with session.recording(strategy="test") as run_id:
        session.run(combos, run_id)


def test_a_full_disk_stops_the_run_and_keeps_what_finished(
    small_disk: Path, tmp_path: Path
) -> None:
    cache, db = small_disk / "cache", small_disk / "results.db"
    served = Served()
    wheels = tmp_path / "wheels"
    wheels.mkdir()
    a = combo_of_pins(served.add(write_wheel(wheels, "alpha", "1.0")))
    b = combo_of_pins(served.add(write_wheel(wheels, "beta", "1.0")))
    # compresses to a few kB, unpacks to more than the disk holds
    big_wheel = write_wheel(wheels, "big", "1.0")
    with zipfile.ZipFile(big_wheel, "a", compression=zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("big/data.bin", b"\0" * 12_000_000)
    big = combo_of_pins(served.add(big_wheel))
    backend = FakeBackend(lambda argv: exec_result(passing_suite("import")))
    store = Store.open(sqlite_url(db))
    session = _session(store, backend, served, cache)

    _run(session, [a, b])
    integrity, kept = _results(db)
    assert integrity == "ok"
    assert sorted(kept) == sorted([(a.id, "pass"), (b.id, "pass")])

    # 1. the disk fills while a wheel is unpacked: the machine's fault, not the wheel's
    with pytest.raises(DiskFull) as unpacking:
        _run(session, [big])
    _stopped(unpacking.value, ExitCode.HARNESS, "no space left")
    assert list((cache / "installs").glob(".unpack-*")) == []  # no half tree left
    integrity, after_unpack = _results(db)
    assert integrity == "ok"
    assert after_unpack == kept  # no install-failed (nor any) verdict for it

    # 2. the disk fills while a result is committed: SQLite rolls the transaction back
    filler: list[Path] = []

    filling = threading.Lock()

    def fill_then_answer(argv: list[str]) -> ExecResult:
        with filling:  # the disk fills as the combination runs (its execs run in threads)
            if not filler:
                filler.append(_fill(small_disk))
        # a log that does not fit in what the write-ahead log already holds
        return exec_result(passing_suite("import"), stderr=os.urandom(600_000).hex())

    backend.executor_obj.answer = fill_then_answer
    with pytest.raises(StoreError) as committing:
        _run(session, [a])
    _stopped(committing.value, ExitCode.STORE, "the disk is full")
    store.close()
    filler[0].unlink()
    integrity, after_commit = _results(db)
    assert integrity == "ok"
    assert after_commit == kept
    with Store.open(sqlite_url(db)) as reopened:  # and compat reads it as before
        assert [r.verdict for r in reopened.results()] == [Verdict.PASS, Verdict.PASS]


def test_a_full_disk_anywhere_in_a_run_stops_it_saying_what_was_kept(tmp_path: Path) -> None:
    """A write the run makes outside the wheelhouse and the installs (a build record, a
    cache entry) that finds the disk full is the same clear stop, never a verdict."""
    served = Served()
    (tmp_path / "wheels").mkdir()
    combos = [
        combo_of_pins(served.add(write_wheel(tmp_path / "wheels", f"p{i}", "1.0")))
        for i in range(2)
    ]

    def answer(argv: list[str]) -> ExecResult:
        if any("p1" in a for a in argv):
            raise OSError(errno.ENOSPC, "No space left on device", "/cache/sweeps/x.json")
        return exec_result(passing_suite("import"))

    config = RunConfig(jobs=1)
    pipeline = Pipeline(
        FakeBackend(answer), config, cache_dir=tmp_path / "c", client=served.client()
    )
    with Store.open(sqlite_url(tmp_path / "r.db")) as store:
        session = Session(
            pipeline=pipeline, store=store, index=FakeIndex(),  # type: ignore[arg-type]
            reporter=Reporter(), config=config, target=glibc_target(),
        )  # fmt: skip
        with pytest.raises(DiskFull) as stopped:
            _run(session, combos)
        kept = [r.combination_id for r in store.results()]
    assert combos[1].id not in kept  # no verdict for the one cut short
    assert stopped.value.exit_code is ExitCode.HARNESS
    assert "no space left writing /cache/sweeps/x.json" in str(stopped.value)
    assert f"the {len(kept)} results that finished are kept" in str(stopped.value)


def test_a_full_disk_outside_a_run_is_an_error_not_a_traceback(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    entry = importlib.import_module("compat.cli.main")  # the package's `main` is the function

    def full(**_: object) -> None:
        raise OSError(errno.ENOSPC, "No space left on device", "/cache/index/numpy.json")

    monkeypatch.setattr(entry.cli, "main", full)
    monkeypatch.setattr(entry.signal, "signal", lambda *_: None)
    monkeypatch.setattr(entry.sys, "argv", ["compat"])  # not the test runner's -v
    with pytest.raises(SystemExit) as done:
        entry.main()
    assert done.value.code == ExitCode.HARNESS
    said = capsys.readouterr().err
    assert "no space left writing /cache/index/numpy.json" in said
    assert "Traceback" not in said
