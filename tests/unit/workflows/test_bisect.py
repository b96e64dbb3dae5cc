"""Bisection over the recorded index with a scripted pipeline whose verdicts follow a rule:
pandas 2.1.1 breaks on numpy 2 (the real ABI break), everything else passes."""

from __future__ import annotations

import dataclasses
import itertools
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.utils import NormalizedName, canonicalize_name
from packaging.version import Version

from compat.effects.container import ENGINE_GONE
from compat.errors import EngineUnavailable, NothingKnownGood, UsageError
from compat.index.snapshot import SnapshotIndex
from compat.model import Combo, ComboResult, Verdict
from compat.report import BaseReport, findings_of
from compat.resolve.bisection import (
    ddmin,
    ddmin_probes,
    differences,
    failing_edge,
    failing_range,
    same_failure,
)
from compat.resolve.candidates import CandidateSource, Dependency
from compat.resolve.planner import Plan, mark_known
from compat.resolve.resolver import Preferences, Resolver
from compat.store import Store, sqlite_url
from compat.targets.profiles import target_from_profile
from compat.targets.target import Target
from compat.workflows.bisect import BisectResult, bisect
from compat.workflows.lock import pick_known_good
from tests.helpers.pipeline import ScriptedPipeline, session_of
from tests.helpers.reporter import RecordingReporter

DATA = Path(__file__).parents[2] / "data"
INDEX = SnapshotIndex(DATA / "index")
TARGET = dataclasses.replace(
    target_from_profile("debian-slim", python="3.11"), image_id="sha256:" + "ab" * 32
)
REQUESTED = tuple(
    canonicalize_name(n) for n in ("numpy", "scipy", "pandas", "matplotlib", "scikit-learn")
)
ABI_ERROR = "ValueError: numpy.dtype size changed, may indicate binary incompatibility"


def breaks(combo: Combo) -> bool:
    versions: dict[str, Version] = {p.name: p.version for p in combo.pins}
    return versions.get("pandas") == Version("2.1.1") and versions["numpy"] >= Version("2")


def by_rule(rule: Callable[[Combo], bool] = breaks) -> ScriptedPipeline:
    """A pipeline whose verdicts follow ``rule``; it remembers what it ran."""
    return ScriptedPipeline(lambda target, combo: result_of(combo, failing=rule(combo)))


def result_of(combo: Combo, *, failing: bool) -> ComboResult:
    if not failing:
        return ComboResult(combo=combo, verdict=Verdict.PASS, image_id=TARGET.image_id)
    return ComboResult(
        combo=combo,
        verdict=Verdict.IMPORT_ERROR,
        failed_check="import:pandas",
        error=f"{ABI_ERROR}\nExpected 96 from C header, got 88 from PyObject",
        image_id=TARGET.image_id,
        backend="fake",
    )


def pinned(versions: dict[str, str]) -> Combo:
    """A full pin set with exactly these versions forced (dependencies resolved)."""
    forced = {canonicalize_name(n): Version(v) for n, v in versions.items()}
    requests = [
        Dependency(name=n, extras=frozenset(), specifier=SpecifierSet(f"=={v}"))
        for n, v in forced.items()
    ]
    order = [n for n in REQUESTED if n in forced]
    outcome = Resolver(CandidateSource(INDEX, TARGET)).resolve(
        requests, order=order, prefs=Preferences(forced=forced)
    )
    assert isinstance(outcome, Combo), outcome
    return outcome


GOOD = {
    "numpy": "1.26.4",
    "scipy": "1.13.1",
    "pandas": "2.2.2",
    "matplotlib": "3.8.4",
    "scikit-learn": "1.5.1",
}
# five packages change; only numpy 2 meeting the old pandas 2.1.1 breaks
FAILING = {
    "numpy": "2.0.2",
    "scipy": "1.14.1",
    "pandas": "2.1.1",
    "matplotlib": "3.9.2",
    "scikit-learn": "1.5.2",
}


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    with Store.open(sqlite_url(tmp_path / "results.db")) as opened:
        yield opened


