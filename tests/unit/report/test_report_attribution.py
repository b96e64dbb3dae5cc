"""What a failure implicates, and the nightly timeline built from recorded results."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import pytest
from packaging.utils import NormalizedName, canonicalize_name
from packaging.version import Version

from compat.model import CheckKind, Verdict
from compat.report import ResultEntry, RunKind
from compat.report.attribution import Blame, FailedCheck, Finding, attribute, library_frames
from compat.report.history import nights
from tests.helpers.report import make_result, make_target

NP, PD, LGB, SK = (canonicalize_name(n) for n in ("numpy", "pandas", "lightgbm", "scikit-learn"))
STACK = {NP: Version("2.0.2"), PD: Version("2.1.1"), LGB: Version("4.5.0"), SK: Version("1.9.1")}
ABI = "ValueError: numpy.dtype size changed, may indicate binary incompatibility"


def pair(a: NormalizedName, b: NormalizedName) -> frozenset[NormalizedName]:
    return frozenset((a, b))


def test_a_cross_package_check_implicates_its_needs_and_nothing_else() -> None:
    found = attribute(
        verdict=Verdict.RUNTIME_ERROR,
        versions=STACK,
        failed=[FailedCheck(name="lightgbm+scikit-learn:sklearn-api", error="TypeError: x")],
    )
    assert found.blame is Blame.PAIR
    assert found.pairs == {pair(LGB, SK)}
    assert not found.implicates(NP, LGB)
    assert found.reasons == ("check lightgbm+scikit-learn:sklearn-api",)


def test_a_numpy_abi_import_failure_implicates_numpy_and_the_package() -> None:
    found = attribute(
        verdict=Verdict.IMPORT_ERROR,
        versions=STACK,
        failed=[FailedCheck(name="import:pandas", kind=CheckKind.IMPORT, error=ABI)],
    )
    assert found.pairs == {pair(NP, PD)}


def test_a_module_failing_on_a_partner_implicates_that_pair() -> None:
    error = (
        "pandas.io.parquet: AttributeError: module 'numpy' has no attribute 'Inf' "
        "(at parquet.py:12; partner: numpy 2.0.2) (and 3 more modules, with the same error)"
    )
    found = attribute(
        verdict=Verdict.IMPORT_ERROR,
        versions=STACK,
        failed=[FailedCheck(name="import:pandas", kind=CheckKind.IMPORT, error=error)],
    )
    assert found.blame is Blame.PAIR
    assert found.pairs == {pair(NP, PD)}


def test_a_plain_import_failure_marks_the_package_alone() -> None:
    found = attribute(
        verdict=Verdict.IMPORT_ERROR,
        versions=STACK,
        failed=[
            FailedCheck(
                name="import:pandas",
                kind=CheckKind.IMPORT,
                error="ImportError: cannot import name 'x'",
            )
        ],
    )
    assert found.blame is Blame.PACKAGE
    assert found.packages == {PD}
    assert not found.pairs


SITE = "/home/u/venv/lib/python3.11/site-packages"
CHECKS = "/opt/compat/smoke/checks"


def traceback_of(*frames: str, error: str) -> str:
    lines = ["Traceback (most recent call last):"]
    for path in frames:
        lines += [f'  File "{path}", line 10, in f', "    call()"]
    return "\n".join([*lines, error, ""])


SPARSE = "lightgbm+scipy+scikit-learn:sklearn-api-sparse"
TAGS = "AttributeError: 'super' object has no attribute '__sklearn_tags__'"


def sparse_failure(*frames: str) -> FailedCheck:
    log = traceback_of(*frames, error=TAGS)
    return FailedCheck(name=SPARSE, error=TAGS, frames=library_frames(log))


STACK3 = {**STACK, canonicalize_name("scipy"): Version("1.14.1")}
SP = canonicalize_name("scipy")


def test_a_three_package_check_failing_in_one_partner_blames_only_that_pair() -> None:
    """lightgbm 4.5 with scikit-learn 1.9: the failing frame is scikit-learn's, so
    scipy x lightgbm stays clear."""
    check = sparse_failure(
        f"{CHECKS}/lightgbm_partners.py",
        f"{SITE}/lightgbm/sklearn.py",
        f"{SITE}/sklearn/utils/validation.py",
        f"{SITE}/lightgbm/sklearn.py",
        f"{SITE}/numpy/core/fromnumeric.py",
    )
    assert check.frames == ("lightgbm", "sklearn", "lightgbm", "numpy")
    found = attribute(verdict=Verdict.RUNTIME_ERROR, versions=STACK3, failed=[check])
    assert found.blame is Blame.PAIR
    assert found.pairs == {pair(LGB, SK)}
    assert not found.implicates(LGB, SP)
    assert not found.implicates(SP, SK)


def test_a_three_package_check_with_no_partner_frame_blames_its_primary_pair() -> None:
    check = sparse_failure(f"{CHECKS}/lightgbm_partners.py", f"{SITE}/lightgbm/sklearn.py")
    found = attribute(verdict=Verdict.RUNTIME_ERROR, versions=STACK3, failed=[check])
    assert found.pairs == {pair(LGB, SP)}
    bare = FailedCheck(name=SPARSE, error=TAGS)  # a result stored without its log
    assert attribute(verdict=Verdict.RUNTIME_ERROR, versions=STACK3, failed=[bare]).pairs == {
        pair(LGB, SP)
    }


def test_the_failing_traceback_is_the_last_of_a_check_log_and_of_a_chain() -> None:
    earlier = traceback_of(f"{SITE}/scipy/sparse/_base.py", error="ValueError: caught")
    chained = traceback_of(f"{SITE}/scipy/sparse/_base.py", error="KeyError: 'x'")
    last = traceback_of(f"{SITE}/sklearn/base.py", error=TAGS)
    log = f"{earlier}sweep went on\n{chained}\nDuring handling of the above exception\n{last}"
    assert library_frames(log) == ("sklearn",)
    # Cython names its frames by a path relative to the site directory
    assert library_frames(traceback_of("pandas/_libs/interval.pyx", error=ABI)) == ("pandas",)
    assert library_frames("no traceback here") == ()


PA = canonicalize_name("pyarrow")


def test_an_import_failure_blames_the_distribution_whose_module_raised() -> None:
    """scikit-learn's whole-package import fails inside pyarrow 14, built for
    NumPy 1.x: pyarrow x numpy, not numpy x scikit-learn."""
    error = (
        "sklearn.utils._pyarrow: ImportError: numpy.core.multiarray failed to import "
        "(scikit-learn 1.5.2 was compiled against NumPy 1.x; NumPy 2.0.2 is installed; "
        "partner: numpy 2.0.2)"
    )
    log = "\n".join(
        [
            "scikit-learn 1.5.2: 500 modules, 499 imported, 0 not applicable, 1 failed",
            f"failed: {error}",
            "--- sklearn.utils._pyarrow ---",
            traceback_of(
                f"{SITE}/sklearn/utils/_pyarrow.py",
                f"{SITE}/pyarrow/__init__.py",
                "pyarrow/lib.pyx",
                f"{SITE}/numpy/core/_multiarray_umath.py",  # NumPy 2's shim raises it
                error="ImportError: numpy.core.multiarray failed to import",
            ),
        ]
    )
    check = FailedCheck(
        name="import:scikit-learn",
        kind=CheckKind.IMPORT,
        error=error,
        frames=library_frames(log, kind=CheckKind.IMPORT),
    )
    versions = {**STACK, PA: Version("14.0.2")}
    found = attribute(verdict=Verdict.IMPORT_ERROR, versions=versions, failed=[check])
    assert found.pairs == {pair(NP, PA)}
    assert not found.implicates(NP, SK)


def test_an_import_failure_inside_a_dependency_naming_no_other_blames_the_two() -> None:
    log = traceback_of(
        f"{SITE}/pandas/__init__.py",
        f"{SITE}/dateutil/tz/tz.py",
        error="AttributeError: module 'six' has no attribute 'x'",
    )
    check = FailedCheck(
        name="import:pandas",
        kind=CheckKind.IMPORT,
        error="AttributeError: module 'six' has no attribute 'x'",
        frames=library_frames(log, kind=CheckKind.IMPORT),
    )
    du = canonicalize_name("python-dateutil")
    found = attribute(
        verdict=Verdict.IMPORT_ERROR, versions={**STACK, du: Version("2.9.0")}, failed=[check]
    )
    assert found.pairs == {pair(PD, du)}


def test_a_missing_library_is_the_environment_whatever_check_saw_it() -> None:
    found = attribute(
        verdict=Verdict.IMPORT_ERROR,
        versions=STACK,
        failed=[FailedCheck(name="lightgbm+numpy:native-train", error="OSError: libgomp.so.1")],
        system_deps=["libgomp1"],
    )
    assert found.blame is Blame.ENVIRONMENT
    assert not found.pairs
    assert found.fix is not None
    assert "libgomp1" in found.fix


@pytest.mark.parametrize("verdict", [Verdict.NO_WHEEL, Verdict.BUILD_FAILED])
def test_build_and_wheel_failures_are_the_environment(verdict: Verdict) -> None:
    assert attribute(verdict=verdict, versions=STACK).blame is Blame.ENVIRONMENT


def test_a_timeout_that_persisted_blames_no_pair_and_says_it_is_undecided() -> None:
    found = attribute(verdict=Verdict.TIMEOUT, versions=STACK)
    assert found.blame is Blame.ENVIRONMENT  # shown apart from the failures, no red cell
    assert not found.pairs
    assert found.fix is not None
    assert "undecided" in found.fix


def test_a_bisect_finding_the_combination_holds_names_its_pair() -> None:
    finding = Finding(packages=((NP, Version("2.0.2")), (PD, Version("2.1.1"))), line="x")
    other = Finding(packages=((NP, Version("2.2.6")), (PD, Version("2.1.1"))), line="y")
    found = attribute(
        verdict=Verdict.CRASH,
        versions=STACK,
        failed=[FailedCheck(name="user:mine.py")],
        findings=[finding, other],
    )
    assert found.pairs == {pair(NP, PD)}
    assert found.reasons == ("bisect: numpy 2.0.2 x pandas 2.1.1",)


@pytest.mark.parametrize(
    "where",
    [
        "(at pandas/plotting/_matplotlib/core.py:640 in f; changed: numpy 1.26.4 -> 2.0.2; "
        "also changed: python-dateutil 2.8.2 -> 2.9.0, pytz 2023.3 -> 2024.1)",
        "(at pandas/plotting/_matplotlib/core.py:640 in f; changed: numpy 1.26.4 -> 2.0.2)",
        "[pandas/plotting/_matplotlib/core.py:640; changed: numpy 1.26.4 -> 2.0.2]",  # older
    ],
)
def test_a_deep_regression_names_the_partner_that_changed(where: str) -> None:
    """The most likely changed partner makes the pair; the others changed too but
    are not blamed in pairs."""
    found = attribute(
        verdict=Verdict.RUNTIME_ERROR,
        versions=STACK,
        failed=[
            FailedCheck(
                name="deep:pandas:pandas/tests/plotting/test_frame.py::test_legend",
                kind=CheckKind.DEEP,
                error=f"AttributeError: 'Legend' object has no attribute 'legendHandles' {where}",
            )
        ],
    )
    assert found.pairs == {pair(NP, PD)}
    assert found.reasons == ("check deep:pandas:pandas/tests/plotting/test_frame.py::test_legend",)


def test_a_failure_naming_nothing_is_unattributed_and_a_pass_is_nothing() -> None:
    assert (
        attribute(verdict=Verdict.RUNTIME_ERROR, versions=STACK, failed=[FailedCheck(name="exec")])
    ).blame is Blame.UNATTRIBUTED
    assert attribute(verdict=Verdict.PASS, versions=STACK).blame is Blame.NONE


T0 = datetime(2026, 11, 1, 2, 0, tzinfo=UTC)


def entry(
    combo: str, lgb: str, verdict: Verdict, run: str, hours: float, kind: RunKind = RunKind.NIGHTLY
) -> ResultEntry:
    versions = ((NP, Version("2.2.6")), (LGB, Version(lgb)))
    return ResultEntry(
        result_id=f"{combo}-{run}",
        combo_id=combo,
        requested=versions,
        pins=versions,
        verdict=verdict,
        kind=kind,
        created=T0 + timedelta(hours=hours),
        run_id=run,
    )


def newest_lightgbm(passing: Sequence[ResultEntry]) -> ResultEntry | None:
    return max(passing, key=lambda e: e.versions[LGB], default=None)


def test_nights_list_new_releases_regressions_and_lock_moves() -> None:
    entries = [
        entry("a", "4.5.0", Verdict.PASS, "scan", 0, RunKind.SCAN),
        entry("a", "4.5.0", Verdict.PASS, "n1", 24),
        entry("b", "4.6.0", Verdict.PASS, "n1", 24.1),
        entry("a", "4.5.0", Verdict.CRASH, "n2", 48),
        entry("a", "4.5.0", Verdict.CRASH, "probe", 49, RunKind.PROBE),
    ]
    seen = {(LGB, Version("4.6.0")): T0 + timedelta(hours=23.9)}
    timeline = nights(entries, first_seen=seen, choose_lock=newest_lightgbm)
    assert [n.results for n in timeline] == [2, 1]
    first, second = timeline
    assert first.new_versions == ()  # seen just before the night started: the night before
    assert first.lock_change == "lightgbm 4.5.0 -> 4.6.0"
    assert first.regressions == ()
    assert second.regressions == ("numpy 2.2.6, lightgbm 4.5.0",)
    assert second.lock_change is None
    later = {(LGB, Version("4.6.0")): T0 + timedelta(hours=24.05)}
    assert nights(entries, first_seen=later, choose_lock=newest_lightgbm)[0].new_versions == (
        "lightgbm 4.6.0",
    )


def test_a_stored_check_log_carries_its_failing_frames_into_the_report() -> None:
    target = make_target("bookworm")
    log = traceback_of(f"{CHECKS}/x.py", f"{SITE}/sklearn/base.py", error=TAGS)
    versions = {"lightgbm": "4.5.0", "scipy": "1.14.1", "scikit-learn": "1.9.1"}
    result = make_result(target, versions, Verdict.RUNTIME_ERROR, check=SPARSE, error=TAGS)
    result = dataclasses.replace(
        result, checks=tuple(dataclasses.replace(c, log=log) for c in result.checks)
    )
    entry = ResultEntry.of(result)
    assert [c.frames for c in entry.failed] == [("sklearn",)]
    found = attribute(verdict=entry.verdict, versions=entry.versions, failed=entry.failed)
    assert found.pairs == {pair(LGB, SK)}
