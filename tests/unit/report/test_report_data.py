"""ReportData built from scan results."""

from __future__ import annotations

from packaging.utils import canonicalize_name
from packaging.version import Version

from compat.model import CheckResult, CheckVerdict, ComboResult, Verdict
from compat.report import BaseReport, ReportData
from compat.report.view import Anchors, build, combinations, heatmap
from tests.helpers.report import (
    make_result,
    make_target,
    sample_report,
    sample_results,
)


def test_from_results_keeps_every_value_the_report_shows() -> None:
    target = make_target("bookworm")
    results = sample_results(target)
    base = BaseReport.from_results(target, results, image_size=1, lockfile="x==1\n")
    assert base.name == "bookworm"
    assert base.image == "local/bookworm:latest"
    assert base.image_id == target.image_id
    assert base.python == Version("3.11.2")
    assert base.libc == "glibc 2.36"
    assert base.image_size == 1
    assert base.added_size is None
    assert base.lockfile == "x==1\n"
    assert len(base.results) == len(results)
    entry, result = base.results[-1], results[-1]
    assert entry.result_id == entry.combo_id == result.combo.id
    assert entry.requested == (
        ("numpy", Version("2.1.3")),
        ("pandas", Version("2.2.3")),
        ("lightgbm", Version("4.3.0")),
    )
    assert [n for n, _ in entry.pins] == ["lightgbm", "numpy", "pandas"]
    assert entry.verdict is Verdict.CRASH
    assert entry.failed_check == "lightgbm+numpy:native-train"
    assert [c.name for c in entry.failed] == ["lightgbm+numpy:native-train"]
    assert entry.error == result.error
    assert entry.log == result.log
    assert entry.duration == 1.5


def test_a_combination_run_twice_gets_two_distinct_result_ids() -> None:
    target = make_target("bookworm")
    once = make_result(target, {"numpy": "2.0.2"})
    again = make_result(target, {"numpy": "2.0.2"}, Verdict.TIMEOUT, error="timed out")
    base = BaseReport.from_results(target, [once, again])
    assert [e.result_id for e in base.results] == [once.combo.id, f"{once.combo.id}-2"]
    assert {e.combo_id for e in base.results} == {once.combo.id}


def test_log_falls_back_to_the_checks_output() -> None:
    target = make_target("bookworm")
    result = make_result(target, {"numpy": "2.0.2"}, Verdict.RUNTIME_ERROR, error="boom")
    quiet = ComboResult(
        combo=result.combo,
        verdict=result.verdict,
        checks=(
            CheckResult(
                name="numpy.core", verdict=CheckVerdict.RUNTIME_ERROR, duration=0.1, log="boom!"
            ),
        ),
        error="boom",
    )
    entry = BaseReport.from_results(target, [quiet]).results[0]
    assert "numpy.core (runtime-error)" in entry.log
    assert "boom!" in entry.log


def test_report_data_from_results_makes_one_base_per_run() -> None:
    a, b = make_target("a"), make_target("b")
    data = ReportData.from_results(
        [(a, sample_results(a)), (b, [])], title="t", generated="2025-01-01"
    )
    assert [base.name for base in data.bases] == ["a", "b"]
    assert data.title == "t"
    assert data.generated == "2025-01-01"
    assert data.bases[1].results == ()


def test_heatmap_counts_each_pair_of_versions() -> None:
    target = make_target("bookworm")
    base = BaseReport.from_results(target, sample_results(target))
    rows = combinations(base.results, (), Anchors())
    hm = heatmap(rows, canonicalize_name("numpy"), canonicalize_name("pandas"))
    assert hm.rows == (Version("1.26.4"), Version("2.0.2"), Version("2.1.3"))
    assert hm.cols == (Version("2.1.4"), Version("2.2.3"))
    got = {
        (str(c.row), str(c.col)): (c.passed, c.failed, c.other, c.state.value)
        for r in hm.cells
        for c in r
    }
    # lightgbm 4.5.0's missing libgomp and lightgbm's crash colour no numpy x pandas cell
    assert got == {
        ("1.26.4", "2.1.4"): (1, 0, 1, "all-pass"),
        ("1.26.4", "2.2.3"): (1, 0, 1, "all-pass"),
        ("2.0.2", "2.1.4"): (0, 2, 0, "all-fail"),
        ("2.0.2", "2.2.3"): (1, 0, 1, "all-pass"),
        ("2.1.3", "2.1.4"): (0, 0, 0, "untested"),
        ("2.1.3", "2.2.3"): (0, 0, 1, "untested"),
    }
    cell = hm.cells[1][0]
    assert cell.title == (
        "numpy 2.0.2 with pandas 2.1.4: 0 of 2 combinations pass; failing by check import:pandas"
    )
    crash = heatmap(rows, canonicalize_name("numpy"), canonicalize_name("lightgbm"))
    assert crash.cells[2][0].state.value == "all-fail"  # numpy 2.1.3 x lightgbm 4.3.0


def test_smallest_working_image_needs_a_passing_combination() -> None:
    report = build(sample_report())
    assert [b.smallest for b in report.bases] == [False, True, False]
    smaller_but_broken = make_target("tiny")
    data = ReportData(
        bases=(
            *sample_report().bases,
            BaseReport.from_results(
                smaller_but_broken,
                [make_result(smaller_but_broken, {"numpy": "2.0.2"}, Verdict.CRASH, error="x")],
                image_size=1_000,
            ),
        )
    )
    assert [b.smallest for b in build(data).bases] == [False, True, False, False]


def test_a_lone_working_base_is_not_called_the_smallest() -> None:
    data = sample_report()
    alone = ReportData(bases=data.bases[:1])
    assert [b.smallest for b in build(alone).bases] == [False]