def record(store: Store, *combos_and_verdicts: tuple[Combo, bool]) -> list[int]:
    run_id = store.start_run(TARGET, backend="fake")
    ids = [store.record(run_id, TARGET, result_of(c, failing=f)) for c, f in combos_and_verdicts]
    store.finish_run(run_id)
    return ids


def ends() -> tuple[Combo, Combo]:
    good = pinned(GOOD)
    # every other pin as in the good combination: the five requested packages differ
    failing = pinned({**{p.name: str(p.version) for p in good.pins}, **FAILING})
    return good, failing


def test_finds_exactly_numpy_and_pandas_among_five_changes_in_few_runs(store: Store) -> None:
    good, failing = ends()
    assert {c.name for c in differences(good, failing)} == set(FAILING)
    good_id, failing_id = record(store, (good, False), (failing, True))
    backend = by_rule()
    said = RecordingReporter()

    found = bisect(session_of(store, backend, INDEX, reporter=said), failing_id, good_id, widen=0)

    assert {c.name for c in found.culprits} == {"numpy", "pandas"}
    assert found.packages == {"numpy": "2.0.2", "pandas": "2.1.1"}
    assert found.label() == "numpy 2.0.2 x pandas 2.1.1"
    assert found.context == {}  # pandas depends on numpy: the pair explains itself
    assert found.verdict is Verdict.IMPORT_ERROR
    assert found.explanation == ABI_ERROR
    # trying every subset of five changes would take 2**5 - 2 = 30 runs
    assert found.runs == len(backend.ran)
    assert 0 < found.runs < 2**5 - 2
    assert found.runs <= 10
    assert found.good_result_id == good_id
    assert found.failing_result_id == failing_id
    # every probe that ran is in the store, in a run of its own
    assert len(found.evidence) >= found.runs
    for rid in found.evidence:
        stored = store.get(rid)
        assert stored is not None
        assert stored.result.verdict is (
            Verdict.IMPORT_ERROR if breaks(stored.result.combo) else Verdict.PASS
        )
    # the incompatibility is recorded for the base
    (known,) = store.incompatibilities(TARGET.name)
    assert known.id == found.incompatibility_id
    assert known.packages == {"numpy": "2.0.2", "pandas": "2.1.1"}
    assert known.verdict is Verdict.IMPORT_ERROR
    assert known.explanation == ABI_ERROR
    assert set(known.evidence) == set(found.evidence)
    assert any("bisecting 5 changed packages" in line for line in said.lines)
    text = "\n".join(found.lines())
    assert "numpy 1.26.4 -> 2.0.2" in text
    assert "pandas 2.2.2 -> 2.1.1" in text


def test_probes_mix_exact_versions_whatever_metadata_says(store: Store) -> None:
    good, failing = ends()
    good_id, failing_id = record(store, (good, False), (failing, True))
    backend = by_rule()
    bisect(session_of(store, backend, INDEX), failing_id, good_id, widen=0)
    for combo in backend.ran:
        versions: dict[str, str] = {p.name: str(p.version) for p in combo.pins}
        for name in FAILING:  # each requested package at its good or its failing version
            assert versions[name] in (GOOD[name], FAILING[name])
        assert combo.id not in (good.id, failing.id)  # the two ends are never rerun
    assert len({c.id for c in backend.ran}) == len(backend.ran)  # no probe twice


