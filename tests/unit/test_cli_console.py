"""What the console shows of a result: check errors loudly, skipped checks with
their reason, neither counted as a failure."""

from __future__ import annotations

from compat.cli.console import out, show_result, show_summary
from compat.model import ComboResult, Verdict
from compat.report.summary import Row
from tests.helpers.report import CHECK_ERROR, OUT_OF_RANGE, make_result, make_target, with_checks


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
