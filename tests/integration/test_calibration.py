"""The calibration samples: the oldest and the newest calibrated release of each of
the six packages, with their contemporaneous partners, on both CI bases; and the
newest stack of matrix/data-stack.toml on bookworm. Every stack must pass or fail
only by a documented incompatibility."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from compat.store import sqlite_url
from tests.helpers.docker import require_docker

ROOT = Path(__file__).parent.parent.parent
BASES = {"local/debian-python:bookworm", "local/debian-python:trixie"}


def calibrate(tmp_path: Path, *args: str) -> tuple[list[dict[str, Any]], str]:
    """Run the calibration with ``args``; its tallies, and what it printed."""
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
            *args,
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
    tallies: list[dict[str, Any]] = json.loads(report.read_text())
    for tally in tallies:
        assert tally["unresolved"] == [], tally
        assert tally["passes"] + tally["explained"] + tally["unexplained"] == tally["stacks"]
        false_alarms = [f for f in tally["failures"] if f["explained_by"] is None]
        assert false_alarms == [], (tally["base"], false_alarms)
    assert proc.returncode == 0, proc.stdout + proc.stderr[-3000:]
    return tallies, proc.stdout


def test_calibration_sample_has_no_unexplained_false_alarm(tmp_path: Path) -> None:
    tallies, _ = calibrate(tmp_path, "--sample")
    assert {t["base"] for t in tallies} == BASES
    # six packages, oldest and newest each: at least a handful of distinct stacks
    assert all(t["stacks"] >= 6 for t in tallies), tallies


def test_the_newest_data_stack_has_no_unexplained_false_alarm(tmp_path: Path) -> None:
    """The fourteen packages of matrix/data-stack.toml as they stood on the day of
    the newest release among them: the stack a team scans today."""
    tallies, _ = calibrate(
        tmp_path,
        "--matrix", str(ROOT / "matrix" / "data-stack.toml"), "--sample", "--newest", "1",
        "--base", "local/debian-python:bookworm",
    )  # fmt: skip
    assert [(t["base"], t["stacks"]) for t in tallies] == [("local/debian-python:bookworm", 1)]