def test_probes_run_with_what_the_image_needs_and_the_good_run_had(store: Store) -> None:
    good, failing = ends()
    run_id = store.start_run(TARGET, backend="fake")
    good_id = store.record(
        run_id,
        TARGET,
        dataclasses.replace(result_of(good, failing=False), added_system_deps=("libgomp1",)),
    )
    failing_id = store.record(run_id, TARGET, result_of(failing, failing=True))
    other = pinned({"numpy": "1.26.4", "pandas": "2.2.2"})  # teaches the image zlib1g
    store.record(
        run_id,
        TARGET,
        dataclasses.replace(result_of(other, failing=False), added_system_deps=("zlib1g",)),
    )
    store.finish_run(run_id)
    backend = by_rule()
    bisect(session_of(store, backend, INDEX), failing_id, good_id)
    assert backend.ran
    assert set(backend.system_packages) == {("libgomp1", "zlib1g")}


def test_a_second_bisection_reuses_recorded_probes(store: Store) -> None:
    good, failing = ends()
    good_id, failing_id = record(store, (good, False), (failing, True))
    first = bisect(session_of(store, by_rule(), INDEX), failing_id, good_id)
    again = by_rule()
    second = bisect(session_of(store, again, INDEX), failing_id, good_id)
    assert again.ran == []
    assert second.runs == 0
    assert second.packages == first.packages
    assert len(store.incompatibilities(TARGET.name)) == 1  # stored once


def test_single_change_names_the_unchanged_partner(store: Store) -> None:
    # numpy is the only change; alone it is no incompatibility: with pandas 2.1.1 it is
    good = pinned({"numpy": "1.26.4", "pandas": "2.1.1"})
    failing = pinned({**{p.name: str(p.version) for p in good.pins}, "numpy": "2.0.2"})
    good_id, failing_id = record(store, (good, False), (failing, True))
    backend = by_rule()
    found = bisect(
        session_of(store, backend, INDEX), failing.id, good.id, widen=0
    )  # combination ids work too
    assert [c.name for c in found.culprits] == ["numpy"]
    assert found.runs == 0  # one change: the two ends already say it all
    assert found.context == {"pandas": "2.1.1"}
    assert found.packages == {"numpy": "2.0.2", "pandas": "2.1.1"}
    assert (found.good_result_id, found.failing_result_id) == (good_id, failing_id)


def test_without_good_takes_the_closest_known_good_on_the_image(store: Store) -> None:
    good, failing = ends()
    far = pinned({"numpy": "1.26.0", "pandas": "2.1.0", "scipy": "1.11.4"})
    _, good_id, failing_id = record(store, (far, False), (good, False), (failing, True))
    found = bisect(session_of(store, by_rule(), INDEX), failing_id)
    assert found.good_result_id == good_id
    assert {c.name for c in found.culprits} == {"numpy", "pandas"}


def test_refusals(store: Store) -> None:
    good, failing = ends()
    good_id, failing_id = record(store, (good, False), (failing, True))
    with pytest.raises(UsageError, match="passed"):
        bisect(session_of(store, by_rule(), INDEX), good_id)
    with pytest.raises(UsageError, match="did not pass"):
        bisect(session_of(store, by_rule(), INDEX), failing_id, failing_id)
    with pytest.raises(UsageError, match="no result 999"):
        bisect(session_of(store, by_rule(), INDEX), 999)
    with pytest.raises(UsageError, match="neither a result id"):
        bisect(session_of(store, by_rule(), INDEX), "feedfacecafe")
    # a timeout that persisted is undecided: nothing to bisect, no incompatibility made up
    run_id = store.start_run(TARGET, backend="fake")
    slow = dataclasses.replace(
        result_of(failing, failing=True), verdict=Verdict.TIMEOUT, failed_check="pandas:slow"
    )
    slow_id = store.record(run_id, TARGET, slow)
    store.finish_run(run_id)
    with pytest.raises(UsageError, match="undecided, not an incompatibility"):
        bisect(session_of(store, by_rule(), INDEX), slow_id, good_id)
    assert store.incompatibilities() == []


