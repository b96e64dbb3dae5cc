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
from packaging.utils import NormalizedName

from compat.errors import EngineUnavailable, NothingKnownGood, UsageError
from compat.lock.select import rank_known_good
from compat.matrix import BuildPolicy
from compat.model import Combo, ComboResult, PinChange, Verdict, judged
from compat.resolve.bisection import ddmin, differences, same_failure
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

    @property
    def packages(self) -> dict[str, str]:
        """What fails together: the culprits at their failing versions, and the
        unchanged versions they meet (stored as the incompatibility)."""
        found: dict[str, str] = dict(self.context)
        found.update({c.name: str(c.new) for c in self.culprits if c.new is not None})
        return dict(sorted(found.items()))

    def label(self) -> str:
        return " x ".join(f"{n} {v}" for n, v in self.packages.items())

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
        lines += [
            f"  explanation: {self.explanation}",
            f"  {len(self.changes)} packages differed; {self.runs} runs "
            f"(of {len(self.probes)} probes) in {self.duration:.1f} s; "
            f"evidence: results {', '.join(map(str, self.evidence)) or '-'}",
        ]
        return lines


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
        self.good = good.result
        self.failing = failing.result
        self.changes = {c.name: c for c in differences(self.good.combo, self.failing.combo)}
        self.reporter = session.reporter
        self.probes: dict[frozenset[NormalizedName], Probe] = {}
        self.failed_results: dict[frozenset[NormalizedName], ComboResult] = {}

    def mix(self, switched: frozenset[NormalizedName]) -> Combo | Conflict:
        versions = self.good.combo.versions
        for name in switched:
            change = self.changes[name]
            if change.new is None:
                versions.pop(name, None)
            else:
                versions[name] = change.new
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
        for known in (self.good, self.failing):
            if mixed.id == known.combo.id:
                return self._probe_of(names, known, ran=False)
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
                return self._probe_of(names, stored.result, ran=False, rid=stored.id)
        # a probe is one combination: no progress display for it. It gets what the
        # good run had besides what the image is known to need, so that a missing
        # library is never mistaken for the failure under study.
        ran = self.session.run(
            [mixed], self.run_id, also_install=self.good.added_system_deps, quiet=True
        )
        (result,) = ran.results
        probe = self._probe_of(names, result, ran=True, rid=ran.ids.get(mixed.id))
        state = "fails" if probe.failed else "passes" if result.ok else result.verdict.value
        moved = ", ".join(_switched(self.changes[n]) for n in names)
        self.reporter.notice(f"probe {moved}: {state}")
        return probe

    def _probe_of(
        self,
        names: tuple[NormalizedName, ...],
        result: ComboResult,
        *,
        ran: bool,
        rid: int | None = None,
    ) -> Probe:
        failed = same_failure(
            result.verdict,
            self.failing.verdict,
            result.failed_check,
            self.failing.failed_check,
        )
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


def bisect(
    session: Session,
    failing: int | str,
    good: int | str | None = None,
    *,
    build: BuildPolicy | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> BisectResult:
    """Find the smallest set of package changes from ``good`` to ``failing`` (result
    ids or combination ids) that reproduces the failure, and record it as a known
    incompatibility of the base. Without ``good``: the closest known-good
    combination on the same image. Each probe runs in the session, on the failing
    result's image, as deep as its configuration says."""
    started = clock()
    store, reporter = session.store, session.reporter
    fine, bad, target, changes = _ends(store, failing, good)
    image_id = bad.result.image_id
    reporter.notice(
        f"bisecting {len(changes)} changed packages between result {fine.id} (pass) "
        f"and result {bad.id} ({bad.result.verdict.value}) on {target.describe()}"
    )
    source = CandidateSource(session.index, target, build)
    here = session.on(target)
    with here.recording(strategy="bisect") as run_id:
        bisector = _Bisector(here, source, run_id, fine, bad)
        everything = frozenset(c.name for c in changes)
        # the two ends are known: the good mix passes, the full switch is the failure
        bisector.probes[frozenset()] = bisector._probe_of((), fine.result, ran=False, rid=fine.id)
        bisector.probes[everything] = bisector._probe_of(
            tuple(sorted(everything)), bad.result, ran=False, rid=bad.id
        )
        try:
            culprit_names = ddmin([c.name for c in changes], bisector.fails)
        except EngineUnavailable as exc:
            ran = sum(p.ran for p in bisector.probes.values())
            raise EngineUnavailable(
                f"{exc}\nthe {ran} probes that finished are kept in {store.url} (run {run_id}): "
                "bisecting again reuses them"
            ) from exc
    culprits = tuple(c for c in changes if c.name in culprit_names)
    failed = bisector.failed_results[frozenset(culprit_names)]
    requested = tuple(dict.fromkeys((*fine.result.combo.requested, *bad.result.combo.requested)))
    context = _context(source, failed.combo, requested, culprits)
    # the passing end belongs to the evidence: it shows the mix works without the change
    evidence = tuple(p.result_id for p in bisector.probes.values() if p.result_id is not None)
    explanation = (failed.error or failed.verdict.value).splitlines()[0]
    found = BisectResult(
        base=target.name,
        image_id=image_id,
        good_result_id=fine.id,
        failing_result_id=bad.id,
        changes=changes,
        culprits=culprits,
        context=context,
        verdict=failed.verdict,
        explanation=explanation,
        probes=tuple(bisector.probes.values()),
        runs=sum(p.ran for p in bisector.probes.values()),
        duration=clock() - started,
        evidence=evidence,
    )
    incompatibility_id = store.record_incompatibility(
        base=target.name,
        image_id=image_id,
        packages=found.packages,
        verdict=found.verdict,
        explanation=explanation,
        evidence=evidence,
    )
    return replace(found, incompatibility_id=incompatibility_id)


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
    "BisectResult",
    "Probe",
    "bisect",
    "closest_known_good",
    "find_result",
]
