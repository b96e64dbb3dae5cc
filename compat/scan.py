"""One scan or check, end to end: backend, target, plan, run, record.

The CLI presents; this module decides what runs where. Each result is committed
to the results database as it arrives, so an interrupted scan keeps what it has.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

from compat.errors import NothingKnownGood, UsageError
from compat.lock import LockInput, PackageManager, write_lock
from compat.model import Combo, ComboResult, Verdict
from compat.resolve.candidates import CandidateSource, Dependency
from compat.resolve.planner import Plan
from compat.resolve.resolver import Conflict, Preferences, Resolver
from compat.store import Incompatibility, ResultRow, RunStatus, Store
from compat.targets.profiles import PROFILES, host_target, target_from_profile
from compat.targets.target import Target


@dataclass(frozen=True, kw_only=True, slots=True)
class Row:
    """One line of a scan's summary: a combination run, or one that could not be."""

    label: str
    verdict: Verdict
    failed_check: str | None = None
    error: str | None = None
    combo_id: str = "-"

    @classmethod
    def of(cls, result: ComboResult) -> Row:
        error = result.error
        if result.added_system_deps:
            error = f"needs system packages {', '.join(result.added_system_deps)}" + (
                f"; {error}" if error else ""
            )
        return cls(
            label=result.combo.label(),
            verdict=result.verdict,
            failed_check=result.failed_check,
            error=error,
            combo_id=result.combo.id,
        )

    @classmethod
    def of_stored(cls, row: ResultRow) -> Row:
        """A result from an earlier run, not run again."""
        return cls(
            label=f"{row.label} (result {row.id}, earlier run)",
            verdict=row.verdict,
            failed_check=row.failed_check,
            error=row.error,
            combo_id=row.combination_id,
        )


def choose_target(
    *,
    base: str | None,
    image: str | None,
    python: str | None,
    cache_dir: Path,
    probe: bool = True,
    local: bool = False,
    notify: Callable[[str], None] = lambda _: None,
) -> Target:
    """The target to plan for: the host for the local backend; else the image (a
    profile's default image, or the one given) probed once, or, without ``probe``,
    the profile's derived tags (no Docker needed)."""
    if base and image:
        raise UsageError("give --base or --image, not both")
    if local:
        if base or image:
            notify(
                f"local backend: ignoring {'--image ' + image if image else '--base ' + str(base)}"
            )
        return host_target()
    if not (image or probe):
        return target_from_profile(base or "debian-slim", python=python)
    from compat.targets.probe import probe_image

    ref = image or target_from_profile(base or "debian-slim", python=python).image
    return probe_image(ref, name=base or ref, cache_dir=cache_dir / "targets")


def package_manager_of(target: Target, cache_dir: Path) -> PackageManager | None:
    """How the base installs system packages: its profile says, else the image is
    asked (once; the harness caches it by image ID)."""
    if target.name in PROFILES:
        return cast("PackageManager", PROFILES[target.name].package_manager)
    from compat.harness import RunOptions
    from compat.harness.docker_backend import DockerRuntime

    runtime = DockerRuntime(RunOptions(cache_dir=cache_dir))
    try:
        return cast("PackageManager | None", runtime.inspect(target).package_manager)
    finally:
        runtime.close()


def pick_known_good(
    store: Store,
    scope: str,
    *,
    prefer: str,
    constraints: Sequence[Requirement],
    avoid: Iterable[Incompatibility] | bool = False,
) -> tuple[Target, ComboResult]:
    """The best known-good combination for a base or image, with its target.
    ``avoid`` skips combinations holding a known incompatibility: those given, or
    with ``True`` those recorded for the scope in the store (found by bisection)."""
    if avoid is True:
        avoid = store.incompatibilities(scope)
    known = list(avoid) if avoid else []
    found = store.known_good(
        scope,
        prefer=prefer,  # type: ignore[arg-type]
        constraints=constraints,
        limit=None if known else 1,
    )
    skipped = 0
    if known:
        kept = [
            g
            for g in found
            if not any(i.matches({p.name: str(p.version) for p in g.combo.pins}) for i in known)
        ]
        skipped, found = len(found) - len(kept), kept
    if not found:
        wanted = f" meeting {', '.join(map(str, constraints))}" if constraints else ""
        avoided = f" ({skipped} hold a known incompatibility)" if skipped else ""
        raise NothingKnownGood(
            f"no known-good combination{wanted} for {scope} in {store.url}{avoided}: "
            f"run `compat scan --base {scope}` (or --image) first"
        )
    best = found[0]
    stored = store.get(best.result_id)
    target = store.target(best.image_id) if best.image_id else None
    if stored is None or target is None:
        raise NothingKnownGood(f"result {best.result_id} lost its target; rerun compat scan")
    return target, stored.result


def lock_dir_for(scope: str, root: Path = Path("lock")) -> Path:
    """Where a base's lockfiles live: ``lock/<base>``, an image reference made a name."""
    return root / scope.replace("/", "_").replace(":", "_")


