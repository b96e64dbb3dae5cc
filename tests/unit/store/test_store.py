"""The results database's behaviour, on SQLite files in tmp_path.

tests/integration/test_store_postgres.py runs these same tests against a real
PostgreSQL server: it imports them and provides its own ``make_db_url``.
"""

from __future__ import annotations

import dataclasses
import io
import itertools
import json
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from packaging.requirements import Requirement
from packaging.version import Version

from compat.errors import SchemaTooNew, StoreError
from compat.lock.select import rank_known_good
from compat.model import (
    CheckKind,
    CheckResult,
    CheckVerdict,
    Combo,
    ComboResult,
    Depth,
    Verdict,
)
from compat.store import (
    SCHEMA_VERSION,
    RunStatus,
    Store,
    export_json,
    import_json,
    merge,
    migrations,
    schema,
    sqlite_url,
)
from compat.targets.target import Target
from tests.helpers.results import (
    DEBIAN_ID,
    MUSL_ID,
    count,
    deep_failed,
    failed,
    known_pair,
    make_combo,
    make_target,
    passed,
    recorded_runs,
)

ROOT = Path(__file__).resolve().parents[3]

MakeUrl = Callable[[], str]


@pytest.fixture
def make_db_url(tmp_path: Path) -> MakeUrl:
    """Fresh, empty databases."""
    counter = itertools.count()
    return lambda: sqlite_url(tmp_path / f"results-{next(counter)}.db")


@pytest.fixture
def db_url(make_db_url: MakeUrl) -> str:
    return make_db_url()


@pytest.fixture
def store(db_url: str) -> Iterator[Store]:
    with Store.open(db_url) as opened:
        yield opened


# -- round trips ------------------------------------------------------------------


def test_a_result_comes_back_whole(store: Store) -> None:
    target = make_target()
    run_id = store.start_run(target, backend="docker", matrix_name="ml-stack")
    good = passed(target, make_combo(target, {"numpy": "2.0.2", "pandas": "2.2.3"}))
    # what the verdict holds under comes back too
    good = dataclasses.replace(good, notes=("lightgbm built without OpenMP: single-threaded",))
    bad = failed(target, make_combo(target, {"numpy": "2.0.2", "lightgbm": "4.5.0"}))

    good_id = store.record(run_id, target, good)
    bad_id = store.record(run_id, target, bad)

    for result_id, result in ((good_id, good), (bad_id, bad)):
        stored = store.get(result_id)
        assert stored is not None
        assert stored.result == result  # checks, their logs and the log included
        assert stored.result.combo.id == result.combo.id
        assert (stored.id, stored.run_id, stored.base, stored.image) == (
            result_id,
            run_id,
            "alpine",
            "local/musl-python:3.11",
        )
        assert stored.created.tzinfo is not None
    assert store.get(bad_id + 1000) is None


def test_logs_are_stored_compressed(store: Store, db_url: str) -> None:
    target = make_target()
    run_id = store.start_run(target, backend="docker")
    result = failed(target, make_combo(target, {"lightgbm": "4.5.0"}))
    result_id = store.record(run_id, target, result)

    engine = sa.create_engine(db_url)
    with engine.connect() as conn:
        rows = conn.execute(
            sa.select(schema.logs).where(schema.logs.c.result_id == result_id)
        ).all()
    engine.dispose()
    by_part = {row.part: row for row in rows}
    assert set(by_part) == {0, 2}  # the combination's log and the failing check's
    assert by_part[0].size == len(result.log.encode())
    assert len(by_part[0].data) < by_part[0].size // 50


def test_a_result_without_image_id_takes_the_targets(store: Store) -> None:
    target = make_target()
    run_id = store.start_run(target, backend="docker")
    result = ComboResult(combo=make_combo(target, {"numpy": "2.1.3"}), verdict=Verdict.PASS)
    stored = store.get(store.record(run_id, target, result))
    assert stored is not None
    assert stored.result.image_id == MUSL_ID


