"""What the page shows, computed from ``ReportData``: counts, heatmaps, failures,
anchors. Pure and deterministic; the template only lays it out."""

from __future__ import annotations

import enum
import itertools
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from packaging.utils import NormalizedName
from packaging.version import Version

from compat.model import Verdict
from compat.report.data import BaseReport, ReportData, ResultEntry


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
    """The combinations holding one version of each of two packages."""

    row: Version
    col: Version | None  # None: the single-package table, every combination
    passed: int
    total: int
    verdicts: tuple[tuple[Verdict, int], ...]  # the ones present, best first
    title: str

    @property
    def state(self) -> CellState:
        if self.total == 0:
            return CellState.UNTESTED
        if self.passed == self.total:
            return CellState.ALL_PASS
        return CellState.ALL_FAIL if self.passed == 0 else CellState.SOME_FAIL

    @property
    def text(self) -> str:
        """``passing/tested``; empty when untested (the glyph says so)."""
        return f"{self.passed}/{self.total}" if self.total else ""


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
            return self.rows_name
        return f"{self.rows_name} \u00d7 {self.cols_name}"


@dataclass(frozen=True, kw_only=True, slots=True)
class Failure:
    entry: ResultEntry
    label: str
    error_line: str
    anchor: str


@dataclass(frozen=True, kw_only=True, slots=True)
class BaseView:
    data: BaseReport
    anchor: str
    results: tuple[ResultEntry, ...]  # sorted by requested versions
    labels: dict[str, str]  # result id -> "numpy 2.0.2, pandas 2.2.3"
    anchors: dict[str, str]  # result id -> log anchor (failures only)
    counts: tuple[tuple[Verdict, int], ...]  # every verdict, in severity order
    passed: int
    heatmaps: tuple[Heatmap, ...]
    failures: tuple[Failure, ...]
    smallest: bool  # the smallest known-good image of the report

    @property
    def total(self) -> int:
        return len(self.results)

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


def first_line(text: str | None) -> str:
    lines = (text or "").strip().splitlines()
    return lines[0].strip() if lines else ""


def sort_key(entry: ResultEntry) -> tuple[tuple[tuple[str, Version], ...], str]:
    return (tuple(entry.requested), entry.result_id)


def requested_names(results: Iterable[ResultEntry]) -> tuple[NormalizedName, ...]:
    """Every requested package, in the order the combinations request them."""
    names: dict[NormalizedName, None] = {}
    for entry in results:
        names.update(dict.fromkeys(n for n, _ in entry.requested))
    return tuple(names)


def heatmap(results: Sequence[ResultEntry], a: NormalizedName, b: NormalizedName | None) -> Heatmap:
    """Pass counts for each (version of ``a``, version of ``b``) among ``results``;
    with ``b`` None, for each version of ``a`` alone."""
    groups: dict[tuple[Version, Version | None], list[Verdict]] = {}
    for entry in results:
        versions = dict(entry.requested)
        if a not in versions or (b is not None and b not in versions):
            continue
        key = (versions[a], versions[b] if b is not None else None)
        groups.setdefault(key, []).append(entry.verdict)
    rows = tuple(sorted({r for r, _ in groups}))
    cols: tuple[Version | None, ...] = (
        (None,) if b is None else tuple(sorted({c for _, c in groups if c is not None}))
    )
    return Heatmap(
        rows_name=a,
        cols_name=b,
        rows=rows,
        cols=cols,
        cells=tuple(tuple(_cell(a, r, b, c, groups.get((r, c), [])) for c in cols) for r in rows),
    )


def _cell(
    a: NormalizedName,
    row: Version,
    b: NormalizedName | None,
    col: Version | None,
    verdicts: list[Verdict],
) -> Cell:
    counted = sorted(Counter(verdicts).items(), key=lambda kv: kv[0].severity)
    passed = sum(n for v, n in counted if v.ok)
    where = f"{a} {row}" + (f" with {b} {col}" if b is not None else "")
    if not verdicts:
        title = f"{where}: not tested together"
    else:
        title = f"{where}: {passed} of {len(verdicts)} combinations pass"
        failed = [f"{n} {v.value}" for v, n in counted if not v.ok]
        if failed:
            title += "; " + ", ".join(failed)
    return Cell(
        row=row,
        col=col,
        passed=passed,
        total=len(verdicts),
        verdicts=tuple(counted),
        title=title,
    )


def heatmaps(results: Sequence[ResultEntry]) -> tuple[Heatmap, ...]:
    names = requested_names(results)
    if len(names) == 1:
        return (heatmap(results, names[0], None),)
    return tuple(heatmap(results, a, b) for a, b in itertools.combinations(names, 2))


class _Anchors:
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
    anchors = _Anchors()
    working = [
        b.image_size
        for b in data.bases
        if b.image_size is not None and any(r.verdict.ok for r in b.results)
    ]
    # Only a comparison is worth highlighting: one working base is trivially the smallest.
    smallest = min(working) if len(working) > 1 else None
    views = []
    for base in data.bases:
        results = tuple(sorted(base.results, key=sort_key))
        counter = Counter(r.verdict for r in results)
        base_anchor = anchors("base", base.name)
        log_anchors = {
            r.result_id: anchors("log", r.result_id) for r in results if not r.verdict.ok
        }
        labels = {r.result_id: label(r) for r in results}
        views.append(
            BaseView(
                data=base,
                anchor=base_anchor,
                results=results,
                labels=labels,
                anchors=log_anchors,
                counts=tuple((v, counter[v]) for v in Verdict),
                passed=counter[Verdict.PASS],
                heatmaps=heatmaps(results),
                failures=tuple(
                    Failure(
                        entry=r,
                        label=labels[r.result_id],
                        error_line=first_line(r.error),
                        anchor=log_anchors[r.result_id],
                    )
                    for r in results
                    if not r.verdict.ok
                ),
                smallest=smallest is not None
                and base.image_size == smallest
                and any(r.verdict.ok for r in results),
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
