"""Bisect a failure: which package changes, between a passing and a failing
combination on the same image, explain it.

Delta debugging (Zeller's ddmin) over the packages whose versions differ: each
probe is the good combination with a subset of packages switched to their
failing versions, every version forced (metadata may forbid the mix: that is the
question), run on the same image and recorded. The smallest failing subset is
stored as a known incompatibility, so later plans can mark it and locks avoid it.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace

from packaging.specifiers import SpecifierSet
from packaging.utils import NormalizedName, canonicalize_name
from packaging.version import Version

from compat.errors import EngineUnavailable, NothingKnownGood, UsageError
from compat.lock.select import rank_known_good
from compat.matrix import BuildPolicy
from compat.model import Combo, ComboResult, PinChange, Verdict, judged, range_label
from compat.resolve.bisection import (
    ddmin,
    ddmin_probes,
    differences,
    failing_edge,
    failing_range,
    same_failure,
)
from compat.resolve.candidates import CandidateSource, Dependency
from compat.resolve.resolver import Conflict, Preferences, Resolver
from compat.store import Reader, StoredResult
from compat.targets.target import Target
from compat.workflows.session import Session


@dataclass(frozen=True, kw_only=True, slots=True)
class Probe:
    """One tried mix: the good pins with ``switched`` packages at failing versions."""

    switched: tuple[NormalizedName, ...]
    verdict: Verdict
    failed: bool  # reproduces the failure
    result_id: int | None = None  # None when nothing ran (known, or not installable)
    error: str | None = None
    ran: bool = False


@dataclass(frozen=True, kw_only=True, slots=True)
class Neighbour:
    """A release next to one side of the failing pair, tried with the other side."""

    name: NormalizedName
    version: Version
    verdict: Verdict
    failed: bool  # reproduces the failure
    result_id: int | None = None  # None when nothing ran (not installable)
    ran: bool = False


@dataclass(frozen=True, kw_only=True, slots=True)
class BisectResult:
    base: str
    image_id: str | None
    good_result_id: int
    failing_result_id: int
    changes: tuple[PinChange, ...]  # every differing package
    culprits: tuple[PinChange, ...]  # the minimal failing subset
    context: dict[str, str]  # unchanged good versions present that the culprits touch
    verdict: Verdict
    explanation: str
    probes: tuple[Probe, ...]
    runs: int
    duration: float
    incompatibility_id: int | None = None
    evidence: tuple[int, ...] = field(default=())
    # the releases around each side that fail with the other side (none: only the pair)
    ranges: dict[str, SpecifierSet] = field(default_factory=dict)
    neighbours: tuple[Neighbour, ...] = ()

    @property
    def packages(self) -> dict[str, str]:
        """What fails together: the culprits at their failing versions, and the
        unchanged versions they meet (stored as the incompatibility)."""
        found: dict[str, str] = dict(self.context)
        found.update({c.name: str(c.new) for c in self.culprits if c.new is not None})
        return dict(sorted(found.items()))

    def label(self) -> str:
        return range_label(self.packages, self.ranges)

    def lines(self) -> list[str]:
        """The result as a human reads it, one line each."""
        changed = ", ".join(str(c) for c in self.culprits) or "(none)"
        lines = [
            f"known incompatible on {self.base}: {self.label()} ({self.verdict.value})",
            f"  changed: {changed}",
        ]
        if self.context:
            same = ", ".join(f"{n} {v}" for n, v in self.context.items())
            lines.append(f"  with unchanged: {same}")
        if self.neighbours:
            pair = " x ".join(f"{n} {v}" for n, v in self.packages.items())
            lines.append(
                f"  widened from {pair} by {len(self.neighbours)} neighbouring releases: "
                + _tried(self.neighbours)
            )
        lines += [
            f"  explanation: {self.explanation}",
            f"  {len(self.changes)} packages differed; {self.runs} runs "
            f"(of {len(self.probes) + len(self.neighbours)} probes) in {self.duration:.1f} s; "
            f"evidence: results {', '.join(map(str, self.evidence)) or '-'}",
        ]
        return lines


def _tried(neighbours: Sequence[Neighbour]) -> str:
    """``numpy 1.26.4 passes, 2.1.0 fails; pandas 2.2.0 passes``."""
    by_name: dict[str, list[str]] = {}
    for n in sorted(neighbours, key=lambda n: (n.name, n.version)):
        state = "fails" if n.failed else "passes" if n.verdict.ok else n.verdict.value
        by_name.setdefault(n.name, []).append(f"{n.version} {state}")
    return "; ".join(f"{name} {', '.join(tried)}" for name, tried in by_name.items())


# -- finding the two ends ----------------------------------------------------------


def find_result(store: Reader, ref: int | str, *, image_id: str | None = None) -> StoredResult:
    """A result by id, or the latest result of a combination id (on ``image_id``)."""
    text = str(ref).strip()
    if text.isdigit():
        found = store.get(int(text))
        if found is None:
            raise UsageError(f"no result {text} in {store.url}: see `compat results`")
        return found
    for row in store.results(limit=None):  # newest first
        if row.combination_id == text and (image_id is None or row.image_id == image_id):
            stored = store.get(row.id)
            if stored is not None:
                return stored
    raise UsageError(
        f"{text!r} is neither a result id nor a combination tested"
        f"{' on ' + image_id if image_id else ''} in {store.url}: see `compat results`"
    )


def closest_known_good(store: Reader, failing: StoredResult) -> StoredResult:
    """The known-good combination on the failing one's image with most pins equal
    (ties: the store's ranking, newest versions first)."""
    image_id = failing.result.image_id
    scope = image_id or failing.image
    wanted = failing.result.combo.versions
    good = [
        g
        for g in rank_known_good(store.known_good(scope)).ranked
        if g.combo.id != failing.result.combo.id and (image_id is None or g.image_id == image_id)
    ]
    if not good:
        raise NothingKnownGood(
            f"no known-good combination on {failing.base} ({scope}) to bisect against: "
            "give --good, or scan the base first"
        )
    best = max(
        good,
        key=lambda g: sum(wanted.get(n) == v for n, v in g.combo.versions.items()),
    )  # max keeps the first of equals: the lock's ranking
    stored = store.get(best.result_id)
    if stored is None:
        raise NothingKnownGood(f"result {best.result_id} vanished from {store.url}")
    return stored


# -- the bisection -----------------------------------------------------------------


def _switched(change: PinChange) -> str:
    """One package as a probe switches it: to the failing side's version, or out
    (the failing combination does not install it)."""
    return f"without {change.name}" if change.new is None else f"{change.name} {change.new}"


class _Bisector:
    def __init__(
        self,
        session: Session,
        source: CandidateSource,
        run_id: str,
        good: StoredResult,
        failing: StoredResult,
    ) -> None:
        self.session = session
        self.depth = session.config.depth
        self.store = session.store
        self.resolver = Resolver(source)
        self.target = session.where
        self.run_id = run_id
        self.good, self.good_id = good.result, good.id
        self.failing, self.failing_id = failing.result, failing.id
        self.changes = {c.name: c for c in differences(self.good.combo, self.failing.combo)}
        self.reporter = session.reporter
        self.probes: dict[frozenset[NormalizedName], Probe] = {}
        self.failed_results: dict[frozenset[NormalizedName], ComboResult] = {}
        self.tried: list[Neighbour] = []  # widening the pair to ranges
        self.expected = 0  # about how many runs the bisection takes, for its progress

    @property
    def runs(self) -> int:
        """The combinations run so far: probes and neighbours."""
        return sum(p.ran for p in self.probes.values()) + sum(n.ran for n in self.tried)

    def mix(self, switched: frozenset[NormalizedName]) -> Combo | Conflict:
        versions = self.good.combo.versions
        for name in switched:
            change = self.changes[name]
            if change.new is None:
                versions.pop(name, None)
            else:
                versions[name] = change.new
        return self.pinned(versions)

    def pinned(self, versions: dict[NormalizedName, Version]) -> Combo | Conflict:
        """Exactly these versions, whatever metadata says (that is the question)."""
        requests = [
            Dependency(name=n, extras=frozenset(), specifier=SpecifierSet(f"=={v}"))
            for n, v in sorted(versions.items())
        ]
        order = [n for n in self.failing.combo.requested if n in versions]
        return self.resolver.resolve(requests, order=order, prefs=Preferences(forced=versions))

    def fails(self, switched: frozenset[NormalizedName]) -> bool:
        if switched not in self.probes:
            self.probes[switched] = self._probe(switched)
        return self.probes[switched].failed

    def _probe(self, switched: frozenset[NormalizedName]) -> Probe:
        names = tuple(sorted(switched))
        mixed = self.mix(switched)
        if isinstance(mixed, Conflict):  # not even installable when forced: no answer
            why = mixed.explanation
            self.reporter.notice(f"probe {', '.join(names)}: cannot be pinned ({why})")
            return Probe(switched=names, verdict=Verdict.METADATA_CONFLICT, failed=False)
        moved = ", ".join(_switched(self.changes[n]) for n in names)
        result, rid, ran = self.attempt(mixed, f"probe {moved}")
        probe = self._probe_of(names, result, ran=ran, rid=rid)
        if ran:
            self.reporter.notice(f"probe {moved}: {self.state(probe.failed, result)}")
        return probe

    def attempt(self, mixed: Combo, what: str) -> tuple[ComboResult, int | None, bool]:
        """The result of one mix (its result id, and whether it ran now): one of the
        two ends, a result on this image as deep as the probes, or a new run (the
        next step of the bisection, shown as ``what``)."""
        for known, known_id in ((self.good, self.good_id), (self.failing, self.failing_id)):
            if mixed.id == known.combo.id:
                return known, known_id, False
        earlier = (
            self.store.latest_results([mixed.id], self.target.image_id)
            if self.target.image_id
            else {}
        )
        if mixed.id in earlier:  # tested on this image before: reuse it
            stored = self.store.get(earlier[mixed.id].id)
            # only a result tested as deep as the probes (or that failed) tells as
            # much as a new probe would
            if stored is not None and judged(stored.result, self.depth):
                return stored.result, stored.id, False
        # a probe is one combination: no progress bar for it, one step of the
        # bisection. It gets what the good run had besides what the image is known to
        # need, so that a missing library is never mistaken for the failure under study.
        self.reporter.step_started(what, self.runs + 1, self.expected)
        ran = self.session.run(
            [mixed], self.run_id, also_install=self.good.added_system_deps, quiet=True
        )
        (result,) = ran.results
        return result, ran.ids.get(mixed.id), True

    def reproduces(self, result: ComboResult) -> bool:
        return same_failure(
            result.verdict,
            self.failing.verdict,
            result.failed_check,
            self.failing.failed_check,
        )

    def neighbour(self, name: NormalizedName, version: Version, beside: Combo) -> Neighbour:
        """``beside`` (the smallest failing mix) with ``name`` at ``version``."""
        versions = beside.versions
        versions[name] = version
        mixed = self.pinned(versions)
        if isinstance(mixed, Conflict):
            self.reporter.notice(f"neighbour {name} {version}: cannot be pinned")
            return Neighbour(
                name=name, version=version, verdict=Verdict.METADATA_CONFLICT, failed=False
            )
        result, rid, ran = self.attempt(mixed, f"neighbour {name} {version}")
        failed = self.reproduces(result)
        if ran:
            self.reporter.notice(f"neighbour {name} {version}: {self.state(failed, result)}")
        return Neighbour(
            name=name,
            version=version,
            verdict=result.verdict,
            failed=failed,
            result_id=rid,
            ran=ran,
        )

    @staticmethod
    def state(failed: bool, result: ComboResult) -> str:
        return "fails" if failed else "passes" if result.ok else result.verdict.value

    def _probe_of(
        self,
        names: tuple[NormalizedName, ...],
        result: ComboResult,
        *,
        ran: bool,
        rid: int | None = None,
    ) -> Probe:
        failed = self.reproduces(result)
        if failed:
            self.failed_results[frozenset(names)] = result
        return Probe(
            switched=names,
            verdict=result.verdict,
            failed=failed,
            result_id=rid,
            error=result.error,
            ran=ran,
        )


def _ends(
    store: Reader, failing: int | str, good: int | str | None
) -> tuple[StoredResult, StoredResult, Target, tuple[PinChange, ...]]:
    """The two ends of a bisection (the closest known-good one when ``good`` is not
    given), their image's target and the packages that differ; UsageError when
    they cannot be bisected."""
    bad = find_result(store, failing)
    if bad.result.verdict.ok:
        raise UsageError(f"result {bad.id} passed: give a failing result to bisect")
    if bad.result.verdict.undecided:
        raise UsageError(
            f"result {bad.id} timed out twice: undecided, not an incompatibility to bisect; "
            "run it again with a longer --check-timeout (or on a less busy machine)"
        )
    image_id = bad.result.image_id
    fine = (
        find_result(store, good, image_id=image_id)
        if good is not None
        else closest_known_good(store, bad)
    )
    if not fine.result.verdict.ok:
        raise UsageError(f"result {fine.id} did not pass ({fine.result.verdict.value})")
    if fine.result.image_id != image_id:
        raise UsageError(
            f"results {fine.id} and {bad.id} ran on different images "
            f"({fine.result.image_id} vs {image_id}): bisect within one image"
        )
    target = store.target(image_id) if image_id else None
    if target is None:
        raise UsageError(f"result {bad.id} has no recorded target image: rerun it with compat scan")
    changes = differences(fine.result.combo, bad.result.combo)
    if not changes:
        raise UsageError(
            f"results {fine.id} and {bad.id} install the same versions: nothing to bisect"
        )
    return fine, bad, target, changes


WIDEN = 3  # probes per side of the pair and direction, widening it to ranges
PROBES_IN_THE_IMAGE = (
    "bisect runs its probes in the image the two results ran in: this machine's own "
    "Python would answer for another platform. Start the container engine and bisect "
    "again (--backend docker or auto)."
)


def bisect(
    session: Session,
    failing: int | str,
    good: int | str | None = None,
    *,
    build: BuildPolicy | None = None,
    widen: int = WIDEN,
    clock: Callable[[], float] = time.monotonic,
) -> BisectResult:
    """Find the smallest set of package changes from ``good`` to ``failing`` (result
    ids or combination ids) that reproduces the failure, widen it to the releases
    around it that fail too (at most ``widen`` probes per package and direction),
    and record it as a known incompatibility of the base. Without ``good``: the
    closest known-good combination on the same image. Each probe runs in the
    session, on the failing result's image, as deep as its configuration says."""
    started = clock()
    store, reporter = session.store, session.reporter
    fine, bad, target, changes = _ends(store, failing, good)
    if session.pipeline.kind == "local":
        raise UsageError(f"result {bad.id} ran in {target.image}: {PROBES_IN_THE_IMAGE}")
    reporter.notice(
        f"bisecting {len(changes)} changed packages between result {fine.id} (pass) "
        f"and result {bad.id} ({bad.result.verdict.value}) on {target.describe()}"
    )
    source = CandidateSource(session.index, target, build)
    here = session.on(target)
    with here.recording(strategy="bisect") as run_id:
        bisector = _Bisector(here, source, run_id, fine, bad)
        try:
            found = _search(bisector, source, changes, widen)
        except EngineUnavailable as exc:
            raise EngineUnavailable(
                f"{exc}\nthe {bisector.runs} probes that finished are kept in {store.url} "
                f"(run {run_id}): bisecting again reuses them"
            ) from exc
    found = replace(found, duration=clock() - started)
    incompatibility_id = store.record_incompatibility(
        base=target.name,
        image_id=bad.result.image_id,
        packages=found.packages,
        verdict=found.verdict,
        explanation=found.explanation,
        evidence=found.evidence,
        ranges=found.ranges,
    )
    return replace(found, incompatibility_id=incompatibility_id)


def _search(
    bisector: _Bisector, source: CandidateSource, changes: tuple[PinChange, ...], widen: int
) -> BisectResult:
    """ddmin over the changes, then the failing pair widened to its neighbours."""
    fine, bad = bisector.good, bisector.failing
    # ddmin's usual count for a pair, then that pair widened both ways
    bisector.expected = ddmin_probes(len(changes)) + 2 * 2 * widen
    everything = frozenset(c.name for c in changes)
    # the two ends are known: the good mix passes, the full switch is the failure
    bisector.probes[frozenset()] = bisector._probe_of((), fine, ran=False, rid=bisector.good_id)
    bisector.probes[everything] = bisector._probe_of(
        tuple(sorted(everything)), bad, ran=False, rid=bisector.failing_id
    )
    culprit_names = ddmin([c.name for c in changes], bisector.fails)
    culprits = tuple(c for c in changes if c.name in culprit_names)
    failed = bisector.failed_results[frozenset(culprit_names)]
    requested = tuple(dict.fromkeys((*fine.combo.requested, *bad.combo.requested)))
    found = BisectResult(
        base=bisector.target.name,
        image_id=bad.image_id,
        good_result_id=bisector.good_id,
        failing_result_id=bisector.failing_id,
        changes=changes,
        culprits=culprits,
        context=_context(source, failed.combo, requested, culprits),
        verdict=failed.verdict,
        explanation=(failed.error or failed.verdict.value).splitlines()[0],
        probes=(),
        runs=0,
        duration=0.0,
    )
    ranges = _widen(bisector, source, failed.combo, found.packages, widen)
    probes = tuple(bisector.probes.values())
    # the passing end belongs to the evidence: it shows the mix works without the
    # change; so do the neighbours that pass: they end the ranges
    ids = [p.result_id for p in probes] + [n.result_id for n in bisector.tried]
    return replace(
        found,
        probes=probes,
        runs=bisector.runs,
        evidence=tuple(dict.fromkeys(i for i in ids if i is not None)),
        ranges=ranges,
        neighbours=tuple(bisector.tried),
    )


def _widen(
    bisector: _Bisector, source: CandidateSource, beside: Combo, pair: dict[str, str], budget: int
) -> dict[str, SpecifierSet]:
    """Each side of the failing pair widened to the contiguous releases around it
    that fail the same way with the other side as it is."""
    ranges: dict[str, SpecifierSet] = {}
    bisector.expected = bisector.runs + 2 * budget * len(pair)  # at most
    for text, version in pair.items():
        name, at = canonicalize_name(text), Version(version)
        releases = _neighbourhood(source, name, at)
        if budget > 0 and at in releases:
            found = _widen_one(bisector, beside, name, releases, releases.index(at), budget)
            if found is not None:
                ranges[name] = found
    return ranges


def _widen_one(
    bisector: _Bisector,
    beside: Combo,
    name: NormalizedName,
    releases: Sequence[Version],
    at: int,
    budget: int,
) -> SpecifierSet | None:
    def fails(offset: int) -> bool:
        tried = bisector.neighbour(name, releases[at + offset], beside)
        bisector.tried.append(tried)
        return tried.failed

    down, _ = failing_edge(at, lambda k: fails(-k), budget)
    up = failing_edge(len(releases) - 1 - at, fails, budget)
    return failing_range(releases, at, down, up)


def _neighbourhood(source: CandidateSource, name: NormalizedName, at: Version) -> list[Version]:
    """The releases of ``name`` the target can install, oldest first (pre-releases
    only when the culprit is one)."""
    return sorted(
        r.version
        for r in source.releases(name)
        if r.file is not None and not r.yanked and (at.is_prerelease or not r.version.is_prerelease)
    )


def _context(
    source: CandidateSource,
    probe: Combo,
    requested: Sequence[NormalizedName],
    culprits: Sequence[PinChange],
) -> dict[str, str]:
    """Requested packages that a culprit depends on or that depend on one, at their
    versions in the smallest failing probe, when the culprits alone do not interact:
    numpy 2.0.2 alone is no incompatibility, numpy 2.0.2 with pandas 2.1.1 is."""
    names = {c.name for c in culprits}
    versions = probe.versions

    def deps(name: NormalizedName) -> set[NormalizedName]:
        version = versions.get(name)
        if version is None:
            return set()
        return {d.name for d in source.dependencies(name, version, frozenset())}

    edges = {n: deps(n) for n in names}
    if len(names) > 1 and any(edges[n] & names for n in names):
        return {}
    return {
        n: str(versions[n])
        for n in requested
        if n in versions
        and n not in names
        and (deps(n) & names or any(n in edges[c] for c in names))
    }


__all__ = [
    "PROBES_IN_THE_IMAGE",
    "WIDEN",
    "BisectResult",
    "Neighbour",
    "Probe",
    "bisect",
    "closest_known_good",
    "find_result",
]