def test_runs_keep_what_was_run_and_how_it_ended(store: Store, db_url: str) -> None:
    target = make_target()
    first = store.start_run(
        target,
        backend="docker",
        matrix_name="ml-stack",
        matrix_path=Path("matrix/ml-stack.toml"),
        strategy="latest",
        shard="2/4",
    )
    second = store.start_run(
        make_target("debian", "local/debian-python:bookworm", DEBIAN_ID), backend="local"
    )
    store.finish_run(first, RunStatus.INTERRUPTED)

    newest, oldest = recorded_runs(db_url)
    assert (newest.id, oldest.id) == (second, first)
    assert newest.status == RunStatus.RUNNING
    assert newest.finished is None
    assert oldest.status == RunStatus.INTERRUPTED
    assert oldest.finished is not None
    assert oldest.finished >= oldest.started
    assert (oldest.matrix_name, oldest.matrix_path, oldest.strategy, oldest.shard) == (
        "ml-stack",
        str(Path("matrix/ml-stack.toml")),
        "latest",
        "2/4",
    )
    assert (oldest.base, oldest.image, oldest.image_id, oldest.target_key) == (
        "alpine",
        target.image,
        MUSL_ID,
        target.key,
    )
    assert oldest.compat_version
    with pytest.raises(StoreError, match="no run"):
        store.finish_run("0" * 32)


def test_recording_into_an_unknown_run_fails(store: Store) -> None:
    target = make_target()
    with pytest.raises(StoreError):
        store.record("f" * 32, target, passed(target, make_combo(target, {"numpy": "2.0.2"})))
    assert store.results() == []


def test_pins_can_be_queried_by_package_and_version(store: Store, db_url: str) -> None:
    target = make_target()
    run_id = store.start_run(target, backend="docker")
    wanted = make_combo(target, {"numpy": "1.26.4", "pandas": "2.2.3"})
    other = make_combo(target, {"numpy": "2.0.2", "pandas": "2.2.3"})
    store.record(run_id, target, passed(target, wanted))
    store.record(run_id, target, passed(target, other))
    store.record(run_id, target, failed(target, other))  # same combination: pinned once

    engine = sa.create_engine(db_url)
    with engine.connect() as conn:
        found = conn.execute(
            sa.select(schema.pins.c.combination_id, schema.pins.c.sha256).where(
                schema.pins.c.name == "numpy", schema.pins.c.version == "1.26.4"
            )
        ).all()
        pandas = conn.execute(
            sa.select(sa.func.count()).where(schema.pins.c.name == "pandas")
        ).scalar_one()
    engine.dispose()
    assert found == [(wanted.id, wanted.pin("numpy").sha256)]
    assert pandas == 2


def test_deep_baselines_are_cached_per_key_and_module(store: Store) -> None:
    assert store.deep_baseline("k1") == {}
    outcome = {"dependent": "pandas", "test": "t::a", "outcome": "passed"}

    def record(key: str, modules: dict[str, list[dict[str, str]]]) -> None:
        store.record_deep_baseline(
            key=key,
            dependent="pandas",
            version="1.5.3",
            image_id="sha256:i",
            pins=["a==1"],
            modules=modules,
        )

    record("k1", {"m1.py": [outcome], "m2.py": []})
    record("k2", {"m1.py": []})
    again = {**outcome, "outcome": "failed"}
    record("k1", {"m1.py": [again]})  # replaces
    assert store.deep_baseline("k1") == {"m1.py": [again], "m2.py": []}
    assert store.deep_baseline("k2") == {"m1.py": []}


def test_a_combinations_own_deep_run_is_kept_whole_in_a_table_of_its_own(store: Store) -> None:
    assert store.deep_run("r1") is None
    events = [{"event": "test", "test": "t::a", "outcome": "passed"}, {"event": "done"}]
    store.record_deep_run(key="r1", image_id="sha256:i", pins=["a==1"], events=events)
    assert store.deep_run("r1") == events
    assert store.deep_baseline("r1") == {}  # not among the baselines' modules
    store.record_deep_run(key="r1", image_id="sha256:i", pins=["a==1"], events=events[1:])
    assert store.deep_run("r1") == events[1:]  # replaced
    assert store.deep_run("r2") is None


def test_image_sizes(store: Store) -> None:
    store.record_image(
        base="alpine",
        image="compat/alpine-ml:1",
        image_id="sha256:" + "e" * 64,
        total_size=600_000_000,
        added_size=480_000_000,
        lock_hash="f" * 64,
    )

    (size,) = store.image_sizes(base="alpine")
    assert (size.total_size, size.added_size, size.lock_hash) == (
        600_000_000,
        480_000_000,
        "f" * 64,
    )
    assert store.image_sizes(base="debian") == []


# -- listing ----------------------------------------------------------------------


