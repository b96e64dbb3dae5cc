"""What the page shows, computed from ``ReportData``: counts, heatmaps, failures,
anchors. Pure and deterministic; the template only lays it out."""

from __future__ import annotations

import enum
import itertools
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from packaging.utils import NormalizedName
from packaging.version import Version

from compat.model import Verdict
from compat.report.attribution import Attribution, Blame, Finding, attribute
from compat.report.data import (
    BaseReport,
    ReportData,
    ResultEntry,
    RunKind,
    Versions,
    standing_entry,
)
from compat.store.standing import outranked_text


class CellState(enum.StrEnum):
    ALL_PASS = "all-pass"
    SOME_FAIL = "some-fail"
    ALL_FAIL = "all-fail"
    UNTESTED = "untested"

    @property
    def label(self) -> str:
        return self.value.replace("-", " ")

    @property
    def glyph(self) -> str:
        return _GLYPHS[self]


# Shapes as well as colours, so the state reads without colour vision.
_GLYPHS = {
    CellState.ALL_PASS: "\u2713",  # check mark
    CellState.SOME_FAIL: "\u25d0",  # half-filled circle
    CellState.ALL_FAIL: "\u2717",  # ballot x
    CellState.UNTESTED: "\u2013",  # en dash
}


@dataclass(frozen=True, kw_only=True, slots=True)
class Cell:
    """The combinations holding one version of each of two packages (or of one)."""

    row: Version
    col: Version | None  # None: the single-package table
    passed: int
    failed: int  # failures attributed to this pair (or package)
    other: int  # failures attributed elsewhere: they say nothing about this cell
    reasons: tuple[str, ...]  # what coloured it: checks, bisect findings
    results: tuple[str, ...]  # the combination rows behind it (anchors)
    title: str

    @property
    def total(self) -> int:
        """The combinations that tell something about this cell."""
        return self.passed + self.failed

    @property
    def state(self) -> CellState:
        if self.total == 0:
            return CellState.UNTESTED
        if self.failed == 0:
            return CellState.ALL_PASS
        return CellState.ALL_FAIL if self.passed == 0 else CellState.SOME_FAIL

    @property
    def text(self) -> str:
        """``passing/telling``; empty when nothing tells (the glyph says so)."""
        return f"{self.passed}/{self.total}" if self.total else ""

    @property
    def link(self) -> str | None:
        """The first result that coloured the cell, else the first behind it."""
        return self.results[0] if self.results else None


@dataclass(frozen=True, kw_only=True, slots=True)
class Heatmap:
    """Versions of ``rows_name`` against versions of ``cols_name``."""

    rows_name: NormalizedName
    cols_name: NormalizedName | None  # None: one package alone
    rows: tuple[Version, ...]
    cols: tuple[Version | None, ...]
    cells: tuple[tuple[Cell, ...], ...]  # [row][col]

    @property
    def caption(self) -> str:
        if self.cols_name is None:
            return f"{self.rows_name} alone"
        return f"{self.rows_name} \u00d7 {self.cols_name}"

    @property
    def failing(self) -> int:
        """How many cells hold a failure attributed here: shown open when any does."""
        return sum(1 for row in self.cells for cell in row if cell.failed)

    @property
    def tested(self) -> int:
        return sum(1 for row in self.cells for cell in row if cell.total)


