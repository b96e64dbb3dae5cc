"""The nightly run's incremental logic over the recorded index snapshot and a SQLite
results database: what is new, what runs, what counts as a regression, when the
known-good lock moves."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

import pytest
from click.testing import CliRunner
from packaging.utils import NormalizedName, canonicalize_name
from packaging.version import Version

from compat.cli import cli
from compat.errors import NothingKnownGood
from compat.index.base import Index
from compat.index.snapshot import SnapshotIndex
from compat.lock import LockInput, write_lock
from compat.lock.movement import lock_changed
from compat.lock.select import rank_known_good
from compat.lock.write import RECORD
from compat.matrix import Matrix, load_matrix
from compat.model import (
    CheckKind,
    CheckResult,
    CheckVerdict,
    Combo,
    ComboResult,
    CoreMetadata,
    Depth,
    DistFile,
    Verdict,
)
from compat.report import render_report
from compat.report.collect import collect
from compat.report.summary import Row
from compat.report.view import build
from compat.reporter import Reporter
from compat.resolve.candidates import CandidateSource
from compat.resolve.planner import Plan, Planner
from compat.store import Store, sqlite_url
from compat.store.regressions import regressions
from compat.targets.profiles import target_from_profile
from compat.targets.target import PackageManager, Target
from compat.workflows.nightly import (
    BaseOutcome,
    LockChanged,
    NightlyOutcome,
    RegressionFound,
    as_seen,
    control_combo,
    first_night_notice,
    new_versions,
    nightly_base,
    nightly_plan,
    tracked_versions,
)
from tests.helpers.reporter import RecordingReporter
from tests.helpers.results import deep_failed, make_target

ROOT = Path(__file__).parents[3]
SNAPSHOT = ROOT / "tests" / "data" / "index"
MATRIX = load_matrix(ROOT / "matrix" / "nightly.toml")
SCOPE = "debian-slim"
PANDAS = canonicalize_name("pandas")
TZDATA = canonicalize_name("tzdata")


class HidingIndex:
    """The snapshot as it was before some releases: those in ``hidden`` do not exist."""

    def __init__(self, inner: Index, hidden: Iterable[tuple[str, str]] = ()) -> None:
        self.inner = inner
        self.hidden = {(canonicalize_name(n), Version(v)) for n, v in hidden}

    def files(self, name: NormalizedName) -> Sequence[DistFile]:
        return [f for f in self.inner.files(name) if (f.name, f.version) not in self.hidden]

    def metadata(self, file: DistFile) -> CoreMetadata:
        return self.inner.metadata(file)

    def prefetch(self, files: Iterable[DistFile]) -> None:
        self.inner.prefetch(files)


def target() -> Target:
    return target_from_profile(SCOPE, python="3.12")


def source(*hidden: tuple[str, str]) -> CandidateSource:
    return CandidateSource(HidingIndex(SnapshotIndex(SNAPSHOT), hidden), target(), MATRIX.build)


def plan_of(src: CandidateSource, matrix: Matrix = MATRIX) -> Plan:
    return Planner(src, matrix).plan(src.target)


@pytest.fixture
def store(tmp_path: Path) -> Iterable[Store]:
    with Store.open(sqlite_url(tmp_path / "results.db")) as opened:
        yield opened


def pins_of(combo: Combo) -> dict[str, str]:
    return {p.name: str(p.version) for p in combo.pins}


# -- new versions and the plan ------------------------------------------------------


def test_the_nightly_matrix_is_the_six_package_stack_on_three_bases() -> None:
    assert MATRIX.names == (
        "numpy",
        "scipy",
        "scikit-learn",
        "pandas",
        "matplotlib",
        "lightgbm",
    )
    assert MATRIX.bases == ("alpine", "debian-slim", "ubuntu")
    assert MATRIX.strategy in ("minor", "pairwise")
    assert MATRIX.last_minors == 2


def test_tracked_versions_cover_every_pin_the_plan_makes() -> None:
    src = source()
    tracked = tracked_versions(src, MATRIX)
    plan = plan_of(src)
    assert plan.combos
    for combo in plan.combos:
        for pin in combo.pins:
            assert pin.version in tracked[pin.name], f"{pin} is not watched"
    # the matrix packages: every usable version in range, not only the planned minors
    numpy = tracked[canonicalize_name("numpy")]
    assert Version("1.26.4") in numpy
    assert all(v >= Version("1.26") for v in numpy)


def test_first_run_sees_everything_and_plans_the_normal_plan() -> None:
    src = source()
    new = new_versions(src, MATRIX, {})
    assert new == {n: list(vs) for n, vs in tracked_versions(src, MATRIX).items() if vs}
    plan = plan_of(src)
    assert nightly_plan(plan, new, None) == list(plan.combos)  # no explosion


def test_second_run_with_the_same_index_finds_nothing_and_plans_nothing(store: Store) -> None:
    src = source()
    tracked = tracked_versions(src, MATRIX)
    assert store.record_seen(SCOPE, as_seen(tracked)) == sum(len(v) for v in tracked.values())
    new = new_versions(src, MATRIX, store.seen_versions(SCOPE))
    assert new == {}
    control = plan_of(src).combos[0]
    assert nightly_plan(plan_of(src), new, control) == []  # not even the control


def test_a_new_release_plans_only_combinations_with_it_plus_the_control(store: Store) -> None:
    before = source(("pandas", "3.1.1"))
    store.record_seen(SCOPE, as_seen(tracked_versions(before, MATRIX)))
    control = plan_of(before).combos[0]

    now = source()
    new = new_versions(now, MATRIX, store.seen_versions(SCOPE))
    assert new == {PANDAS: [Version("3.1.1")]}
    plan = plan_of(now)
    planned = nightly_plan(plan, new, control)
    assert planned[0] == control
    with_it = [c for c in plan.combos if c.version_of("pandas") == Version("3.1.1")]
    assert with_it
    assert planned[1:] == with_it
    assert len(planned) < len(plan.combos) + 1


def test_a_new_dependency_release_plans_the_combinations_that_pin_it(store: Store) -> None:
    before = source(("tzdata", "2026.6"))
    store.record_seen(SCOPE, as_seen(tracked_versions(before, MATRIX)))
    now = source()
    new = new_versions(now, MATRIX, store.seen_versions(SCOPE))
    assert new == {TZDATA: [Version("2026.6")]}
    plan = plan_of(now)
    planned = nightly_plan(plan, new, None)
    assert planned == [c for c in plan.combos if pins_of(c).get("tzdata") == "2026.6"]
    assert planned  # pandas pulls in tzdata


def test_seen_versions_compare_as_versions_not_text() -> None:
    src = source()
    seen = {
        name.upper(): [f"v{v}" for v in vs]  # "v2.0.2" is the same version as "2.0.2"
        for name, vs in tracked_versions(src, MATRIX).items()
    }
    assert new_versions(src, MATRIX, seen) == {}


def test_the_control_is_re_resolved_for_another_target() -> None:
    src = source()
    combo = plan_of(src).combos[0]
    assert control_combo(src, locked=combo, known_good=None) is combo
    moved = Combo(target="elsewhere|sha256:1|py3.12", pins=combo.pins, requested=combo.requested)
    again = control_combo(src, locked=None, known_good=moved)
    assert again is not None
    assert again.target == src.target.key
    assert pins_of(again) == pins_of(combo)
    assert control_combo(src, locked=None, known_good=None) is None


# -- regressions and lock changes ---------------------------------------------------


def result(combo: Combo, verdict: Verdict = Verdict.PASS, error: str | None = None) -> ComboResult:
    return ComboResult(combo=combo, verdict=verdict, error=error)


def test_a_known_good_combination_that_fails_now_is_a_regression() -> None:
    old, other = plan_of(source(("tzdata", "2026.6"))).combos[:2]
    new_same = next(
        c
        for c in plan_of(source()).combos
        if [c.version_of(n) for n in c.requested] == [old.version_of(n) for n in old.requested]
    )
    assert new_same.id != old.id  # only tzdata moved
    found = regressions(
        [
            result(new_same, Verdict.IMPORT_ERROR, "ImportError: tzdata"),
            result(other, Verdict.PASS),
        ],
        [old, other],
    )
    (regression,) = found
    assert regression.passed == old
    assert not regression.control
    assert [str(c) for c in regression.changes] == ["tzdata 2026.5 -> 2026.6"]
    assert "tzdata 2026.5 -> 2026.6" in regression.describe()
    assert regression.to_json()["changes"] == [
        {"name": "tzdata", "before": "2026.5", "now": "2026.6"}
    ]


def test_a_failing_control_is_a_regression_and_new_failures_are_not() -> None:
    combos = plan_of(source()).combos
    control, fresh = combos[0], combos[1]
    found = regressions(
        [result(control, Verdict.CRASH), result(fresh, Verdict.IMPORT_ERROR)], [], control=control
    )
    (regression,) = found
    assert regression.control
    assert regression.changes == ()
    assert regression.describe().startswith("control ")
    assert regressions([result(control, Verdict.PASS)], [], control=control) == []


def test_a_timeout_that_persisted_is_undecided_never_a_regression() -> None:
    """A known-good combination that timed out even with twice the time: the machine
    may have been slow; the control failing for real still is one."""
    control, other = plan_of(source()).combos[:2]
    slow = result(other, Verdict.TIMEOUT, "no result within the time limit (240s)")
    assert regressions([slow], [control, other], control=control) == []
    broken = result(control, Verdict.RUNTIME_ERROR, "AttributeError: gone")
    assert [r.combo for r in regressions([slow, broken], [control, other])] == [control]


def test_a_missing_library_with_a_known_package_is_never_a_regression() -> None:
    """Run on the bare image (--no-system-deps, or an install that failed), a known-good
    combination lacks libgomp.so.1: the image's fault, with a known fix, not the packages'."""
    control, other = plan_of(source()).combos[:2]
    gomp = dataclasses.replace(
        result(control, Verdict.IMPORT_ERROR, "ImportError: libgomp.so.1: cannot open"),
        system_deps=("libgomp1",),
    )
    unknown = result(other, Verdict.IMPORT_ERROR, "ImportError: libfoo.so.9: cannot open")
    found = regressions([gomp, unknown], [control, other], control=control)
    assert [r.combo for r in found] == [other]  # a library no package is known for still counts


def test_lock_changes_when_the_best_known_good_combination_differs(tmp_path: Path) -> None:
    src = source()
    first, second = plan_of(src).combos[:2]
    lock_dir = tmp_path / "lock" / SCOPE
    assert lock_changed(lock_dir, first)  # nothing committed yet
    assert not lock_changed(lock_dir, None)  # nothing to write
    write_lock(
        LockInput(target=src.target, combo=first, package_manager=PackageManager.APT), lock_dir
    )
    assert not lock_changed(lock_dir, first)
    same_files = Combo(target="reprobed|x|py3.12", pins=first.pins, requested=first.requested)
    assert not lock_changed(lock_dir, same_files)
    assert lock_changed(lock_dir, second)
    (lock_dir / RECORD).write_text("{not json", encoding="utf-8")
    assert lock_changed(lock_dir, first)  # a damaged record is rewritten


def test_the_outcome_exit_status_and_report() -> None:
    combos = plan_of(source()).combos
    broken = regressions([result(combos[0], Verdict.CRASH)], [], control=combos[0])
    quiet = BaseOutcome(base="alpine")
    moved = BaseOutcome(
        base="ubuntu", new={PANDAS: (Version("3.1.1"),)}, lock_changed=True, lock_combo="abc"
    )
    bad = BaseOutcome(
        base="debian-slim", new={PANDAS: (Version("3.1.1"),)}, regressions=tuple(broken)
    )
    assert quiet.lines() == ["alpine: nothing new"]
    assert NightlyOutcome(bases=(quiet,)).exit_status == 0
    NightlyOutcome(bases=(quiet,)).raise_for_status()
    assert NightlyOutcome(bases=(quiet, moved)).exit_status == LockChanged.exit_code
    with pytest.raises(LockChanged, match="changed for ubuntu: the new lockfiles"):
        NightlyOutcome(bases=(quiet, moved)).raise_for_status()
    with pytest.raises(LockChanged, match="written under ci/locks/; review"):
        NightlyOutcome(bases=(moved,), lock_root=Path("ci/locks")).raise_for_status()
    everything = NightlyOutcome(bases=(quiet, moved, bad))
    assert everything.exit_status == RegressionFound.exit_code
    with pytest.raises(RegressionFound, match=r"control .* now crash.*lock changed for ubuntu"):
        everything.raise_for_status()
    assert any(line.startswith("  REGRESSION control") for line in everything.lines())
    assert everything.to_json()["bases"][1]["lock_combination"] == "abc"


# -- one base, night after night -----------------------------------------------------


class FakeRun:
    """Records into the store as the CLI's backend would; fails what ``fail`` says."""

    def __init__(self, store: Store, tgt: Target, fail: dict[str, str] | None = None) -> None:
        self.store, self.target, self.fail = store, tgt, fail or {}
        self.calls: list[list[Combo]] = []

    def __call__(self, combos: list[Combo]) -> list[ComboResult]:
        self.calls.append(combos)
        run_id = self.store.start_run(self.target, backend="fake")
        results = []
        for combo in combos:
            broken = any(pins_of(combo).get(n) == v for n, v in self.fail.items())
            done = result(combo, Verdict.IMPORT_ERROR if broken else Verdict.PASS)
            self.store.record(run_id, self.target, done)
            results.append(done)
        self.store.finish_run(run_id)
        return results