def test_results_list_newest_first_with_filters(store: Store) -> None:
    musl, debian = make_target(), make_target("debian", "local/debian-python:bookworm", DEBIAN_ID)
    musl_run = store.start_run(musl, backend="docker")
    debian_run = store.start_run(debian, backend="docker")
    combo = {"numpy": "2.0.2", "lightgbm": "4.5.0"}
    a = store.record(musl_run, musl, failed(musl, make_combo(musl, combo), Verdict.BUILD_FAILED))
    b = store.record(debian_run, debian, failed(debian, make_combo(debian, combo)))
    c = store.record(debian_run, debian, passed(debian, make_combo(debian, {"numpy": "2.0.2"})))

    assert [r.id for r in store.results()] == [c, b, a]
    assert [r.id for r in store.results(limit=2)] == [c, b]
    assert [r.id for r in store.results(base="debian")] == [c, b]
    assert [r.id for r in store.results(verdict=Verdict.BUILD_FAILED)] == [a]
    assert [r.id for r in store.results(image="local/debian-python:bookworm")] == [c, b]
    assert [r.id for r in store.results(image=MUSL_ID)] == [a]
    assert [r.id for r in store.results(run_id=musl_run)] == [a]
    assert store.results(base="ubuntu") == []

    row = store.results(base="debian", verdict=Verdict.IMPORT_ERROR)[0]
    assert row.label == "numpy 2.0.2, lightgbm 4.5.0"
    assert (row.failed_check, row.error, row.image_id, row.backend, row.run_id) == (
        "lightgbm_core",
        "ImportError: libgomp.so.1: cannot open shared object file",
        DEBIAN_ID,
        "docker",
        debian_run,
    )
    assert row.duration == 7.25


# -- skipping done work -----------------------------------------------------------


def test_done_means_tested_on_the_same_image_id(store: Store) -> None:
    target = make_target()
    run_id = store.start_run(target, backend="docker")
    a, b, c = (make_combo(target, {"numpy": v}) for v in ("1.26.4", "2.0.2", "2.1.3"))
    store.record(run_id, target, passed(target, a))
    store.record(run_id, target, failed(target, c))  # a failure is done too

    assert store.filter_todo([c, b, a], MUSL_ID) == [b]
    assert store.filter_todo([a], DEBIAN_ID) == [a]  # rebuilt image: test again
    assert store.filter_todo([a], None) == [a]  # no image ID proves it is the same image
    assert store.filter_todo([c, b, a], MUSL_ID, retest=True) == [c, b, a]
    assert store.filter_todo([c, b, a], DEBIAN_ID) == [c, b, a]
    assert store.filter_todo([], MUSL_ID) == []

    # what to show for the skipped ones: the latest verdict of each
    store.record(run_id, target, passed(target, c))
    shown = store.latest_results([a.id, b.id, c.id, a.id], MUSL_ID)
    assert set(shown) == {a.id, c.id}
    assert shown[c.id].verdict is Verdict.PASS
    assert shown[a.id].label == "numpy 1.26.4"
    assert store.latest_results([a.id], DEBIAN_ID) == {}


def test_filter_todo_handles_long_plans(store: Store) -> None:
    target = make_target()
    run_id = store.start_run(target, backend="docker")
    combos = [make_combo(target, {"numpy": f"1.{i}.0"}) for i in range(1200)]
    for combo in combos[::7]:
        store.record(run_id, target, passed(target, combo))
    todo = store.filter_todo(combos, MUSL_ID)
    assert todo == [c for i, c in enumerate(combos) if i % 7]


# -- known good -------------------------------------------------------------------


def _known_good_fixture(store: Store) -> dict[str, Combo]:
    target = make_target()
    run_id = store.start_run(target, backend="docker")
    combos = {
        key: make_combo(target, {"numpy": numpy, "pandas": pandas})
        for key, numpy, pandas in [
            ("old", "1.26.4", "2.1.4"),
            ("mid", "2.0.2", "2.2.2"),
            ("new", "2.0.2", "2.2.3"),
            ("broken", "2.1.3", "2.2.3"),  # highest numpy, but fails
            ("flaky", "2.1.3", "2.1.4"),  # passed once, crashed since
            ("fixed", "1.26.4", "2.0.3"),  # failed once, passes since
        ]
    }
    for key in ("old", "mid", "new", "flaky"):
        store.record(run_id, target, passed(target, combos[key]))
    store.record(run_id, target, failed(target, combos["broken"], Verdict.CRASH))
    store.record(run_id, target, failed(target, combos["flaky"], Verdict.CRASH))
    store.record(run_id, target, failed(target, combos["fixed"]))
    store.record(run_id, target, passed(target, combos["fixed"]))
    other = make_target("debian", "local/debian-python:bookworm", DEBIAN_ID)
    other_run = store.start_run(other, backend="docker")
    store.record(other_run, other, passed(other, make_combo(other, {"numpy": "2.2.0"})))
    return combos


