"""Where the deep tier is used beyond check: a scan's "already tested" skip,
bisection at depth deep, lock and nightly confirming their known-good pick. A
fake backend passes every smoke suite and replays deep-runner events in which
pandas' legend test breaks from matplotlib 3.9 on; real planner, resolver
(recorded index) and SQLite results database."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from pathlib import Path
from typing import NoReturn

import pytest
from packaging.specifiers import SpecifierSet
from packaging.utils import canonicalize_name
from packaging.version import Version

from compat.config import RunConfig
from compat.deep import step as deep_step
from compat.deep.running import DeepJob, DeepOutcome
from compat.errors import NothingKnownGood
from compat.index.snapshot import SnapshotIndex
from compat.matrix import load_matrix
from compat.model import (
    CheckKind,
    CheckResult,
    CheckVerdict,
    Combo,
    ComboResult,
    Depth,
    Verdict,
    depth_of,
    judged,
)
from compat.resolve.candidates import CandidateSource, Dependency
from compat.resolve.planner import Planner
from compat.resolve.resolver import Preferences, Resolver
from compat.store import Store, sqlite_url
from compat.targets.profiles import target_from_profile
from compat.workflows.bisect import bisect
from compat.workflows.lock import lock_known_good
from compat.workflows.nightly import nightly_base
from compat.workflows.scan import split_done
from compat.workflows.session import verifier
from tests.helpers.deep import (
    FRAME,
    LEGEND,
    LIBRARY_FRAMES,
    combo_of_versions,
    deep_test_event,
    run_lines,
)
from tests.helpers.pipeline import ScriptedPipeline, session_of
from tests.helpers.reporter import RecordingReporter

DATA = Path(__file__).parents[2] / "data"
INDEX = SnapshotIndex(DATA / "index")
TARGET = dataclasses.replace(
    target_from_profile("debian-slim", python="3.11"), image_id="sha256:" + "cd" * 32
)
LAYER = combo_of_versions({"pytest": "8.3.5", "hypothesis": "6.100.0"})
LEGEND_TEST = f"{FRAME}::test_legend"


def pinned(versions: dict[str, str]) -> Combo:
    """Exactly these versions forced, dependencies resolved from the recorded index."""
    forced = {canonicalize_name(n): Version(v) for n, v in versions.items()}
    requests = [
        Dependency(name=n, extras=frozenset(), specifier=SpecifierSet(f"=={v}"))
        for n, v in forced.items()
    ]
    outcome = Resolver(CandidateSource(INDEX, TARGET)).resolve(
        requests, order=list(forced), prefs=Preferences(forced=forced)
    )
    assert isinstance(outcome, Combo), outcome
    return outcome


GOOD = pinned({"pandas": "2.2.2", "matplotlib": "3.8.4", "numpy": "1.26.4"})
BAD = pinned({"pandas": "2.2.2", "matplotlib": "3.9.2", "numpy": "2.0.2"})


def breaks(c: Combo) -> bool:
    return c.version_of("matplotlib") >= Version("3.9")


def legend(job: DeepJob) -> DeepOutcome:
    """The deep runner's legend test fails (twice) where ``breaks`` says so."""
    versions = {n: str(job.combo.version_of(n)) for n in ("pandas", "matplotlib", "numpy")}
    test = (
        deep_test_event(
            "test_legend", "failed", frames=LIBRARY_FRAMES, error=LEGEND, rerun="failed"
        )
        if breaks(job.combo)
        else deep_test_event("test_legend", "passed")
    )
    return DeepOutcome(job=job, events=tuple(run_lines(versions, test)))


@pytest.fixture(autouse=True)
def _no_test_layer_resolution(monkeypatch: pytest.MonkeyPatch) -> None:
    # the recorded index holds no pytest: the test layer is given
    monkeypatch.setattr(deep_step, "test_layer_for", lambda index, target: LAYER)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    with Store.open(sqlite_url(tmp_path / "results.db")) as opened:
        yield opened


def judged_pass(c: Combo) -> ComboResult:
    summary = CheckResult(
        name="deep:pandas", kind=CheckKind.DEEP, verdict=CheckVerdict.PASS, duration=1.0
    )
    return ComboResult(
        combo=c, verdict=Verdict.PASS, checks=(summary,), image_id=TARGET.image_id, backend="fake"
    )


def smoke_pass(c: Combo) -> ComboResult:
    return ComboResult(combo=c, verdict=Verdict.PASS, image_id=TARGET.image_id, backend="fake")


def imports_pass(c: Combo) -> ComboResult:
    """What ``--depth import`` records: the import checks alone."""
    imports = tuple(
        CheckResult(
            name=f"import:{n}", kind=CheckKind.IMPORT, verdict=CheckVerdict.PASS, duration=0.1
        )
        for n in c.requested
    )
    return dataclasses.replace(smoke_pass(c), checks=imports)


def record(store: Store, *results: ComboResult) -> list[int]:
    with store.run(TARGET, backend="fake") as run_id:
        return [store.record(run_id, TARGET, r) for r in results]


