"""A static HTML report of scan results: one self-contained file, readable offline.

Build a ``ReportData`` (directly, or with ``ReportData.from_results`` /
``BaseReport.from_results`` from ``ComboResult`` objects), then ``write_report``.
"""

from __future__ import annotations

from compat.report.data import BaseReport, ReportData, ResultEntry, incompatibility_lines
from compat.report.render import render_report, write_report

__all__ = [
    "BaseReport",
    "ReportData",
    "ResultEntry",
    "incompatibility_lines",
    "render_report",
    "write_report",
]
