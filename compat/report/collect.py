"""A report's data from the results database: every base with every result and
its history, the lock ``compat lock`` would write, known incompatibilities and the
nightly timeline."""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from datetime import datetime

from packaging.utils import NormalizedName, canonicalize_name
from packaging.version import InvalidVersion, Version

from compat.lock.select import rank_known_good
from compat.model import CheckKind, Incompatibility
from compat.report.data import BaseReport, LockStatus, ReportData, ResultEntry, RunKind, findings_of
from compat.report.history import nights, passing
from compat.store.queries import Reader
from compat.store.records import ImageSize, KnownGood, StoredResult
from compat.targets.profiles import HOST
from compat.targets.target import Target


def collect(
    store: Reader, *, title: str = "compat report", matrices: Collection[str] = ()
) -> ReportData:
    """Every base in ``store``; with ``matrices``, only results of runs of those."""
    measured = list(reversed(store.image_sizes()))  # oldest first: the newest wins
    sizes = {s.base: s for s in measured}
    by_lock = {s.lock_hash: s for s in measured if s.lock_hash is not None}
    incompatible = store.incompatibilities()
    bases = []
    for target, stored in store.history_by_target():
        if matrices:
            stored = [s for s in stored if s.matrix in matrices]
        if not stored:
            continue
        known = [i for i in incompatible if i.base == target.name]
        by_id = {str(s.id): s for s in stored}
        entries = [_entry(s) for s in stored]
        size = sizes.get(target.name)

        def choose(
            passing: Sequence[ResultEntry],
            target: Target = target,
            by_id: dict[str, StoredResult] = by_id,
            known: list[Incompatibility] = known,
        ) -> ResultEntry | None:
            ranked = rank_known_good(
                (_known_good(target, by_id[e.result_id]) for e in passing), avoid=known
            )
            best = ranked.best
            return next(e for e in passing if e.result_id == str(best.result_id)) if best else None

        # the local backend's results are never locked (compat lock refuses them)
        locks = (
            ()
            if target.name == HOST
            else tuple(
                lock
                for matrix, of_matrix in _stacks(entries).items()
                if (lock := _lock(choose(passing(of_matrix)), by_id, matrix, by_lock))
            )
        )
        bases.append(
            BaseReport.from_results(
                target,
                entries,
                image_size=size.total_size if size else None,
                added_size=size.added_size if size else None,
                # compat lock without --matrix picks no lock among several
                lock=locks[0] if len(locks) == 1 else None,
                locks=locks,
                findings=findings_of(known),
                nights=nights(
                    entries,
                    first_seen=_versions(store.first_seen(target.name)),
                    choose_lock=choose,
                ),
            )
        )
    return ReportData(bases=tuple(bases), title=title)


def _entry(stored: StoredResult) -> ResultEntry:
    return ResultEntry.of(
        stored.result,
        result_id=str(stored.id),
        kind=RunKind.of_run(strategy=stored.strategy, matrix_name=stored.matrix),
        matrix=stored.matrix,
        created=stored.created,
        run_id=stored.run_id,
    )


def _known_good(target: Target, stored: StoredResult) -> KnownGood:
    return KnownGood(
        combo=stored.result.combo,
        result_id=stored.id,
        base=stored.base,
        image=stored.image,
        image_id=target.image_id,
        tested=stored.created,
        matrix=stored.matrix,
    )


def _stacks(entries: Sequence[ResultEntry]) -> dict[str | None, list[ResultEntry]]:
    """The entries of each matrix's stack (its name, or the names of the matrices
    requesting the same packages), as ``compat lock --matrix`` takes them: results of
    any run requesting exactly its packages. Where no matrix ran, all under None."""

    def packages(entry: ResultEntry) -> frozenset[NormalizedName]:
        return frozenset(name for name, _ in entry.requested)

    scanned: dict[frozenset[NormalizedName], set[str]] = {}
    for entry in entries:
        if entry.matrix is not None:
            scanned.setdefault(packages(entry), set()).add(entry.matrix)
    if not scanned:
        return {None: list(entries)}
    return {
        " or ".join(sorted(names)): [e for e in entries if packages(e) == stack]
        for stack, names in sorted(scanned.items(), key=lambda item: sorted(item[1]))
    }


def _lock(
    best: ResultEntry | None,
    by_id: dict[str, StoredResult],
    matrix: str | None = None,
    sizes: Mapping[str, ImageSize] | None = None,
) -> LockStatus | None:
    if best is None:
        return None
    checks = by_id[best.result_id].result.checks
    size = (sizes or {}).get(best.combo_id)  # its image, when compat image built it
    return LockStatus(
        combo_id=best.combo_id,
        requested=best.requested,
        pins=best.pins,
        verified=best.created,
        depth="deep" if any(c.kind is CheckKind.DEEP for c in checks) else "smoke",
        matrix=matrix,
        image_size=size.total_size if size is not None else None,
        added_size=size.added_size if size is not None else None,
    )


def _versions(
    seen: dict[tuple[str, str], datetime],
) -> dict[tuple[NormalizedName, Version], datetime]:
    found = {}
    for (name, version), when in seen.items():
        try:
            found[canonicalize_name(name), Version(version)] = when
        except InvalidVersion:
            continue
    return found
