"""``--json`` on show, report, lock, scan and bisect: the shapes the README documents,
printed alone on stdout, with the exit codes of the plain output."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from packaging.specifiers import SpecifierSet
from packaging.utils import canonicalize_name
from packaging.version import Version

from compat.cli import cli
from compat.cli.shapes import bisect_shape, scan_shape
from compat.errors import NothingKnownGood, UsageError
from compat.model import PinChange, Verdict
from compat.report.summary import Row
from compat.resolve.planner import Plan
from compat.store import Store, sqlite_url
from compat.workflows.bisect import BisectResult, Neighbour, Probe
from compat.workflows.scan import ScanOutcome
from tests.helpers.report_db import ABI, Fixture, populated
from tests.helpers.results import DEBIAN_ID, make_combo, make_target, passed


@pytest.fixture
def db(tmp_path: Path) -> tuple[str, Fixture]:
    return populated(tmp_path)


def compat_json(url: str, *args: str) -> Any:
    done = CliRunner().invoke(cli, ["--db", url, *args])
    assert done.exit_code == 0, done.output
    return json.loads(done.stdout)


def test_show_json_is_the_stored_result_with_its_checks_and_logs(db: tuple[str, Fixture]) -> None:
    url, fixture = db
    shown = compat_json(url, "show", fixture.sklearn.id, "--json")
    assert shown["verdict"] == "runtime-error"
    assert shown["combo"]["id"] == fixture.sklearn.id
    assert shown["failed_checks"] == ["lightgbm+scikit-learn:sklearn-api"]
    assert shown["base"] == "debian-slim"
    assert isinstance(shown["id"], int)
    by_name = {c["name"]: c for c in shown["checks"]}
    assert "Traceback" in by_name["lightgbm+scikit-learn:sklearn-api"]["log"]
    # the same result by its id
    assert compat_json(url, "show", str(shown["id"]), "--json") == shown


def test_show_json_of_nothing_is_the_same_usage_error(db: tuple[str, Fixture]) -> None:
    done = CliRunner().invoke(cli, ["--db", db[0], "show", "deadbeef0000", "--json"])
    assert isinstance(done.exception, UsageError)


def test_report_json_gives_each_base_its_lock_and_latest_verdicts(
    db: tuple[str, Fixture], tmp_path: Path
) -> None:
    url, fixture = db
    page = tmp_path / "r.html"
    data = compat_json(url, "report", "-o", str(page), "--json")
    assert page.is_file()
    assert data["output"] == str(page)
    (base,) = data["bases"]
    assert base["name"] == "debian-slim"
    assert base["image_id"] == DEBIAN_ID
    assert base["results"] == 12
    # scans and nights only, each combination's latest verdict: no check run, no probe
    assert base["combinations"] == {
        "crash": 1,
        "import-error": 2,
        "pass": 2,
        "runtime-error": 1,
    }
    assert base["lock"]["combination"] == fixture.newer.id
    assert base["lock"]["requested"]["lightgbm"] == "4.6.0"
    assert base["lock"]["depth"] == "smoke"
    (incompatibility,) = base["incompatibilities"]
    assert "numpy 2.0.2" in incompatibility
    assert "pandas 2.1.1" in incompatibility
    assert ABI in incompatibility


def test_lock_json_names_the_pick_and_the_files(tmp_path: Path) -> None:
    url = sqlite_url(tmp_path / "r.db")
    image = "local/debian-python:bookworm"
    target = make_target(image, image, DEBIAN_ID)
    combo = make_combo(target, {"numpy": "2.0.2", "scipy": "1.14.1"})
    with Store.open(url) as store, store.run(target, backend="docker") as run_id:
        store.record(run_id, target, passed(target, combo))
    out = tmp_path / "lock"
    args = ["lock", "--image", image, "--depth", "smoke", "-o", str(out), "--json"]
    locked = compat_json(url, *args)
    assert locked["combination"] == combo.id
    assert locked["pins"] == {"numpy": "2.0.2", "scipy": "1.14.1", "tzdata": "2024.2"}
    assert locked["verdict"] == "pass"
    assert locked["image_id"] == DEBIAN_ID
    assert sorted(Path(f).name for f in locked["files"]) == sorted(p.name for p in out.iterdir())
    # nothing known-good: the same error (exit 8) with or without --json
    done = CliRunner().invoke(cli, ["--db", url, "lock", "--base", "alpine", "--json"])
    assert isinstance(done.exception, NothingKnownGood)


def test_scan_json_has_a_row_per_combination_and_the_counts() -> None:
    target = make_target("bookworm", "local/debian-python:bookworm", DEBIAN_ID)
    ok = passed(target, make_combo(target, {"numpy": "2.0.2"}))
    broken = dataclasses.replace(
        passed(target, make_combo(target, {"numpy": "2.1.0"})),
        verdict=Verdict.BUILD_FAILED,
        error="cmake: command not found",
    )
    outcome = ScanOutcome(
        title="ml-stack on bookworm (docker)",
        target=target,
        plan=Plan(matrix="ml-stack", target=target, strategy="latest", versions={}, combos=()),
        rows=(Row.of(ok), Row.of(broken)),
        results=(ok, broken),
        run_id="run-1",
        store_url="sqlite:///r.db",
        image_size=None,
    )
    data = json.loads(json.dumps(scan_shape(outcome)))
    assert data["counts"] == {"build-failed": 1, "pass": 1}
    assert data["matrix"] == "ml-stack"
    assert (data["run"], data["store"], data["ran"]) == ("run-1", "sqlite:///r.db", 2)
    assert [r["verdict"] for r in data["rows"]] == ["pass", "build-failed"]
    assert data["rows"][1]["combination"] == broken.combo.id
    assert data["rows"][1]["error"] == "cmake: command not found"
    assert data["image_size"] is None


def test_bisect_json_names_culprits_with_both_sides() -> None:
    numpy, pandas = canonicalize_name("numpy"), canonicalize_name("pandas")
    found = BisectResult(
        base="debian-slim",
        image_id=DEBIAN_ID,
        good_result_id=1,
        failing_result_id=2,
        changes=(
            PinChange(name=numpy, old=Version("1.26.4"), new=Version("2.0.2")),
            PinChange(name=canonicalize_name("cloudpickle"), old=Version("3.0"), new=None),
        ),
        culprits=(PinChange(name=numpy, old=Version("1.26.4"), new=Version("2.0.2")),),
        context={pandas: "2.1.1"},
        verdict=Verdict.IMPORT_ERROR,
        explanation=ABI,
        probes=(Probe(switched=(numpy,), verdict=Verdict.IMPORT_ERROR, failed=True),),
        runs=1,
        duration=3.0,
        incompatibility_id=7,
        evidence=(3, 4),
        ranges={numpy: SpecifierSet("<2.1,>=2.0")},
        neighbours=(
            Neighbour(name=numpy, version=Version("2.1"), verdict=Verdict.PASS, failed=False),
            Neighbour(
                name=numpy,
                version=Version("2.0"),
                verdict=Verdict.CRASH,
                failed=True,
                result_id=4,
                ran=True,
            ),
        ),
    )
    data = json.loads(json.dumps(bisect_shape(found)))
    assert data["packages"] == {"numpy": "2.0.2", "pandas": "2.1.1"}
    assert data["culprits"] == [{"name": "numpy", "good": "1.26.4", "failing": "2.0.2"}]
    assert {"name": "cloudpickle", "good": "3.0", "failing": None} in data["changes"]
    assert (data["good"], data["failing"], data["incompatibility"]) == (1, 2, 7)
    assert (data["runs"], data["probes"], data["evidence"]) == (1, 1, [3, 4])
    assert data["ranges"] == {"numpy": ">=2.0,<2.1"}
    assert data["neighbours"][1] == {
        "name": "numpy",
        "version": "2.0",
        "verdict": "crash",
        "failed": True,
        "result": 4,
    }
    assert data["verdict"] == "import-error"
