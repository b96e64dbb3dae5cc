"""--as-of: the index as it stood on a day, from recorded upload times (PEP 700)."""

from __future__ import annotations

import dataclasses
import json
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from packaging.utils import canonicalize_name
from packaging.version import Version

from compat.cli import cli
from compat.errors import MatrixError, NothingKnownGood, UsageError
from compat.index.asof import AsOfIndex, DatedIndex, end_of_day, parse_as_of
from compat.index.snapshot import SnapshotIndex, record_snapshot
from compat.matrix import parse_matrix
from compat.model import Combo, ComboResult, Verdict
from compat.resolve.candidates import CandidateSource, requested
from compat.resolve.planner import Planner
from compat.resolve.resolver import Resolver
from compat.store import Store, sqlite_url
from compat.targets.profiles import target_from_profile
from compat.workflows.lock import pick_known_good
from tests.helpers.index import FakeIndex, metadata_text, wheel_bytes

DATA = Path(__file__).parents[2] / "data"
INDEX = SnapshotIndex(DATA / "index")
NUMPY = canonicalize_name("numpy")
SIX = canonicalize_name("six")


def numpy_versions(index: AsOfIndex) -> list[str]:
    return sorted({str(f.version) for f in index.files(NUMPY)}, key=Version)


def test_the_recorded_snapshot_carries_upload_times() -> None:
    assert isinstance(INDEX, DatedIndex)
    wheel = next(f for f in INDEX.files(NUMPY) if f.filename.startswith("numpy-2.0.0-cp312"))
    uploaded = INDEX.uploaded(wheel)
    assert uploaded is not None
    assert uploaded.tzinfo is not None
    assert uploaded.date() == date(2024, 6, 16)


def test_a_day_sees_what_was_uploaded_by_its_end_utc() -> None:
    # numpy 2.0.0 was uploaded on 2024-06-16 (UTC): invisible the day before, there that day
    before = numpy_versions(AsOfIndex.on(INDEX, date(2024, 6, 15)))
    assert before[-1] == "1.26.4"
    assert "2.0.0" not in before
    on_the_day = numpy_versions(AsOfIndex.on(INDEX, date(2024, 6, 16)))
    assert on_the_day[-1] == "2.0.0"
    assert end_of_day(date(2024, 6, 16)) == datetime(2024, 6, 17, tzinfo=UTC)


def test_a_version_whose_files_all_came_later_does_not_exist() -> None:
    index = AsOfIndex.on(INDEX, date(2023, 12, 31))
    versions = set(numpy_versions(index))
    assert versions == {"1.26.0", "1.26.1", "1.26.2"}
    assert all(f.version < Version("1.26.3") for f in index.files(NUMPY))


def test_a_file_added_later_to_an_old_release_is_not_there_yet() -> None:
    # numpy 1.26.4: the release appeared on 2024-02-05, one file only on the 6th
    release = [f for f in INDEX.files(NUMPY) if f.version == Version("1.26.4")]
    times = {f.filename: INDEX.uploaded(f) for f in release}
    late = [n for n, t in times.items() if t is not None and t.date() == date(2024, 2, 6)]
    assert late
    seen = {f.filename for f in AsOfIndex.on(INDEX, date(2024, 2, 5)).files(NUMPY)}
    assert not set(late) & seen
    assert set(times) - set(late) <= seen


def test_pins_are_checked_against_the_day() -> None:
    target = target_from_profile("debian-slim", python="3.12")
    matrix = parse_matrix({"packages": {"numpy": "", "six": ""}, "strategy": "latest"}, path="m")
    combo = Planner(CandidateSource(INDEX, target, matrix.build), matrix).plan(target).combos[0]
    assert AsOfIndex.on(INDEX, date(2099, 1, 1)).has_all(combo)
    assert not AsOfIndex.on(INDEX, date(2024, 6, 16)).has_all(combo)


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("2023-6-1", "YYYY-MM-DD"),
        ("01/06/2023", "YYYY-MM-DD"),
        ("2023-06-01T00:00", "YYYY-MM-DD"),
        ("yesterday", "YYYY-MM-DD"),
        ("2023-02-30", "not a calendar date"),
    ],
)
def test_bad_dates_are_usage_errors(text: str, problem: str) -> None:
    with pytest.raises(UsageError, match=problem):
        parse_as_of(text)


def test_an_index_without_upload_times_says_so(tmp_path: Path) -> None:
    fake = FakeIndex()
    wheel = wheel_bytes("demo", "1.0", metadata_text("demo", "1.0"))
    untimed: dict[str, Any] = {"upload-time": None}
    fake.add("demo", "demo-1.0-py3-none-any.whl", wheel, **untimed)
    with pytest.raises(UsageError, match="no upload times for demo"):
        AsOfIndex.on(fake.index(), date(2024, 1, 1)).files(canonicalize_name("demo"))


