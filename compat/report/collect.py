"""A report's data from the results database: every base with every result and
its history, the lock ``compat lock`` would write, known incompatibilities and the
nightly timeline."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import datetime

from packaging.utils import NormalizedName, canonicalize_name
from packaging.version import InvalidVersion, Version

from compat.lock.select import rank_known_good
from compat.model import CheckKind, Incompatibility
from compat.report.data import BaseReport, LockStatus, ReportData, ResultEntry, RunKind, findings_of
from compat.report.history import nights, passing
from compat.store.queries import Reader
from compat.store.records import KnownGood, StoredResult
from compat.targets.profiles import HOST
from compat.targets.target import Target


def collect(
    store: Reader, *, title: str = "compat report", matrices: Collection[str] = ()
) -> ReportData:
    """Every base in ``store``; with ``matrices``, only results of runs of those."""
    sizes = {s.base: s for s in reversed(store.image_sizes())}  # newest wins
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

        bases.append(
            BaseReport.from_results(
                target,
                entries,
                image_size=size.total_size if size else None,
                added_size=size.added_size if size else None,
                # the local backend's results are never locked (compat lock refuses them)
                lock=None if target.name == HOST else _lock(choose(passing(entries)), by_id),
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


def _lock(best: ResultEntry | None, by_id: dict[str, StoredResult]) -> LockStatus | None:
    if best is None:
        return None
    checks = by_id[best.result_id].result.checks
    return LockStatus(
        combo_id=best.combo_id,
        requested=best.requested,
        pins=best.pins,
        verified=best.created,
        depth="deep" if any(c.kind is CheckKind.DEEP for c in checks) else "smoke",
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