def test_nothing_known_good_to_compare_with(tmp_path: Path) -> None:
    with Store.open(sqlite_url(tmp_path / "r.db")) as store:
        (failing_id,) = record(store, (ends()[1], True))
        with pytest.raises(NothingKnownGood, match="--good"):
            bisect(session_of(store, by_rule(), INDEX), failing_id)


def test_different_images_are_refused(store: Store) -> None:
    good, failing = ends()
    (failing_id,) = record(store, (failing, True))
    other = dataclasses.replace(TARGET, image_id="sha256:" + "cd" * 32)
    run_id = store.start_run(other, backend="fake")
    good_id = store.record(
        run_id, other, dataclasses.replace(result_of(good, failing=False), image_id=other.image_id)
    )
    with pytest.raises(UsageError, match="different images"):
        bisect(session_of(store, by_rule(), INDEX), failing_id, good_id)


# -- ddmin on its own ------------------------------------------------------------


def names(*items: str) -> list[NormalizedName]:
    return [canonicalize_name(i) for i in items]


@pytest.mark.parametrize(
    "culprit",
    [("c",), ("a", "h"), ("b", "c", "g"), ("h",), ("a", "b", "c", "d", "e", "f", "g", "h")],
)
def test_ddmin_finds_a_minimal_cause(culprit: tuple[str, ...]) -> None:
    every = names(*"abcdefgh")
    asked: set[frozenset[NormalizedName]] = set()

    def fails(subset: frozenset[NormalizedName]) -> bool:
        asked.add(subset)
        return set(names(*culprit)) <= subset

    assert set(ddmin(every, fails)) == set(names(*culprit))
    assert len(asked) < 2 ** len(every) - 2


def test_ddmin_result_is_one_minimal_for_an_or_cause() -> None:
    # either a or b alone fails: one of them is the answer, not both
    found = ddmin(names(*"abcd"), lambda s: bool(s & set(names("a", "b"))))
    assert len(found) == 1


def test_runtime_failures_are_one_class() -> None:
    assert same_failure(Verdict.CRASH, Verdict.IMPORT_ERROR)
    assert not same_failure(Verdict.PASS, Verdict.IMPORT_ERROR)
    assert not same_failure(Verdict.INSTALL_FAILED, Verdict.IMPORT_ERROR)
    assert same_failure(Verdict.TIMEOUT, Verdict.TIMEOUT)


# -- what later commands do with it ----------------------------------------------


@pytest.fixture
def bisected(store: Store) -> BisectResult:
    good, failing = ends()
    good_id, failing_id = record(store, (good, False), (failing, True))
    return bisect(session_of(store, by_rule(), INDEX), failing_id, good_id)


def test_plan_marks_combinations_holding_a_known_incompatibility(
    store: Store, bisected: BisectResult
) -> None:
    grid = [
        pinned({"numpy": n, "pandas": p})
        for n, p in itertools.product(("1.26.4", "2.0.2", "2.1.3"), ("2.1.1", "2.2.3"))
    ]
    plan = Plan(matrix="m", target=TARGET, strategy="exhaustive", versions={}, combos=tuple(grid))
    marked = mark_known(plan, store.incompatibilities(TARGET.name))
    # numpy 2.1.3 with pandas 2.1.1 was never run: it lies inside the widened range
    expected = {c.id for c in grid if breaks(c)}
    assert set(marked) == expected
    assert len(expected) == 2
    assert set(marked.values()) == {"numpy>=2.0.0,<=2.2.2 x pandas 2.1.1"}
    assert mark_known(grid, []) == {}