def test_known_good_are_the_combinations_whose_latest_verdict_passed(store: Store) -> None:
    combos = _known_good_fixture(store)
    ids = {combo.id: key for key, combo in combos.items()}

    def found(scope: Target | str) -> list[str]:
        return [ids[g.combo.id] for g in store.known_good(scope)]

    assert found("alpine") == ["old", "mid", "new", "fixed"]  # oldest tested first
    assert found(make_target()) == found(MUSL_ID) == found("local/musl-python:3.11")
    assert found(MUSL_ID) == found("alpine")
    assert found("ubuntu") == []
    (debian,) = store.known_good("debian")
    assert debian.combo.version_of("numpy") == Version("2.2.0")


def test_a_deep_failure_outranks_a_later_smoke_pass_until_a_deep_pass(store: Store) -> None:
    target = make_target()
    combo = make_combo(target, {"numpy": "2.0.2", "pandas": "2.2.3"})
    deep_failure = deep_failed(target, combo)
    summary = CheckResult(
        name="deep:pandas", kind=CheckKind.DEEP, verdict=CheckVerdict.PASS, duration=1.0
    )
    deep_pass = dataclasses.replace(passed(target, combo), checks=(summary,))
    run_id = store.start_run(target, backend="docker")

    def standing() -> tuple[list[str], list[Verdict]]:
        good = [g.combo.id for g in store.known_good("alpine")]
        return good, [f.result.verdict for f in store.latest_failures("alpine")]

    store.record(run_id, target, deep_failure)
    store.record(run_id, target, passed(target, combo))  # a later run at depth smoke
    assert standing() == ([], [Verdict.RUNTIME_ERROR])
    store.record(run_id, target, deep_pass)  # judged again at depth deep
    assert standing() == ([combo.id], [])
    assert [g.depth for g in store.known_good("alpine")] == [Depth.DEEP]
    store.record(run_id, target, failed(target, combo))  # a later failure always counts
    assert standing() == ([], [Verdict.IMPORT_ERROR])


def test_the_lock_ranking_over_what_the_store_found(store: Store) -> None:
    combos = _known_good_fixture(store)
    ids = {combo.id: key for key, combo in combos.items()}

    def ranked(scope: Target | str, **kwargs: Any) -> list[str]:
        return [ids[g.combo.id] for g in rank_known_good(store.known_good(scope), **kwargs).ranked]

    assert ranked("alpine") == ["new", "mid", "old", "fixed"]
    assert ranked("alpine", prefer="oldest") == ["fixed", "old", "mid", "new"]
    assert ranked(make_target()) == ["new", "mid", "old", "fixed"]  # by image ID
    # the constraints' packages come first, in their order
    assert ranked("alpine", constraints=[Requirement("pandas"), Requirement("numpy")]) == [
        "new",
        "mid",
        "old",
        "fixed",
    ]
    assert ranked("alpine", constraints=[Requirement("numpy<2")]) == ["old", "fixed"]
    assert ranked("alpine", constraints=[Requirement("numpy<2"), Requirement("pandas<2.1")]) == [
        "fixed"
    ]
    assert ranked("alpine", constraints=[Requirement("scipy")]) == []

    best = rank_known_good(store.known_good("alpine")).best
    assert best is not None
    assert best.combo == combos["new"]
    assert best.combo.pin("pandas").sha256 == combos["new"].pin("pandas").sha256
    assert (best.base, best.image, best.image_id) == ("alpine", "local/musl-python:3.11", MUSL_ID)
    stored = store.get(best.result_id)
    assert stored is not None
    assert stored.result.verdict is Verdict.PASS


# -- export, import, merge --------------------------------------------------------


def _populate(store: Store, *, name: str = "alpine", versions: tuple[str, ...] = ("2.0.2",)) -> str:
    target = make_target(name)
    run_id = store.start_run(target, backend="docker", matrix_name="ml-stack", shard="1/2")
    for version in versions:
        store.record(run_id, target, passed(target, make_combo(target, {"numpy": version})))
        store.record(
            run_id,
            target,
            failed(target, make_combo(target, {"numpy": version, "lightgbm": "4.5.0"})),
        )
    store.record_image(
        base=name,
        image=f"compat/{name}:1",
        image_id="sha256:" + "e" * 64,
        total_size=2,
        added_size=1,
    )
    return run_id


def _export(store: Store) -> list[str]:
    """The export's records, without the header (it holds the export's time)."""
    out = io.StringIO()
    export_json(store, out)
    lines = out.getvalue().splitlines()
    assert json.loads(lines[0])["format"] == "compat-results"
    return lines[1:]


