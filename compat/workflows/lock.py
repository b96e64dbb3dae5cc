"""Lock the best known-good combination of a base: pick it from the results
database (avoiding recorded incompatibilities) and write its lockfiles; build the
image a lock directory describes, smoke-test and measure it, and record its size."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path

from packaging.requirements import Requirement

from compat.config import RunConfig
from compat.errors import IncompatibleFound, NothingKnownGood, UsageError
from compat.image import ImageReport, build_image
from compat.index.base import Index
from compat.lock import LockInput, Prune, read_lock, write_lock
from compat.lock.caps import blamed, caps_for, lowest
from compat.lock.select import Stack, of_stack, rank_known_good
from compat.matrix import BuildPolicy
from compat.model import Cap, Combo, ComboResult, Depth, Incompatibility, judged
from compat.reporter import Reporter
from compat.resolve.resolver import Conflict
from compat.settings import NetworkSettings
from compat.store import Reader, Store
from compat.store.records import KnownGood, StoredResult
from compat.targets.profiles import HOST, PROFILES
from compat.targets.target import PackageManager, Target
from compat.workflows.check import check
from compat.workflows.session import Session

# a lock is a Dockerfile over an image plus the pins tested in it: results of the local
# backend ran in no image, so there is nothing to build them on (and their wheels were
# chosen for this machine's platform, which an image need not share)
_HOST_LOCK = (
    "results of the local backend (base host) ran on this machine's own Python, not in an "
    "image, so they cannot be locked into one: scan an image (compat scan --image REF or "
    "--base NAME) and lock that"
)


def lock_dir_for(scope: str, root: Path = Path("lock"), *, matrix: str | None = None) -> Path:
    """Where a base's lockfiles live: ``lock/<base>``, an image reference made a name;
    the lock of a named matrix's stack in ``lock/<matrix>/<base>``, so that two
    matrices' locks of one base never overwrite each other."""
    name = scope.replace("/", "_").replace(":", "_")
    return root / matrix / name if matrix is not None else root / name


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
"""Confirms a known-good pick before it is written (``compat.workflows.session.
verifier``: the deep tier), returning the result it stands by."""

MAX_VERIFIED = 3
"""Candidates a verifying lock tries before it gives up (each costs a deep run)."""

Retry = Callable[[Target, Combo, Sequence[Cap]], ComboResult | None]
"""Runs a combination's requested pins again on the target with unrequested
dependencies capped (resolved afresh, run at the lock's depth, recorded); None when
nothing resolves under the caps (``compat.workflows.lock.capped_retry``)."""


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
        if not candidates and scope in PROFILES and store.known_good(HOST):
            # its scan ran on this machine's own Python (no image here): scanning it
            # again the same way leads nowhere
            raise NothingKnownGood(
                f"no known-good combination{of} for {scope} in {store.url}: its results "
                f"are this machine's (base host), as its image was not here, and those are "
                f"never locked. Pull {PROFILES[scope].release(None).image} and run "
                f"`{scan_command(scope)}`, or build an image of {scope}'s kind with python3 "
                "and run `compat scan --image REF`, then `compat lock --image REF`"
            )
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
    reporter: Reporter | None = None,
) -> tuple[Target, ComboResult]:
    """The best known-good combination for a base or image, with its target.
    ``avoid`` skips combinations holding a known incompatibility: those given, or
    with ``True`` those recorded for the scope in the store (found by bisection).
    ``eligible`` keeps only the combinations it accepts (``--as-of``: pins that
    existed on that day). ``verify`` confirms the pick (the deep tier): one it
    fails is passed over for the next, up to ``MAX_VERIFIED`` candidates.
    ``stack``: only its combinations (needed where the scope holds several);
    ``reporter`` hears each candidate the deep tier confirms, as a step."""
    ranked = _ranked(
        store,
        scope,
        prefer=prefer,
        constraints=constraints,
        avoid=avoid,
        eligible=eligible,
        stack=stack,
    )
    return _first_confirmed(store, scope, ranked, verify, reporter or Reporter())


def _first_confirmed(
    store: Reader,
    scope: str,
    ranked: Sequence[KnownGood],
    verify: Verify | None,
    reporter: Reporter,
) -> tuple[Target, ComboResult]:
    """The best of ``ranked`` (never empty) that ``verify`` confirms, up to
    ``MAX_VERIFIED`` tried, each one the deep tier has still to judge a step of
    ``reporter``'s; without ``verify``, the best."""
    if verify is None:
        return _load(store, ranked[0])
    refused: list[str] = []
    tried = ranked[:MAX_VERIFIED]
    for number, candidate in enumerate(tried, 1):
        target, result = _load(store, candidate)
        if not judged(result, Depth.DEEP):
            what = f"confirming {result.combo.label()} at depth deep before locking it"
            reporter.step_started(what, number, len(tried))  # of at most so many
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


