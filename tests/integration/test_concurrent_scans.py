"""Two real ``compat scan`` processes started together, sharing one cache directory
and one results database (SQLite, and PostgreSQL), over the same combinations: each
wheel is unpacked once (the other process waits for it and takes its tree), every
result is recorded exactly once per run, no "database is locked" failure, and both
runs finish.

``--backend local`` goes through the same wheelhouse, install store and database
as the Docker backend, without starting containers; the index is real PyPI."""

from __future__ import annotations

import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
import sqlalchemy as sa

from tests.integration.test_store_postgres import (  # noqa: F401  (fixtures)
    make_db_url,
    server_url,
)

MATRIX = """\
name = "tiny"
bases = ["debian-slim"]
strategy = "exhaustive"

[packages]
six = ">=1.15"
python-dateutil = ">=2.8.2"
"""


@pytest.mark.parametrize("database", ["sqlite", "postgresql"])
def test_two_scans_sharing_a_cache_and_a_database(
    tmp_path: Path, database: str, request: pytest.FixtureRequest
) -> None:
    matrix = tmp_path / "tiny.toml"
    matrix.write_text(MATRIX)
    url = (
        f"sqlite:///{tmp_path / 'results.db'}"
        if database == "sqlite"
        else request.getfixturevalue("make_db_url")()
    )
    env = {
        **os.environ,
        "COMPAT_CACHE_DIR": str(tmp_path / "cache"),
        "COMPAT_DATA_DIR": str(tmp_path / "data"),
        "COMPAT_DB": url,
        "COLUMNS": "200",
    }
    argv = [sys.executable, "-m", "compat", "-v", "scan", "--backend", "local"]
    scans = [
        subprocess.Popen(
            [*argv, "--matrix", str(matrix)],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    outputs = [scan.communicate(timeout=900) for scan in scans]
    for scan, (out, err) in zip(scans, outputs, strict=True):
        assert scan.returncode == 0, (out[-2000:], err[-3000:])
        assert "database is locked" not in err

    unpacks = Counter(
        line.split()[1]
        for _, err in outputs
        for line in err.splitlines()
        if line.startswith("unpacked ")
    )
    engine = sa.create_engine(url)
    with engine.connect() as conn:
        integrity = (
            conn.execute(sa.text("PRAGMA integrity_check")).scalar_one()
            if database == "sqlite"
            else "ok"  # the server's own
        )
        query = sa.text("SELECT run_id, combination_id FROM results")
        recorded = Counter((run, combination) for run, combination in conn.execute(query))
        runs = [tuple(row) for row in conn.execute(sa.text("SELECT id, status FROM runs"))]
    engine.dispose()
    per_run = Counter(run for run, _ in recorded)
    combinations = {combination for _, combination in recorded}
    print(
        f"runs: {len(runs)}, results: {sum(recorded.values())} "
        f"({dict(per_run)}), combinations: {len(combinations)}, "
        f"wheels unpacked: {len(unpacks)} ({sum(unpacks.values())} unpacks)"
    )
    assert integrity == "ok"
    assert sorted(status for _, status in runs) == ["finished", "finished"]
    # six 1.15-1.17 (3) x python-dateutil 2.8.2 and later: each in a run once at most
    assert len(combinations) >= 6
    assert set(recorded.values()) == {1}
    # what one run did not run (done already when it planned) the other recorded
    assert sum(recorded.values()) >= len(combinations)
    # six's and python-dateutil's wheels: each unpacked by one of the two, once
    assert len(unpacks) >= 5
    assert set(unpacks.values()) == {1}, unpacks
