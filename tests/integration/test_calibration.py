"""The calibration sample: the oldest and the newest calibrated release of each of
the six packages, with their contemporaneous partners, on both CI bases. Every
stack must pass or fail only by a documented incompatibility."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from compat.store import sqlite_url
from tests.helpers.docker import require_docker

ROOT = Path(__file__).parent.parent.parent
BASES = {"local/debian-python:bookworm", "local/debian-python:trixie"}


def test_calibration_sample_has_no_unexplained_false_alarm(tmp_path: Path) -> None:
    require_docker()
    report = tmp_path / "calibration.json"
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
    }
    proc = subprocess.run(
        [
            sys.executable,
            str(ROOT / "benchmarks" / "calibrate.py"),
            "--sample",
            "--json",
            str(report),
            "--db",
            sqlite_url(tmp_path / "calibration.db"),
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=3600,
        check=False,
    )
    assert report.is_file(), proc.stderr[-3000:]
    tallies = json.loads(report.read_text())
    assert {t["base"] for t in tallies} == BASES
    for tally in tallies:
        # six packages, oldest and newest each: at least a handful of distinct stacks
        assert tally["stacks"] >= 6, tally
        assert tally["unresolved"] == [], tally
        assert tally["passes"] + tally["explained"] + tally["unexplained"] == tally["stacks"]
        false_alarms = [f for f in tally["failures"] if f["explained_by"] is None]
        assert false_alarms == [], (tally["base"], false_alarms)
    assert proc.returncode == 0, proc.stdout + proc.stderr[-3000:]
