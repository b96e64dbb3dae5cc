"""Lock the best known-good combination of a base: pick it from the results
database (avoiding recorded incompatibilities) and write its lockfiles; build the
image a lock directory describes, smoke-test and measure it, and record its size."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import NormalizedName

from compat.errors import IncompatibleFound, NothingKnownGood, UsageError
from compat.image import ImageReport, build_image
from compat.index.base import Index
from compat.lock import LockInput, read_lock, write_lock
from compat.lock.select import rank_known_good
from compat.matrix import BuildPolicy, Matrix
from compat.model import Cap, Combo, ComboResult, Depth, Incompatibility
from compat.reporter import Reporter
from compat.resolve.resolver import Conflict
from compat.settings import NetworkSettings
from compat.store import Reader, Store
from compat.store.records import KnownGood, StoredResult
from compat.targets.profiles import HOST, PROFILES
from compat.targets.target import PackageManager, Target
from compat.workflows.check import check
from compat.workflows.steps import Runner

# a lock is a Dockerfile over an image plus the pins tested in it: results of the local
# backend ran in no image, so there is nothing to build them on (and their wheels were
# chosen for this machine's platform, which an image need not share)
_HOST_LOCK = (
    "results of the local backend (base host) ran on this machine's own Python, not in an "
    "image, so they cannot be locked into one: scan an image (compat scan --image REF or "
    "--base NAME) and lock that"
)


def lock_dir_for(scope: str, root: Path = Path("lock")) -> Path:
    """Where a base's lockfiles live: ``lock/<base>``, an image reference made a name."""
    return root / scope.replace("/", "_").replace(":", "_")


def refuse_host(scope: str) -> None:
    """Results of the local backend cannot be locked: said before anything starts."""
    if scope == HOST:
        raise UsageError(_HOST_LOCK)


def scan_command(scope: str) -> str:
    """The scan that records results for ``scope``: a profile by --base, anything
    else (an image reference or ID) by --image."""
    option = "--base" if scope in PROFILES else "--image"
    return f"compat scan {option} {scope}"


def package_manager_of(target: Target) -> PackageManager | None:
    """How the base installs system packages: as its probe found it (recorded with
    the results), else as its profile says. No container is started."""
    if target.package_manager is not None:
        return target.package_manager
    if target.name in PROFILES:
        return PROFILES[target.name].package_manager
    return None


Verify = Callable[[Target, ComboResult], ComboResult]
"""Confirms a known-good pick before it is written (``compat.workflows.deep.
deep_verifier``: the deep tier), returning the result it stands by."""

MAX_VERIFIED = 3
"""Candidates a verifying lock tries before it gives up (each costs a deep run)."""

Retry = Callable[[Target, Combo, Sequence[Cap]], ComboResult | None]
"""Runs a combination's requested pins again on the target with unrequested
dependencies capped (resolved afresh, run at the lock's depth, recorded); None when
nothing resolves under the caps (``compat.workflows.lock.capped_retry``)."""


@dataclass(frozen=True, kw_only=True, slots=True)
class Stack:
    """What a lock is of: a matrix's name and the packages it requests. A lock holds
    only combinations requesting exactly these packages."""

    name: str
    packages: frozenset[NormalizedName]
    path: str | None = None  # the matrix file, for the commands a message suggests

    @classmethod
    def of(cls, matrix: Matrix, path: str | None = None) -> Stack:
        return cls(name=matrix.name, packages=frozenset(matrix.names), path=path)

    @property
    def option(self) -> str:
        return f" --matrix {self.path}" if self.path else ""

    def holds(self, combo: Combo) -> bool:
        return frozenset(combo.requested) == self.packages


def of_stack(candidates: Sequence[KnownGood], stack: Stack | None, scope: str) -> list[KnownGood]:
    """The candidates of ``stack``. Without one: those of the one stack a matrix
    scanned on the scope (ad-hoc checks of other packages left out), all of them
    where no matrix ran, and a usage error naming the stacks where several did: a
    lock never picks among matrices."""
    if stack is not None:
        return [g for g in candidates if stack.holds(g.combo)]
    scanned: dict[frozenset[NormalizedName], set[str]] = {}
    for good in candidates:
        if good.matrix is not None:
            scanned.setdefault(frozenset(good.combo.requested), set()).add(good.matrix)
    if len(scanned) > 1:
        listed = "; ".join(
            sorted(
                f"{' or '.join(sorted(names))} ({len(s)} packages)" for s, names in scanned.items()
            )
        )
        raise UsageError(
            f"{scope} holds known-good combinations of {len(scanned)} matrices: {listed}. "
            "Say which to lock with --matrix FILE"
        )
    if not scanned:
        return list(candidates)
    (only,) = scanned
    return [g for g in candidates if frozenset(g.combo.requested) == only]


