"""Calibration's bookkeeping: which releases are calibrated, which failures the
exceptions file explains, and how a base's stacks are counted."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

from benchmarks.calibrate import (
    EXCEPTIONS,
    KnownBreak,
    calibrated_releases,
    load_known_breaks,
    sample_of,
    stacks_for,
    tally,
)
from compat.index.snapshot import SnapshotIndex
from compat.model import CheckResult, CheckVerdict, Combo, ComboResult, Verdict
from compat.targets.profiles import target_from_profile

NUMPY = canonicalize_name("numpy")
INDEX = SnapshotIndex(Path(__file__).parent.parent / "data" / "index")
TARGET = target_from_profile("debian-slim", python="3.13")
BASE = "local/debian-python:trixie"


def test_the_exceptions_file_loads_and_every_entry_has_a_source() -> None:
    for known in load_known_breaks(EXCEPTIONS):
        assert known.source.startswith("https://")
        assert known.reason
        assert known.when


def test_an_entry_without_a_source_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "exceptions.toml"
    path.write_text('[[exception]]\nwhen = ["numpy>=2"]\nreason = "breaks"\n')
    with pytest.raises(SystemExit, match="needs `source`"):
        load_known_breaks(path)


def test_calibrated_releases_are_the_newest_patch_of_each_installable_minor() -> None:
    releases = calibrated_releases(INDEX, TARGET)
    numpy = [str(v) for v in releases[NUMPY]]
    # 2.0 had no cp313 wheel; prereleases never count
    assert numpy[:3] == ["2.1.3", "2.2.6", "2.3.5"]
    assert "2.0.2" not in numpy
    assert all(not Version(v).is_prerelease for v in numpy)
    sample = sample_of(releases)
    assert sample[NUMPY] == [releases[NUMPY][0], releases[NUMPY][-1]]


def test_tally_counts_passes_known_breaks_false_alarms_and_check_errors() -> None:
    releases = {n: vs[-1:] for n, vs in sample_of(calibrated_releases(INDEX, TARGET)).items()}
    stacks = stacks_for(INDEX, TARGET, dict(list(releases.items())[:3]))
    combos = list({s.combo.id: s.combo for s in stacks if s.combo is not None}.values())
    assert len(combos) >= 2
    first, second = combos[0], combos[1]
    numpy = first.version_of("numpy")

    def failing(combo: Combo, check: str) -> ComboResult:
        return ComboResult(
            combo=combo,
            verdict=Verdict.RUNTIME_ERROR,
            failed_check=check,
            error="ValueError: boom",
            checks=(
                CheckResult(
                    name=check,
                    verdict=CheckVerdict.RUNTIME_ERROR,
                    duration=1.0,
                    error="ValueError: boom",
                ),
                CheckResult(name="other", verdict=CheckVerdict.CHECK_ERROR, duration=1.0),
            ),
        )

    known = KnownBreak(
        when=(Requirement(f"numpy=={numpy}"),),
        check="pandas+numpy:*",
        bases=(BASE,),
        reason="genuine",
        source="https://example.org/issue",
    )
    results = [failing(first, "pandas+numpy:ufuncs"), failing(second, "scipy+numpy:linalg")]
    if second.version_of("numpy") == numpy:  # both would match: make the second unexplained
        known = dataclasses.replace(known, check="pandas+numpy:ufuncs")
    counted = tally(BASE, TARGET, stacks, results, [known], seconds=1.0)
    assert (counted.stacks, counted.passes, counted.explained, counted.unexplained) == (2, 0, 1, 1)
    assert counted.check_errors == 2
    [alarm] = [f for f in counted.failures if f.explained_by is None]
    assert alarm.check == "scipy+numpy:linalg"
    assert alarm.error == "ValueError: boom"
    assert f"numpy=={second.version_of('numpy')}" in alarm.pins
    # the same failure on another base is not explained by a base-specific entry
    elsewhere = tally("other/image", TARGET, stacks, results[:1], [known], seconds=1.0)
    assert elsewhere.unexplained == 1
