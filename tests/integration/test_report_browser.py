"""The report in a real headless Chromium, opened from file:// with no network: the
rendered DOM shows the input's numbers, the script runs under the page's own
Content-Security-Policy, the page requests nothing, and a screenshot renders.

Needs Debian's ``chromium`` package (``apt-get install -y chromium``): skipped
locally without it, a failure in CI.
"""

from __future__ import annotations

import json
import os
import struct
import subprocess
import zlib
from pathlib import Path

import pytest

from compat.model import Verdict
from compat.report import ReportData, write_report
from compat.report.collect import collect
from compat.store import Store, sqlite_url
from tests.helpers.report import expected_cells, parse, sample_report, squash
from tests.helpers.report_db import populate

CHROMIUM = Path("/usr/bin/chromium")


def require_chromium() -> Path:
    if CHROMIUM.exists():
        return CHROMIUM
    if os.environ.get("CI") == "true":
        pytest.fail(f"CI needs {CHROMIUM}: apt-get install -y chromium")
    pytest.skip(f"no {CHROMIUM} (apt-get install -y chromium)")


def chromium(tmp_path: Path, url: str, *args: str) -> subprocess.CompletedProcess[str]:
    """One headless run with a throwaway profile; DNS resolves nothing, so even the
    browser's own background traffic cannot leave the machine."""
    profile = tmp_path / "profile"
    profile.mkdir(exist_ok=True)
    command = [
        str(require_chromium()),
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={profile}",
        "--host-resolver-rules=MAP * ~NOTFOUND",
        "--enable-logging=stderr",
        "--v=0",
        *args,
        url,
    ]
    return subprocess.run(command, capture_output=True, text=True, timeout=120, check=True)


def console_messages(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if ":CONSOLE" in line]


def page_requests(net_log: Path) -> list[str]:
    """URLs the page asked for; the browser's own requests have no origin."""
    log = json.loads(net_log.read_text())
    start = log["constants"]["logEventTypes"]["URL_REQUEST_START_JOB"]
    return [
        e["params"]["url"]
        for e in log["events"]
        if e["type"] == start
        and "url" in e.get("params", {})  # the job's end event carries no params
        and e["params"].get("initiator") != "not an origin"
    ]


@pytest.fixture
def data() -> ReportData:
    return sample_report()


@pytest.fixture
def report(tmp_path: Path, data: ReportData) -> Path:
    return write_report(data, tmp_path / "report.html")


def test_rendered_dom_shows_the_input_numbers(
    tmp_path: Path, data: ReportData, report: Path
) -> None:
    crash = next(r for r in data.bases[0].results if r.verdict is Verdict.CRASH)
    done = chromium(tmp_path, f"{report.as_uri()}#log-{crash.result_id}", "--dump-dom")
    dom = parse(done.stdout)
    assert console_messages(done.stderr) == []  # no CSP violation, no script error

    summary = dom.find("table", class_="summary")
    for base in data.bases:
        row = summary.find("tr", data_base=base.name)
        assert row.find("td", data_count="total").text() == str(len(base.results))
        assert row.find("td", data_count="pass").text() == str(
            sum(r.verdict.ok for r in base.results)
        )
        section = dom.find("section", data_base=base.name)
        for table in section.find_all("table", class_="heatmap"):
            if not table.attrs["data-cols"]:  # a package alone
                continue
            expected = expected_cells(base, table.attrs["data-rows"], table.attrs["data-cols"])
            for cell in table.find_all("td"):
                key = (cell.attrs["data-row"], cell.attrs["data-col"])
                passed, total = expected.get(key, (0, 0))
                if total:
                    assert squash(cell.text()).split()[1] == f"{passed}/{total}"
                else:
                    assert "untested" in cell.text()
        failures = [r for r in base.results if not r.verdict.ok]
        logs = section.find_all("details", class_="log")
        assert len(logs) == len(failures)

    # The script ran: the log the address points at is open, and only that one.
    opened = [d.attrs["id"] for d in dom.find_all("details", class_="log") if "open" in d.attrs]
    assert opened == [f"log-{crash.result_id}"]
    # Pairs with a failure are open, the others folded; error cells fold their rest.
    bookworm = dom.find("section", data_base="bookworm")
    shown = [
        (d.find("table").attrs["data-rows"], d.find("table").attrs["data-cols"], "open" in d.attrs)
        for d in bookworm.find_all("details", class_="pair")
    ]
    assert shown == [
        ("numpy", "pandas", True),
        ("numpy", "lightgbm", True),
        ("pandas", "lightgbm", False),
    ]
    assert not [d for d in dom.find_all("details", class_="error") if "open" in d.attrs]
    assert dom.find("details", id=f"log-{crash.result_id}").find("pre").text() == crash.log


