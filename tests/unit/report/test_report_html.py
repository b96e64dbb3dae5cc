"""The generated page, parsed: its numbers match the input, failures link to logs that
exist, untrusted text stays text, nothing is fetched, the same input gives the same page."""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import random
import re
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from packaging.utils import canonicalize_name
from packaging.version import Version

from compat.errors import ReportWriteError
from compat.model import Verdict
from compat.report import BaseReport, ReportData, ResultEntry, render_report, write_report
from compat.report.attribution import FailedCheck
from tests.helpers.report import (
    CHECK_ERROR,
    EVIL,
    OUT_OF_RANGE,
    Node,
    expected_cells,
    make_result,
    make_target,
    parse,
    sample_report,
    squash,
    with_checks,
)


@pytest.fixture(scope="module")
def data() -> ReportData:
    return sample_report()


@pytest.fixture(scope="module")
def html(data: ReportData) -> str:
    return render_report(data)


@pytest.fixture(scope="module")
def dom(html: str) -> Node:
    return parse(html)


def test_every_pair_of_requested_packages_has_a_heatmap(data: ReportData, dom: Node) -> None:
    section = dom.find("section", id="base-bookworm")
    tables = section.find_all("table", class_="heatmap")
    pairs = [(t.attrs["data-rows"], t.attrs["data-cols"]) for t in tables]
    assert pairs == [("numpy", "pandas"), ("numpy", "lightgbm"), ("pandas", "lightgbm")]


def test_heatmap_cells_count_the_input(data: ReportData, dom: Node) -> None:
    checked = 0
    for base in data.bases:
        section = dom.find("section", data_base=base.name)
        for table in section.find_all("table", class_="heatmap"):
            a, b = table.attrs["data-rows"], table.attrs["data-cols"]
            if not b:  # a package alone: see test_heatmap_totals_add_up_to_the_combinations
                continue
            expected = expected_cells(base, a, b)
            cells = table.find_all("td")
            rows = {c.attrs["data-row"] for c in cells}
            cols = {c.attrs["data-col"] for c in cells}
            assert {r for r, _ in expected} == rows
            assert {c for _, c in expected} == cols
            for cell in cells:
                passed, total = expected.get(
                    (cell.attrs["data-row"], cell.attrs["data-col"]), (0, 0)
                )
                shown = int(cell.attrs["data-pass"]), int(cell.attrs["data-fail"])
                assert (shown[0], sum(shown)) == (
                    passed,
                    total,
                )
                visible = squash(cell.text())
                title = cell.attrs["title"]
                if total == 0:
                    assert cell.classes() == {"untested"}
                    assert visible == "\u2013 untested"
                    assert "not tested together" in title or "for other reasons" in title
                    continue
                assert f"{passed}/{total}" in visible
                assert f"{passed} of {total} combinations pass" in title
                state = (
                    "all-pass" if passed == total else "all-fail" if passed == 0 else "some-fail"
                )
                assert cell.classes() == {state}
                assert visible.endswith(state.replace("-", " "))  # text, not colour alone
                checked += 1
    # bookworm: 4 numpy x pandas, 3 numpy x lightgbm, 2 pandas x lightgbm; musl: 1
    assert checked == 4 + 3 + 2 + 1


def test_pairs_with_a_failure_are_open_and_the_others_folded(dom: Node) -> None:
    shown = {
        section.attrs["data-base"]: [
            (d.find("table").attrs["data-cols"], "open" in d.attrs)
            for d in section.find_all("details", class_="pair")
        ]
        for section in dom.find_all("section", class_="base")
    }
    assert shown == {
        "bookworm": [("pandas", True), ("lightgbm", True), ("lightgbm", False)],
        "musl": [("pandas", False), ("", True)],  # numpy alone crashes on musl 1.2.3
        "trixie": [("pandas", False)],
    }
    first = dom.find("section", data_base="bookworm").find_all("details", class_="pair")[0]
    summary = squash(first.find("summary").text())
    assert summary == "numpy \u00d7 pandas: 1 of 4 cells with failures"


