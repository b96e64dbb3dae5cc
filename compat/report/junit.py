"""JUnit XML for any CI system: one test case per combination."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Sequence
from pathlib import Path

from compat.model import ComboResult
from compat.report.summary import Row
from compat.text import for_xml

_FAILURE_KIND = {"timeout": "error", "crash": "error"}


def write_junit(
    path: Path, *, suite: str, rows: Sequence[Row], results: Sequence[ComboResult]
) -> Path:
    """``rows`` are the summary lines; ``results`` carry the logs of those that ran."""
    logs = {r.combo.id: r for r in results}
    failures = sum(not r.verdict.ok for r in rows)
    root = ET.Element("testsuites")
    element = ET.SubElement(
        root,
        "testsuite",
        name=suite,
        tests=str(len(rows)),
        failures=str(failures),
        errors="0",
        time=f"{sum(r.duration for r in results):.3f}",
    )
    for row in rows:
        result = logs.get(row.combo_id)
        case = ET.SubElement(
            element,
            "testcase",
            classname=suite,
            name=for_xml(row.label),
            time=f"{result.duration:.3f}" if result else "0",
        )
        if not row.verdict.ok:
            failure = ET.SubElement(
                case,
                _FAILURE_KIND.get(row.verdict.value, "failure"),
                type=row.verdict.value,
                message=for_xml(
                    f"{row.failed_check or row.verdict.value}: {row.error or ''}".strip()
                ),
            )
            failure.text = for_xml(result.log if result and result.log else (row.error or ""))
        if result is not None:
            ET.SubElement(case, "properties").extend(
                [
                    ET.Element("property", name="combination", value=row.combo_id),
                    ET.Element("property", name="verdict", value=row.verdict.value),
                ]
            )
    ET.indent(root)
    path.parent.mkdir(parents=True, exist_ok=True)
    ET.ElementTree(root).write(path, encoding="utf-8", xml_declaration=True)
    return path
