"""Which of a combination's results stands: the one definition every reader uses
(the store's queries, the report, nightly, bisect, the scan summary).

The latest result stands, except that a pass judged shallower than deep never
hides a deep failure recorded before it: the deep failure stands until a later
deep run passes (or a later failure replaces it). A pass of imports alone is no
verdict (the smoke suite never ran). Pure: callers hand in each result's verdict
and depth, oldest first, for one combination on one image."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Protocol

from compat.model import Depth, Verdict

Judgment = tuple[Verdict, Depth]  # a result's verdict and how deep it was judged


@dataclass(frozen=True, kw_only=True, slots=True)
class Outranking:
    """A deep failure (``by_*``) that stands over a later, shallower pass."""

    depth: Depth  # of the pass
    verdict: Verdict  # the standing failure's
    by_depth: Depth
    by_result: int  # the standing failure's result id
    by_created: datetime

    @property
    def text(self) -> str:
        return outranked_text(
            self.depth, Verdict.PASS, (self.verdict, self.by_depth), self.by_created
        )


def standing(history: Sequence[Judgment]) -> int | None:
    """The index of the result that stands among ``history`` (one combination's
    results on one image, oldest first); None when none is a verdict."""
    latest = deep = None
    for i, (verdict, depth) in enumerate(history):
        if verdict is Verdict.PASS and depth is Depth.IMPORT:
            continue  # imports alone: no verdict
        latest = i
        if depth is Depth.DEEP:
            deep = i
    if latest is None or deep is None:
        return latest
    if history[latest][0] is Verdict.PASS and not history[deep][0].ok:
        return deep  # a shallower pass never hides a deep failure
    return latest


class Judged(Protocol):
    """A recorded result as ``outrankings`` reads it."""

    @property
    def id(self) -> int: ...
    @property
    def verdict(self) -> Verdict: ...
    @property
    def depth(self) -> Depth: ...
    @property
    def created(self) -> datetime: ...


def outrankings(history: Sequence[Judged]) -> dict[int, Outranking]:
    """By index in ``history`` (as ``standing`` takes it), each pass recorded after
    the deep failure that stands, which outranks it."""
    held = standing([(r.verdict, r.depth) for r in history])
    if held is None or history[held].verdict.ok:
        return {}
    by = history[held]
    return {
        i: Outranking(
            depth=history[i].depth,
            verdict=by.verdict,
            by_depth=by.depth,
            by_result=by.id,
            by_created=by.created,
        )
        for i in range(held + 1, len(history))
        if history[i].verdict.ok
    }


def outranked_text(depth: Depth, verdict: Verdict, by: Judgment, when: datetime | None) -> str:
    """How a pass another result outranks is shown, on the console and in the
    report alike: ``smoke: pass (deep: runtime-error on 2026-12-06)``."""
    by_verdict, by_depth = by
    day = f" on {when.astimezone(UTC):%Y-%m-%d}" if when else ""
    return f"{depth.value}: {verdict.value} ({by_depth.value}: {by_verdict.value}{day})"


__all__ = ["Judged", "Judgment", "Outranking", "outranked_text", "outrankings", "standing"]