def test_an_error_of_many_lines_shows_the_first_and_folds_the_rest() -> None:
    target = make_target("bookworm")
    error = "ValueError: first line\n  second line\n  third line"
    result = make_result(target, {"numpy": "2.0.2"}, Verdict.RUNTIME_ERROR, error=error)
    dom = parse(render_report(ReportData.from_results([(target, [result])])))
    cell = dom.find("td", class_="error")
    details = cell.find("details", class_="error")
    assert "open" not in details.attrs
    assert details.find("summary").text() == "ValueError: first line"
    assert details.find("pre").text() == "  second line\n  third line"


def test_heatmap_headers_list_versions_in_order(dom: Node) -> None:
    section = dom.find("section", data_base="bookworm")
    table = section.find("table", data_rows="numpy", data_cols="pandas")
    cols = [th.text() for th in table.find("thead").find_all("th")][1:]
    rows = [th.text() for th in table.find("tbody").find_all("th")]
    assert cols == ["2.1.4", "2.2.3"]
    assert rows == ["1.26.4", "2.0.2", "2.1.3"]


def test_every_failure_is_listed_once_with_its_error_and_a_working_log_link(
    data: ReportData, dom: Node
) -> None:
    """Failures the environment explains (a missing library, no wheel) are listed
    apart with their fix; every other failure in the failures table."""
    ids = {n.attrs["id"]: n for n in dom.iter() if "id" in n.attrs}
    for base in data.bases:
        section = dom.find("section", data_base=base.name)
        listed = {}
        for kind in ("failures", "environment"):
            for table in section.find_all("table", class_=kind):
                for row in table.find_all("tr"):
                    if "data-combo" in row.attrs:
                        assert row.attrs["data-combo"] not in listed
                        listed[row.attrs["data-combo"]] = (kind, row)
        failures = [r for r in base.results if not r.verdict.ok]
        assert sorted(listed) == sorted(f.combo_id for f in failures)
        for entry in failures:
            kind, row = listed[entry.combo_id]
            environmental = bool(entry.system_deps) or entry.verdict is Verdict.NO_WHEEL
            assert kind == ("environment" if environmental else "failures")
            cells = row.find_all("td")
            assert entry.verdict.value in cells[1].text()
            error_cell = cells[2] if environmental else cells[4]
            assert error_cell.text().startswith((entry.error or "").splitlines()[0])
            if entry.system_deps:
                assert all(dep in cells[3].text() for dep in entry.system_deps)
            href = cells[-1].find("a").attrs["href"]
            assert href.startswith("#")
            log = ids[href[1:]]
            assert log.tag == "details"
            assert log.find("pre").text() == entry.log
            assert entry.result_id in log.text()


def test_ids_are_unique(html: str) -> None:
    ids = re.findall(r'\bid="([^"]*)"', html)
    assert len(ids) == len(set(ids))


def test_summary_counts_every_verdict_per_base(data: ReportData, dom: Node) -> None:
    table = dom.find("table", class_="summary")
    for base in data.bases:
        row = table.find("tr", data_base=base.name)
        counts = {td.attrs["data-count"]: td.text() for td in row.find_all("td") if td.attrs}
        assert counts["total"] == str(len(base.results))
        for verdict in (Verdict.PASS, Verdict.NO_WHEEL, Verdict.IMPORT_ERROR, Verdict.CRASH):
            assert counts[verdict.value] == str(sum(r.verdict is verdict for r in base.results))
        assert set(counts) == {
            "total",
            "pass",
            "no-wheel",
            "import-error",
            "crash",
            "pass-rate",
            "image-size",
        }
    rows = {r.attrs.get("data-base"): r for r in table.find_all("tr")}
    assert rows["bookworm"].find("td", data_count="pass-rate").text() == "33.3%"
    assert rows["bookworm"].find("td", data_count="image-size").text() == "605 MB"
    assert rows["trixie"].find("td", data_count="image-size").text() == "\u2013"


