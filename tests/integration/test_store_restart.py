"""A PostgreSQL server that goes away during a scan: restarted between two results,
and stopped for a few seconds while a result waits to be recorded. The scan goes on
(the pool's pre-ping replaces the dropped connections; connecting waits for the server
to answer again) and every result is recorded exactly once.

The server is a cluster of this test's own (initdb in a temporary directory, on a
free port): restarting the shared one would cut other runs' connections."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from compat.model import Combo, ComboResult, Verdict
from compat.store import Store
from compat.store.records import RunStatus
from compat.targets.target import Target
from compat.workflows.session import Session
from tests.helpers.harness import combo_of_pins, glibc_target, pin_for, write_wheel
from tests.helpers.index import FakeIndex
from tests.helpers.pipeline import ScriptedPipeline, session_of

PG_BIN = Path("/usr/lib/postgresql")


class Cluster:
    def __init__(self, root: Path, bin_dir: Path, port: int) -> None:
        self.data, self.bin, self.port = root / "data", bin_dir, port
        self.root = root
        self.url = f"postgresql+psycopg://compat@127.0.0.1:{port}/postgres"

    def ctl(self, *args: str) -> None:
        options = f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1"
        subprocess.run(
            ["runuser", "-u", "postgres", "--", str(self.bin / "pg_ctl"), "-D", str(self.data),
             "-l", str(self.root / "log"), "-o", options, "-w", *args],
            check=True, stdout=subprocess.DEVNULL,
        )  # fmt: skip


@pytest.fixture
def cluster() -> Iterator[Cluster]:
    versions = sorted(PG_BIN.glob("*/bin/initdb"))
    if os.geteuid() != 0 or not versions or shutil.which("runuser") is None:
        if os.environ.get("CI") == "true":
            pytest.fail("CI runs as root with PostgreSQL installed (.ci/postgres.sh)")
        pytest.skip("a throwaway PostgreSQL cluster needs root and PostgreSQL's binaries")
    bin_dir = versions[-1].parent
    root = Path(tempfile.mkdtemp(prefix="compat-pg-"))
    shutil.chown(root, "postgres", "postgres")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    subprocess.run(
        ["runuser", "-u", "postgres", "--", str(bin_dir / "initdb"), "-D", str(root / "data"),
         "-A", "trust", "-U", "compat"],
        check=True, stdout=subprocess.DEVNULL,
    )  # fmt: skip
    pg = Cluster(root, bin_dir, port)
    pg.ctl("start")
    try:
        yield pg
    finally:
        subprocess.run(
            ["runuser", "-u", "postgres", "--", str(bin_dir / "pg_ctl"), "-D", str(pg.data),
             "-m", "immediate", "stop"],
            check=False, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        shutil.rmtree(root, ignore_errors=True)


def _combos(directory: Path, n: int) -> list[Combo]:
    return [combo_of_pins(pin_for(write_wheel(directory, f"pkg{i}", "1.0"))) for i in range(n)]


def test_a_restarted_database_server_loses_and_doubles_nothing(
    cluster: Cluster, tmp_path: Path
) -> None:
    combos = _combos(tmp_path, 6)
    back: list[threading.Thread] = []

    def come_back() -> None:
        time.sleep(3)
        cluster.ctl("start")

    def smoke(target: Target, combo: Combo) -> ComboResult:
        if combo == combos[2]:  # between two results: the pool's connections are dead
            cluster.ctl("-m", "fast", "restart")
        if combo == combos[4]:  # down while this result waits to be recorded
            cluster.ctl("-m", "fast", "stop")
            thread = threading.Thread(target=come_back)
            thread.start()
            back.append(thread)
        return ComboResult(combo=combo, verdict=Verdict.PASS, image_id=target.image_id)

    store = Store.open(cluster.url)
    session: Session = session_of(
        store, ScriptedPipeline(smoke), FakeIndex(),  # type: ignore[arg-type]
        target=glibc_target(),
    )  # fmt: skip
    try:
        with session.recording(strategy="test") as run_id:
            ran = session.run(combos, run_id)
    finally:
        for thread in back:
            thread.join()
        store.close()
    assert len(ran.ids) == len(combos)

    engine = sa.create_engine(cluster.url)
    with engine.connect() as conn:
        rows = conn.execute(sa.text("SELECT combination_id FROM results")).scalars().all()
        status = conn.execute(sa.text("SELECT status FROM runs")).scalars().all()
    engine.dispose()
    assert sorted(rows) == sorted(c.id for c in combos)  # each once, none lost
    assert status == [RunStatus.FINISHED.value]
