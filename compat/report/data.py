"""What a report shows, as plain frozen values: the report never queries anything.

The caller (a scan, or the results database) builds a ``ReportData``, directly or
from ``ComboResult`` objects with the ``from_results`` helpers.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime

from packaging.utils import NormalizedName, canonicalize_name
from packaging.version import Version

from compat.model import ComboResult, Depth, Incompatibility, Verdict, depth_of
from compat.report.attribution import FailedCheck, Finding, library_frames
from compat.store.standing import standing
from compat.targets.target import Target

# (name, version) pairs rather than Pins: the report needs no file, url or hash.
Versions = tuple[tuple[NormalizedName, Version], ...]


class RunKind(enum.StrEnum):
    """What produced a result: heatmaps count scans and nightly runs; ad-hoc checks
    and bisect probes are listed with the combination's history."""

    SCAN = "scan"
    NIGHTLY = "nightly"
    CHECK = "check"
    PROBE = "bisect probe"

    @classmethod
    def of_run(cls, *, strategy: str | None, matrix_name: str | None) -> RunKind:
        if strategy == "bisect":
            return cls.PROBE
        if strategy == "nightly":
            return cls.NIGHTLY
        return cls.SCAN if matrix_name else cls.CHECK

    @property
    def in_heatmaps(self) -> bool:
        return self in (RunKind.SCAN, RunKind.NIGHTLY)


@dataclass(frozen=True, kw_only=True, slots=True)
class ResultEntry:
    """One run of one combination."""

    result_id: str  # unique within the report; names the log's anchor
    combo_id: str
    requested: Versions  # the matrix packages, in matrix order
    pins: Versions  # everything installed, transitive dependencies included
    verdict: Verdict
    depth: Depth = Depth.SMOKE  # how deep it was judged
    failed_check: str | None = None
    error: str | None = None  # the failure's first line
    log: str = ""
    duration: float = 0.0  # seconds
    system_deps: tuple[str, ...] = ()  # distro packages a missing library points to
    added_system_deps: tuple[str, ...] = ()  # installed for the run: what it needs
    notes: tuple[str, ...] = ()  # what the verdict holds under (a build without OpenMP)
    failed: tuple[FailedCheck, ...] = ()  # every failing check, in running order
    # Checks that called an API the release lacks: shown, never counted.
    check_errors: tuple[FailedCheck, ...] = ()
    skipped: tuple[FailedCheck, ...] = ()  # checks that did not apply, with the reason
    # checks taken from earlier results where they imported the same versions
    reused: tuple[str, ...] = ()
    kind: RunKind = RunKind.SCAN
    matrix: str | None = None
    created: datetime | None = None
    run_id: str | None = None

    @property
    def versions(self) -> dict[NormalizedName, Version]:
        return dict(self.pins)

    @classmethod
    def of(
        cls,
        result: ComboResult,
        *,
        result_id: str | None = None,
        kind: RunKind = RunKind.SCAN,
        matrix: str | None = None,
        created: datetime | None = None,
        run_id: str | None = None,
    ) -> ResultEntry:
        combo = result.combo
        present = {pin.name for pin in combo.pins}
        log = result.log
        if not log:
            # Some failures only carry their output in the failing checks.
            log = "\n".join(
                f"--- {c.name} ({c.verdict.value}) ---\n{c.log}" for c in result.checks if c.log
            )
        return cls(
            result_id=result_id or combo.id,
            combo_id=combo.id,
            requested=tuple((n, combo.version_of(n)) for n in combo.requested if n in present),
            pins=tuple((p.name, p.version) for p in combo.pins),
            verdict=result.verdict,
            depth=depth_of(result),
            failed_check=result.failed_check,
            error=result.error,
            log=log,
            duration=result.duration,
            system_deps=result.system_deps,
            added_system_deps=result.added_system_deps,
            notes=result.notes,
            failed=tuple(
                FailedCheck(
                    name=c.name,
                    error=c.error,
                    kind=c.kind,
                    frames=library_frames(c.log, kind=c.kind),
                )
                for c in result.checks
                if (v := c.verdict.as_verdict()) is not None and not v.ok
            ),
            check_errors=tuple(
                FailedCheck(name=c.name, error=c.error, kind=c.kind) for c in result.check_errors
            ),
            skipped=tuple(
                FailedCheck(name=c.name, error=c.error, kind=c.kind) for c in result.skipped_checks
            ),
            reused=tuple(c.name for c in result.reused_checks),
            kind=kind,
            matrix=matrix,
            created=created,
            run_id=run_id,
        )


def standing_entry(history: Sequence[ResultEntry]) -> ResultEntry | None:
    """The entry that stands among one combination's (oldest first), as the store
    judges (``compat.store.standing``); None when none is a verdict."""
    held = standing([(e.verdict, e.depth) for e in history])
    return None if held is None else history[held]


