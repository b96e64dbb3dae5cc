"""`compat report` reads the results database: attributed heatmaps, environment
failures apart, one row per combination with its history, the lock and the nights."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner

from compat.cli import cli
from compat.report import RunKind
from compat.report.collect import collect
from compat.report.view import CellState, ReportView, build
from compat.store import Store, sqlite_url
from tests.helpers.report_db import START, Fixture, populate
from tests.helpers.results import make_combo, make_target, passed


@pytest.fixture
def db(tmp_path: Path) -> tuple[str, Fixture]:
    url = sqlite_url(tmp_path / "r.db")
    with Store.open(url) as store:
        return url, populate(store)


@pytest.fixture
def view(db: tuple[str, Fixture]) -> ReportView:
    with Store.open(db[0], read_only=True) as store:
        return build(collect(store))


def failing_cells(view: ReportView) -> dict[tuple[str, str, str, str], tuple[str, ...]]:
    (base,) = view.bases
    return {
        (hm.rows_name, hm.cols_name or "", str(cell.row), str(cell.col or "")): cell.reasons
        for hm in base.heatmaps
        for row in hm.cells
        for cell in row
        if cell.state in (CellState.ALL_FAIL, CellState.SOME_FAIL)
    }


def test_only_the_attributed_pairs_are_coloured(view: ReportView) -> None:
    assert failing_cells(view) == {
        ("numpy", "pandas", "2.0.2", "2.1.1"): (
            "bisect: numpy 2.0.2 x pandas 2.1.1",
            "check import:pandas",
        ),
        ("lightgbm", "scikit-learn", "4.5.0", "1.9.1"): (
            "check lightgbm+scikit-learn:sklearn-api",
        ),
        ("numpy", "lightgbm", "2.0.2", "4.5.0"): ("check lightgbm+numpy:native-train",),
    }


def test_the_missing_library_is_listed_apart_and_colours_nothing(
    view: ReportView, db: tuple[str, Fixture]
) -> None:
    fixture = db[1]
    (base,) = view.bases
    assert [c.combo_id for c in base.environment] == [fixture.gomp.id]
    assert base.environment[0].attribution.fix == (
        "install libgomp1 (compat does, unless --no-system-deps)"
    )
    assert fixture.gomp.id not in {c.combo_id for c in base.failures}
    numpy_lightgbm = next(
        h for h in base.heatmaps if (h.rows_name, h.cols_name) == ("numpy", "lightgbm")
    )
    cell = numpy_lightgbm.cells[0][numpy_lightgbm.cols.index(fixture.gomp.version_of("lightgbm"))]
    assert cell.state is CellState.UNTESTED
    assert "failed for other reasons" in cell.title


def test_each_combination_is_one_row_with_its_history(
    view: ReportView, db: tuple[str, Fixture]
) -> None:
    fixture = db[1]
    (base,) = view.bases
    ids = [c.combo_id for c in base.combinations]
    assert len(ids) == len(set(ids)) == 7  # six of the fixture and one bisect probe
    abi = next(c for c in base.combinations if c.combo_id == fixture.abi.id)
    assert [e.kind for e in abi.history] == [RunKind.PROBE, RunKind.CHECK, RunKind.SCAN]
    assert [c.combo_id for c in base.failures].count(fixture.abi.id) == 1
    probe_only = [c for c in base.combinations if c.kinds == (RunKind.PROBE,)]
    assert len(probe_only) == 1
    assert not probe_only[0].in_heatmaps


def test_the_lock_and_the_nightly_timeline(view: ReportView, db: tuple[str, Fixture]) -> None:
    fixture = db[1]
    (base,) = view.bases
    lock = base.data.lock
    assert lock is not None
    assert lock.combo_id == fixture.newer.id
    assert lock.depth == "smoke"
    assert lock.verified is not None
    assert lock.verified - START > timedelta(days=3)  # its latest pass, the second night
    first, second = base.data.nights
    assert first.new_versions == ("lightgbm 4.6.0",)
    assert first.lock_change is None  # numpy 2.0.2 still ranks above lightgbm 4.6.0
    assert first.regressions == ()
    assert second.new_versions == ()
    assert second.regressions == (fixture.regressed.label(),)
    assert second.lock_change == "lightgbm 4.5.0 -> 4.6.0, numpy 2.0.2 -> 1.26.4"


def test_matrices_can_be_chosen(db: tuple[str, Fixture]) -> None:
    with Store.open(db[0], read_only=True) as store:
        assert not collect(store, matrices=["other"]).bases
        (base,) = collect(store, matrices=["ml-stack"]).bases
    assert {e.kind for e in base.results} == {RunKind.SCAN, RunKind.NIGHTLY}


def test_the_command_writes_the_page(db: tuple[str, Fixture], tmp_path: Path) -> None:
    out = tmp_path / "report.html"
    result = CliRunner().invoke(cli, ["--db", db[0], "report", "-o", str(out)])
    assert result.exit_code == 0, result.output
    html = out.read_text()
    assert "local/debian-python:bookworm" in html
    assert "install libgomp1" in html
    assert "numpy 2.0.2 x pandas 2.1.1 (import-error)" in html


def test_report_without_results_says_what_to_run(tmp_path: Path) -> None:
    url = sqlite_url(tmp_path / "empty.db")
    result = CliRunner().invoke(cli, ["--db", url, "report", "-o", str(tmp_path / "r.html")])
    assert result.exit_code != 0
    assert "run compat scan first" in str(result.exception) + result.output


def test_the_host_gets_no_lock_as_compat_lock_refuses_it(tmp_path: Path) -> None:
    url = sqlite_url(tmp_path / "host.db")
    target = make_target("host", "host (box)", None)
    with Store.open(url) as store, store.run(target, backend="local") as run_id:
        store.record(run_id, target, passed(target, make_combo(target, {"numpy": "2.0.2"})))
    with Store.open(url, read_only=True) as store:
        (base,) = collect(store).bases
    assert base.name == "host"
    assert base.lock is None
