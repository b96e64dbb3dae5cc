"""The deep tier, host side: pure functions over what the in-environment runner
(:mod:`compat.smoke.deep`) reported.

- :mod:`.outcomes`: the runner's events as values (per-test outcomes, frames).
- :mod:`.baseline`: which combination a dependent release is compared against.
- :mod:`.differential`: regression, flaky or not attributed; which partner.
- :mod:`.report`: the check results ``deep:<dependent>:<test id>``.

:func:`judge` ties them together for one dependent of one combination.
"""

from __future__ import annotations

from packaging.utils import NormalizedName, canonicalize_name

from compat.deep.baseline import Baseline
from compat.deep.differential import Finding, compare
from compat.deep.outcomes import DeepRun
from compat.deep.report import DeepReport
from compat.model import Combo
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
