"""Incremental runs for CI: test only what a new release touches.

Each night the index is asked which versions exist; those the results database has
not seen yet for the base are *new*. Only the planned combinations that pin a new
version run, beside one control: the base's current known-good combination. A
combination that passed before and now fails (the control, or one whose matrix
versions are unchanged and only a dependency moved) is a regression; a different
best known-good combination than the committed lock is a lock change. Both end the
run with a non-zero exit status and a report saying what happened.

Pure functions over values; ``nightly_base`` runs one base with the store and a
``run`` callable (so it can be tested with fakes); ``nightly`` runs every base in a
session, recording each result, and rewrites the locks that moved.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from packaging.specifiers import SpecifierSet
from packaging.utils import NormalizedName, canonicalize_name
from packaging.version import InvalidVersion, Version

from compat.errors import LockChanged, NothingKnownGood, RegressionFound
from compat.lock.movement import lock_changed, locked_combo
from compat.lock.select import Stack, of_stack, rank_known_good
from compat.matrix import Matrix
from compat.model import Combo, ComboResult, Depth
from compat.reporter import Reporter
from compat.resolve.candidates import PYTHON, CandidateSource, Dependency, Release
from compat.resolve.planner import Plan, choose_versions
from compat.resolve.resolver import Conflict, Resolver
from compat.store import ResultRow, Store
from compat.store.regressions import Regression, regressions
from compat.targets.profiles import HOST, PROFILES
from compat.workflows.lock import Verify, lock_dir_for, lock_known_good, pick_known_good
from compat.workflows.session import Session, verifier
from compat.workflows.steps import make_plan, target_of

Versions = dict[NormalizedName, tuple[Version, ...]]


# -- which versions exist, and which are new ------------------------------------------


def _usable(release: Release) -> bool:
    return release.file is not None and not release.yanked and not release.version.is_prerelease


def tracked_versions(
    source: CandidateSource, matrix: Matrix, *, last_minors: int | None = None
) -> Versions:
    """Every version a nightly run watches, newest first per project.

    The matrix packages: their usable versions inside their ranges. Their
    dependencies: the usable versions some requirer allows, walking the dependency
    closure from the versions the planner currently chooses (each dependency
    followed through its newest version all requirers allow, the one the resolver
    tries first), so that a new release anywhere in what gets installed is seen.
    """
    minors = last_minors or matrix.last_minors
    tracked: Versions = {}
    frontier: list[tuple[NormalizedName, Version, frozenset[NormalizedName]]] = []
    for package in matrix.packages:
        tracked[package.name] = choose_versions(
            source, package, last_minors=None, every_minor=False
        )
        chosen = choose_versions(source, package, last_minors=minors, every_minor=True)
        frontier += [(package.name, v, package.extras) for v in chosen]
    matrix_names = set(matrix.names)
    specs: dict[NormalizedName, list[SpecifierSet]] = {}
    extras: dict[NormalizedName, frozenset[NormalizedName]] = {}
    walked: set[tuple[NormalizedName, Version, frozenset[NormalizedName]]] = set()
    while frontier:
        source.prefetch((n, v) for n, v, _ in frontier)
        touched: set[NormalizedName] = set()
        for name, version, wanted in frontier:
            walked.add((name, version, wanted))
            for dep in source.dependencies(name, version, wanted):
                if dep.name == PYTHON or dep.name in matrix_names:
                    continue  # the matrix's ranges govern its own packages
                specs.setdefault(dep.name, [])
                if dep.specifier not in specs[dep.name]:
                    specs[dep.name].append(dep.specifier)
                    touched.add(dep.name)
                if not dep.extras <= extras.get(dep.name, frozenset()):
                    extras[dep.name] = extras.get(dep.name, frozenset()) | dep.extras
                    touched.add(dep.name)
        frontier = []
        for name in sorted(touched):
            usable = [r.version for r in source.releases(name) if _usable(r)]
            allowed = tuple(v for v in usable if any(s.contains(v) for s in specs[name]))
            tracked[name] = allowed
            everyone = [v for v in allowed if all(s.contains(v) for s in specs[name])]
            if everyone or allowed:
                step = (name, (everyone or allowed)[0], extras.get(name, frozenset()))
                if step not in walked:
                    frontier.append(step)
    return tracked


def _parse_seen(seen: Mapping[str, Iterable[str]]) -> dict[NormalizedName, set[Version]]:
    parsed: dict[NormalizedName, set[Version]] = {}
    for name, versions in seen.items():
        bucket = parsed.setdefault(canonicalize_name(name), set())
        for text in versions:
            try:
                bucket.add(Version(text))
            except InvalidVersion:
                continue  # nothing on an index can match it, so it hides nothing
    return parsed


def unseen(
    tracked: Versions, seen: Mapping[str, Iterable[str]]
) -> dict[NormalizedName, list[Version]]:
    """``tracked`` without what ``seen`` holds; projects with nothing new are left out."""
    known = _parse_seen(seen)
    found = {
        name: [v for v in versions if v not in known.get(name, set())]
        for name, versions in tracked.items()
    }
    return {name: versions for name, versions in found.items() if versions}


def new_versions(
    source: CandidateSource,
    matrix: Matrix,
    seen: Mapping[str, Iterable[str]],
    *,
    last_minors: int | None = None,
) -> dict[NormalizedName, list[Version]]:
    """Versions of the matrix packages and their dependencies not in ``seen`` (the
    store's ``seen_versions`` for the base). On a first run everything is new."""
    return unseen(tracked_versions(source, matrix, last_minors=last_minors), seen)


def as_seen(versions: Mapping[NormalizedName, Iterable[Version]]) -> dict[str, Iterable[str]]:
    """The form ``Store.record_seen`` takes."""
    return {str(name): [str(v) for v in vs] for name, vs in versions.items()}


# -- what to run ------------------------------------------------------------------


def involves(combo: Combo, new: Mapping[NormalizedName, Iterable[Version]]) -> bool:
    """Whether the combination pins a new version of anything."""
    return any(pin.version in set(new.get(pin.name, ())) for pin in combo.pins)


def nightly_plan(
    plan: Plan | Sequence[Combo],
    new: Mapping[NormalizedName, Iterable[Version]],
    control: Combo | None,
) -> list[Combo]:
    """The planned combinations that pin something new, preceded by the control
    (when there is one and it is not among them). Nothing new planned: nothing at
    all, not even the control, so the run starts no container."""
    combos = plan.combos if isinstance(plan, Plan) else tuple(plan)
    fresh = {name: frozenset(vs) for name, vs in new.items()}
    picked = [c for c in combos if any(p.version in fresh.get(p.name, ()) for p in c.pins)]
    if not picked:
        return []
    if control is not None and all(c.id != control.id for c in picked):
        picked.insert(0, control)
    return picked


def control_combo(
    source: CandidateSource, *, locked: Combo | None, known_good: Combo | None
) -> Combo | None:
    """The control: the committed lock's combination, else the store's best known-good
    one. Pinned for another target (re-probed image, other Python), it is resolved
    again for this one with every version kept; None if that is impossible."""
    combo = locked or known_good
    if combo is None or combo.target == source.target.key:
        return combo
    requests = [
        Dependency(name=p.name, extras=frozenset(), specifier=SpecifierSet(f"=={p.version}"))
        for p in combo.pins
    ]
    outcome = Resolver(source).resolve(requests, order=combo.requested)
    if isinstance(outcome, Conflict):
        return None
    return Combo(target=outcome.target, pins=outcome.pins, requested=combo.requested)


# -- what happened ------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True, slots=True)
class BaseOutcome:
    """One base's night: what was new, what ran, what broke, whether its lock moves."""

    base: str
    new: dict[NormalizedName, tuple[Version, ...]] = field(default_factory=dict)
    ran: tuple[str, ...] = ()  # combination ids, the control first when there is one
    control: str | None = None
    failed: int = 0  # ran, standing verdict a failure (a new incompatibility is no regression)
    # "label: timeout": timed out twice, undecided: neither a pass nor a regression
    undecided: tuple[str, ...] = ()
    # "label: smoke: pass (deep: runtime-error on DATE)": passes a known deep failure outranks
    outranked: tuple[str, ...] = ()
    check_runs: int = 0  # what the new versions cost: checks run, and checks reused
    reused_checks: int = 0
    regressions: tuple[Regression, ...] = ()
    lock_changed: bool = False
    lock_combo: str | None = None  # the new best known-good combination's id

    @property
    def exit_status(self) -> int:
        if self.regressions:
            return RegressionFound.exit_code
        if self.lock_changed:
            return LockChanged.exit_code
        return 0

    def lines(self) -> list[str]:
        count = sum(len(v) for v in self.new.values())
        if not count:
            return [f"{self.base}: nothing new"]
        listed = "; ".join(
            f"{n} {', '.join(str(v) for v in vs[:5])}{' …' if len(vs) > 5 else ''}"
            for n, vs in sorted(self.new.items())
        )
        control = " (with the control)" if self.control else ""
        lines = [
            f"{self.base}: {count} new versions ({listed})",
            f"  ran {len(self.ran)} combinations{control}, {self.failed} did not pass: "
            f"{self.check_runs} check runs, {self.reused_checks} checks reused",
        ]
        lines += [f"  still failing: {line}" for line in self.outranked]
        lines += [
            f"  undecided (timed out twice; not read as a regression): {line}"
            for line in self.undecided
        ]
        lines += [f"  REGRESSION {r.describe()}" for r in self.regressions]
        if self.lock_changed:
            lines.append(f"  known-good lock changed: now combination {self.lock_combo}")
        return lines

    def to_json(self) -> dict[str, Any]:
        return {
            "base": self.base,
            "new": {n: [str(v) for v in vs] for n, vs in self.new.items()},
            "ran": list(self.ran),
            "control": self.control,
            "failed": self.failed,
            "outranked": list(self.outranked),
            "undecided": list(self.undecided),
            "check_runs": self.check_runs,
            "reused_checks": self.reused_checks,
            "regressions": [r.to_json() for r in self.regressions],
            "lock_changed": self.lock_changed,
            "lock_combination": self.lock_combo,
            "exit_status": self.exit_status,
        }


@dataclass(frozen=True, kw_only=True, slots=True)
class NightlyOutcome:
    bases: tuple[BaseOutcome, ...]
    lock_root: Path = Path("lock")  # where each base's lockfiles live

    @property
    def exit_status(self) -> int:
        return max((b.exit_status for b in self.bases), default=0)

    def lines(self) -> list[str]:
        return [line for b in self.bases for line in b.lines()]

    def to_json(self) -> dict[str, Any]:
        return {"bases": [b.to_json() for b in self.bases], "exit_status": self.exit_status}

    def raise_for_status(self) -> None:
        """Raise the error the exit status stands for, its message the report."""
        broken = [r for b in self.bases for r in b.regressions]
        moved = [b.base for b in self.bases if b.lock_changed]
        if broken:
            raise RegressionFound(
                f"{len(broken)} regression(s): "
                + "; ".join(r.describe() for r in broken)
                + (f"; known-good lock changed for {', '.join(moved)}" if moved else "")
            )
        if moved:
            raise LockChanged(
                f"the known-good lock changed for {', '.join(moved)}: "
                f"the new lockfiles are written under {self.lock_root}/; review and commit them"
            )


# -- one base, end to end (effects passed in) ----------------------------------------


def nightly_base(
    *,
    scope: str,
    source: CandidateSource,
    matrix: Matrix,
    plan: Callable[[], Plan],
    store: Store,
    lock_dir: Path,
    run: Callable[[list[Combo]], Sequence[ComboResult]],
    last_minors: int | None = None,
    verify: Verify | None = None,
    on_first_night: Callable[[int], None] | None = None,
    reporter: Reporter | None = None,
) -> BaseOutcome:
    """One base's nightly run. ``plan`` makes the normal strategy plan (only called
    when something is new); ``run`` runs the combinations and records each result
    in ``store`` (the pipeline and ``store.record``). ``verify`` (the deep tier)
    confirms the new best known-good combination before the lock may move to it,
    as ``compat lock`` does. ``on_first_night`` hears, before the run, how many
    combinations a base with no version seen before runs to establish its baselines;
    ``reporter`` hears each candidate the deep tier confirms. The versions are
    recorded as seen only after the run, so an interrupted night is done again."""
    tracked = tracked_versions(source, matrix, last_minors=last_minors)
    seen = store.seen_versions(scope)
    new = unseen(tracked, seen)
    if not new:
        return BaseOutcome(base=scope)
    stack = Stack.of(matrix)
    # before anything is recorded
    before = [
        k.combo for k in rank_known_good(of_stack(store.known_good(scope), stack, scope)).ranked
    ]
    control = control_combo(
        source, locked=locked_combo(lock_dir), known_good=before[0] if before else None
    )
    combos = nightly_plan(plan(), new, control)
    if on_first_night is not None and not seen and combos:
        on_first_night(len(combos))
    results = list(run(combos)) if combos else []
    held = _standing(store, results)
    found = regressions(results, before, control=control)
    standing = {
        r.combo.id: held[r.combo.id].standing_verdict if r.combo.id in held else r.verdict
        for r in results
    }
    now_good = _lock_candidate(store, scope, verify, stack, reporter)
    store.record_seen(scope, as_seen(tracked))
    return BaseOutcome(
        base=scope,
        new={n: tuple(vs) for n, vs in new.items()},
        ran=tuple(c.id for c in combos),
        control=control.id if control is not None and combos else None,
        failed=sum(not v.ok and not v.undecided for v in standing.values()),
        undecided=tuple(
            f"{r.combo.label()}: {r.error or r.verdict.value}"
            for r in results
            if standing[r.combo.id].undecided
        ),
        outranked=tuple(
            f"{row.label}: {row.verdict_text}" for row in held.values() if row.outranking
        ),
        check_runs=sum(r.check_runs for r in results),
        reused_checks=sum(len(r.reused_checks) for r in results),
        regressions=tuple(found),
        lock_changed=lock_changed(lock_dir, now_good),
        lock_combo=now_good.id if now_good else None,
    )


def _standing(store: Store, results: Sequence[ComboResult]) -> dict[str, ResultRow]:
    """The standing result of each combination in ``results`` (recorded in
    ``store``): a smoke pass over a known deep failure still fails."""
    by_image: dict[str | None, list[str]] = {}
    for result in results:
        by_image.setdefault(result.image_id, []).append(result.combo.id)
    held: dict[str, ResultRow] = {}
    for image_id, ids in by_image.items():
        held.update(store.latest_results(ids, image_id))
    return held


def _lock_candidate(
    store: Store, scope: str, verify: Verify | None, stack: Stack, reporter: Reporter | None
) -> Combo | None:
    """What the lock would now be: ``lock_known_good`` avoids known incompatibilities
    too, and with ``verify`` passes over a candidate the deep tier fails. The host
    (the local backend) has none: compat lock refuses its results."""
    if scope == HOST:
        return None
    if verify is None:
        candidates = of_stack(store.known_good(scope), stack, scope)
        best = rank_known_good(candidates, avoid=store.incompatibilities(scope)).best
        return best.combo if best else None
    try:
        _, picked = pick_known_good(
            store,
            scope,
            prefer="newest",
            constraints=(),
            avoid=True,
            verify=verify,
            stack=stack,
            reporter=reporter,
        )
    except NothingKnownGood:
        return None  # the regressions (or failures) say why
    return picked.combo


@dataclass(frozen=True, kw_only=True, slots=True)
class NightlyRequest:
    """The matrix to watch, its planning knobs, the bases and where their locks live."""

    matrix: Matrix
    matrix_path: str  # recorded with each run
    bases: tuple[str, ...] = ()  # default: the matrix's bases
    strategy: str | None = None
    last_minors: int | None = None
    cap: int | None = None
    no_binary: frozenset[NormalizedName] = frozenset()
    lock_root: Path = Path("lock")

    @property
    def every_base(self) -> tuple[str, ...]:
        """The bases the night runs: those asked for, else the matrix's."""
        return self.bases or self.matrix.bases or ("debian-slim",)


# What one combination roughly costs on two cores, by depth (measured: the smoke
# suite about 45 s, the deep tier 3.5 to 4 min), for the first night's estimate.
_ROUGH_MINUTES = {Depth.IMPORT: 0.3, Depth.SMOKE: 1.0, Depth.DEEP: 4.0}


def first_night_notice(base: str, count: int, depth: Depth, jobs: int) -> str:
    """What a base's first night says before it runs: it establishes the baselines."""
    minutes = max(1, round(count * _ROUGH_MINUTES[depth] / max(1, jobs)))
    return (
        f"first night on {base}: no version was seen here before, so this night establishes "
        f"the baselines: {count} combinations at depth {depth.value}, about {minutes} min "
        "(later nights run only what is new)"
    )


def nightly(request: NightlyRequest, session: Session, *, cache_dir: Path) -> NightlyOutcome:
    """Every base's night, each result recorded as it lands; a base whose best
    known-good combination moved gets its lockfiles under ``lock_root`` rewritten.
    At the session's depth deep, the new combinations run the deep tier too and the
    new lock candidate is confirmed by it. ``cache_dir``: where image probes are
    kept."""
    matrix, store = request.matrix, session.store
    verify = verifier(lambda: session) if session.config.depth is Depth.DEEP else None
    build = matrix.build.with_no_binary(request.no_binary)
    outcomes = []

    def first_night(base: str, count: int) -> None:
        depth, jobs = session.config.depth, session.config.jobs
        session.reporter.notice(first_night_notice(base, count, depth, jobs))

    ran: set[str] = set()  # the targets that ran: the host answers for its bases once
    for base in request.every_base:
        named = base in PROFILES  # a matrix's bases are profile names or image references
        target = target_of(
            session.pipeline,
            base=base if named else None,
            image=None if named else base,
            python=matrix.python,
            cache_dir=cache_dir,
            reporter=session.reporter,
        )
        if target.key in ran:
            session.reporter.notice(f"{base}: answered above, by {target.describe()}")
            continue
        ran.add(target.key)
        source = CandidateSource(session.index, target, build)

        here = session.on(target)

        def run_combos(combos: list[Combo], here: Session = here) -> list[ComboResult]:
            with here.recording(
                matrix_name=matrix.name, matrix_path=request.matrix_path, strategy="nightly"
            ) as run_id:
                return list(here.run(combos, run_id).results)

        def plan(source: CandidateSource = source) -> Plan:
            return make_plan(
                source,
                matrix,
                strategy=request.strategy,
                last_minors=request.last_minors,
                cap=request.cap,
                reporter=session.reporter,
                kept=store,
            )

        lock_dir = lock_dir_for(target.name, request.lock_root)
        outcome = nightly_base(
            scope=target.name,
            source=source,
            matrix=matrix,
            plan=plan,
            store=store,
            lock_dir=lock_dir,
            run=run_combos,
            last_minors=request.last_minors,
            verify=verify,
            on_first_night=functools.partial(first_night, target.name),
            reporter=session.reporter,
        )
        if outcome.lock_changed:
            lock_known_good(
                store,
                target.name,
                lock_dir,
                verify=verify,
                stack=Stack.of(matrix),
                reporter=session.reporter,
            )
        outcomes.append(outcome)
    return NightlyOutcome(bases=tuple(outcomes), lock_root=request.lock_root)


__all__ = [
    "BaseOutcome",
    "LockChanged",
    "NightlyOutcome",
    "NightlyRequest",
    "RegressionFound",
    "as_seen",
    "control_combo",
    "involves",
    "new_versions",
    "nightly",
    "nightly_base",
    "nightly_plan",
    "tracked_versions",
    "unseen",
]