def night(
    store: Store, lock_dir: Path, src: CandidateSource, fail: dict[str, str] | None = None
) -> tuple[BaseOutcome, FakeRun]:
    run = FakeRun(store, src.target, fail)
    return night_with(store, lock_dir, src, run), run


def night_with(
    store: Store,
    lock_dir: Path,
    src: CandidateSource,
    run: Callable[[list[Combo]], list[ComboResult]],
    on_first_night: Callable[[int], None] | None = None,
) -> BaseOutcome:
    """One night of the matrix on the source's base, ``run`` running what is new."""
    return nightly_base(
        scope=SCOPE,
        source=src,
        matrix=MATRIX,
        plan=lambda: plan_of(src),
        store=store,
        lock_dir=lock_dir,
        run=run,
        on_first_night=on_first_night,
    )


def commit_lock(store: Store, lock_dir: Path) -> Combo:
    best = rank_known_good(store.known_good(SCOPE)).ranked[0].combo
    write_lock(LockInput(target=target(), combo=best, package_manager=PackageManager.APT), lock_dir)
    return best


def test_nights_run_everything_then_nothing_then_only_the_new_release(
    store: Store, tmp_path: Path
) -> None:
    lock_dir = tmp_path / "lock" / SCOPE
    first, run = night(store, lock_dir, source(("pandas", "3.1.1")))
    planned = plan_of(source(("pandas", "3.1.1"))).combos
    assert first.ran == tuple(c.id for c in planned)
    assert first.control is None
    assert first.lock_changed
    assert first.exit_status == LockChanged.exit_code
    locked = commit_lock(store, lock_dir)
    assert locked.version_of("pandas") == Version("3.1.0")

    second, run = night(store, lock_dir, source(("pandas", "3.1.1")))
    assert second == BaseOutcome(base=SCOPE)
    assert run.calls == []
    assert second.exit_status == 0

    third, run = night(store, lock_dir, source())
    (combos,) = run.calls
    assert combos[0].id == locked.id
    assert third.control == locked.id
    assert all(c.version_of("pandas") == Version("3.1.1") for c in combos[1:])
    assert third.new == {PANDAS: (Version("3.1.1"),)}
    assert third.regressions == ()
    assert third.lock_changed  # pandas 3.1.1 passed: a newer best known-good
    assert third.exit_status == LockChanged.exit_code

    fourth, run = night(store, lock_dir, source())
    assert run.calls == []
    assert fourth.exit_status == 0