def test_export_then_import_twice_adds_nothing_the_second_time(
    store: Store, make_db_url: MakeUrl
) -> None:
    run_id = _populate(store, versions=("1.26.4", "2.0.2"))
    store.finish_run(run_id)
    kept = CheckResult(
        name="numpy:x", verdict=CheckVerdict.PASS, duration=0.0, key="k" * 64, reused_from="u1"
    )
    store.record_disagreement(kept, dataclasses.replace(kept, verdict=CheckVerdict.CRASH))
    exported = io.StringIO()
    # target, run, results, image, disagreement
    assert export_json(store, exported) == 1 + 1 + 4 + 1 + 1

    with Store.open(make_db_url()) as copy:
        exported.seek(0)
        first = import_json(copy, exported)
        exported.seek(0)
        second = import_json(copy, exported)
        assert (first.runs, first.results, first.images, first.skipped) == (1, 4, 1, 0)
        assert first.disagreements == 1  # nothing is reused under that key in the copy either
        assert (second.runs, second.results, second.images, second.disagreements) == (0, 0, 0, 0)
        assert second.skipped == 7
        assert _export(copy) == _export(store)
        assert [r.id for r in copy.results()] == [r.id for r in store.results()]
        for row in copy.results():
            assert copy.get(row.id) == store.get(row.id)


def test_import_refuses_what_is_not_an_export(store: Store) -> None:
    with pytest.raises(StoreError, match="not a compat export"):
        import_json(store, io.StringIO('{"kind": "run"}\n'))
    with pytest.raises(StoreError, match="not JSON"):
        import_json(store, io.StringIO("this is not json\n"))
    with pytest.raises(StoreError, match="empty"):
        import_json(store, io.StringIO(""))
    newer = {"kind": "header", "format": "compat-results", "version": 99, "compat": "9.0"}
    with pytest.raises(StoreError, match="upgrade compat"):
        import_json(store, io.StringIO(json.dumps(newer) + "\n"))
    header = {"kind": "header", "format": "compat-results", "version": 1}
    with pytest.raises(StoreError, match="unknown kind"):
        import_json(store, io.StringIO(json.dumps(header) + '\n{"kind": "wat"}\n'))


def test_merging_shards_copies_each_result_once(make_db_url: MakeUrl) -> None:
    shard1, shard2, merged_url = make_db_url(), make_db_url(), make_db_url()
    with Store.open(shard1) as one:
        run1 = _populate(one, versions=("1.26.4",))
    with Store.open(shard2) as two:
        run2 = _populate(two, versions=("2.0.2", "2.1.3"))
        two.finish_run(run2)

    with Store.open(merged_url) as merged:
        a = merge(merged, shard1)
        b = merge(merged, shard2)
        again = merge(merged, shard1)
        assert (a.runs, a.results, b.runs, b.results) == (1, 2, 1, 4)
        assert (again.runs, again.results, again.images) == (0, 0, 0)
        assert len(merged.results(limit=None)) == 6
        assert {r.id for r in recorded_runs(merged_url)} == {run1, run2}
        assert len(merged.image_sizes()) == 2

        # a shard that was still running when first merged, and finished since
        with Store.open(shard1) as one:
            one.finish_run(run1, RunStatus.FINISHED)
        merge(merged, shard1)
        assert {r.id: r.status for r in recorded_runs(merged_url)}[run1] == RunStatus.FINISHED
        # and a database merged into itself gains nothing
        assert merge(merged, merged_url).results == 0
    assert count(merged_url, "results") == 6
    assert count(merged_url, "combinations") == 6


# -- schema versions --------------------------------------------------------------


def _make_v1(url: str) -> None:
    """A database as the first schema version left it, with one run and one result
    (written with plain SQL, as that compat did)."""
    engine = sa.create_engine(url)
    target = make_target()
    combo = make_combo(target, {"numpy": "2.0.2"})
    with engine.begin() as conn:
        schema.schema_version.create(conn)
        migrations.STEPS[0](conn)
        conn.execute(sa.insert(schema.schema_version).values(version=1, applied=sa.func.now()))
        md = sa.MetaData()
        md.reflect(conn)
        conn.execute(
            sa.insert(md.tables["targets"]).values(
                key=target.key,
                name=target.name,
                image=target.image,
                image_id=target.image_id,
                python="3.11.9",
                data=target.to_json(),
            )
        )
        conn.execute(
            sa.insert(md.tables["runs"]).values(
                id="1" * 32,
                started=sa.func.now(),
                status="finished",
                compat_version="0.0.9",
                base=target.name,
                image=target.image,
                image_id=target.image_id,
                target_key=target.key,
                backend="docker",
            )
        )
        conn.execute(
            sa.insert(md.tables["combinations"]).values(
                id=combo.id, target_key=target.key, data=combo.to_json()
            )
        )
        conn.execute(
            sa.insert(md.tables["results"]).values(
                uid="2" * 32,
                run_id="1" * 32,
                combination_id=combo.id,
                image_id=MUSL_ID,
                verdict="pass",
                duration=1.0,
                system_deps=[],
                added_system_deps=[],
                backend="docker",
                created=sa.func.now(),
            )
        )
    engine.dispose()


