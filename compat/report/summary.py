"""A scan's summary: one row per combination, run now, run before, or never run
because its verdict was known from metadata alone. The console shows the rows and
JUnit XML is written from them."""

from __future__ import annotations

from dataclasses import dataclass

from compat.model import ComboResult, Verdict
from compat.resolve.planner import Plan
from compat.store import ResultRow


@dataclass(frozen=True, kw_only=True, slots=True)
class Row:
    """One line of a scan's summary: a combination run, or one that could not be."""

    label: str
    verdict: Verdict
    failed_check: str | None = None
    error: str | None = None
    combo_id: str = "-"
    # "check: first error line" of each check that called an API its release lacks.
    check_errors: tuple[str, ...] = ()
    # a later shallower pass a deep failure outranks: "smoke: pass (deep: ... on DATE)"
    outranked: str | None = None

    @property
    def verdict_text(self) -> str:
        return self.outranked or self.verdict.value

    @classmethod
    def of(cls, result: ComboResult) -> Row:
        error = result.error
        if result.added_system_deps:
            error = f"needs {', '.join(result.added_system_deps)}" + (f"; {error}" if error else "")
        if result.notes:  # e.g. a wheel built without OpenMP: said with the verdict
            error = "; ".join((*result.notes, *([error] if error else [])))
        return cls(
            label=result.combo.label(),
            verdict=result.verdict,
            failed_check=result.failed_check,
            error=error,
            combo_id=result.combo.id,
            check_errors=tuple(f"{c.name}: {c.error}" for c in result.check_errors),
        )

    @classmethod
    def of_stored(cls, row: ResultRow) -> Row:
        """A result from an earlier run, not run again (the one that stands)."""
        return cls(
            label=f"{row.label} (result {row.id}, earlier run)",
            verdict=row.standing_verdict,
            outranked=row.outranking.text if row.outranking else None,
            failed_check=row.failed_check,
            error=row.error,
            combo_id=row.combination_id,
        )


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


__all__ = ["Row", "pre_run_rows"]