def test_recording_keeps_upload_times(tmp_path: Path) -> None:
    fake = FakeIndex()
    for version, day in (("1.0", "2021-03-04T05:06:07.000001Z"), ("2.0", "2024-01-01T00:00:00Z")):
        wheel = wheel_bytes("demo", version, metadata_text("demo", version))
        timed: dict[str, Any] = {"upload-time": day}
        fake.add("demo", f"demo-{version}-py3-none-any.whl", wheel, **timed)
    record_snapshot(fake.index(), ["demo"], tmp_path)
    snapshot = SnapshotIndex(tmp_path)
    demo = canonicalize_name("demo")
    assert [snapshot.uploaded(f) for f in snapshot.files(demo)] == [
        datetime(2021, 3, 4, 5, 6, 7, 1, tzinfo=UTC),
        datetime(2024, 1, 1, tzinfo=UTC),
    ]
    then = AsOfIndex.on(snapshot, date(2023, 12, 31))
    assert [str(f.version) for f in then.files(demo)] == ["1.0"]


def test_matrix_as_of_takes_a_toml_date_or_a_string() -> None:
    packages = {"numpy": ""}
    assert parse_matrix({"packages": packages, "as-of": date(2023, 6, 1)}, path="m").as_of == (
        date(2023, 6, 1)
    )
    assert parse_matrix({"packages": packages, "as-of": "2023-06-01"}, path="m").as_of == (
        date(2023, 6, 1)
    )
    assert parse_matrix({"packages": packages}, path="m").as_of is None
    with pytest.raises(MatrixError, match="as-of: must be a date as YYYY-MM-DD"):
        parse_matrix({"packages": packages, "as-of": "June 2023"}, path="m")


def plan_json(*args: str) -> dict[str, list[dict[str, object]]]:
    result = CliRunner().invoke(
        cli,
        [
            *("--snapshot", str(DATA / "index"), "plan", "--base", "debian-slim"),
            *("--python", "3.12", "--strategy", "latest", "--json", *args),
        ],
    )
    assert result.exit_code == 0, result.output
    data: dict[str, list[dict[str, object]]] = json.loads(result.stdout)
    return data


def pinned(data: dict[str, list[dict[str, object]]]) -> dict[str, str]:
    pins = data["combinations"][0]["pins"]
    assert isinstance(pins, list)
    return {p["name"]: p["version"] for p in pins}


def test_cli_plan_as_of_resolves_the_stack_of_that_day(tmp_path: Path) -> None:
    then = pinned(plan_json("--as-of", "2024-06-15"))
    assert then["numpy"] == "1.26.4"
    assert then["pandas"] == "2.2.2"
    assert then["scikit-learn"] == "1.5.0"
    today = pinned(plan_json())
    assert Version(today["numpy"]) > Version("2.0")
    matrix = tmp_path / "m.toml"
    matrix.write_text('as-of = 2024-06-15\n[packages]\nnumpy = ""\npandas = ""\n')
    assert pinned(plan_json("--matrix", str(matrix)))["numpy"] == "1.26.4"
    # the command line wins over the matrix
    assert pinned(plan_json("--matrix", str(matrix), "--as-of", "2024-01-01"))["numpy"] == "1.26.2"


@pytest.mark.parametrize("command", ["plan", "check", "scan", "lock"])
def test_cli_bad_as_of_is_a_usage_error(command: str) -> None:
    result = CliRunner().invoke(
        cli,
        ["--snapshot", str(DATA / "index"), command, "--base", "alpine", "--as-of", "2023-13-01"],
    )
    assert result.exit_code == 2
    assert "--as-of" in result.output
    assert "not a calendar date" in result.output


def test_lock_as_of_keeps_to_pins_that_existed_then(tmp_path: Path) -> None:
    target = dataclasses.replace(
        target_from_profile("debian-slim", python="3.12"), image_id="sha256:" + "cd" * 32
    )

    def stack(numpy: str, pandas: str, day: date) -> Combo:
        source = CandidateSource(AsOfIndex.on(INDEX, day), target)
        requests = [requested("numpy", f"=={numpy}"), requested("pandas", f"=={pandas}")]
        combo = Resolver(source).resolve(requests)
        assert isinstance(combo, Combo), combo
        return combo

    # each with the dependencies of its day
    old = stack("1.26.4", "2.2.1", date(2024, 6, 15))
    new = stack("2.0.0", "2.2.2", date(2024, 6, 16))
    with Store.open(sqlite_url(tmp_path / "results.db")) as store:
        run_id = store.start_run(target, backend="fake")
        for combo in (old, new):
            result = ComboResult(combo=combo, verdict=Verdict.PASS, image_id=target.image_id)
            store.record(run_id, target, result)
        store.finish_run(run_id)
        _, newest = pick_known_good(store, target.name, prefer="newest", constraints=())
        assert newest.combo.id == new.id
        # numpy 2.0.0 came out on 2024-06-16: on the 15th only the older stack existed
        then = AsOfIndex.on(INDEX, date(2024, 6, 15))
        _, picked = pick_known_good(
            store, target.name, prefer="newest", constraints=(), eligible=then.has_all
        )
        assert picked.combo.id == old.id
        with pytest.raises(NothingKnownGood, match="newer than --as-of"):
            pick_known_good(
                store,
                target.name,
                prefer="newest",
                constraints=(),
                eligible=AsOfIndex.on(INDEX, date(2024, 2, 1)).has_all,
            )