def test_judged_at_depth() -> None:
    assert depth_of(imports_pass(GOOD)) is Depth.IMPORT
    assert judged(imports_pass(GOOD), Depth.IMPORT)
    assert not judged(imports_pass(GOOD), Depth.SMOKE)
    assert depth_of(smoke_pass(GOOD)) is Depth.SMOKE
    assert judged(smoke_pass(GOOD), Depth.SMOKE)
    assert not judged(smoke_pass(GOOD), Depth.DEEP)
    assert judged(judged_pass(GOOD), Depth.DEEP)
    failed = ComboResult(combo=GOOD, verdict=Verdict.IMPORT_ERROR)
    assert judged(failed, Depth.DEEP)  # the deep tier would not run on it
    unfinished = dataclasses.replace(
        smoke_pass(GOOD),
        checks=(
            CheckResult(
                name="deep", kind=CheckKind.RUNNER, verdict=CheckVerdict.SKIPPED, duration=0.0
            ),
        ),
    )
    assert not judged(unfinished, Depth.DEEP)
    assert judged(unfinished, Depth.SMOKE)


def test_a_deep_scan_reruns_what_only_passed_at_smoke_depth(store: Store) -> None:
    other = pinned({"pandas": "2.2.2", "matplotlib": "3.8.4", "numpy": "2.0.2"})
    failed = ComboResult(
        combo=BAD, verdict=Verdict.IMPORT_ERROR, image_id=TARGET.image_id, backend="fake"
    )
    record(store, smoke_pass(GOOD), judged_pass(other), failed)
    combos = [GOOD, other, BAD]

    todo, done = split_done(store, combos, TARGET, retest=False, add_system_deps=False)
    assert todo == []  # at smoke depth every result answers
    todo, done = split_done(
        store, combos, TARGET, retest=False, add_system_deps=False, depth=Depth.DEEP
    )
    assert todo == [GOOD]
    assert {r.combination_id for r in done} == {other.id, BAD.id}


def test_an_imports_only_pass_is_rerun_by_a_smoke_scan_and_is_not_known_good(
    store: Store,
) -> None:
    """``scan --depth import`` then ``scan``: the smoke suite has never run on the
    combination, so the scan runs it and lock has nothing known good to pick."""
    (imported,) = record(store, imports_pass(GOOD))
    todo, done = split_done(
        store, [GOOD], TARGET, retest=False, add_system_deps=False, depth=Depth.IMPORT
    )
    assert (todo, [r.id for r in done]) == ([], [imported])
    todo, done = split_done(store, [GOOD], TARGET, retest=False, add_system_deps=False)
    assert (todo, done) == ([GOOD], [])
    assert store.known_good(TARGET) == []
    (smoked,) = record(store, smoke_pass(GOOD))
    record(store, imports_pass(GOOD))  # a later imports-only pass changes nothing
    assert [g.result_id for g in store.known_good(TARGET)] == [smoked]
    failed = dataclasses.replace(imports_pass(GOOD), verdict=Verdict.IMPORT_ERROR)
    record(store, failed)  # a failure at import depth is a failure at every depth
    assert store.known_good(TARGET) == []


def test_bisect_at_depth_deep_deepens_probes_and_finds_matplotlib(store: Store) -> None:
    swapped = pinned({"pandas": "2.2.2", "matplotlib": "3.9.2", "numpy": "1.26.4"})
    bad = ComboResult(
        combo=BAD,
        verdict=Verdict.RUNTIME_ERROR,
        failed_check=f"deep:pandas:{LEGEND_TEST}",
        error=LEGEND,
        image_id=TARGET.image_id,
        backend="fake",
    )
    # the matplotlib-only mix passed before at smoke depth: that says nothing here
    good_id, bad_id, _ = record(store, judged_pass(GOOD), bad, smoke_pass(swapped))
    fake = ScriptedPipeline(deep=legend)  # every smoke suite passes
    deep = session_of(
        store, fake, INDEX, reporter=RecordingReporter(), config=RunConfig(depth=Depth.DEEP)
    )
    found = bisect(deep, bad_id, good_id)
    assert [c.name for c in found.culprits] == ["matplotlib"]
    assert swapped in fake.ran  # run again, not reused
    assert swapped in [j.combo for j in fake.jobs]
    probe = next(p for p in found.probes if p.switched == ("matplotlib",))
    assert probe.failed
    assert probe.ran
    stored = store.get(probe.result_id or 0)
    assert stored is not None
    assert stored.result.failed_check == f"deep:pandas:{LEGEND_TEST}"
    assert "changed: matplotlib 3.8.4 -> 3.9.2" in (stored.result.error or "")