def capped_retry(
    *,
    open_session: Callable[[], Session],
    index: Index,
    reporter: Reporter,
) -> Retry:
    """The ``Retry`` of ``compat lock``: the requested pins exactly, the caps as
    constraints, the rest resolved against ``index`` as ``compat check`` resolves,
    run in the session ``open_session`` opens (at its depth; opened only when a
    retry runs)."""

    def retry(target: Target, combo: Combo, caps: Sequence[Cap]) -> ComboResult | None:
        wanted = [Requirement(f"{n}=={combo.version_of(n)}") for n in combo.requested]
        reporter.warning(
            f"{combo.label()} failed by what nobody requested: trying it with "
            + ", ".join(map(str, caps))
        )
        outcome = check(
            [*wanted, *(Requirement(str(c)) for c in caps)],
            target=target,
            index=index,
            open_session=open_session,
            build=BuildPolicy(),
            force=False,
            requested=combo.requested,  # a cap is no request
        )
        return None if isinstance(outcome, Conflict) else outcome

    return retry


def retry_capped(
    store: Reader,
    scope: str,
    retry: Retry,
    failures: Sequence[StoredResult],
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
    with that capped too; ``MAX_VERIFIED`` runs at most, each recorded. ``failures``:
    the scope's (``Reader.latest_failures``)."""
    tried = [
        (candidate, caps)
        for candidate, caps in blamed(failures, store.known_good(scope))
        if (eligible is None or eligible(candidate.combo))
        and (stack is None or stack.holds(candidate.combo))
    ]
    caps_of = {c.result_id: caps for c, caps in tried}
    ranked = rank_known_good([c for c, _ in tried], prefer=prefer, constraints=constraints).ranked
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
    prune: bool | Prune = True,
    eligible: Callable[[Combo], bool] | None = None,
    verify: Verify | None = None,
    retry: Retry | None = None,
    stack: Stack | None = None,
    reporter: Reporter | None = None,
) -> tuple[LockInput, ComboResult, list[Path]]:
    """Write the lockfiles of the best known-good combination of ``stack`` for a base
    (avoiding known incompatibilities, keeping to ``eligible`` ones, confirmed by
    ``verify`` when given) into ``directory``. With ``retry``, newer requested pins
    that failed only by a dependency nobody requested are tried again with it capped
    first; the caps a pick holds are written into its lock with their reasons.
    ``reporter`` hears each candidate the deep tier confirms, as a step."""
    try:
        ranked: tuple[KnownGood, ...] = _ranked(
            store,
            scope,
            prefer=prefer,
            constraints=constraints,
            avoid=True,
            eligible=eligible,
            stack=stack,
        )
    except NothingKnownGood as none:
        ranked, nothing = (), none
    failures = store.latest_failures(scope)
    picked: tuple[Target, ComboResult] | None = None
    if retry is not None:
        picked = retry_capped(
            store,
            scope,
            retry,
            failures,
            prefer=prefer,
            constraints=constraints,
            eligible=eligible,
            best=ranked[0] if ranked else None,
            stack=stack,
        )
    if picked is None and not ranked:
        raise nothing
    target, result = picked or _first_confirmed(
        store, scope, ranked, verify, reporter or Reporter()
    )
    locked = LockInput.from_result(
        target,
        result,
        package_manager=package_manager_of(target),
        # what every later run on the image installs: the lock's Dockerfile (which
        # `compat image` builds) gives the environment the scans test
        known=store.system_packages(target.image_id),
        # a capped retry recorded failures of its own
        caps=caps_for(result.combo, failures if picked is None else store.latest_failures(scope)),
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
    config: RunConfig = RunConfig(),
) -> LockedImage:
    """Build ``lock_dir`` as ``tag`` (default ``compat/<name>:<combination>``), run the
    smoke suite in it (with ``config``'s limits), and record its size and the size
    the stack adds over its base."""
    locked, _ = read_lock(lock_dir)
    safe = (name or locked.target.name).replace("/", "-").replace(":", "-")
    tag = tag or f"compat/{safe}:{locked.combo.id}"
    reporter.image_build_started(tag)
    try:
        built = build_image(
            lock_dir,
            tag=tag,
            wheelhouse=cache_dir,
            network=network,
            config=config,
            reporter=reporter,
        )
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
    "Verify",
    "build_locked_image",
    "capped_retry",
    "lock_dir_for",
    "lock_known_good",
    "package_manager_of",
    "pick_known_good",
    "refuse_host",
    "retry_capped",
    "scan_command",
]
