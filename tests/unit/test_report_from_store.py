"""`compat report` reads the results database: every base, latest result per
combination."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

from compat.cli import cli
from compat.model import Verdict
from compat.store import Store, sqlite_url
from tests.helpers.results import DEBIAN_ID, failed, make_combo, make_target, passed


def test_latest_by_target_keeps_the_latest_result_per_combination(tmp_path: Path) -> None:
    musl = make_target()
    debian = make_target("debian-slim", "local/debian-python:bookworm", DEBIAN_ID)
    combo = make_combo(musl, {"numpy": "2.0.2", "pandas": "2.2.3"})
    other = make_combo(debian, {"numpy": "2.1.0", "pandas": "2.2.3"})
    url = sqlite_url(tmp_path / "r.db")
    with Store.open(url) as store:
        run = store.start_run(musl, backend="docker")
        store.record(run, musl, failed(musl, combo))
        store.record(run, musl, passed(musl, combo))  # a retest that passed
        run2 = store.start_run(debian, backend="docker")
        store.record(run2, debian, failed(debian, other, Verdict.CRASH))
        tested = store.latest_by_target()
    assert [t.name for t, _ in tested] == ["alpine", "debian-slim"]
    assert [r.verdict for r in tested[0][1]] == [Verdict.PASS]
    assert [r.verdict for r in tested[1][1]] == [Verdict.CRASH]

    out = tmp_path / "report.html"
    result = CliRunner().invoke(cli, ["--db", url, "report", "-o", str(out)])
    assert result.exit_code == 0, result.output
    html = out.read_text()
    assert "local/musl-python:3.11" in html
    assert "local/debian-python:bookworm" in html
    assert "libgomp.so.1" in html  # the crash's first error line is listed


def test_report_without_results_says_what_to_run(tmp_path: Path) -> None:
    url = sqlite_url(tmp_path / "empty.db")
    result = CliRunner().invoke(cli, ["--db", url, "report", "-o", str(tmp_path / "r.html")])
    assert result.exit_code != 0
    assert "run compat scan first" in str(result.exception)