def test_an_older_database_is_migrated_forward(make_db_url: MakeUrl) -> None:
    url = make_db_url()
    _make_v1(url)
    # a reader too: what it reads must be at the latest version, so it migrates
    with Store.open(url, read_only=True) as store:
        assert store.schema_version == SCHEMA_VERSION == 12
        (old,) = store.results()
        assert old.label == "numpy 2.0.2"
        assert old.verdict is Verdict.PASS
        assert store.filter_todo([make_combo(make_target(), {"numpy": "2.0.2"})], MUSL_ID) == []
    (run,) = recorded_runs(url)
    assert run.shard is None
    assert run.compat_version == "0.0.9"
    with Store.open(url) as store:
        store.start_run(make_target(), backend="docker", shard="1/3")
    assert count(url, "schema_version") == 12
    engine = sa.create_engine(url)
    assert not sa.inspect(engine).has_table("builds")  # never written, dropped by v4
    assert sa.inspect(engine).has_table("deep_runs")  # v10
    assert sa.inspect(engine).has_table("deep_modules")  # v11
    engine.dispose()


def test_an_image_remembers_the_system_packages_its_results_ran_with(store: Store) -> None:
    target = make_target("bookworm", image="local/debian-python:bookworm", image_id=DEBIAN_ID)
    run_id = store.start_run(target, backend="docker")
    combo = make_combo(target, {"numpy": "2.3.0", "lightgbm": "4.6.0"})
    assert store.system_packages(DEBIAN_ID) == ()
    store.record(run_id, target, passed(target, combo))  # a bare pass teaches nothing
    assert store.system_packages(DEBIAN_ID) == ()
    with_gomp = dataclasses.replace(passed(target, combo), added_system_deps=("libgomp1",))
    store.record(run_id, target, with_gomp)
    store.record(run_id, target, with_gomp)  # learnt once
    assert store.system_packages(DEBIAN_ID) == ("libgomp1",)
    assert store.system_packages(MUSL_ID) == ()  # per image
    assert store.system_packages(None) == ()  # an unprobed target has no image ID


def test_a_v6_database_learns_from_the_results_it_holds(make_db_url: MakeUrl) -> None:
    url = make_db_url()
    target = make_target("bookworm", image="local/debian-python:bookworm", image_id=DEBIAN_ID)
    combo = make_combo(target, {"numpy": "2.3.0", "lightgbm": "4.6.0"})
    with Store.open(url) as store:
        run_id = store.start_run(target, backend="docker")
        store.record(
            run_id,
            target,
            dataclasses.replace(passed(target, combo), added_system_deps=("libgomp1", "zlib1g")),
        )
    engine = sa.create_engine(url)
    with engine.begin() as conn:  # as a v6 database (before the table) holds it
        conn.execute(sa.text("DROP TABLE image_system_packages"))
        conn.execute(sa.text("DROP INDEX ix_checks_reuse_key"))
        for column in ("inputs", "reuse_key", "reused_from", "kind"):
            conn.execute(sa.text(f"ALTER TABLE checks DROP COLUMN {column}"))
        conn.execute(sa.text("ALTER TABLE incompatibilities DROP COLUMN ranges"))
        conn.execute(sa.text("DELETE FROM schema_version WHERE version >= 7"))
    engine.dispose()
    with Store.open(url) as store:
        assert store.schema_version == SCHEMA_VERSION
        assert store.system_packages(DEBIAN_ID) == ("libgomp1", "zlib1g")
        # the checks it held are there, neither reused nor reusable
        stored = store.get(1)
        assert stored is not None
        assert [(c.inputs, c.key, c.reused_from) for c in stored.result.checks] == [
            (None, None, None)
        ] * 2


# names that say what the kind was before kinds were kept (schema v8)
LEGACY_KINDS = {
    "import:numpy": CheckKind.IMPORT,
    "numpy:core": CheckKind.SMOKE,
    "user:mine.py": CheckKind.USER,
    "exec": CheckKind.USER,
    "build:lightgbm": CheckKind.BUILD,
    "deep:pandas": CheckKind.DEEP,
    "deep:pandas:pandas/tests/test_x.py::test_y": CheckKind.DEEP,
    "deep": CheckKind.RUNNER,
    "smoke-runner": CheckKind.RUNNER,
}


