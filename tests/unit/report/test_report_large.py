"""A 10-package matrix stays readable: the page stays under a megabyte, pairs with a
failure open and the rest folded, each error one line with the rest folded, long logs
cut to their ends, a log repeated by a later run shown once."""

from __future__ import annotations

import dataclasses

import pytest

from compat.model import Verdict
from compat.report import ReportData, render_report
from compat.report.collect import collect
from compat.report.view import LOG_HEAD, LOG_TAIL, Folded, fold, log_excerpt
from compat.store import Store, sqlite_url
from tests.helpers.report import Node, make_result, make_target, parse, squash
from tests.helpers.report_large import PACKAGES, populate_large

MEGABYTE = 1_000_000


@pytest.fixture(scope="module")
def html(tmp_path_factory: pytest.TempPathFactory) -> str:
    url = sqlite_url(tmp_path_factory.mktemp("large") / "r.db")
    with Store.open(url) as store:
        populate_large(store)
        data = collect(store)
    (base,) = data.bases
    assert len(base.results) == 300
    assert sum(not r.verdict.ok for r in base.results) > 50
    return render_report(data)


@pytest.fixture(scope="module")
def dom(html: str) -> Node:
    return parse(html)


def test_a_ten_package_matrix_gives_a_page_under_a_megabyte(html: str) -> None:
    assert len(html.encode()) <= MEGABYTE


def test_pairs_with_a_failure_are_open_and_the_others_folded(dom: Node) -> None:
    pairs = dom.find_all("details", class_="pair")
    assert len(pairs) == len(PACKAGES) * (len(PACKAGES) - 1) // 2 + 1  # and statsmodels alone
    shown = {
        (d.find("table").attrs["data-rows"], d.find("table").attrs["data-cols"]): "open" in d.attrs
        for d in pairs
    }
    # lightgbm 2.0.0 fails inside scikit-learn in a check that needs scipy too
    assert shown.pop(("scikit-learn", "lightgbm")) is True
    assert shown.pop(("statsmodels", "")) is True  # its import fails by itself
    assert not any(shown.values())
    assert ("scipy", "lightgbm") in shown
    for details in pairs:
        failing = sum(int(td.attrs["data-fail"]) > 0 for td in details.find_all("td"))
        assert int(details.attrs["data-failing"]) == failing
        assert ("open" in details.attrs) == bool(failing)


def test_an_error_cell_shows_its_first_line_and_folds_the_rest(dom: Node) -> None:
    failures = dom.find("table", class_="failures")
    folded = [td for td in failures.find_all("td", class_="error") if td.find_all("details")]
    assert folded
    for cell in folded:
        summary = squash(cell.find("summary").text())
        assert summary.startswith("statsmodels.tsa._stl: ImportError: cannot import name")
        assert "and in statsmodels.module_39" in cell.find("pre").text()
        assert "module_39" not in summary


def test_fold_shortens_a_long_first_line_and_keeps_the_whole_below() -> None:
    assert fold("ValueError: x") == fold("ValueError: x\n") == Folded(head="ValueError: x")
    two = fold("ValueError: x\n  at y\n  at z")
    assert (two.head, two.rest) == ("ValueError: x", "  at y\n  at z")
    line = "TypeError: " + "very long " * 60
    long = fold(line)
    assert len(long.head) <= 201
    assert long.head.endswith("\u2026")
    assert long.rest == line.strip()
    assert fold(None).head == ""


def test_a_long_log_shows_its_start_and_end() -> None:
    log = "".join(f"line {n}\n" for n in range(2000))
    shown = log_excerpt(log)
    assert len(shown) < LOG_HEAD + LOG_TAIL + 100
    assert shown.startswith("line 0\nline 1\n")
    assert shown.endswith("line 1998\nline 1999\n")
    assert "characters not shown: compat show prints the whole log" in shown
    assert log_excerpt("short\n") == "short\n"


def test_a_log_a_later_run_repeats_is_shown_once() -> None:
    target = make_target("bookworm")
    failing = make_result(target, {"numpy": "2.0.2"}, Verdict.CRASH, error="SIGSEGV", log="boom\n")
    first, second = (
        dataclasses.replace(e, result_id=f"r{n}", created=None)
        for n, e in enumerate(ReportData.from_results([(target, [failing])]).bases[0].results * 2)
    )
    data = ReportData.from_results([(target, [])])
    base = dataclasses.replace(data.bases[0], results=(first, second))
    dom = parse(render_report(dataclasses.replace(data, bases=(base,))))
    logs = dom.find_all("details", class_="log")
    assert [log.attrs["id"] for log in logs] == ["log-r1", "log-r0"]  # newest first
    assert logs[0].find("pre").text() == "boom\n"
    assert not logs[1].find_all("pre")
    assert logs[1].find("a", href="#log-r1")