@dataclass(frozen=True, kw_only=True, slots=True)
class Combination:
    """One combination on one base: its newest result, every run before it, and
    the one whose verdict stands (a deep failure outranks a later smoke pass)."""

    combo_id: str
    label: str
    anchor: str
    history: tuple[ResultEntry, ...]  # newest first
    standing: ResultEntry  # the newest, unless a deep failure before it outranks it
    attribution: Attribution  # of the standing result
    log_anchors: dict[str, str]  # result id -> log anchor, failing results only

    @property
    def latest(self) -> ResultEntry:
        return self.history[0]

    @property
    def verdict_text(self) -> str:
        """``pass``, or ``smoke: pass (deep: runtime-error on 2026-12-06)``."""
        held, latest = self.standing, self.latest
        if held is latest or held.verdict.ok:
            return held.verdict.value
        return outranked_text(
            latest.depth, latest.verdict, (held.verdict, held.depth), held.created
        )

    @property
    def kinds(self) -> tuple[RunKind, ...]:
        return tuple(dict.fromkeys(e.kind for e in self.history))

    @property
    def in_heatmaps(self) -> bool:
        return any(e.kind.in_heatmaps for e in self.history)

    @property
    def other_pins(self) -> Versions:
        """What the newest run installed besides the requested packages, whose
        versions the label gives."""
        requested = {n for n, _ in self.latest.requested}
        return tuple((n, v) for n, v in self.latest.pins if n not in requested)

    @property
    def error(self) -> Folded:
        return fold(self.standing.error)

    def same_log_as(self, entry: ResultEntry) -> ResultEntry | None:
        """A newer failing run of this combination whose log is the same as
        ``entry``'s: the page shows that log once."""
        for newer in self.history:
            if newer is entry:
                return None
            if newer.result_id in self.log_anchors and newer.log == entry.log:
                return newer
        return None

    @property
    def attributed_to(self) -> str:
        a = self.attribution
        if a.blame is Blame.PAIR:
            return ", ".join(" \u00d7 ".join(sorted(p)) for p in sorted(a.pairs, key=sorted))
        if a.blame is Blame.PACKAGE:
            return ", ".join(sorted(a.packages)) + " alone"
        if a.blame is Blame.ENVIRONMENT:
            return "the environment"
        return "not attributed" if a.blame is Blame.UNATTRIBUTED else ""


@dataclass(frozen=True, kw_only=True, slots=True)
class BaseView:
    data: BaseReport
    anchor: str
    combinations: tuple[Combination, ...]  # sorted by requested versions
    counts: tuple[tuple[Verdict, int], ...]  # every verdict, in severity order
    passed: int
    heatmaps: tuple[Heatmap, ...]
    failures: tuple[Combination, ...]  # failing, not explained by the environment
    environment: tuple[Combination, ...]  # failing because of the image or the index
    smallest: bool  # the smallest known-good image of the report

    @property
    def total(self) -> int:
        return len(self.combinations)

    @property
    def pass_rate(self) -> str:
        return f"{self.passed / self.total:.1%}" if self.total else "\u2013"

    def count(self, verdict: Verdict) -> int:
        return dict(self.counts)[verdict]


@dataclass(frozen=True, kw_only=True, slots=True)
class ReportView:
    data: ReportData
    bases: tuple[BaseView, ...]
    verdict_columns: tuple[Verdict, ...]  # PASS and every verdict that occurs


def label(entry: ResultEntry) -> str:
    return ", ".join(f"{n} {v}" for n, v in entry.requested) or entry.combo_id


# An error cell shows this much of the first line; the rest is folded.
ERROR_HEAD = 200
# A log shows this much of its start (a sweep's summary) and of its end (the
# failing traceback) on the page; ``compat show`` prints it whole.
LOG_HEAD = 1000
LOG_TAIL = 2500


@dataclass(frozen=True, kw_only=True, slots=True)
class Folded:
    """An error as a cell shows it: its first line (shortened past ``ERROR_HEAD``
    characters) and, folded below it, the rest (the whole text when shortened)."""

    head: str
    rest: str = ""


def fold(text: str | None) -> Folded:
    whole = (text or "").strip()
    head, _, rest = whole.partition("\n")
    head = head.strip()
    if len(head) > ERROR_HEAD:
        return Folded(head=head[:ERROR_HEAD].rstrip() + "\u2026", rest=whole)
    return Folded(head=head, rest=rest.strip("\n"))