def test_a_dependency_release_that_breaks_known_good_combinations_is_reported(
    store: Store, tmp_path: Path
) -> None:
    lock_dir = tmp_path / "lock" / SCOPE
    night(store, lock_dir, source(("tzdata", "2026.6")))
    locked = commit_lock(store, lock_dir)

    outcome, run = night(store, lock_dir, source(), fail={"tzdata": "2026.6"})
    (combos,) = run.calls
    assert combos[0].id == locked.id  # the control still passes: the new release is to blame
    assert outcome.regressions
    assert all(r.changes and r.changes[-1].name == "tzdata" for r in outcome.regressions)
    assert not any(r.control for r in outcome.regressions)
    assert outcome.failed == len(outcome.regressions)
    assert outcome.exit_status == RegressionFound.exit_code
    assert not outcome.lock_changed  # the committed lock still is the best known-good
    with pytest.raises(RegressionFound, match=re.escape("tzdata 2026.5 -> 2026.6")):
        NightlyOutcome(bases=(outcome,)).raise_for_status()


def test_a_best_that_holds_a_known_incompatibility_does_not_move_the_lock(
    store: Store, tmp_path: Path
) -> None:
    lock_dir = tmp_path / "lock" / SCOPE
    night(store, lock_dir, source(("pandas", "3.1.1")))
    locked = commit_lock(store, lock_dir)
    # bisection blamed pandas 3.1.1 on this base; tonight its combinations pass anyway
    store.record_incompatibility(
        base=SCOPE,
        image_id=None,
        packages={PANDAS: "3.1.1"},
        verdict=Verdict.IMPORT_ERROR,
        explanation="found by bisection",
    )
    outcome, run = night(store, lock_dir, source())
    (combos,) = run.calls
    assert any(c.version_of("pandas") == Version("3.1.1") for c in combos)
    assert not outcome.lock_changed  # lock would pick the committed combination again
    assert locked.version_of("pandas") == Version("3.1.0")


