"""A dependent's deep-tier outcome as check results: one failed check per
regression, named ``deep:<dependent>:<test id>``, and one summary check
``deep:<dependent>`` that counts (and lists) what was not attributed or flaky."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from packaging.utils import NormalizedName
from packaging.version import Version

from compat.deep.baseline import Baseline
from compat.deep.differential import Failure, Finding
from compat.deep.outcomes import Outcome, TestOutcome
from compat.model import CheckKind, CheckResult, CheckVerdict

_LOG_LIMIT = 16 * 1024
_CHECK_VERDICT = {
    Outcome.FAILED: CheckVerdict.RUNTIME_ERROR,
    Outcome.ERROR: CheckVerdict.RUNTIME_ERROR,
    Outcome.CRASH: CheckVerdict.CRASH,
    Outcome.TIMEOUT: CheckVerdict.TIMEOUT,
}


@dataclass(frozen=True, kw_only=True, slots=True)
class DeepReport:
    """The deep tier's verdict on one dependent of one combination."""

    dependent: NormalizedName
    baseline: Baseline | None
    tests: tuple[TestOutcome, ...] = ()  # everything that ran here
    failures: tuple[Failure, ...] = ()  # every failing test, classified
    reason: str | None = None  # why the tier could not judge (no baseline, no tests)
    version: Version | None = None  # the dependent's, where the reason is about the release

    @property
    def regressions(self) -> tuple[Failure, ...]:
        return tuple(f for f in self.failures if f.finding is Finding.REGRESSION)

    @property
    def flaky(self) -> tuple[Failure, ...]:
        return tuple(f for f in self.failures if f.finding is Finding.FLAKY)

    @property
    def not_attributed(self) -> tuple[Failure, ...]:
        return tuple(
            f for f in self.failures if f.finding not in (Finding.REGRESSION, Finding.FLAKY)
        )

    def summary(self) -> str:
        if self.reason and not self.tests:
            release = f" {self.version}" if self.version is not None else ""
            return f"{self.dependent}{release}: {self.reason}"
        modules = len({t.module for t in self.tests})
        return (
            f"{self.dependent}: {len(self.tests)} tests in {modules} modules; "
            f"{len(self.regressions)} regressions, {len(self.not_attributed)} not attributed, "
            f"{len(self.flaky)} flaky"
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "dependent": self.dependent,
            "baseline": _baseline_json(self.baseline),
            "tests": len(self.tests),
            "regressions": [_failure_json(f) for f in self.regressions],
            "not_attributed": [_failure_json(f) for f in self.not_attributed],
            "flaky": [_failure_json(f) for f in self.flaky],
            "reason": self.reason,
        }


def _baseline_json(baseline: Baseline | None) -> dict[str, Any] | None:
    if baseline is None:
        return None
    return {
        "source": baseline.source.value,
        "pins": [str(p) for p in baseline.combo.pins],
        "combo_id": baseline.combo.id,
    }


def _failure_json(failure: Failure) -> dict[str, Any]:
    return {
        "test": failure.test.test,
        "finding": failure.finding.value,
        "outcome": failure.test.outcome.value,
        "rerun": failure.test.rerun.value if failure.test.rerun else None,
        "baseline": failure.baseline.value if failure.baseline else None,
        "error": failure.test.error,
        "frame": str(failure.frame) if failure.frame else None,
        "owner": failure.owner,
        "changed": [str(c) for c in failure.changed],
    }


def check_name(dependent: str, test: str) -> str:
    return f"deep:{dependent}:{test}"


def _regression_log(failure: Failure, baseline: Baseline | None) -> str:
    lines = [
        f"library frame: {failure.frame} ({failure.owner})",
        "changed since the baseline, most likely first: "
        + "; ".join(str(c) for c in failure.changed),
        f"here: {failure.test.outcome.value}, rerun: "
        f"{failure.test.rerun.value if failure.test.rerun else 'none'}",
    ]
    if baseline is not None:
        pins = ", ".join(str(p) for p in baseline.combo.pins)
        lines.append(f"baseline ({baseline.source.value}: {pins}): passed")
    text = "\n".join(lines) + "\n\n" + failure.test.log
    return text[-_LOG_LIMIT:]


def _changed(failure: Failure) -> str:
    """``changed: <most likely>`` then ``; also changed: <the others>``; the
    report's attribution reads the first (``compat.report.attribution``)."""
    first, *rest = failure.changed or (None,)
    text = f"changed: {first}" if first is not None else "changed: nothing"
    return text + (f"; also changed: {', '.join(str(c) for c in rest)}" if rest else "")


def _failure_line(failure: Failure) -> str:
    where = f" at {failure.frame}" if failure.frame else ""
    return f"{failure.finding.value}: {failure.test.test}: {failure.test.error or ''}{where}"


def check_results(report: DeepReport) -> tuple[CheckResult, ...]:
    """The summary check, then one failed check per regression (test id order)."""
    listed: Sequence[Failure] = (*report.not_attributed, *report.flaky)
    if report.reason:
        summary = CheckResult(
            name=f"deep:{report.dependent}",
            kind=CheckKind.DEEP,
            verdict=CheckVerdict.SKIPPED,
            duration=0.0,
            error=report.reason,
            log="\n".join([report.summary(), *(_failure_line(f) for f in listed)])
            if report.tests
            else "",
        )
        return (summary,)
    summary = CheckResult(
        name=f"deep:{report.dependent}",
        kind=CheckKind.DEEP,
        verdict=CheckVerdict.PASS,
        duration=round(sum(t.duration for t in report.tests), 3),
        log="\n".join([report.summary(), *(_failure_line(f) for f in listed)]),
    )
    regressions = tuple(
        CheckResult(
            name=check_name(report.dependent, f.test.test),
            kind=CheckKind.DEEP,
            verdict=_CHECK_VERDICT.get(f.test.outcome, CheckVerdict.RUNTIME_ERROR),
            duration=f.test.duration,
            # parentheses, not brackets: consoles read [..] as markup
            error=(f.test.error or f.test.outcome.value) + f" (at {f.frame}; {_changed(f)})",
            log=_regression_log(f, report.baseline),
        )
        for f in sorted(report.regressions, key=lambda f: f.test.test)
    )
    return (summary, *regressions)
