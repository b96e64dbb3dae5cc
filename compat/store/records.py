"""Values the store hands back. Frozen; times are aware datetimes in UTC."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime

from compat.model import Combo, ComboResult, Depth, Verdict
from compat.store.standing import Outranking


class RunStatus(enum.StrEnum):
    RUNNING = "running"  # also what a killed run is left as
    FINISHED = "finished"
    INTERRUPTED = "interrupted"
    FAILED = "failed"


@dataclass(frozen=True, kw_only=True, slots=True)
class ResultRow:
    """One result as a listing shows it; ``id`` is what ``Store.get`` takes."""

    id: int
    run_id: str
    combination_id: str
    label: str  # the requested packages with their versions
    base: str
    image: str
    image_id: str | None
    verdict: Verdict
    failed_check: str | None
    error: str | None
    duration: float
    backend: str
    created: datetime
    depth: Depth = Depth.SMOKE  # how deep it was judged
    origin: str = "check"  # what recorded it: scan, check, nightly, bisect, deep (a lock's)
    # set on a shallower pass a deep failure before it outranks, and on that failure
    outranking: Outranking | None = None

    @property
    def standing_verdict(self) -> Verdict:
        """The verdict that stands for the combination as of this result."""
        return self.outranking.verdict if self.outranking else self.verdict

    @property
    def verdict_text(self) -> str:
        """``pass``, or ``smoke: pass (deep: runtime-error on 2026-12-06)``."""
        return self.outranking.text if self.outranking else self.verdict.value


@dataclass(frozen=True, kw_only=True, slots=True)
class StoredResult:
    """One result in full: checks and logs included."""

    id: int
    uid: str
    run_id: str
    base: str
    image: str
    created: datetime
    result: ComboResult
    strategy: str | None = None  # of its run: "bisect", "nightly", a matrix strategy
    matrix: str | None = None  # its run's matrix; None for an ad-hoc check


@dataclass(frozen=True, kw_only=True, slots=True)
class KnownGood:
    """A combination whose latest verdict on the image (or base) is pass."""

    combo: Combo
    result_id: int  # the passing result
    base: str
    image: str
    image_id: str | None
    tested: datetime
    matrix: str | None = None  # of the run that tested it; None for an ad-hoc check
    depth: Depth = Depth.SMOKE  # how deep the passing result was judged


@dataclass(frozen=True, kw_only=True, slots=True)
class ImageSize:
    id: int
    base: str
    image: str
    image_id: str
    total_size: int  # bytes
    added_size: int  # bytes on top of the base image
    lock_hash: str | None
    measured: datetime


@dataclass(frozen=True, kw_only=True, slots=True)
class Imported:
    """What an import or merge added; ``skipped`` counts records already present."""

    runs: int = 0
    results: int = 0
    images: int = 0
    disagreements: int = 0
    skipped: int = 0
