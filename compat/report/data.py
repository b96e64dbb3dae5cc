"""What a report shows, as plain frozen values: the report never queries anything.

The caller (a scan, or the results database) builds a ``ReportData``, directly or
from ``ComboResult`` objects with the ``from_results`` helpers.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Protocol

from packaging.utils import NormalizedName
from packaging.version import Version

from compat.model import ComboResult, Verdict
from compat.targets.target import Target

# (name, version) pairs rather than Pins: the report needs no file, url or hash.
Versions = tuple[tuple[NormalizedName, Version], ...]


@dataclass(frozen=True, kw_only=True, slots=True)
class ResultEntry:
    """One run of one combination."""

    result_id: str  # unique within the report; names the log's anchor
    combo_id: str
    requested: Versions  # the matrix packages, in matrix order
    pins: Versions  # everything installed, transitive dependencies included
    verdict: Verdict
    failed_check: str | None = None
    error: str | None = None  # the failure's first line
    log: str = ""
    duration: float = 0.0  # seconds
    system_deps: tuple[str, ...] = ()  # distro packages a missing library points to

    @classmethod
    def of(cls, result: ComboResult, *, result_id: str | None = None) -> ResultEntry:
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
            failed_check=result.failed_check,
            error=result.error,
            log=log,
            duration=result.duration,
            system_deps=result.system_deps,
        )


@dataclass(frozen=True, kw_only=True, slots=True)
class BaseReport:
    """Everything the report shows about one base image."""

    name: str
    image: str
    image_id: str | None
    python: Version
    libc: str  # e.g. "glibc 2.36"
    results: tuple[ResultEntry, ...]
    image_size: int | None = None  # bytes: the known-good image, base included
    added_size: int | None = None  # bytes: the layers it adds over the base image
    lockfile: str | None = None  # the requirements.txt this base would get
    known_incompatibilities: tuple[str, ...] = ()

    @classmethod
    def from_results(
        cls,
        target: Target,
        results: Iterable[ComboResult],
        *,
        image_size: int | None = None,
        added_size: int | None = None,
        lockfile: str | None = None,
        known_incompatibilities: Iterable[str] = (),
    ) -> BaseReport:
        """A base from a scan's results; a combination run more than once gets one
        entry per run, told apart by a ``-2``, ``-3``... suffix on its result id."""
        seen: dict[str, int] = {}
        entries = []
        for result in results:
            n = seen[result.combo.id] = seen.get(result.combo.id, 0) + 1
            rid = result.combo.id if n == 1 else f"{result.combo.id}-{n}"
            entries.append(ResultEntry.of(result, result_id=rid))
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
            known_incompatibilities=tuple(known_incompatibilities),
        )


class KnownIncompatibility(Protocol):
    """A recorded incompatibility as the store hands it back (``Incompatibility``)."""

    @property
    def base(self) -> str: ...

    @property
    def verdict(self) -> Verdict: ...

    @property
    def explanation(self) -> str: ...

    def label(self) -> str: ...


def incompatibility_lines(
    incompatibilities: Iterable[KnownIncompatibility], *, base: str | None = None
) -> tuple[str, ...]:
    """One line per known incompatibility (of ``base``, when given), for
    ``BaseReport.known_incompatibilities``: ``numpy 2.0.2 x pandas 2.1.1
    (import-error): ValueError: numpy.dtype size changed``."""
    lines = []
    for item in incompatibilities:
        if base is not None and item.base != base:
            continue
        why = item.explanation.splitlines()[0] if item.explanation else ""
        lines.append(f"{item.label()} ({item.verdict.value})" + (f": {why}" if why else ""))
    return tuple(dict.fromkeys(lines))


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