def _with_checks(result: ComboResult, kinds: dict[str, CheckKind]) -> ComboResult:
    checks = tuple(
        CheckResult(name=n, kind=k, verdict=CheckVerdict.PASS, duration=0.1)
        for n, k in kinds.items()
    )
    return dataclasses.replace(result, checks=checks)


def test_the_results_database_keeps_each_checks_kind(store: Store) -> None:
    target = make_target()
    run_id = store.start_run(target, backend="docker")
    # the kind is what is kept, whatever the name says
    kinds = {f"import:numpy-{kind}": kind for kind in CheckKind}
    result_id = store.record(
        run_id, target, _with_checks(passed(target, make_combo(target, {"numpy": "2.0.2"})), kinds)
    )
    stored = store.get(result_id)
    assert stored is not None
    assert {c.name: c.kind for c in stored.result.checks} == kinds
    (row,) = store.results()
    assert row.depth is Depth.DEEP


def test_a_v8_database_gives_its_checks_the_kinds_their_names_implied(
    make_db_url: MakeUrl,
) -> None:
    url = make_db_url()
    target = make_target()
    imports_only = {"import:numpy": CheckKind.IMPORT, "import:scipy": CheckKind.IMPORT}
    with Store.open(url) as store:
        run_id = store.start_run(target, backend="docker")
        every = passed(target, make_combo(target, {"numpy": "2.0.2"}))
        store.record(run_id, target, _with_checks(every, LEGACY_KINDS))
        imports = passed(target, make_combo(target, {"numpy": "2.1.3"}))
        store.record(run_id, target, _with_checks(imports, imports_only))
    engine = sa.create_engine(url)
    with engine.begin() as conn:  # as a v8 database holds them
        conn.execute(sa.text("ALTER TABLE checks DROP COLUMN kind"))
        conn.execute(sa.text("ALTER TABLE incompatibilities DROP COLUMN ranges"))
        conn.execute(sa.text("DELETE FROM schema_version WHERE version >= 9"))
    engine.dispose()
    with Store.open(url) as store:
        assert store.schema_version == SCHEMA_VERSION
        old, only = store.get(1), store.get(2)
        assert old is not None
        assert only is not None
        assert {c.name: c.kind for c in old.result.checks} == LEGACY_KINDS
        assert {c.name: c.kind for c in only.result.checks} == imports_only
        depths = {r.id: r.depth for r in store.results()}
        assert depths == {1: Depth.DEEP, 2: Depth.IMPORT}


def test_the_migrated_schema_is_the_schema_the_queries_use(store: Store, db_url: str) -> None:
    engine = sa.create_engine(db_url)
    found = sa.MetaData()
    found.reflect(engine)
    engine.dispose()
    assert set(found.tables) == set(schema.metadata.tables)
    for name, table in schema.metadata.tables.items():
        columns = {c.name: (c.nullable, c.primary_key) for c in found.tables[name].columns}
        assert columns == {c.name: (c.nullable, c.primary_key) for c in table.columns}, name
        indexes = {tuple(c.name for c in i.columns) for i in found.tables[name].indexes}
        assert {tuple(c.name for c in i.columns) for i in table.indexes} <= indexes, name


def test_a_database_from_a_newer_compat_is_refused(make_db_url: MakeUrl) -> None:
    url = make_db_url()
    with Store.open(url):
        pass
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        conn.execute(
            sa.insert(schema.schema_version).values(
                version=SCHEMA_VERSION + 1, applied=sa.func.now()
            )
        )
    engine.dispose()
    with pytest.raises(SchemaTooNew) as refused:
        Store.open(url)
    assert refused.value.exit_code == 7
    assert (refused.value.found, refused.value.known) == (SCHEMA_VERSION + 1, SCHEMA_VERSION)
    assert "Upgrade compat" in str(refused.value)
    assert count(url, "schema_version") == SCHEMA_VERSION + 1


def test_a_database_that_is_not_ours_is_refused(make_db_url: MakeUrl) -> None:
    url = make_db_url()
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        conn.execute(sa.text("CREATE TABLE runs (id INTEGER PRIMARY KEY)"))
    engine.dispose()
    with pytest.raises(StoreError, match="not a compat results database"):
        Store.open(url)


# -- concurrency and durability ---------------------------------------------------