def test_the_smallest_working_image_is_highlighted_in_words(dom: Node) -> None:
    table = dom.find("table", class_="summary")
    highlighted = [r for r in table.find_all("tr") if "smallest" in r.classes()]
    assert [r.attrs["data-base"] for r in highlighted] == ["musl"]
    assert "smallest working image" in highlighted[0].text()


def test_sizes_and_lock_status_are_shown(data: ReportData, dom: Node) -> None:
    bookworm = dom.find("section", data_base="bookworm")
    assert squash(bookworm.find("dd", data_size="image").text()) == "605 MB (605,123,456 bytes)"
    assert squash(bookworm.find("dd", data_size="added").text()) == "482 MB (482,000,000 bytes)"
    assert bookworm.find("pre", class_="lockfile").text() == data.bases[0].lockfile
    lock = data.bases[0].lock
    assert lock is not None
    status = squash(bookworm.find("dl", data_lock=lock.combo_id).text())
    assert "numpy==1.26.4 pandas==2.1.4 lightgbm==4.3.0" in status
    assert "2026-11-30 22:05 UTC at depth smoke" in status
    musl = dom.find("section", data_base="musl")
    assert not musl.find_all("pre", class_="lockfile")
    assert "Nothing known-good to lock" in musl.text()


def test_untrusted_text_is_escaped(data: ReportData, html: str, dom: Node) -> None:
    assert EVIL not in html
    assert "<b>not bold" not in html
    assert "&lt;script&gt;alert(" in html
    assert len(dom.find_all("script")) == 1
    assert not dom.find_all("b")
    crash = next(r for r in data.bases[0].results if r.verdict is Verdict.CRASH)
    failures = dom.find("section", data_base="bookworm").find("table", class_="failures")
    row = failures.find("tr", data_combo=crash.combo_id)
    assert EVIL in row.text()  # shown as text, verbatim
    assert EVIL in dom.find("ul", class_="known").text()


def test_hostile_names_and_ids_cannot_break_out_of_attributes() -> None:
    target = make_target('x"><img src=x onerror=alert(1)>')
    result = make_result(target, {"numpy": "2.0.2"}, Verdict.CRASH, error="e")
    base = BaseReport.from_results(target, [result])
    entry = dataclasses.replace(base.results[0], result_id='r" onclick="x')
    html = render_report(ReportData(bases=(dataclasses.replace(base, results=(entry,)),)))
    dom = parse(html)
    assert not dom.find_all("img")
    assert all(not k.startswith("on") for n in dom.iter() for k in n.attrs)
    log = dom.find("details", class_="log")
    assert re.fullmatch(r"log-[A-Za-z0-9_.-]+", log.attrs["id"])
    assert dom.find_all("a", href="#" + log.attrs["id"])


def test_nothing_external_is_referenced(html: str, dom: Node) -> None:
    assert "http://" not in html
    assert "https://" not in html
    for node in dom.iter():
        assert "src" not in node.attrs
        if "href" in node.attrs:
            assert node.attrs["href"].startswith(("#", "data:")), node.attrs
    assert "@import" not in html
    assert "url(" not in html


def test_a_content_security_policy_allows_only_the_inline_style_and_script(dom: Node) -> None:
    meta = dom.find("meta", http_equiv="Content-Security-Policy")
    policy = dict(d.strip().split(" ", 1) for d in meta.attrs["content"].split(";"))
    assert policy["default-src"] == "'none'"

    def digest(text: str) -> str:
        return "'sha256-" + base64.b64encode(hashlib.sha256(text.encode()).digest()).decode() + "'"

    assert policy["style-src"] == digest(dom.find("style").text())
    assert policy["script-src"] == digest(dom.find("script").text())