def _ranked(
    store: Reader,
    scope: str,
    *,
    prefer: str,
    constraints: Sequence[Requirement],
    avoid: Iterable[Incompatibility] | bool,
    eligible: Callable[[Combo], bool] | None,
    stack: Stack | None = None,
) -> tuple[KnownGood, ...]:
    """The known-good candidates best first; NothingKnownGood when there is none."""
    refuse_host(scope)
    if avoid is True:
        avoid = store.incompatibilities(scope)
    candidates = of_stack(store.known_good(scope), stack, scope)
    too_new = 0
    if eligible is not None:
        kept = [g for g in candidates if eligible(g.combo)]
        too_new, candidates = len(candidates) - len(kept), kept
    ranking = rank_known_good(
        candidates,
        prefer=prefer,
        constraints=constraints,
        avoid=() if isinstance(avoid, bool) else avoid,
    )
    if not ranking.ranked:
        wanted = f" meeting {', '.join(map(str, constraints))}" if constraints else ""
        avoided = f" ({ranking.avoided} hold a known incompatibility)" if ranking.avoided else ""
        avoided += f" ({too_new} pin something newer than --as-of)" if too_new else ""
        of = f" of {stack.name}" if stack is not None else ""
        raise NothingKnownGood(
            f"no known-good combination{of}{wanted} for {scope} in {store.url}{avoided}: "
            f"run `{scan_command(scope)}{stack.option if stack is not None else ''}` first"
        )
    return ranking.ranked


def _load(store: Reader, best: KnownGood) -> tuple[Target, ComboResult]:
    stored = store.get(best.result_id)
    if stored is not None and stored.result.backend == "local":
        raise UsageError(_HOST_LOCK)
    target = store.target(best.image_id) if best.image_id else None
    if stored is None or target is None:
        raise NothingKnownGood(f"result {best.result_id} lost its target; rerun compat scan")
    return target, stored.result


def pick_known_good(
    store: Reader,
    scope: str,
    *,
    prefer: str,
    constraints: Sequence[Requirement],
    avoid: Iterable[Incompatibility] | bool = False,
    eligible: Callable[[Combo], bool] | None = None,
    verify: Verify | None = None,
    stack: Stack | None = None,
) -> tuple[Target, ComboResult]:
    """The best known-good combination for a base or image, with its target.
    ``avoid`` skips combinations holding a known incompatibility: those given, or
    with ``True`` those recorded for the scope in the store (found by bisection).
    ``eligible`` keeps only the combinations it accepts (``--as-of``: pins that
    existed on that day). ``verify`` confirms the pick (the deep tier): one it
    fails is passed over for the next, up to ``MAX_VERIFIED`` candidates.
    ``stack``: only its combinations (needed where the scope holds several)."""
    ranked = _ranked(
        store,
        scope,
        prefer=prefer,
        constraints=constraints,
        avoid=avoid,
        eligible=eligible,
        stack=stack,
    )
    if verify is None:
        return _load(store, ranked[0])
    refused: list[str] = []
    for candidate in ranked[:MAX_VERIFIED]:
        target, result = _load(store, candidate)
        confirmed = verify(target, result)
        if confirmed.ok:
            return target, confirmed
        refused.append(
            f"{result.combo.label()}: {confirmed.verdict.value} in {confirmed.failed_check}"
            f" ({(confirmed.error or '').splitlines()[0] if confirmed.error else 'no detail'})"
        )
    left = len(ranked) - len(refused)
    more = f"; {left} more not tried" if left > 0 else ""
    raise NothingKnownGood(
        f"no known-good combination for {scope} passed at depth deep "
        f"({len(refused)} tried{more}): "
        + "; ".join(refused)
        + ". Lock with --depth smoke to skip the deep tier, or constrain the versions"
    )


def _requested(combo: Combo) -> tuple[tuple[str, str], ...]:
    return tuple(sorted((n, str(combo.version_of(n))) for n in combo.requested))


