"""The deep verdict: each dependent's failing tests judged against its baseline's
run (:mod:`.differential`), and the combination's result with those judgements
merged in."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

from packaging.utils import NormalizedName, canonicalize_name

from compat.deep.baseline import Baseline
from compat.deep.differential import Finding, compare
from compat.deep.outcomes import DeepRun
from compat.deep.report import DeepReport, check_results
from compat.model import CheckResult, Combo, ComboResult, Verdict, overall
from compat.smoke.deep.engine import SHIPS_NO_TESTS


def _why_no_tests(run: DeepRun, dependent: NormalizedName) -> str:
    """Nothing selected, or what kept the selected modules from running a test
    (matplotlib's wheels refuse to run their tests without their baseline images)."""
    plan = run.plans.get(dependent)
    if plan is None or not plan.modules:
        return "no shipped test exercises a partner"
    logs = [run.module_logs.get(m, "") for m in plan.modules]
    errors = [ln[1:].strip() for log in logs for ln in log.splitlines() if ln.startswith("E ")]
    why = f": {errors[0]}" if errors else ""
    return f"its {len(plan.modules)} selected test modules ran no test{why}"


# what the verdict says of a dependent whose installed files hold no tests: the
# whole-package import is all that exercised it
IMPORTS_ONLY = "imports only, no shipped tests"


def judge(
    dependent: str,
    *,
    here: Combo,
    here_run: DeepRun,
    baseline: Baseline | None,
    baseline_run: DeepRun | None,
) -> DeepReport:
    """The deep verdict on ``dependent`` of ``here``: every failing test
    classified against the baseline's run of the same tests."""
    name = canonicalize_name(dependent)
    tests = here_run.of(name)
    plan = here_run.plans.get(name)
    if plan is not None and plan.reason:
        reason = plan.reason.replace(SHIPS_NO_TESTS, IMPORTS_ONLY, 1)
        return DeepReport(
            dependent=name, version=here.versions.get(name), baseline=baseline, reason=reason
        )
    if not tests:
        return DeepReport(dependent=name, baseline=baseline, reason=_why_no_tests(here_run, name))
    if not any(t.outcome.failing for t in tests):
        return DeepReport(dependent=name, baseline=baseline, tests=tests)
    if baseline is None or baseline_run is None:
        # Flaky tests and failures in test code need no baseline to be ruled out;
        # the others stay unjudged (never failures).
        failures = compare(
            here_run, DeepRun(), name, here_versions=here.versions, baseline_versions=here.versions
        )
        unjudged = sum(1 for f in failures if f.finding is Finding.NOT_ON_BASELINE)
        return DeepReport(
            dependent=name,
            baseline=None,
            tests=tests,
            failures=failures,
            reason=(
                f"no baseline (no known-good combination or --as-of stack with this release "
                f"and other partners): {unjudged} failing tests not judged"
                if unjudged
                else None
            ),
        )
    failures = compare(
        here_run,
        baseline_run,
        name,
        here_versions=here.versions,
        baseline_versions=baseline.combo.versions,
    )
    return DeepReport(dependent=name, baseline=baseline, tests=tests, failures=failures)


def unrequested_culprits(here: Combo, reports: Sequence[DeepReport]) -> tuple[str, ...]:
    """A note for each dependency that no one asked for but that regressions blame
    first (python-dateutil 4 under pandas 1.5.3): the resolver chose it, and a pin
    to the baseline's version tells it apart from the requested packages."""
    found = {
        first.name: first
        for r in reports
        for f in r.regressions
        if f.changed
        and (first := f.changed[0]).name not in here.requested
        and first.old is not None
    }
    return tuple(
        f"deep: the likeliest cause, {c}, was not requested (the resolver chose it); "
        f"to test the requested pins with the baseline's, add {c.name}=={c.old}"
        for c in found.values()
    )


def merge(result: ComboResult, reports: Sequence[DeepReport]) -> ComboResult:
    """``result`` with the deep checks added and its verdict, failed check and
    error re-derived from all checks (regressions can only make it worse)."""
    deep_checks: list[CheckResult] = [c for r in reports for c in check_results(r)]
    checks = (*result.checks, *deep_checks)
    # The counts travel with the verdict: what ran, and what was discarded.
    notes = (
        *result.notes,
        *(f"deep: {r.summary()}" for r in reports),
        *unrequested_culprits(result.combo, reports),
    )
    if not result.ok:
        return dataclasses.replace(result, checks=checks, notes=notes)
    verdict, culprit = overall(checks)
    if culprit is None or verdict is Verdict.PASS:
        return dataclasses.replace(result, checks=checks, notes=notes)
    return dataclasses.replace(
        result,
        checks=checks,
        notes=notes,
        verdict=verdict,
        failed_check=culprit.name,
        error=culprit.error,
        log=culprit.log,
    )


__all__ = ["IMPORTS_ONLY", "judge", "merge", "unrequested_culprits"]