def test_lock_avoids_known_incompatible_combinations(store: Store, bisected: BisectResult) -> None:
    # a newer combination that holds the incompatibility, recorded as passing (say, a
    # flaky earlier run): lock would pick it first by version; with avoid it must not
    bad = pinned({"numpy": "2.0.2", "pandas": "2.1.1", "scipy": "1.15.3"})
    record(store, (pinned({"numpy": "1.26.4", "pandas": "2.1.1"}), False), (bad, False))
    constraints = [Requirement("pandas==2.1.1")]
    _, plain = pick_known_good(store, TARGET.name, prefer="newest", constraints=constraints)
    assert plain.combo.id == bad.id
    _, avoided = pick_known_good(
        store, TARGET.name, prefer="newest", constraints=constraints, avoid=True
    )
    # the bisection's passing probes with pandas 2.1.1 are candidates too
    assert avoided.ok
    assert avoided.combo.version_of("numpy") == Version("1.26.4")
    given = store.incompatibilities()
    _, same = pick_known_good(
        store, TARGET.name, prefer="newest", constraints=constraints, avoid=given
    )
    assert same.combo.id == avoided.combo.id
    with pytest.raises(NothingKnownGood, match="hold a known incompatibility"):
        pick_known_good(
            store,
            TARGET.name,
            prefer="newest",
            constraints=[Requirement("numpy==2.0.2"), *constraints],
            avoid=True,
        )


def test_report_lists_known_incompatibilities(store: Store, bisected: BisectResult) -> None:
    findings = findings_of(store.incompatibilities(), base=TARGET.name)
    assert [f.line for f in findings] == [
        f"numpy>=2.0.0,<=2.2.2 x pandas 2.1.1 (import-error): {ABI_ERROR}"
    ]
    assert [(str(n), str(v)) for n, v in findings[0].packages] == [
        ("numpy", "2.0.2"),
        ("pandas", "2.1.1"),
    ]
    assert findings[0].ranges == (("numpy", SpecifierSet(">=2.0.0,<=2.2.2")),)
    inside = {
        canonicalize_name("numpy"): Version("2.1.3"),
        canonicalize_name("pandas"): Version("2.1.1"),
    }
    assert findings[0].held_by(inside)  # the report blames the pair across the range
    assert not findings[0].held_by({**inside, canonicalize_name("numpy"): Version("2.3.0")})
    assert findings_of(store.incompatibilities(), base="alpine") == ()
    report = BaseReport.from_results(TARGET, [], findings=findings)
    assert report.findings == findings


def test_a_probe_that_drops_a_package_says_so(store: Store) -> None:
    # the failing combination does not install matplotlib (nor what only it needs)
    good = pinned(GOOD)
    failing = pinned({n: v for n, v in FAILING.items() if n != "matplotlib"})
    dropped = {c.name for c in differences(good, failing) if c.new is None}
    assert "matplotlib" in dropped
    good_id, failing_id = record(store, (good, False), (failing, True))
    said = RecordingReporter()
    bisect(session_of(store, by_rule(), INDEX, reporter=said), failing_id, good_id)
    probes = [line for line in said.lines if line.startswith("probe ")]
    assert probes
    assert not any("None" in line for line in probes), probes
    assert any(f"without {name}" in line for line in probes for name in dropped), probes


def test_the_engine_going_away_keeps_the_probes_for_the_next_bisection(store: Store) -> None:
    good, failing = ends()
    good_id, failing_id = record(store, (good, False), (failing, True))

    def gone_after_two(target: Target, combo: Combo) -> ComboResult:
        if len(cut.ran) == 2:
            raise EngineUnavailable(ENGINE_GONE)
        return result_of(combo, failing=breaks(combo))

    cut = ScriptedPipeline(gone_after_two)
    with pytest.raises(EngineUnavailable) as raised:
        bisect(session_of(store, cut, INDEX), failing_id, good_id)
    first, kept = str(raised.value).splitlines()
    assert first == ENGINE_GONE
    assert kept.startswith(f"the 2 probes that finished are kept in {store.url} (run ")
    again = by_rule()
    found = bisect(session_of(store, again, INDEX), failing_id, good_id)
    assert {c.name for c in found.culprits} == {"numpy", "pandas"}
    assert not {c.id for c in cut.ran} & {c.id for c in again.ran}  # kept, not rerun