def lowest(caps: Iterable[Cap]) -> tuple[Cap, ...]:
    """The lowest of the caps per distribution, by name."""
    found: dict[str, Cap] = {}
    for cap in caps:
        if cap.name not in found or cap.below < found[cap.name].below:
            found[cap.name] = cap
    return tuple(found[n] for n in sorted(found))


def merged_caps(failures: Iterable[StoredResult]) -> tuple[Cap, ...]:
    """The caps the failures blame, the lowest per distribution."""
    return lowest(cap for f in failures for cap in Cap.blamed(f.result, f.id))


def caps_for(combo: Combo, failures: Iterable[StoredResult]) -> tuple[Cap, ...]:
    """What a lock of ``combo`` holds back: each dependency nobody requested that
    failed the same requested pins at a release ``combo`` stays below."""
    same = [f for f in failures if _requested(f.result.combo) == _requested(combo)]
    return tuple(
        cap
        for cap in merged_caps(same)
        if cap.name not in combo.requested
        and (held := combo.versions.get(cap.name)) is not None
        and held < cap.below
    )


def _blamed(
    store: Reader, scope: str, failures: Sequence[StoredResult]
) -> list[tuple[KnownGood, tuple[Cap, ...]]]:
    """Requested pins whose latest result failed by a dependency nobody requested,
    as candidates to rank, with the caps all their failures blame."""
    groups: dict[tuple[tuple[str, str], ...], list[StoredResult]] = {}
    for failure in failures:
        groups.setdefault(_requested(failure.result.combo), []).append(failure)
    passed = {_requested(g.combo): g.tested for g in store.known_good(scope)}
    found = []
    for key, group in groups.items():
        newest = max(group, key=lambda f: (f.created, f.id))
        if key in passed and passed[key] > newest.created:
            continue  # already passed with a later resolution: a known-good candidate
        caps = merged_caps(group)
        if not Cap.blamed(newest.result) or not caps:
            continue  # its latest failure blames only what was requested
        candidate = KnownGood(
            combo=newest.result.combo,
            result_id=newest.id,
            base=newest.base,
            image=newest.image,
            image_id=newest.result.image_id,
            tested=newest.created,
        )
        found.append((candidate, caps))
    return found


def capped_retry(
    *,
    open_pipeline: Callable[[], Runner],
    open_store: Callable[[], AbstractContextManager[Store]],
    index: Index,
    reporter: Reporter,
    depth: Depth,
) -> Retry:
    """The ``Retry`` of ``compat lock``: the requested pins exactly, the caps as
    constraints, the rest resolved as ``compat check`` resolves, run at ``depth``."""

    def retry(target: Target, combo: Combo, caps: Sequence[Cap]) -> ComboResult | None:
        wanted = [Requirement(f"{n}=={combo.version_of(n)}") for n in combo.requested]
        reporter.warning(
            f"{combo.label()} failed by what nobody requested: trying it with "
            + ", ".join(map(str, caps))
        )
        outcome = check(
            [*wanted, *(Requirement(str(c)) for c in caps)],
            target=target,
            pipeline=open_pipeline(),
            open_store=open_store,
            index=index,
            reporter=reporter,
            build=BuildPolicy(),
            force=False,
            depth=depth,
            requested=combo.requested,  # a cap is no request
        )
        return None if isinstance(outcome, Conflict) else outcome

    return retry


def retry_capped(
    store: Reader,
    scope: str,
    retry: Retry,
    *,
    prefer: str,
    constraints: Sequence[Requirement],
    eligible: Callable[[Combo], bool] | None,
    best: KnownGood | None,
    stack: Stack | None = None,
) -> tuple[Target, ComboResult] | None:
    """Requested pins that rank above ``best`` (the known-good pick) and failed only
    by a dependency nobody requested, run again with it capped: the first that
    passes, or None. A capped run that fails by another such release is run again
    with that capped too; ``MAX_VERIFIED`` runs at most, each recorded."""
    blamed = [
        (candidate, caps)
        for candidate, caps in _blamed(store, scope, store.latest_failures(scope))
        if (eligible is None or eligible(candidate.combo))
        and (stack is None or stack.holds(candidate.combo))
    ]
    caps_of = {c.result_id: caps for c, caps in blamed}
    ranked = rank_known_good([c for c, _ in blamed], prefer=prefer, constraints=constraints).ranked
    runs = 0
    for candidate in ranked:
        if best is not None and (
            rank_known_good([best, candidate], prefer=prefer, constraints=constraints).ranked[0]
            is best
        ):
            return None  # the known-good pick is at least as new
        target = store.target(candidate.image_id) if candidate.image_id else None
        caps = caps_of[candidate.result_id]
        while target is not None and runs < MAX_VERIFIED:
            runs += 1
            result = retry(target, candidate.combo, caps)
            if result is None:
                break  # nothing resolves under the caps
            if result.ok:
                return target, result
            more = lowest((*caps, *Cap.blamed(result)))
            if more == caps:
                break  # what failed now is not a dependency capped yet
            caps = more  # python-dateutil<4 gave 3.0.0, which fails too
    return None