def test_only_a_first_night_says_it_establishes_the_baselines(store: Store, tmp_path: Path) -> None:
    told: list[int] = []
    first = night_with(
        store, tmp_path / "lock", source(), FakeRun(store, source().target), told.append
    )
    assert told == [len(first.ran)]  # before it ran, how many combinations
    night_with(store, tmp_path / "lock", source(), FakeRun(store, source().target), told.append)
    assert told == [len(first.ran)]  # nothing new: nothing said
    said = first_night_notice("bookworm", 14, Depth.DEEP, 2)
    assert said.startswith("first night on bookworm: no version was seen here before")
    assert "14 combinations at depth deep, about 28 min" in said


def test_an_interrupted_night_is_done_again(store: Store, tmp_path: Path) -> None:
    def interrupted(combos: list[Combo]) -> list[ComboResult]:
        raise KeyboardInterrupt

    src = source()
    with pytest.raises(KeyboardInterrupt):
        night_with(store, tmp_path / "lock", src, interrupted)
    assert store.seen_versions(SCOPE) == {}  # nothing marked seen: the next night reruns it
    outcome, _ = night(store, tmp_path / "lock", src)
    assert len(outcome.ran) == len(plan_of(src).combos)


@pytest.mark.parametrize("deep", [False, True])
def test_the_host_never_moves_a_lock(store: Store, tmp_path: Path, deep: bool) -> None:
    # the local backend's results pass, but compat lock refuses them: no lock to move
    host = make_target("host", "host (box)", None)
    src = source()

    def run(combos: list[Combo]) -> list[ComboResult]:
        with store.run(host, backend="local") as run_id:
            for combo in combos:
                store.record(run_id, host, result(combo))
        return [result(c) for c in combos]

    outcome = nightly_base(
        scope="host",
        source=src,
        matrix=MATRIX,
        plan=lambda: plan_of(src),
        store=store,
        lock_dir=tmp_path / "lock" / "host",
        run=run,
        verify=(lambda _target, passed: passed) if deep else None,
    )
    assert outcome.ran
    assert not outcome.lock_changed
    assert outcome.lock_combo is None