def test_lock_avoids_the_whole_range_not_only_the_pair(
    store: Store, bisected: BisectResult
) -> None:
    # recorded as passing (flaky, or from before the bisection); numpy 2.1.3 was
    # never probed: it lies inside the range, numpy 2.3.0 above it
    inside = pinned({"numpy": "2.1.3", "pandas": "2.1.1"})
    above = pinned({"numpy": "2.3.0", "pandas": "2.1.1"})
    constraints = [Requirement("pandas==2.1.1")]
    record(store, (inside, False))
    _, chosen = pick_known_good(
        store, TARGET.name, prefer="newest", constraints=constraints, avoid=True
    )
    assert chosen.combo.version_of("numpy") == Version("1.26.4")
    record(store, (above, False))
    _, chosen = pick_known_good(
        store, TARGET.name, prefer="newest", constraints=constraints, avoid=True
    )
    assert chosen.combo.id == above.id


# -- widening the pair to ranges -------------------------------------------------


def below(numpy: str) -> Callable[[Combo], bool]:
    """pandas 2.1.1 breaks on numpy 2 up to (not including) ``numpy``."""

    def rule(combo: Combo) -> bool:
        return breaks(combo) and combo.version_of("numpy") < Version(numpy)

    return rule


@pytest.mark.parametrize(
    ("rule", "widen", "numpy"),
    [
        # every release tried around 2.0.2 up to 2.1.0 fails, 2.1.1 passes: an exact edge
        (below("2.1.1"), 3, ">=2.0.0,<2.1.1"),
        # the failure reaches past what three probes up can see: only what was seen
        (breaks, 3, ">=2.0.0,<=2.2.2"),
        # to the newest release for Python 3.11 (numpy 2.5 needs 3.12): never open-ended
        (breaks, 5, ">=2.0.0,<=2.4.6"),
        # 2.0.2 alone: both neighbours pass
        (lambda c: breaks(c) and str(c.version_of("numpy")) == "2.0.2", 3, None),
    ],
)
def test_widens_the_pair_to_the_neighbours_that_fail_the_same_way(
    store: Store, rule: Callable[[Combo], bool], widen: int, numpy: str | None
) -> None:
    good, failing = ends()
    good_id, failing_id = record(store, (good, False), (failing, True))
    backend = by_rule(rule)
    said = RecordingReporter()
    found = bisect(
        session_of(store, backend, INDEX, reporter=said), failing_id, good_id, widen=widen
    )
    assert found.packages == {"numpy": "2.0.2", "pandas": "2.1.1"}  # the pair as found
    # pandas 2.1.0 and 2.1.2 pass with numpy 2.0.2: pandas stays one version
    expected = {} if numpy is None else {"numpy": SpecifierSet(numpy)}
    assert found.ranges == expected
    (known,) = store.incompatibilities(TARGET.name)
    assert known.ranges == expected
    assert known.label() == found.label()
    # each side moved alone: every other pin as in the smallest failing mix
    (mix,) = [p for p in found.probes if p.failed and set(p.switched) == {"numpy", "pandas"}]
    failing_mix = stored_versions(store, mix.result_id)
    assert found.neighbours
    for tried in found.neighbours:
        moved = stored_versions(store, tried.result_id)
        assert {n for n in failing_mix if moved.get(n) != failing_mix[n]} == {tried.name}
        assert tried.failed == rule(pinned(moved))
    sides = Counter((n.name, n.version > Version(found.packages[n.name])) for n in found.neighbours)
    assert max(sides.values()) <= widen
    assert found.runs == len(backend.ran)
    assert set(found.evidence) >= {n.result_id for n in found.neighbours if n.result_id}
    assert any(line.startswith("neighbour numpy ") for line in said.lines)
    assert "widened from numpy 2.0.2 x pandas 2.1.1 by" in "\n".join(found.lines())