@dataclass(frozen=True, kw_only=True, slots=True)
class LockStatus:
    """The combination ``compat lock`` picks for a base today."""

    combo_id: str
    requested: Versions
    pins: Versions
    verified: datetime | None  # when its passing result was recorded
    depth: str = "smoke"
    matrix: str | None = None  # the matrix whose stack it is (None: no matrix ran)
    image_size: int | None = None  # bytes: its image as compat image measured it
    added_size: int | None = None


@dataclass(frozen=True, kw_only=True, slots=True)
class Night:
    """One nightly run of a base: what was new, what broke, whether the lock moved."""

    started: datetime
    results: int
    new_versions: tuple[str, ...] = ()  # "numpy 2.3.0"
    regressions: tuple[str, ...] = ()  # combinations that passed before and fail now
    lock_change: str | None = None  # "lightgbm 4.6.0 -> 4.7.0"


@dataclass(frozen=True, kw_only=True, slots=True)
class BaseReport:
    """Everything the report shows about one base image."""

    name: str
    image: str
    image_id: str | None
    python: Version
    libc: str  # e.g. "glibc 2.36"
    results: tuple[ResultEntry, ...]  # every run of every combination
    image_size: int | None = None  # bytes: the known-good image, base included
    added_size: int | None = None  # bytes: the layers it adds over the base image
    lockfile: str | None = None  # the requirements.txt this base would get
    lock: LockStatus | None = None  # the one lock of the base, where one stack ran
    findings: tuple[Finding, ...] = ()  # known incompatibilities found by bisection
    nights: tuple[Night, ...] = ()  # oldest first
    locks: tuple[LockStatus, ...] = ()  # one per matrix scanned on the base

    @property
    def shown_locks(self) -> tuple[LockStatus, ...]:
        """The locks the page shows: one per (matrix, base)."""
        return self.locks or ((self.lock,) if self.lock is not None else ())

    @classmethod
    def from_results(
        cls,
        target: Target,
        results: Iterable[ComboResult | ResultEntry],
        *,
        image_size: int | None = None,
        added_size: int | None = None,
        lockfile: str | None = None,
        lock: LockStatus | None = None,
        findings: Iterable[Finding] = (),
        nights: Iterable[Night] = (),
        locks: Iterable[LockStatus] = (),
    ) -> BaseReport:
        """A base from a scan's results (or entries made with ``ResultEntry.of``); a
        combination run more than once gets one entry per run, told apart by a
        ``-2``, ``-3``... suffix on its result id."""
        seen: dict[str, int] = {}
        entries = []
        for result in results:
            entry = result if isinstance(result, ResultEntry) else ResultEntry.of(result)
            n = seen[entry.combo_id] = seen.get(entry.combo_id, 0) + 1
            if n > 1 and entry.result_id == entry.combo_id:
                entry = replace(entry, result_id=f"{entry.combo_id}-{n}")
            entries.append(entry)
        major, minor = target.libc_version
        return cls(
            name=target.name,
            image=target.image,
            image_id=target.image_id,
            python=target.python_version,
            libc=f"{target.libc.value} {major}.{minor}",
            results=tuple(entries),
            image_size=image_size,
            added_size=added_size,
            lockfile=lockfile,
            lock=lock,
            findings=tuple(findings),
            nights=tuple(nights),
            locks=tuple(locks),
        )


def findings_of(
    incompatibilities: Iterable[Incompatibility], *, base: str | None = None
) -> tuple[Finding, ...]:
    """The known incompatibilities (of ``base``, when given) as the report words
    them: ``numpy 2.0.2 x pandas 2.1.1 (import-error): ValueError: numpy.dtype size
    changed``."""
    found: dict[str, Finding] = {}
    for item in incompatibilities:
        if base is not None and item.base != base:
            continue
        why = item.explanation.splitlines()[0] if item.explanation else ""
        line = f"{item.label()} ({item.verdict.value})" + (f": {why}" if why else "")
        packages = tuple(
            sorted((canonicalize_name(n), Version(v)) for n, v in item.packages.items())
        )
        ranges = tuple(sorted((canonicalize_name(n), s) for n, s in item.ranges.items()))
        found.setdefault(line, Finding(packages=packages, line=line, ranges=ranges))
    return tuple(found.values())


@dataclass(frozen=True, kw_only=True, slots=True)
class ReportData:
    """A whole report: bases in the order given, each with its results."""

    bases: tuple[BaseReport, ...]
    title: str = "compat report"
    generated: str | None = None  # shown as given; none by default, so output is reproducible

    @classmethod
    def from_results(
        cls,
        runs: Iterable[tuple[Target, Iterable[ComboResult]]],
        *,
        title: str = "compat report",
        generated: str | None = None,
    ) -> ReportData:
        """One base per (target, results) pair, with no sizes or lockfiles; build
        ``BaseReport.from_results`` yourself to give those."""
        return cls(
            bases=tuple(BaseReport.from_results(t, rs) for t, rs in runs),
            title=title,
            generated=generated,
        )