def test_a_night_says_how_many_check_runs_the_new_versions_cost(
    store: Store, tmp_path: Path
) -> None:
    src = source()
    checks = (
        CheckResult(
            name="import:pandas", kind=CheckKind.IMPORT, verdict=CheckVerdict.PASS, duration=1.0
        ),
        CheckResult(
            name="pandas+numpy:a",
            verdict=CheckVerdict.PASS,
            duration=1.0,
            inputs=(("pandas", "3.1.1"),),
        ),
        CheckResult(name="numpy:b", verdict=CheckVerdict.PASS, duration=0.0, reused_from="0" * 32),
        CheckResult(name="lightgbm:c", verdict=CheckVerdict.SKIPPED, duration=0.0),
    )

    def run(combos: list[Combo]) -> list[ComboResult]:
        return [dataclasses.replace(result(c), checks=checks) for c in combos]

    outcome = night_with(store, tmp_path / "lock", src, run)
    combos = len(outcome.ran)
    assert (outcome.check_runs, outcome.reused_checks) == (2 * combos, combos)
    assert f"{2 * combos} check runs, {combos} checks reused" in outcome.lines()[1]
    assert outcome.to_json()["check_runs"] == 2 * combos


def test_a_deep_failure_outranks_a_later_smoke_pass_in_results_report_and_nightly(
    store: Store, tmp_path: Path
) -> None:
    lock_dir = tmp_path / "lock" / SCOPE
    night(store, lock_dir, source(("pandas", "3.1.1")))  # everything passes
    # a deep scan with the new pandas finds a regression in pandas' own tests...
    combo = next(c for c in plan_of(source()).combos if c.version_of("pandas") == Version("3.1.1"))
    run_id = store.start_run(target(), backend="fake", matrix_name="ml", strategy="pairwise")
    deep_id = store.record(run_id, target(), deep_failed(target(), combo))
    store.finish_run(run_id)
    # ...then the night sees pandas 3.1.1 and runs it at depth smoke, where it passes
    outcome, _ = night(store, lock_dir, source())
    (failure,) = [r for r in store.results(combination=combo.id) if r.id == deep_id]
    shown = f"smoke: pass (deep: runtime-error on {failure.created:%Y-%m-%d})"

    assert combo.id in outcome.ran
    assert outcome.failed == 1
    assert outcome.outranked == (f"{combo.label()}: {shown}",)
    assert f"  still failing: {combo.label()}: {shown}" in outcome.lines()
    assert combo.id not in {g.combo.id for g in store.known_good(SCOPE)}
    earlier = Row.of_stored(store.latest_results([combo.id], None)[combo.id])  # a scan's summary
    assert (earlier.verdict, earlier.verdict_text) == (Verdict.RUNTIME_ERROR, shown)

    url = sqlite_url(tmp_path / "results.db")  # the store's
    done = CliRunner().invoke(cli, ["--db", url, "results", "--limit", "1000"])
    assert done.exit_code == 0, done.output
    listed = [line.split("\t") for line in done.output.splitlines()]
    assert [(f[3], f[5]) for f in listed if f[4] == shown] == [(combo.label(), "smoke")]
    assert not any(f[4].startswith("smoke: pass (") and f[3] != combo.label() for f in listed)

    (base,) = build(collect(store)).bases
    row = next(c for c in base.combinations if c.combo_id == combo.id)
    assert row.verdict_text == shown
    assert row.standing.result_id == str(deep_id)
    assert combo.id in {c.combo_id for c in base.failures}
    assert shown in render_report(collect(store))


def test_a_deep_night_counts_the_candidates_it_confirms_before_the_lock_moves(
    store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    src = source(("pandas", "3.1.1"))
    reporter = RecordingReporter()
    heard: list[Reporter | None] = []

    def pick(*args: object, reporter: Reporter | None = None, **kwargs: object) -> object:
        heard.append(reporter)  # where lock's confirmation says each candidate it runs
        raise NothingKnownGood("none confirmed")

    monkeypatch.setattr("compat.workflows.nightly.pick_known_good", pick)
    outcome = nightly_base(
        scope=SCOPE,
        source=src,
        matrix=MATRIX,
        plan=lambda: plan_of(src),
        store=store,
        lock_dir=tmp_path / "lock" / SCOPE,
        run=FakeRun(store, src.target),
        verify=lambda _target, passed: passed,
        reporter=reporter,
    )
    assert heard == [reporter]
    assert outcome.lock_combo is None
