"""What the console shows of a result: check errors loudly, skipped checks with
their reason, neither counted as a failure."""

from __future__ import annotations

import dataclasses
from types import SimpleNamespace

import pytest
from rich.console import Console

from compat.cli.console import ConsoleReporter, out, show_result, show_scan, show_summary
from compat.model import CheckResult, CheckVerdict, ComboResult, Verdict
from compat.report.summary import Row
from compat.resolve.planner import Plan
from compat.smoke.engine import NOT_IN_COMBINATION
from compat.workflows.scan import ScanOutcome
from tests.helpers.report import CHECK_ERROR, OUT_OF_RANGE, make_result, make_target, with_checks
from tests.helpers.results import make_combo


def _flagged() -> ComboResult:
    passing = make_result(make_target("bookworm"), {"lightgbm": "2.3.1", "numpy": "2.0.2"})
    return with_checks(passing, CHECK_ERROR, OUT_OF_RANGE)


def test_show_result_lists_check_errors_and_skip_reasons() -> None:
    with out.capture() as captured:
        show_result(_flagged())
    text = captured.get()
    assert text.startswith("pass ")
    assert "check-error lightgbm+numpy:native-train: AttributeError" in text
    assert "not counted in the verdict" in text
    assert "skipped lightgbm+scikit-learn:sklearn-api: needs lightgbm>=3.0, have 2.3.1" in text


def test_a_build_that_failed_says_no_check_ran() -> None:
    failed = dataclasses.replace(
        _flagged(),
        verdict=Verdict.BUILD_FAILED,
        checks=(),
        duration=83.3,
        error="numpy 1.19.5 (sdist): x.c:3:1: error: too few arguments",
    )
    with out.capture() as captured:
        show_result(failed)
    text = captured.get()
    assert "no check ran (build-failed after 83.3 s)" in text
    assert "0 checks" not in text


def test_checks_of_absent_packages_are_one_count() -> None:
    absent = [
        (f"xgboost+pandas:check-{i}", CheckVerdict.SKIPPED, f"needs xgboost: {NOT_IN_COMBINATION}")
        for i in range(3)
    ]
    with out.capture() as captured:
        show_result(with_checks(_flagged(), *absent))
    text = captured.get()
    assert "xgboost+pandas:check" not in text
    assert "skipped 3 checks of packages not in the combination" in text
    assert "skipped lightgbm+scikit-learn:sklearn-api: needs lightgbm>=3.0" in text  # a reason


def test_checks_failing_the_same_way_are_said_once_with_a_count() -> None:
    error = "ImportError: cannot import name 'gaussian' from 'scipy.signal'"
    windows = [
        (f"pandas+scipy:window-{kind}", CheckVerdict.IMPORT_ERROR, error)
        for kind in ("gaussian", "hann", "kaiser", "tukey")
    ]
    other = ("pandas+scipy:corr-methods", CheckVerdict.RUNTIME_ERROR, "ValueError: no")
    failing = dataclasses.replace(
        with_checks(_flagged(), *windows, other), verdict=Verdict.IMPORT_ERROR
    )
    with out.capture() as captured:
        show_result(failing)
    lines = captured.get().splitlines()
    said = [line for line in lines if error in line]
    assert said == [
        "  import-error 4 checks (pandas+scipy:window-gaussian, pandas+scipy:window-hann, "
        f"pandas+scipy:window-kaiser, …): {error}"
    ]
    assert "  runtime-error pandas+scipy:corr-methods: ValueError: no" in lines


def test_scan_summary_lists_check_errors_after_the_table() -> None:
    row = Row.of(_flagged())
    assert row.verdict is Verdict.PASS
    assert row.check_errors == (
        "lightgbm+numpy:native-train: AttributeError: module 'lightgbm' has no attribute "
        "'early_stopping'",
    )
    with out.capture() as captured:
        show_summary([row], title="scan")
    text = captured.get()
    assert "1 check errors" in text
    assert f"check-error {row.label}: lightgbm+numpy:native-train" in text
    assert "lightgbm+numpy:native-train" in text


def test_a_build_failure_line_names_its_reason_not_none() -> None:
    built = make_result(make_target("bookworm"), {"lightgbm": "4.5.0", "numpy": "2.0.2"})
    reason = "lightgbm==4.5.0 (sdist): cmake: command not found"
    failed = dataclasses.replace(
        built, verdict=Verdict.BUILD_FAILED, checks=(), failed_check=None, error=reason
    )
    reporter = ConsoleReporter(Console(record=True, width=200))
    reporter.combo_finished(failed)
    line = reporter.console.export_text()
    assert "None" not in line
    assert line.split() == ["build-failed", *failed.combo.label().split(), *reason.split()]


def _outcome(*verdicts: Verdict) -> ScanOutcome:
    target = make_target("bookworm")
    results = [
        dataclasses.replace(make_result(target, {"numpy": f"2.0.{i}"}), verdict=verdict)
        for i, verdict in enumerate(verdicts)
    ]
    plan = Plan(matrix="m", target=target, strategy="pairwise", versions={}, combos=())
    return ScanOutcome(
        title="m on bookworm",
        target=target,
        plan=plan,
        rows=tuple(Row.of(r) for r in results),
        results=tuple(results),
        run_id="r",
        store_url="sqlite://",
        image_size=None,
    )


def test_compat_image_is_suggested_only_when_something_passed() -> None:
    with out.capture() as captured:
        show_scan(_outcome(Verdict.IMPORT_ERROR, Verdict.BUILD_FAILED))
    assert "compat image" not in captured.get()
    with out.capture() as captured:
        show_scan(_outcome(Verdict.IMPORT_ERROR, Verdict.PASS))
    assert "run compat image" in captured.get()


