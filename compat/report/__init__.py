"""A static HTML report of scan results: one self-contained file, readable offline.

Build a ``ReportData`` (directly, or with ``ReportData.from_results`` /
``BaseReport.from_results`` from ``ComboResult`` objects), then ``write_report``.

A scan's own summary lives here too: ``summary.Row`` (one line per combination, shown
by the console) and ``junit.write_junit`` (the same rows as JUnit XML for CI).
"""

from __future__ import annotations

from compat.report.data import (
    BaseReport,
    LockStatus,
    Night,
    ReportData,
    ResultEntry,
    RunKind,
    findings_of,
)
from compat.report.render import render_report, write_report

__all__ = [
    "BaseReport",
    "LockStatus",
    "Night",
    "ReportData",
    "ResultEntry",
    "RunKind",
    "findings_of",
    "render_report",
    "write_report",
]