WRITER = """
import sys
from compat.store import Store
from tests.helpers.results import failed, make_combo, make_target, passed

url, worker, n = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
sys.stdin.readline()  # start together
with Store.open(url) as store:
    target = make_target()
    run_id = store.start_run(target, backend="docker", shard=f"{worker}/9")
    i = 0
    while n < 0 or i < n:
        # workers share half of their combinations: racing inserts of one combination
        combo = make_combo(target, {"numpy": f"1.{i}.{worker % 2}", "pandas": "2.2.3"})
        make = passed if i % 3 else failed
        result_id = store.record(run_id, target, make(target, combo))
        print(result_id, flush=True)  # committed: reported only after record() returned
        i += 1
"""


def _writer(url: str, worker: int, n: int) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", WRITER, url, str(worker), str(n)],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


@pytest.mark.slow
def test_processes_write_at_once_into_a_new_database(make_db_url: MakeUrl) -> None:
    url = make_db_url()
    procs = [_writer(url, worker, 25) for worker in range(4)]
    for proc in procs:  # all open (and so migrate) the same new database at once
        assert proc.stdin is not None
        proc.stdin.write("go\n")
        proc.stdin.flush()
    outputs = [proc.communicate(timeout=120) for proc in procs]
    for proc, (_, err) in zip(procs, outputs, strict=True):
        assert proc.returncode == 0, err
    ids = [int(line) for out, _ in outputs for line in out.split()]
    assert len(ids) == len(set(ids)) == 100
    assert count(url, "results") == 100
    assert count(url, "runs") == 4
    assert count(url, "combinations") == 50  # each shared one stored once
    assert count(url, "schema_version") == SCHEMA_VERSION


def test_threads_share_one_store(store: Store) -> None:
    target = make_target()
    run_id = store.start_run(target, backend="docker")
    ids: list[int] = []
    errors: list[BaseException] = []
    start = threading.Barrier(8)

    def work(worker: int) -> None:
        try:
            start.wait()
            for i in range(20):
                combo = make_combo(target, {"numpy": f"1.{i}.0", "scipy": f"1.{worker % 2}.0"})
                ids.append(store.record(run_id, target, passed(target, combo)))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(w,)) for w in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert len(set(ids)) == 160
    assert len(store.results(limit=None)) == 160
    assert all(store.get(i) is not None for i in ids[::16])


@pytest.mark.slow
def test_a_killed_writer_loses_no_finished_result(make_db_url: MakeUrl) -> None:
    url = make_db_url()
    with Store.open(url):
        pass  # created beforehand: the kill must land while results are written
    with _writer(url, 1, -1) as proc:
        assert proc.stdin is not None
        assert proc.stdout is not None
        proc.stdin.write("go\n")
        proc.stdin.flush()
        acknowledged = [int(proc.stdout.readline()) for _ in range(40)]
        os.kill(proc.pid, signal.SIGKILL)
        acknowledged += [int(line) for line in proc.stdout.read().split()]
    assert proc.returncode == -signal.SIGKILL

    with Store.open(url) as store:
        stored = {r.id for r in store.results(limit=None)}
        assert set(acknowledged) <= stored  # every result reported done survived
        assert len(stored) - len(acknowledged) <= 1  # at most the one committed as it died
        for result_id in acknowledged:
            got = store.get(result_id)
            assert got is not None
            assert len(got.result.checks) == 2
            assert got.result.log
    (run,) = recorded_runs(url)
    assert run.status == RunStatus.RUNNING  # never finished: that is how a killed run looks


def test_seen_versions_and_incompatibilities(store: Store) -> None:
    assert store.seen_versions("alpine") == {}
    assert store.record_seen("alpine", {"numpy": ["2.0.2", "2.1.0"]}) == 2
    assert store.record_seen("alpine", {"numpy": ["2.1.0", "2.2.0"], "pandas": ["2.2.3"]}) == 2
    assert store.seen_versions("alpine") == {
        "numpy": {"2.0.2", "2.1.0", "2.2.0"},
        "pandas": {"2.2.3"},
    }
    assert store.seen_versions("debian-slim") == {}

    pair = {"numpy": "2.0.2", "pandas": "2.1.1"}
    first = known_pair(store, pair, evidence=(1,))
    again = known_pair(store, pair, evidence=(1, 2))
    assert first == again
    (found,) = store.incompatibilities("alpine")
    assert found.evidence == (1, 2)
    assert found.matches({"numpy": "2.0.2", "pandas": "2.1.1", "six": "1.17.0"})
    assert not found.matches({"numpy": "2.0.2", "pandas": "2.2.3"})
    assert found.label() == "numpy 2.0.2 x pandas 2.1.1"
    assert store.incompatibilities("debian-slim") == []