def lock_known_good(
    store: Store,
    scope: str,
    directory: Path,
    *,
    cache_dir: Path,
    prefer: str = "newest",
    constraints: Sequence[Requirement] = (),
    prune: bool = True,
) -> tuple[LockInput, ComboResult, list[Path]]:
    """Write the lockfiles of the best known-good combination for a base (avoiding
    known incompatibilities) into ``directory``."""
    target, result = pick_known_good(
        store, scope, prefer=prefer, constraints=constraints, avoid=True
    )
    locked = LockInput.from_result(
        target, result, package_manager=package_manager_of(target, cache_dir)
    )
    return locked, result, write_lock(locked, directory, prune=prune)


def parse_shard(text: str) -> tuple[int, int]:
    """``K/N`` -> (K, N), 1 <= K <= N."""
    try:
        k, n = (int(x) for x in text.split("/"))
    except ValueError:
        raise UsageError(f"--shard takes K/N, e.g. 1/4, not {text!r}") from None
    if not 1 <= k <= n:
        raise UsageError(f"--shard {text}: K must be between 1 and N")
    return k, n


def shard(combos: Sequence[Combo], k: int, n: int) -> list[Combo]:
    """A deterministic, disjoint slice: by each combination's id, so a combination
    stays in its shard when the plan around it changes."""
    return [c for c in combos if int(c.id, 16) % n == k - 1]


def split_done(
    store: Store, combos: Sequence[Combo], target: Target, *, retest: bool, add_system_deps: bool
) -> tuple[list[Combo], list[ResultRow]]:
    """The combinations to run, and the latest results of those tested on this image
    before. With ``add_system_deps``, one that failed for a missing shared library
    runs again: this time the library will be added."""
    todo = store.filter_todo(combos, target.image_id, retest=retest)
    if target.image_id is None:
        return todo, []
    skipped = [c.id for c in combos if c not in todo]
    done = store.latest_results(skipped, target.image_id)
    if add_system_deps:
        for combo in combos:
            row = done.get(combo.id)
            stored = store.get(row.id) if row and not row.verdict.ok else None
            if stored and stored.result.system_deps and not stored.result.added_system_deps:
                del done[combo.id]
                todo.append(combo)
    return todo, list(done.values())


def pre_run_rows(plan: Plan) -> list[Row]:
    """Verdicts known before anything runs: no wheel, or declared metadata conflicts."""
    rows = [
        Row(label=name, verdict=Verdict.NO_WHEEL, error=why)
        for name, why in plan.unavailable.items()
    ]
    rows += [
        Row(
            label=", ".join(conflict.requested),
            verdict=Verdict.METADATA_CONFLICT,
            error=conflict.explanation.splitlines()[0],
        )
        for conflict in plan.conflicts
    ]
    return rows


def parse_pins(args: Sequence[str]) -> list[Requirement]:
    if not args:
        raise UsageError("name at least one package, e.g. compat check numpy==2.0.2 pandas==2.1.1")
    reqs = []
    for arg in args:
        try:
            reqs.append(Requirement(arg))
        except InvalidRequirement as exc:
            raise UsageError(f"{arg!r} is not a requirement such as numpy==2.0.2: {exc}") from None
    return reqs


def resolve_check(source: CandidateSource, reqs: Sequence[Requirement], *, force: bool) -> Any:
    """One explicit set of pins, the rest resolved. With ``force``, each exact pin is
    installed as given even where another package's metadata forbids it."""
    deps = [
        Dependency(
            name=canonicalize_name(r.name),
            extras=frozenset(canonicalize_name(e) for e in r.extras),
            specifier=r.specifier,
        )
        for r in reqs
    ]
    forced: dict[Any, Version] = {}
    if force:
        for dep in deps:
            exact = [
                s for s in dep.specifier if s.operator in ("==", "===") and "*" not in s.version
            ]
            if not exact:
                raise UsageError(f"--force needs exact pins: {dep} is not one (use ==)")
            forced[dep.name] = Version(exact[0].version)
    return Resolver(source).resolve(deps, prefs=Preferences(forced=forced))


@contextlib.contextmanager
def recorded_run(store: Store, target: Target, **info: Any) -> Iterator[str]:
    """A run in the results database, finished with the status it deserves."""
    run_id = store.start_run(target, **info)
    try:
        yield run_id
    except KeyboardInterrupt:
        store.finish_run(run_id, RunStatus.INTERRUPTED)
        raise
    except BaseException:
        store.finish_run(run_id, RunStatus.FAILED)
        raise
    store.finish_run(run_id, RunStatus.FINISHED)


__all__ = [
    "Conflict",
    "Row",
    "choose_target",
    "lock_dir_for",
    "lock_known_good",
    "package_manager_of",
    "parse_pins",
    "pick_known_good",
    "pre_run_rows",
    "recorded_run",
    "resolve_check",
]