def test_a_results_database_reads_attributed_in_the_browser(tmp_path: Path) -> None:
    """The fixture database of every case: only the attributed pairs are red, the
    missing library sits in its own list, each combination is one row with its runs."""
    url = sqlite_url(tmp_path / "results.db")
    with Store.open(url) as store:
        fixture = populate(store)
        page = write_report(collect(store), tmp_path / "report.html")
    done = chromium(tmp_path, page.as_uri(), "--dump-dom")
    assert console_messages(done.stderr) == []
    dom = parse(done.stdout)
    red = {
        (t.attrs["data-rows"], t.attrs["data-cols"], c.attrs["data-row"], c.attrs["data-col"])
        for t in dom.find_all("table", class_="heatmap")
        for c in t.find_all("td")
        if int(c.attrs["data-fail"])
    }
    assert red == {
        ("numpy", "pandas", "2.0.2", "2.1.1"),
        ("lightgbm", "scikit-learn", "4.5.0", "1.9.1"),
        ("numpy", "lightgbm", "2.0.2", "4.5.0"),
    }
    environment = dom.find("table", class_="environment")
    assert [r.attrs["data-combo"] for r in environment.find_all("tr") if r.attrs] == [
        fixture.gomp.id
    ]
    assert "libgomp1" in environment.text()
    failures = dom.find("table", class_="failures")
    assert fixture.gomp.id not in {r.attrs.get("data-combo") for r in failures.find_all("tr")}
    rows = dom.find("table", class_="results").find_all("tr", data_combo=fixture.abi.id)
    assert len(rows) == 1
    history = [squash(li.text()) for li in rows[0].find_all("li")]
    assert [h.split(": ")[0].split(" UTC ")[1] for h in history] == [
        "bisect probe",
        "check",
        "scan (ml-stack)",
    ]
    nights = dom.find("table", class_="nights").find_all("tr")
    assert "lightgbm 4.6.0" in nights[-1].text()  # oldest night last
    assert "numpy 2.0.2 -> 1.26.4" in nights[1].text()


def test_the_page_requests_nothing(tmp_path: Path, report: Path) -> None:
    net_log = tmp_path / "net.json"
    chromium(tmp_path, report.as_uri(), f"--log-net-log={net_log}", "--dump-dom")
    assert page_requests(net_log) == []


def test_a_page_that_fetches_is_caught(tmp_path: Path) -> None:
    """The check above can fail: an external image shows up in the net log."""
    page = tmp_path / "fetches.html"
    page.write_text('<!DOCTYPE html><img src="http://example.invalid/x.png" alt="">')
    net_log = tmp_path / "net.json"
    chromium(tmp_path, page.as_uri(), f"--log-net-log={net_log}", "--dump-dom")
    assert page_requests(net_log) == ["http://example.invalid/x.png"]


def png_pixels(png: Path) -> tuple[int, int, bytes]:
    """Width, height and the inflated image data of a PNG."""
    blob = png.read_bytes()
    assert blob[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", blob[16:24])
    idat, pos = b"", 8
    while pos < len(blob):
        (length,) = struct.unpack(">I", blob[pos : pos + 4])
        kind = blob[pos + 4 : pos + 8]
        if kind == b"IDAT":
            idat += blob[pos + 8 : pos + 8 + length]
        pos += 12 + length
    return width, height, zlib.decompress(idat)


def test_screenshot_renders_the_page(tmp_path: Path, report: Path) -> None:
    png = tmp_path / "report.png"
    done = chromium(
        tmp_path,
        report.as_uri(),
        f"--screenshot={png}",
        "--window-size=1280,2400",
        "--hide-scrollbars",
    )
    assert console_messages(done.stderr) == []
    width, height, pixels = png_pixels(png)
    assert (width, height) == (1280, 2400)
    # A blank or unstyled page has few distinct bytes; the coloured heatmaps add many.
    assert len(set(pixels)) > 100