def test_each_result_of_a_run_says_how_far_it_is_and_about_how_long_is_left() -> None:
    reporter = ConsoleReporter(Console(record=True, width=200))
    reporter.run_started(3)
    result = make_result(make_target("bookworm"), {"numpy": "2.0.2"})
    for _ in range(3):
        reporter.combo_finished(result)
    reporter.run_finished()
    lines = reporter.console.export_text().splitlines()
    assert lines[0].startswith("[1/3, ~")
    assert " s left] " in lines[0]
    assert lines[1].startswith("[2/3, ~")
    assert lines[2].split() == ["[3/3]", "pass", "numpy", "2.0.2"]


def test_progress_shows_no_empty_stage_and_every_shown_stage_finishes() -> None:
    reporter = ConsoleReporter(Console(record=True, width=100))
    reporter.run_started(2)
    for stage, done, total in [
        ("fetch", 0, 2),
        ("fetch", 2, 2),
        ("compile", 0, 0),
        ("run", 0, 2),
        ("run", 2, 2),
        ("compile", 0, 1),  # a retry's derived image compiles again
        ("compile", 1, 1),
        ("retry", 0, 1),
        ("retry", 1, 1),
    ]:
        reporter.stage_progress(stage, done, total)
    assert reporter._progress is not None
    tasks = reporter._progress.tasks
    shown = [(t.description, t.completed, t.total) for t in tasks if t.visible]
    assert shown == [("fetch", 2, 2), ("run", 2, 2), ("compile", 1, 1), ("retry", 1, 1)]
    assert all(t.finished for t in tasks)  # no timer left running
    reporter.run_finished()


def test_test_ids_with_brackets_print_whole(monkeypatch: pytest.MonkeyPatch) -> None:
    """Rich markup would swallow a parametrized test id's ``[bool-columns0]``."""
    test_id = "deep:pandas:pandas/tests/arrays/sparse/test_accessor.py::test_to_coo[bool-columns0]"
    error = "ImportError: [scipy] too old"
    failed = dataclasses.replace(
        make_result(make_target("bookworm"), {"pandas": "3.0.0", "scipy": "1.10.1"}),
        verdict=Verdict.RUNTIME_ERROR,
        checks=(
            CheckResult(
                name=test_id, verdict=CheckVerdict.RUNTIME_ERROR, duration=1.0, error=error
            ),
        ),
        failed_check=test_id,
        error=error,
        notes=("deep: the likeliest cause, [x] -> [y]",),
    )
    monkeypatch.setattr(out, "width", 300)
    monkeypatch.setattr(out, "_force_terminal", True)  # the table, as a terminal shows it
    with out.capture() as captured:
        show_summary([Row.of(failed)], title="scan")
        show_result(failed)
    text = captured.get()
    assert text.count(f"{test_id}") == 2  # the table's failing check, show's check line
    assert text.count(error) == 2
    assert "note: deep: the likeliest cause, [x] -> [y]" in text
    console = Console(record=True, width=300)
    ConsoleReporter(console).notice(f"deep: {test_id} failed")
    ConsoleReporter(console).combo_finished(failed)
    assert console.export_text().count(test_id) == 2


def test_a_piped_summary_is_one_line_per_row_header_included(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(out, "_force_terminal", False)  # a pipe
    target = make_target("alpine")
    label = ", ".join(f"package-with-a-long-name-{i} 1.{i}.0" for i in range(8))  # > 80 columns
    failed = ComboResult(
        combo=make_combo(target, {"numpy": "2.0.2", "pandas": "2.2.3"}),
        verdict=Verdict.IMPORT_ERROR,
        failed_check="import:pandas",
        error="ValueError: numpy.dtype size changed\n  more lines",
    )
    rows = [dataclasses.replace(Row.of(failed), label=label), Row.of(failed)]
    show_summary(rows, title="ml-stack on alpine (docker)")
    title, header, *lines, counts = capsys.readouterr().out.splitlines()
    assert title == "ml-stack on alpine (docker)"
    assert header.split("\t") == ["combination", "verdict", "failing check", "first error line"]
    assert [line.split("\t") for line in lines] == [
        [label, "import-error", "import:pandas", "ValueError: numpy.dtype size changed more lines"],
        [
            rows[1].label,
            "import-error",
            "import:pandas",
            "ValueError: numpy.dtype size changed more lines",
        ],
    ]
    assert counts == "2 import-error"


def test_each_step_of_a_long_task_says_k_of_n_and_about_how_long_is_left(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    clock = iter([0.0, 0.0, 30.0, 70.0, 100.0, 500.0, 600.0])  # made, then each step
    monkeypatch.setattr("compat.cli.console.time", SimpleNamespace(monotonic=lambda: next(clock)))
    reporter = ConsoleReporter(Console(record=True, width=200))
    reporter.step_started("building compat/x:1 on base", 1, 3)  # t=0
    reporter.step_started("running the smoke suite in compat/x:1", 2, 3)  # t=30
    reporter.step_started("timing cold imports", 3, 3)  # t=70
    reporter.step_started("probe numpy 2.0.2", 1, 2)  # t=100: another task starts over
    reporter.step_started("probe pandas 2.1.1", 2, 2)  # t=500
    reporter.step_started("neighbour numpy 2.1.0", 3, 2)  # an estimate that ran short
    assert reporter.console.export_text().splitlines() == [
        "[1/3] building compat/x:1 on base",
        "[2/3, ~60 s left] running the smoke suite in compat/x:1",
        "[3/3, ~35 s left] timing cold imports",
        "[1/2] probe numpy 2.0.2",
        "[2/2, ~7 min left] probe pandas 2.1.1",
        "[3/3, ~4 min left] neighbour numpy 2.1.0",
    ]