def test_urls_in_untrusted_text_stay_text() -> None:
    target = make_target("bookworm")
    result = make_result(
        target,
        {"numpy": "2.0.2"},
        Verdict.INSTALL_FAILED,
        error="could not fetch https://pypi.example/numpy.whl",
    )
    dom = parse(render_report(ReportData.from_results([(target, [result])])))
    for node in dom.iter():
        assert all("pypi.example" not in v for v in node.attrs.values())
    assert "https://pypi.example/numpy.whl" in dom.find("td", class_="error").text()


def test_the_same_input_gives_the_same_page(data: ReportData, html: str) -> None:
    assert render_report(data) == html
    shuffled = []
    for base in data.bases:
        results = list(base.results)
        random.Random(7).shuffle(results)
        shuffled.append(dataclasses.replace(base, results=tuple(results)))
    assert render_report(dataclasses.replace(data, bases=tuple(shuffled))) == html


def test_no_timestamp_unless_given(data: ReportData, html: str) -> None:
    assert "Generated" not in html
    stamped = render_report(dataclasses.replace(data, generated="2025-06-01 12:00 UTC"))
    assert "Generated 2025-06-01 12:00 UTC" in stamped


def test_one_requested_package_gets_a_table_of_its_versions() -> None:
    target = make_target("bookworm")
    results = [
        make_result(target, {"numpy": "1.26.4"}),
        make_result(target, {"numpy": "2.0.2"}, Verdict.IMPORT_ERROR, error="e"),
    ]
    dom = parse(render_report(ReportData.from_results([(target, results)])))
    table = dom.find("table", class_="heatmap")
    assert table.attrs["data-cols"] == ""
    got = [(c.attrs["data-row"], c.text().split()[1]) for c in table.find_all("td")]
    assert got == [("1.26.4", "1/1"), ("2.0.2", "0/1")]


def test_an_empty_report_still_renders() -> None:
    dom = parse(render_report(ReportData(bases=())))
    assert "No results" in dom.find("section", id="summary").text()


def test_write_report_writes_the_page(tmp_path: Path, data: ReportData, html: str) -> None:
    path = write_report(data, tmp_path / "out" / "report.html")
    assert path == tmp_path / "out" / "report.html"
    assert path.read_text(encoding="utf-8") == html
    assert [p.name for p in path.parent.iterdir()] == ["report.html"]  # no temporary left