def test_lock_confirms_its_pick_at_depth_deep_and_falls_back(store: Store, tmp_path: Path) -> None:
    record(store, smoke_pass(GOOD), smoke_pass(BAD))
    fake = ScriptedPipeline(deep=legend)  # every smoke suite passes
    verify = verifier(lambda: session_of(store, fake, INDEX, reporter=RecordingReporter()))
    said = RecordingReporter()
    locked, result, paths = lock_known_good(
        store, TARGET.name, tmp_path / "lock", verify=verify, reporter=said
    )
    # the newest (matplotlib 3.9.2) regressed at depth deep: the next one is locked
    assert locked.combo == GOOD
    assert said.steps == [
        (f"confirming {c.label()} at depth deep before locking it", n, 2)
        for n, c in ((1, BAD), (2, GOOD))
    ]
    assert result.verdict is Verdict.PASS
    assert paths
    assert [j.combo for j in fake.jobs if not j.dependents] == [BAD, GOOD]
    latest = store.latest_results([BAD.id], TARGET.image_id or "")[BAD.id]
    assert latest.verdict is Verdict.RUNTIME_ERROR  # recorded: no longer known-good

    # a second lock pays for nothing, not even an engine: GOOD's deep verdict is stored
    def no_engine() -> NoReturn:
        raise AssertionError("a pick the deep tier judged before needs no engine")

    verify = verifier(no_engine)
    again = RecordingReporter()
    locked, _, _ = lock_known_good(
        store, TARGET.name, tmp_path / "lock", verify=verify, reporter=again
    )
    assert locked.combo == GOOD
    assert again.steps == []  # nothing left to confirm: no step


def test_lock_fails_clearly_when_every_candidate_regresses(store: Store, tmp_path: Path) -> None:
    record(store, smoke_pass(BAD))
    verify = verifier(
        lambda: session_of(
            store, ScriptedPipeline(deep=legend), INDEX, reporter=RecordingReporter()
        )
    )
    with pytest.raises(NothingKnownGood, match="depth deep") as raised:
        lock_known_good(store, TARGET.name, tmp_path / "lock", verify=verify)
    assert "matplotlib" in str(raised.value)
    assert not (tmp_path / "lock").exists()


def test_a_nights_lock_candidate_is_confirmed_at_depth_deep(store: Store, tmp_path: Path) -> None:
    path = tmp_path / "m.toml"
    path.write_text(
        'strategy = "minor"\n[packages]\npandas = "==2.2.2"\n'
        'matplotlib = ">=3.8.4,<3.10"\nnumpy = "==1.26.4"\n'
    )
    matrix = load_matrix(path)
    source = CandidateSource(INDEX, TARGET, matrix.build)

    def smoke_night(combos: list[Combo]) -> list[ComboResult]:
        results = [smoke_pass(c) for c in combos]
        record(store, *results)
        return results

    fake = ScriptedPipeline(deep=legend)  # every smoke suite passes
    outcome = nightly_base(
        scope=TARGET.name,
        source=source,
        matrix=matrix,
        plan=lambda: Planner(source, matrix).plan(TARGET),
        store=store,
        lock_dir=tmp_path / "lock",
        run=smoke_night,
        verify=verifier(lambda: session_of(store, fake, INDEX)),
    )
    ran = {c.id: c for j in fake.jobs for c in [j.combo]}
    assert outcome.lock_changed
    assert outcome.lock_combo is not None
    # the newest (matplotlib 3.9) regressed at depth deep: the lock moves to 3.8
    assert ran[outcome.lock_combo].version_of("matplotlib") == Version("3.8.4")
    newest = max(ran.values(), key=lambda c: c.version_of("matplotlib"))
    assert breaks(newest)
    latest = store.latest_results([newest.id], TARGET.image_id or "")[newest.id]
    assert latest.verdict is Verdict.RUNTIME_ERROR


def test_a_session_deepens_what_passed_once_every_combination_ran(store: Store) -> None:
    order: list[str] = []

    def smoke(target: object, c: Combo) -> ComboResult:
        order.append(f"ran {c.id}")
        if c == BAD:
            return smoke_pass(c)
        return ComboResult(combo=c, verdict=Verdict.IMPORT_ERROR, image_id=TARGET.image_id)

    def deep(job: DeepJob) -> DeepOutcome:
        order.append(f"deep {job.combo.id}")
        return legend(job)

    fake = ScriptedPipeline(smoke, deep)
    session = session_of(store, fake, INDEX, config=RunConfig(depth=Depth.DEEP), target=TARGET)
    with session.recording() as run_id:
        ran = session.run([BAD, GOOD], run_id)
    # the deep tier after every smoke run, on what passed only
    assert order[:3] == [f"ran {BAD.id}", f"ran {GOOD.id}", f"deep {BAD.id}"]
    assert [r.verdict for r in ran.results] == [Verdict.RUNTIME_ERROR, Verdict.IMPORT_ERROR]
    # each recorded once, the deepened one as deepened
    assert sorted(ran.ids) == sorted([BAD.id, GOOD.id])
    stored = store.get(ran.ids[BAD.id])
    assert stored is not None
    assert depth_of(stored.result) is Depth.DEEP
    assert len(store.results(limit=None)) == 2