def lock_known_good(
    store: Reader,
    scope: str,
    directory: Path,
    *,
    prefer: str = "newest",
    constraints: Sequence[Requirement] = (),
    prune: bool = True,
    eligible: Callable[[Combo], bool] | None = None,
    verify: Verify | None = None,
    retry: Retry | None = None,
    stack: Stack | None = None,
) -> tuple[LockInput, ComboResult, list[Path]]:
    """Write the lockfiles of the best known-good combination of ``stack`` for a base
    (avoiding known incompatibilities, keeping to ``eligible`` ones, confirmed by
    ``verify`` when given) into ``directory``. With ``retry``, newer requested pins
    that failed only by a dependency nobody requested are tried again with it capped
    first; the caps a pick holds are written into its lock with their reasons."""
    picked: tuple[Target, ComboResult] | None = None
    if retry is not None:
        try:
            best: KnownGood | None = _ranked(
                store,
                scope,
                prefer=prefer,
                constraints=constraints,
                avoid=True,
                eligible=eligible,
                stack=stack,
            )[0]
        except NothingKnownGood:
            best = None
        picked = retry_capped(
            store,
            scope,
            retry,
            prefer=prefer,
            constraints=constraints,
            eligible=eligible,
            best=best,
            stack=stack,
        )
    target, result = picked or pick_known_good(
        store,
        scope,
        prefer=prefer,
        constraints=constraints,
        avoid=True,
        eligible=eligible,
        verify=verify,
        stack=stack,
    )
    locked = LockInput.from_result(
        target,
        result,
        package_manager=package_manager_of(target),
        # what every later run on the image installs: the lock's Dockerfile (which
        # `compat image` builds) gives the environment the scans test
        known=store.system_packages(target.image_id),
        caps=caps_for(result.combo, store.latest_failures(scope)),
        matrix=stack.name if stack is not None else None,
    )
    return locked, result, write_lock(locked, directory, prune=prune)


@dataclass(frozen=True, kw_only=True, slots=True)
class LockedImage:
    """The image built from a lock directory: what was locked, its tag, and what the
    smoke suite and the measurements found."""

    locked: LockInput
    tag: str
    report: ImageReport

    def raise_for_status(self) -> None:
        """A locked environment whose image fails its smoke suite is an incompatibility."""
        if not self.report.ok:
            raise IncompatibleFound(f"the smoke suite failed in {self.tag}: {self.report.error}")


def build_locked_image(
    lock_dir: Path,
    *,
    open_store: Callable[[], AbstractContextManager[Store]],
    name: str | None,
    tag: str | None,
    cache_dir: Path,
    network: NetworkSettings,
    reporter: Reporter,
) -> LockedImage:
    """Build ``lock_dir`` as ``tag`` (default ``compat/<name>:<combination>``), run the
    smoke suite in it, and record its size and the size the stack adds over its base."""
    locked, _ = read_lock(lock_dir)
    safe = (name or locked.target.name).replace("/", "-").replace(":", "-")
    tag = tag or f"compat/{safe}:{locked.combo.id}"
    reporter.image_build_started(tag)
    try:
        built = build_image(lock_dir, tag=tag, wheelhouse=cache_dir, network=network)
    finally:
        reporter.image_build_finished()
    with open_store() as store:
        store.record_image(
            base=locked.target.name,
            image=tag,
            image_id=built.image_id,
            total_size=built.size,
            added_size=built.added_size,
            lock_hash=locked.combo.id,
        )
    return LockedImage(locked=locked, tag=tag, report=built)


__all__ = [
    "MAX_VERIFIED",
    "LockedImage",
    "Retry",
    "Stack",
    "Verify",
    "build_locked_image",
    "capped_retry",
    "caps_for",
    "lock_dir_for",
    "lock_known_good",
    "package_manager_of",
    "pick_known_good",
    "refuse_host",
    "retry_capped",
    "scan_command",
]