def log_excerpt(log: str) -> str:
    """A log as the page shows it: whole when short, else its first and last lines
    (a sweep's summary, the failing traceback) with what was left out said between."""
    if len(log) <= LOG_HEAD + LOG_TAIL:
        return log
    head = log[: log.rfind("\n", 0, LOG_HEAD) + 1 or LOG_HEAD]
    start = len(log) - LOG_TAIL
    tail = log[log.find("\n", start) + 1 or start :]
    left = len(log) - len(head) - len(tail)
    return (
        f"{head}[... {left:,} characters not shown: compat show prints the whole log ...]\n{tail}"
    )


def requested_names(entries: Iterable[ResultEntry]) -> tuple[NormalizedName, ...]:
    """Every requested package, in the order the combinations request them."""
    names: dict[NormalizedName, None] = {}
    for entry in entries:
        names.update(dict.fromkeys(n for n, _ in entry.requested))
    return tuple(names)


def _newest_first(entries: Sequence[ResultEntry]) -> list[ResultEntry]:
    """Newest first; entries without a time keep their given (oldest-first) order."""
    floor = datetime.min.replace(tzinfo=UTC)
    order = sorted(
        enumerate(entries),
        key=lambda ie: (ie[1].created.astimezone(UTC) if ie[1].created else floor, ie[0]),
    )
    return [e for _, e in reversed(order)]


def combinations(
    entries: Sequence[ResultEntry], findings: Sequence[Finding], anchors: Anchors
) -> tuple[Combination, ...]:
    """One row per combination, with its history, sorted by requested versions."""
    groups: dict[str, list[ResultEntry]] = {}
    for entry in entries:
        groups.setdefault(entry.combo_id, []).append(entry)
    rows = []
    for combo_id, group in groups.items():
        history = tuple(_newest_first(group))
        held = standing_entry(history[::-1]) or history[0]
        rows.append(
            Combination(
                combo_id=combo_id,
                label=label(history[0]),
                anchor=anchors("combo", combo_id),
                history=history,
                standing=held,
                attribution=attribute(
                    verdict=held.verdict,
                    versions=held.versions,
                    failed=held.failed,
                    system_deps=held.system_deps,
                    findings=findings,
                ),
                log_anchors={
                    e.result_id: anchors("log", e.result_id) for e in history if not e.verdict.ok
                },
            )
        )
    return tuple(sorted(rows, key=lambda c: (tuple(c.latest.requested), c.combo_id)))


def heatmap(rows: Sequence[Combination], a: NormalizedName, b: NormalizedName | None) -> Heatmap:
    """For each (version of ``a``, version of ``b``): combinations that pass, and
    failures attributed to that pair; with ``b`` None, failures of ``a`` alone."""
    groups: dict[tuple[Version, Version | None], list[Combination]] = {}
    for row in rows:
        versions = dict(row.latest.requested)
        if a not in versions or (b is not None and b not in versions):
            continue
        groups.setdefault((versions[a], versions[b] if b is not None else None), []).append(row)
    row_versions = tuple(sorted({r for r, _ in groups}))
    cols: tuple[Version | None, ...] = (
        (None,) if b is None else tuple(sorted({c for _, c in groups if c is not None}))
    )
    return Heatmap(
        rows_name=a,
        cols_name=b,
        rows=row_versions,
        cols=cols,
        cells=tuple(
            tuple(_cell(a, r, b, c, groups.get((r, c), [])) for c in cols) for r in row_versions
        ),
    )


def _blames(row: Combination, a: NormalizedName, b: NormalizedName | None) -> bool:
    attribution = row.attribution
    if b is None:
        return attribution.blame is Blame.PACKAGE and a in attribution.packages
    return attribution.implicates(a, b)


