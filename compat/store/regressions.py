"""Regressions: failures of combinations that passed before (by id, or by the
versions of their matrix packages with other dependencies), told apart from a new
incompatibility and from a missing library with a known fix."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from packaging.version import Version

from compat.model import Combo, ComboResult, PinChange, Verdict, changes_between


def _requested_key(combo: Combo) -> tuple[tuple[str, Version], ...]:
    return tuple((name, combo.version_of(name)) for name in combo.requested)


@dataclass(frozen=True, kw_only=True, slots=True)
class Regression:
    """A combination that fails now where ``passed`` passed before: the same one
    (``changes`` empty: the base or the harness moved), or the same matrix versions
    with other dependencies (``changes`` names the suspects)."""

    combo: Combo
    verdict: Verdict
    error: str | None
    passed: Combo
    changes: tuple[PinChange, ...] = ()
    control: bool = False

    def describe(self) -> str:
        what = "control" if self.control else "known-good"
        text = f"{what} {self.passed.label()} now {self.verdict.value}"
        if self.changes:
            text += f" with {', '.join(map(str, self.changes))}"
        return text + (f": {self.error}" if self.error else "")

    def to_json(self) -> dict[str, Any]:
        return {
            "combination": self.combo.id,
            "label": self.combo.label(),
            "verdict": self.verdict.value,
            "error": self.error,
            "passed": self.passed.id,
            "changes": [
                {"name": c.name, "before": c.old and str(c.old), "now": c.new and str(c.new)}
                for c in self.changes
            ],
            "control": self.control,
        }


def regressions(
    results: Iterable[ComboResult],
    previous: Iterable[Combo],
    *,
    control: Combo | None = None,
) -> list[Regression]:
    """Failures of combinations that passed before. ``previous`` are the known-good
    combinations as they stood *before* this run recorded anything (afterwards the
    store's latest verdict would already be the failure). A failure matches a
    previous combination by id, else by the versions of its matrix packages (of
    several, the one differing in fewest pins)."""
    good = list(previous)
    if control is not None and all(c.id != control.id for c in good):
        good.append(control)
    by_id = {c.id: c for c in good}
    by_key: dict[tuple[tuple[str, Version], ...], list[Combo]] = {}
    for combo in good:
        by_key.setdefault(_requested_key(combo), []).append(combo)
    found = []
    for result in results:
        if (
            result.ok
            or result.verdict.undecided
            or (result.verdict is Verdict.IMPORT_ERROR and result.system_deps)
        ):
            # a missing shared library whose distro package is known is a fact of the
            # image with a fix (the lock's Dockerfile installs it), never a regression;
            # a timeout that persisted is undecided: the machine may have been slow
            continue
        combo = result.combo
        passed = by_id.get(combo.id)
        if passed is None:
            candidates = by_key.get(_requested_key(combo), [])
            if not candidates:
                continue  # never passed in this shape: a new incompatibility, not a regression
            passed = min(candidates, key=lambda c: (len(changes_between(c, combo)), c.id))
        found.append(
            Regression(
                combo=combo,
                verdict=result.verdict,
                error=result.error,
                passed=passed,
                changes=changes_between(passed, combo),
                control=control is not None and combo.id == control.id,
            )
        )
    return found


__all__ = ["Regression", "regressions"]