def stored_versions(store: Store, result_id: int | None) -> dict[str, str]:
    assert result_id is not None
    stored = store.get(result_id)
    assert stored is not None
    return {p.name: str(p.version) for p in stored.result.combo.pins}


def test_no_widening_records_the_pair_alone(store: Store) -> None:
    good, failing = ends()
    good_id, failing_id = record(store, (good, False), (failing, True))
    found = bisect(session_of(store, by_rule(), INDEX), failing_id, good_id, widen=0)
    assert (found.ranges, found.neighbours) == ({}, ())
    (known,) = store.incompatibilities(TARGET.name)
    assert known.label() == "numpy 2.0.2 x pandas 2.1.1"


@pytest.mark.parametrize("reach", [0, 1, 2, 5, 9, 12])
@pytest.mark.parametrize("budget", [1, 3, 4, 10])
def test_failing_edge_never_claims_a_release_that_passes(reach: int, budget: int) -> None:
    """Releases 1..``reach`` fail, the rest of 12 pass."""
    asked: list[int] = []

    def fails(offset: int) -> bool:
        asked.append(offset)
        return offset <= reach

    edge, exact = failing_edge(12, fails, budget)
    assert len(asked) <= budget
    assert edge <= reach  # contiguity taken for granted, never beyond what failed
    assert edge in (0, *[a for a in asked if a <= reach])
    assert exact == (edge == reach < 12 and reach + 1 in asked)
    if budget >= 10:  # enough probes: the exact edge
        assert (edge, exact) == (reach, reach < 12)


def test_failing_range_words_what_is_known() -> None:
    releases = [Version(v) for v in ("1.0", "1.1", "2.0", "2.1", "2.2")]
    assert failing_range(releases, 2, 0, (0, True)) is None
    assert failing_range(releases, 2, 0, (1, True)) == SpecifierSet(">=2.0,<2.2")
    assert failing_range(releases, 2, 1, (0, False)) == SpecifierSet(">=1.1,<=2.0")
    assert failing_range(releases, 2, 2, (2, False)) == SpecifierSet(">=1.0,<=2.2")


def test_each_probe_that_runs_is_a_numbered_step_of_about_so_many(store: Store) -> None:
    good, failing = ends()
    good_id, failing_id = record(store, (good, False), (failing, True))
    said = RecordingReporter()
    found = bisect(session_of(store, by_rule(), INDEX, reporter=said), failing_id, good_id)
    assert [number for _, number, _ in said.steps] == list(range(1, found.runs + 1))
    probes = [(n, t) for what, n, t in said.steps if what.startswith("probe ")]
    neighbours = [(n, t) for what, n, t in said.steps if what.startswith("neighbour ")]
    assert len(probes) + len(neighbours) == found.runs
    assert probes[0][1] == ddmin_probes(5) + 2 * 2 * 3  # ddmin's usual count, then widening
    assert all(n <= t for n, t in neighbours)  # the widening's bound is one it keeps
    again = RecordingReporter()
    bisect(session_of(store, by_rule(), INDEX, reporter=again), failing_id, good_id)
    assert again.steps == []  # everything reused: nothing ran, no step


def _subsets_asked(every: list[NormalizedName], pair: tuple[NormalizedName, ...]) -> int:
    subsets: set[frozenset[NormalizedName]] = set()

    def fails(subset: frozenset[NormalizedName]) -> bool:
        subsets.add(subset)
        return set(pair) <= subset

    ddmin(every, fails)
    return len(subsets - {frozenset(every)})


@pytest.mark.parametrize("count", range(2, 17))
def test_ddmin_probes_is_about_what_ddmin_asks_for_a_pair(count: int) -> None:
    every = names(*(f"p{i}" for i in range(count)))
    asked = [_subsets_asked(every, pair) for pair in itertools.combinations(every, 2)]
    assert abs(ddmin_probes(count) - sum(asked) / len(asked)) <= 1