def test_write_report_names_the_path_when_it_cannot_write(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(ReportWriteError, match=r"cannot write the report to .*file/report\.html"):
        write_report(ReportData(bases=()), blocker / "report.html")


_versions = st.sampled_from(["1.0", "1.1", "2.0"])
_entries = st.lists(
    st.tuples(
        _versions,
        _versions,
        st.sampled_from([Verdict.PASS, Verdict.CRASH]),
        st.sampled_from(["a+b:x", "a:x", "user:x"]),  # a pair, a alone, nothing
    ),
    max_size=12,
)


@settings(max_examples=60, deadline=None)
@given(_entries)
def test_heatmap_totals_add_up_to_the_combinations(
    entries: list[tuple[str, str, Verdict, str]],
) -> None:
    """Every combination lands in one cell of a x b: as a pass, as a failure of the
    pair, or as a failure explained elsewhere (a alone, or nothing)."""
    a, b = canonicalize_name("a"), canonicalize_name("b")
    results = tuple(
        ResultEntry(
            result_id=f"r{i}",
            combo_id=f"c{i}",
            requested=((a, Version(va)), (b, Version(vb))),
            pins=((a, Version(va)), (b, Version(vb))),
            verdict=verdict,
            failed=() if verdict.ok else (FailedCheck(name=check),),
        )
        for i, (va, vb, verdict, check) in enumerate(entries)
    )
    base = BaseReport(
        name="x",
        image="x",
        image_id=None,
        python=Version("3.11"),
        libc="glibc 2.36",
        results=results,
    )
    dom = parse(render_report(ReportData(bases=(base,))))
    if not entries:
        assert not dom.find_all("table", class_="heatmap")
        return
    pair = dom.find("table", data_rows="a", data_cols="b")
    cells = pair.find_all("td")
    passed = sum(v is Verdict.PASS for _, _, v, _ in entries)
    blamed = sum(v is Verdict.CRASH and c == "a+b:x" for _, _, v, c in entries)
    assert sum(int(c.attrs["data-pass"]) for c in cells) == passed
    assert sum(int(c.attrs["data-fail"]) for c in cells) == blamed
    other = sum(int(c.attrs.get("data-other", 0)) for c in cells)
    assert other == len(entries) - passed - blamed
    alone = dom.find_all("table", data_rows="a", data_cols="")
    a_alone = sum(v is Verdict.CRASH and c == "a:x" for _, _, v, c in entries)
    if a_alone:
        (table,) = alone
        assert sum(int(c.attrs["data-fail"]) for c in table.find_all("td")) == a_alone
    else:
        assert not alone


def test_check_errors_are_listed_loudly_and_skips_give_their_reason() -> None:
    target = make_target("bookworm")
    flagged = with_checks(make_result(target, {"lightgbm": "2.3.1", "numpy": "2.0.2"}), CHECK_ERROR)
    failing = with_checks(
        make_result(
            target, {"lightgbm": "2.3.1", "numpy": "1.26.4"}, Verdict.RUNTIME_ERROR, error="boom"
        ),
        OUT_OF_RANGE,
    )
    assert flagged.verdict is Verdict.PASS
    report = ReportData(title="t", bases=(BaseReport.from_results(target, [flagged, failing]),))
    dom = parse(render_report(report))
    text = squash(dom.text())
    assert "Check errors" in text
    assert "lightgbm+numpy:native-train" in text
    assert "has no attribute 'early_stopping'" in text
    assert "lightgbm+scikit-learn:sklearn-api (needs lightgbm>=3.0, have 2.3.1)" in text


def test_a_verdict_shows_what_it_holds_under() -> None:
    """A pass on wheels built without OpenMP says so beside the verdict."""
    target = make_target("musl")
    note = "lightgbm built without OpenMP: single-threaded training"
    result = dataclasses.replace(
        make_result(target, {"numpy": "2.3.1", "lightgbm": "4.7.0"}, Verdict.PASS), notes=(note,)
    )
    base = BaseReport.from_results(target, [result])
    assert base.results[0].notes == (note,)
    dom = parse(render_report(ReportData(bases=(base,))))
    row = dom.find("table", class_="results").find("tr", data_combo=result.combo.id)
    assert note in row.text()


def test_a_pass_says_which_system_packages_it_needs() -> None:
    target = make_target("bookworm")
    result = dataclasses.replace(
        make_result(target, {"numpy": "2.3.1", "lightgbm": "4.7.0"}, Verdict.PASS),
        added_system_deps=("libgomp1",),
    )
    base = BaseReport.from_results(target, [result])
    dom = parse(render_report(ReportData(bases=(base,))))
    row = dom.find("table", class_="results").find("tr", data_combo=result.combo.id)
    assert "needs libgomp1" in row.text()


def test_a_failures_log_says_which_checks_were_reused() -> None:
    target = make_target("bookworm")
    failing = make_result(
        target, {"numpy": "2.0.2", "pandas": "2.1.4"}, Verdict.IMPORT_ERROR, error="boom"
    )
    reused = tuple(
        dataclasses.replace(c, reused_from="0" * 32) if c.name == failing.failed_check else c
        for c in failing.checks
    )
    base = BaseReport.from_results(target, [dataclasses.replace(failing, checks=reused)])
    assert base.results[0].reused == (failing.failed_check,)
    log = parse(render_report(ReportData(bases=(base,)))).find("details", class_="log")
    facts = zip(log.find_all("dt"), log.find_all("dd"), strict=True)
    (said,) = [squash(dd.text()) for dt, dd in facts if dt.text() == "Reused"]
    assert said == (
        "1 check taken from earlier results where they imported the same versions, "
        f"{failing.failed_check} among them"
    )
