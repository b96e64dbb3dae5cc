"""The deep tier end to end on bookworm: one dependent (pandas 1.5.3), one test
module of its plotting tests, narrowed to its legend tests, run differentially
against its contemporaneous stack resolved from PyPI; and matplotlib's image
comparison tests, whose baseline images only its sdist has."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers.docker import require_docker

pytestmark = pytest.mark.integration

BOOKWORM = "local/debian-python:bookworm"
NARROW = (
    "--deep-module",
    "pandas/tests/plotting/test_series.py",
    "--deep-keyword",
    "legend",
)


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    require_docker()
    home = tmp_path_factory.mktemp("compat-deep")
    return {
        **os.environ,
        "COMPAT_CACHE_DIR": str(home / "cache"),
        "COMPAT_DATA_DIR": str(home / "data"),
        "COMPAT_DB": f"sqlite:///{home / 'results.db'}",
    }


DATEUTIL = "python-dateutil==2.9.0.post0"


def check(env: dict[str, str], *pins: str, narrow: tuple[str, ...] = NARROW) -> dict[str, object]:
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "compat",
            "check",
            *pins,
            "--image",
            BOOKWORM,
            "--json",
            "--depth",
            "deep",
            *narrow,
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=1800,
        check=False,
    )
    assert done.stdout, done.stderr
    result: dict[str, object] = json.loads(done.stdout)
    return result


def test_matplotlib_3_10_breaks_pandas_1_5_legends_and_3_6_does_not(
    env: dict[str, str], tmp_path: Path
) -> None:
    # python-dateutil 4 breaks pandas 1.5 time zones: pinned apart from what is tested
    broken = check(env, "pandas==1.5.3", "matplotlib==3.10.9", "numpy==1.26.4", DATEUTIL)
    # the smoke suite may see the break too (its legend sweep); the deep tier adds
    # the attributed regression either way
    assert broken["verdict"] == "runtime-error"
    checks = broken["checks"]
    assert isinstance(checks, list)
    deep = [c for c in checks if c["name"].startswith("deep:pandas:pandas/tests/plotting/")]
    assert deep, [c["name"] for c in checks]
    error = str(deep[0]["error"])
    assert deep[0]["verdict"] == "runtime-error"
    assert "'Legend' object has no attribute 'legendHandles'" in error
    assert "pandas/plotting/_matplotlib/core.py" in error
    assert "changed: matplotlib 3.6.3 -> 3.10.9" in error  # the contemporaneous matplotlib

    fine = check(env, "pandas==1.5.3", "matplotlib==3.6.3", "numpy==1.26.4", DATEUTIL)
    assert fine["verdict"] == "pass", fine.get("error")
    fine_checks = fine["checks"]
    assert isinstance(fine_checks, list)
    summary = next(c for c in fine_checks if c["name"] == "deep:pandas")
    assert "0 regressions" in summary["log"]


def test_matplotlib_runs_its_image_comparisons_with_the_baseline_images_of_its_sdist(
    env: dict[str, str],
) -> None:
    # matplotlib's wheel ships its tests without their baseline images, and its
    # tests refuse to run without them
    module = "matplotlib/tests/test_patheffects.py"
    result = check(env, "matplotlib==3.10.0", "numpy==2.2.6", narrow=("--deep-module", module))
    assert result["verdict"] == "pass", result.get("error")
    checks = result["checks"]
    assert isinstance(checks, list)
    summary = next(c for c in checks if c["name"] == "deep:matplotlib")
    log = str(summary["log"])
    # without the images its collection fails: one error, which fails on the
    # baseline too ("1 not attributed")
    ran = re.search(r"(\d+) tests in 1 modules; 0 regressions, 0 not attributed", log)
    assert ran, log
    assert int(ran.group(1)) >= 10, log