def _cell(
    a: NormalizedName,
    row: Version,
    b: NormalizedName | None,
    col: Version | None,
    group: list[Combination],
) -> Cell:
    passed = [c for c in group if c.standing.verdict.ok]
    failed = [c for c in group if not c.standing.verdict.ok and _blames(c, a, b)]
    other = len(group) - len(passed) - len(failed)
    reasons = tuple(dict.fromkeys(r for c in failed for r in c.attribution.reasons))
    # The headers say where a cell is; a failing cell's title says it too, as it
    # names the reasons and is what gets copied (on a large page every byte counts).
    where = f"{a} {row}" + (f" with {b} {col}: " if b is not None else ": ") if failed else ""
    if not passed and not failed:
        title = (
            "not tested together"
            if not group
            else f"tested only in {other} combination(s) that failed for other reasons"
        )
    else:
        title = f"{where}{len(passed)} of {len(passed) + len(failed)} combinations pass"
        if failed:
            title += "; failing by " + "; ".join(reasons)
        if other:
            title += f"; {other} more failed for other reasons"
    return Cell(
        row=row,
        col=col,
        passed=len(passed),
        failed=len(failed),
        other=other,
        reasons=reasons,
        results=tuple(c.anchor for c in failed + passed),
        title=title,
    )


def heatmaps(rows: Sequence[Combination]) -> tuple[Heatmap, ...]:
    """A heatmap per pair of requested packages, from scans and nightly runs; a
    table per package whose versions fail alone."""
    counted = [r for r in rows if r.in_heatmaps]
    names = requested_names(r.latest for r in counted)
    if len(names) == 1:
        return (heatmap(counted, names[0], None),)
    pairs = tuple(heatmap(counted, a, b) for a, b in itertools.combinations(names, 2))
    alone = tuple(
        heatmap(counted, n, None)
        for n in names
        if any(
            r.attribution.blame is Blame.PACKAGE and n in r.attribution.packages for r in counted
        )
    )
    return pairs + alone


class Anchors:
    """HTML ids from untrusted text: safe characters only, unique within a page."""

    def __init__(self) -> None:
        self._used: set[str] = set()

    def __call__(self, prefix: str, text: str) -> str:
        stem = f"{prefix}-{re.sub(r'[^A-Za-z0-9_.-]+', '-', text).strip('-') or 'x'}"
        anchor, n = stem, 1
        while anchor in self._used:
            n += 1
            anchor = f"{stem}-{n}"
        self._used.add(anchor)
        return anchor


def build(data: ReportData) -> ReportView:
    anchors = Anchors()
    working = [
        b.image_size
        for b in data.bases
        if b.image_size is not None and any(r.verdict.ok for r in b.results)
    ]
    # Only a comparison is worth highlighting: one working base is trivially the smallest.
    smallest = min(working) if len(working) > 1 else None
    views = []
    for base in data.bases:
        base_anchor = anchors("base", base.name)
        rows = combinations(base.results, base.findings, anchors)
        counter = Counter(r.standing.verdict for r in rows)
        failing = [r for r in rows if not r.standing.verdict.ok]
        views.append(
            BaseView(
                data=base,
                anchor=base_anchor,
                combinations=rows,
                counts=tuple((v, counter[v]) for v in Verdict),
                passed=counter[Verdict.PASS],
                heatmaps=heatmaps(rows),
                failures=tuple(r for r in failing if r.attribution.blame is not Blame.ENVIRONMENT),
                environment=tuple(r for r in failing if r.attribution.blame is Blame.ENVIRONMENT),
                smallest=smallest is not None
                and base.image_size == smallest
                and any(r.standing.verdict.ok for r in rows),
            )
        )
    present = {v for view in views for v, n in view.counts if n}
    return ReportView(
        data=data,
        bases=tuple(views),
        verdict_columns=tuple(v for v in Verdict if v.ok or v in present),
    )


def format_bytes(n: int | None) -> str:
    """Decimal units, three significant digits, as ``docker image ls`` shows them."""
    if n is None:
        return "\u2013"
    size = float(n)
    for unit in ("B", "kB", "MB", "GB"):
        if size < 999.5 or unit == "GB":
            break
        size /= 1000
    if unit == "B":
        return f"{n} B"
    return f"{size:.3g} {unit}" if size < 100 else f"{size:.0f} {unit}"


def format_duration(seconds: float) -> str:
    return f"{seconds:.1f} s"


def format_when(moment: datetime | None) -> str:
    """UTC to the minute; a dash when unknown."""
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC") if moment else "\u2013"
