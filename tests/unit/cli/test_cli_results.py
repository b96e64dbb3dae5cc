"""`compat results` in a pipe and `compat show` by result or combination id."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from compat.cli import cli
from compat.errors import UsageError
from compat.model import ComboResult, Verdict
from compat.store import Store, sqlite_url
from tests.helpers.report_db import ABI, Fixture, populate, populated


@pytest.fixture
def db(tmp_path: Path) -> tuple[str, Fixture]:
    return populated(tmp_path)


def compat(url: str, *args: str) -> str:
    done = CliRunner().invoke(cli, ["--db", url, *args])
    assert done.exit_code == 0, done.output
    return done.output


def test_results_in_a_pipe_are_one_tab_separated_line_each(db: tuple[str, Fixture]) -> None:
    header, *lines = compat(db[0], "results").splitlines()
    assert header.split("\t") == [
        "id", "when", "base", "combination", "verdict", "depth", "origin", "error",
    ]  # fmt: skip
    assert len(lines) == 12  # every result the fixture recorded, one line each
    fields = [line.split("\t") for line in lines]
    assert all(len(f) == 8 for f in fields)
    assert {f[4] for f in fields} == {"pass", "import-error", "runtime-error", "crash"}
    assert {f[5] for f in fields} <= {"import", "smoke", "deep"}
    assert {f[6] for f in fields} <= {"scan", "check", "nightly", "bisect", "deep"}
    assert any(f[7] == ABI for f in fields)


def test_a_truncated_listing_says_so_apart_from_the_rows(db: tuple[str, Fixture]) -> None:
    done = CliRunner().invoke(cli, ["--db", db[0], "results", "--limit", "5"])
    assert done.exit_code == 0, done.output
    assert len(done.stdout.splitlines()) == 1 + 5  # the header, then the rows
    assert "showing the newest 5 results; --limit N shows more" in done.stderr
    whole = CliRunner().invoke(cli, ["--db", db[0], "results", "--limit", "12"])
    assert len(whole.stdout.splitlines()) == 1 + 12
    assert "showing" not in whole.stderr


def test_a_filter_that_matches_nothing_says_so(db: tuple[str, Fixture]) -> None:
    assert compat(db[0], "results", "--verdict", "timeout").strip() == "no results match"


def test_show_takes_a_combination_id_and_prints_the_failing_checks_logs(
    db: tuple[str, Fixture],
) -> None:
    shown = compat(db[0], "show", db[1].sklearn.id)
    assert "runtime-error" in shown
    assert "log of lightgbm+scikit-learn:sklearn-api" in shown
    assert "Traceback (most recent call last):" in shown


def test_show_says_why_a_result_without_checks_failed(tmp_path: Path) -> None:
    url = sqlite_url(tmp_path / "r.db")
    with Store.open(url) as store:
        fixture = populate(store)
        target = fixture.target
        with store.run(target, backend="docker") as run_id:
            failed = ComboResult(
                combo=fixture.good,
                verdict=Verdict.BUILD_FAILED,
                error="lightgbm==4.5.0 (sdist): cmake: command not found",
            )
            result_id = store.record(run_id, target, failed)
    shown = compat(url, "show", str(result_id))
    assert "cmake: command not found" in shown


def test_show_names_what_it_could_not_find(db: tuple[str, Fixture]) -> None:
    done = CliRunner().invoke(cli, ["--db", db[0], "show", "deadbeef0000"])
    assert isinstance(done.exception, UsageError)
    assert "no result or combination 'deadbeef0000'" in str(done.exception)
