"""The deep tier's host side: events to values, baseline choice, differential
comparison, attribution and the resulting checks."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import pytest
from packaging.utils import NormalizedName, canonicalize_name
from packaging.version import Version

from compat.deep.baseline import BaselineSource, choose_baseline
from compat.deep.differential import Failure, Finding, compare, deciding_frame, is_test_path
from compat.deep.judging import judge
from compat.deep.outcomes import DeepRun, Frame, Outcome, Root, parse_events
from compat.deep.report import check_results
from compat.model import CheckKind, CheckVerdict
from tests.helpers.deep import (
    CORE,
    FRAME,
    LEGEND,
    LIBRARY_FRAMES,
    combo_of_versions,
    deep_test_event,
    run_lines,
    stack_frame,
)

HERE = combo_of_versions({"pandas": "1.5.3", "matplotlib": "3.10.9", "numpy": "1.26.4"})
OLD = combo_of_versions({"pandas": "1.5.3", "matplotlib": "3.6.3", "numpy": "1.23.5"})


def run_of(
    *tests: dict[str, Any],
    versions: dict[str, str] | None = None,
    owners: dict[str, str] | None = None,
) -> DeepRun:
    versions = versions or {"pandas": "1.5.3", "matplotlib": "3.10.9", "numpy": "1.26.4"}
    return parse_events([*run_lines(versions, *tests, owners=owners), "not json", "[1]"])


DATEUTIL = {"dateutil": "python-dateutil", "six": "six"}


HERE_RUN = run_of(
    deep_test_event("test_legend", "failed", frames=LIBRARY_FRAMES, rerun="failed", error=LEGEND),
    deep_test_event("test_flaky", "failed", frames=LIBRARY_FRAMES, rerun="passed", error="boom"),
    deep_test_event("test_always", "failed", frames=LIBRARY_FRAMES, rerun="failed", error="x"),
    deep_test_event(
        "test_warns",
        "failed",
        rerun="failed",
        error="AssertionError: warned",
        frames=[
            stack_frame(FRAME),
            stack_frame("pandas/_testing/_warnings.py"),
            stack_frame("contextlib.py", "stdlib"),
        ],
    ),
    deep_test_event("test_new", "error", frames=LIBRARY_FRAMES, rerun="error", error="y"),
    deep_test_event("test_skipped_there", "failed", frames=LIBRARY_FRAMES, rerun="failed"),
    deep_test_event(
        "test_pytest_only",
        "failed",
        frames=[stack_frame("_pytest/raises.py", "tooling")],
        rerun="failed",
        error="Failed: DID NOT RAISE",
    ),
    deep_test_event("test_ok", "passed"),
    deep_test_event(
        "test_deprecated_call",
        "failed",
        frames=[*LIBRARY_FRAMES, stack_frame("pyparsing/core.py")],
        rerun="failed",
        error="PyparsingDeprecationWarning: 'setParseAction' deprecated",
        warning=True,
    ),
    deep_test_event(
        "test_crash",
        "crash",
        rerun="crash",
        error="killed by signal SIGSEGV",
        frames=[stack_frame(FRAME), stack_frame("matplotlib/backends/backend_agg.py")],
    ),
)
BASE_RUN = run_of(
    deep_test_event("test_legend", "passed"),
    deep_test_event("test_flaky", "passed"),
    deep_test_event("test_always", "failed", frames=LIBRARY_FRAMES, rerun="failed"),
    deep_test_event("test_warns", "passed"),
    deep_test_event("test_skipped_there", "skipped"),
    deep_test_event("test_pytest_only", "passed"),
    deep_test_event("test_ok", "passed"),
    deep_test_event("test_deprecated_call", "passed"),
    deep_test_event("test_crash", "passed"),
    versions={"pandas": "1.5.3", "matplotlib": "3.6.3", "numpy": "1.23.5"},
)


def test_parse_events() -> None:
    assert HERE_RUN.complete
    assert HERE_RUN.duration == 12.5
    assert HERE_RUN.owners()["pylab"] == "matplotlib"
    plan = HERE_RUN.plans[canonicalize_name("pandas")]
    assert plan.foundations == ("numpy",)
    assert plan.modules == {FRAME: ("matplotlib", "numpy")}
    legend = HERE_RUN.of("pandas")[0]
    assert legend.outcome is Outcome.FAILED
    assert legend.rerun is Outcome.FAILED
    assert legend.frames[2] == Frame(path=CORE, line=700, function="f", root=Root.SITE)
    assert HERE_RUN.counts()["failed"] == 7
    assert [t.warning for t in HERE_RUN.of("pandas")].count(True) == 1
    assert not parse_events(['{"event": "test", "dependent": "x", "test": "t"}']).complete


def test_test_paths() -> None:
    assert is_test_path(FRAME)
    assert is_test_path("pandas/_testing/asserters.py")
    assert is_test_path("pandas/conftest.py")
    assert is_test_path("pkg/util/_test_decorators.py")
    assert not is_test_path(CORE)


def test_deciding_frame_looks_through_tooling_stdlib_and_other_packages() -> None:
    owners = {"pandas": canonicalize_name("pandas"), "pyparsing": canonicalize_name("pyparsing")}
    frames = [Frame.from_json(f) for f in [*LIBRARY_FRAMES, stack_frame("pyparsing/core.py")]]
    found, owner, in_tests = deciding_frame(frames, owners, ["pandas", "matplotlib"])
    assert found is not None
    assert found.path == CORE
    assert owner == "pandas"
    assert not in_tests
    assert deciding_frame(
        [Frame.from_json(stack_frame("_pytest/x.py", "tooling"))], owners, ["pandas"]
    ) == (None, None, False)


def pandas_failures(
    here: DeepRun = HERE_RUN,
    base: DeepRun = BASE_RUN,
    *,
    here_versions: Mapping[NormalizedName, Version] = HERE.versions,
    baseline_versions: Mapping[NormalizedName, Version] = OLD.versions,
) -> dict[str, Failure]:
    """pandas' failing tests here, classified against ``base``, by test name."""
    failures = compare(
        here,
        base,
        canonicalize_name("pandas"),
        here_versions=here_versions,
        baseline_versions=baseline_versions,
    )
    return {f.test.test.rsplit("::", 1)[1]: f for f in failures}


def findings() -> dict[str, Finding]:
    return {name: f.finding for name, f in pandas_failures().items()}


def test_compare_classifies_every_failure() -> None:
    assert findings() == {
        "test_legend": Finding.REGRESSION,
        "test_flaky": Finding.FLAKY,
        "test_always": Finding.FAILS_ON_BASELINE,
        "test_warns": Finding.TEST_CODE,
        "test_new": Finding.NOT_ON_BASELINE,
        "test_skipped_there": Finding.NOT_ON_BASELINE,
        "test_pytest_only": Finding.NO_LIBRARY_FRAME,
        # only a warning made an error by the test configuration: nothing breaks
        "test_deprecated_call": Finding.WARNING,
        "test_crash": Finding.REGRESSION,
    }


def test_attribution_names_the_specific_partner_over_the_foundation() -> None:
    failures = pandas_failures()
    legend = failures["test_legend"]
    # pandas' own frame; numpy changed too (named, after): every pandas test touches it
    assert [str(c) for c in legend.changed] == [
        "matplotlib 3.6.3 -> 3.10.9",
        "numpy 1.23.5 -> 1.26.4",
    ]
    assert legend.owner == "pandas"
    assert legend.frame is not None
    assert legend.frame.line == 700
    crash = failures["test_crash"]
    assert crash.owner == "matplotlib"  # a frame in the partner that changed names it first
    assert [c.name for c in crash.changed] == ["matplotlib", "numpy"]


def test_every_changed_pin_is_named_a_transitive_one_first_when_it_failed() -> None:
    """python-dateutil changed beside matplotlib: a failure inside dateutil names it
    first, a failure in pandas' plotting code names matplotlib first; both name both."""
    here = {"pandas": "1.5.3", "matplotlib": "3.10.9", "numpy": "1.26.4"}
    old = {"pandas": "1.5.3", "matplotlib": "3.6.3", "numpy": "1.26.4"}
    in_dateutil = [
        stack_frame(FRAME),
        stack_frame("pandas/core/tools/datetimes.py"),
        stack_frame("dateutil/parser/_parser.py", line=640),
    ]
    here_run = run_of(
        deep_test_event(
            "test_legend", "failed", frames=LIBRARY_FRAMES, rerun="failed", error=LEGEND
        ),
        deep_test_event(
            "test_dates", "failed", frames=in_dateutil, rerun="failed", error="ParserError"
        ),
        versions=here,
        owners=DATEUTIL,
    )
    base_run = run_of(
        deep_test_event("test_legend", "passed"),
        deep_test_event("test_dates", "passed"),
        versions=old,
    )
    found = pandas_failures(
        here_run,
        base_run,
        here_versions={**HERE.versions, **combo_of_versions({"python-dateutil": "2.9.0"}).versions},
        baseline_versions={
            **OLD.versions,
            **combo_of_versions({"python-dateutil": "2.8.2"}).versions,
        },
    )
    assert found["test_legend"].finding is Finding.REGRESSION
    assert [str(c) for c in found["test_legend"].changed] == [
        "matplotlib 3.6.3 -> 3.10.9",
        "numpy 1.23.5 -> 1.26.4",
        "python-dateutil 2.8.2 -> 2.9.0",
    ]
    assert found["test_dates"].finding is Finding.REGRESSION
    assert [c.name for c in found["test_dates"].changed] == [
        "python-dateutil",
        "matplotlib",
        "numpy",
    ]


def test_a_dependency_the_test_parameters_name_comes_before_the_foundation() -> None:
    """pandas 1.5.3 with python-dateutil 4: dateutil time zones fail inside pandas'
    compiled timezones.pyx, no dateutil frame; the parameter names dateutil."""
    here = {"pandas": "1.5.3", "matplotlib": "3.6.3", "numpy": "1.26.4"}
    old = {"pandas": "1.5.3", "matplotlib": "3.6.3", "numpy": "1.24.1"}
    in_pandas = [
        stack_frame("pandas/tests/plotting/test_datetimelike.py"),
        stack_frame("pandas/_libs/tslibs/timezones.pyx", line=280),
    ]
    params = "test_ts_plot_with_tz['dateutil/US/Eastern']"
    # or the function's name does (pandas' test_date_range_timestamp_equiv_dateutil)
    named = "test_date_range_timestamp_equiv_dateutil"
    here_run = run_of(
        deep_test_event(params, "failed", frames=in_pandas, rerun="failed", error="AttributeError"),
        deep_test_event(named, "failed", frames=in_pandas, rerun="failed", error="AttributeError"),
        deep_test_event(
            "test_legend", "failed", frames=LIBRARY_FRAMES, rerun="failed", error=LEGEND
        ),
        versions=here,
        owners=DATEUTIL,
    )
    base_run = run_of(
        deep_test_event(params, "passed"),
        deep_test_event(named, "passed"),
        deep_test_event("test_legend", "passed"),
        versions=old,
    )
    found = pandas_failures(
        here_run,
        base_run,
        here_versions={
            **combo_of_versions(here).versions,
            **combo_of_versions({"python-dateutil": "4.0.0"}).versions,
        },
        baseline_versions={
            **combo_of_versions(old).versions,
            **combo_of_versions({"python-dateutil": "2.8.2"}).versions,
        },
    )
    for test in (params, named):
        assert [str(c) for c in found[test].changed] == [
            "python-dateutil 2.8.2 -> 4.0.0",
            "numpy 1.24.1 -> 1.26.4",
        ], test
    # a test whose parameters name nothing keeps the partner order
    assert [c.name for c in found["test_legend"].changed] == ["numpy", "python-dateutil"]


def test_a_timeout_is_a_regression_only_where_the_baseline_was_quick() -> None:
    """Both tests exceed their 60 s limit twice here. One took 0.5 s on the
    baseline: a hang. The other took 30 s there: a busy machine, not a finding."""

    def timed(name: str, outcome: str, seconds: float, **kw: Any) -> dict[str, Any]:
        return {**deep_test_event(name, outcome, **kw), "duration": seconds}

    here = run_of(
        timed("test_hangs", "timeout", 60.0, frames=LIBRARY_FRAMES, rerun="timeout"),
        timed("test_slow", "timeout", 60.0, frames=LIBRARY_FRAMES, rerun="timeout"),
    )
    base = run_of(
        timed("test_hangs", "passed", 0.5),
        timed("test_slow", "passed", 30.0),
        versions={"pandas": "1.5.3", "matplotlib": "3.6.3", "numpy": "1.23.5"},
    )
    found = {name: f.finding for name, f in pandas_failures(here, base).items()}
    assert found == {"test_hangs": Finding.REGRESSION, "test_slow": Finding.SLOW}


def test_only_a_changed_foundation_is_named_when_it_alone_changed() -> None:
    numpy_only = combo_of_versions({"pandas": "1.5.3", "matplotlib": "3.10.9", "numpy": "1.23.5"})
    legend = pandas_failures(baseline_versions=numpy_only.versions)["test_legend"]
    assert [str(c) for c in legend.changed] == ["numpy 1.23.5 -> 1.26.4"]


def test_no_partner_change_is_not_attributed() -> None:
    failures = pandas_failures(baseline_versions=HERE.versions).values()
    assert Finding.REGRESSION not in {f.finding for f in failures}
    assert Finding.NO_CHANGE in {f.finding for f in failures}


def test_a_baseline_of_another_release_is_refused() -> None:
    other = combo_of_versions({"pandas": "2.0.3", "matplotlib": "3.6.3", "numpy": "1.23.5"})
    with pytest.raises(ValueError, match="not the same release"):
        pandas_failures(baseline_versions=other.versions)


def test_choose_baseline_prefers_contemporaneous_then_newest_known_good() -> None:
    contemporaneous = OLD
    good_new = combo_of_versions({"pandas": "1.5.3", "matplotlib": "3.7.5", "numpy": "1.26.4"})
    good_old = combo_of_versions({"pandas": "1.5.3", "matplotlib": "3.6.3", "numpy": "1.26.4"})
    other_release = combo_of_versions({"pandas": "2.0.3", "matplotlib": "3.7.5", "numpy": "1.26.4"})
    no_matplotlib = combo_of_versions({"pandas": "1.5.3", "numpy": "1.24.4"})
    chosen = choose_baseline(
        HERE, "pandas", contemporaneous=contemporaneous, known_good=[good_old, good_new]
    )
    assert chosen is not None
    assert chosen.source is BaselineSource.AS_OF
    chosen = choose_baseline(
        HERE,
        "pandas",
        contemporaneous=HERE,  # same pins: useless
        known_good=[good_old, good_new, other_release, no_matplotlib],
    )
    assert chosen is not None
    assert chosen.source is BaselineSource.KNOWN_GOOD
    assert chosen.combo == good_new
    assert choose_baseline(HERE, "pandas", known_good=[HERE, other_release, no_matplotlib]) is None
    assert choose_baseline(HERE, "scipy", known_good=[good_new]) is None
    key = chosen.cache_key("sha256:img")
    assert key == chosen.cache_key("sha256:img") != chosen.cache_key("sha256:other")
    layer = combo_of_versions({"pytest": "8.3.5"})
    assert chosen.cache_key("sha256:img", layer) != key


def test_judge_and_checks() -> None:
    baseline = choose_baseline(HERE, "pandas", contemporaneous=OLD)
    report = judge("pandas", here=HERE, here_run=HERE_RUN, baseline=baseline, baseline_run=BASE_RUN)
    assert len(report.regressions) == 2
    assert len(report.flaky) == 1
    assert len(report.not_attributed) == 6
    checks = check_results(report)
    summary, *failed = checks
    assert summary.name == "deep:pandas"
    assert summary.verdict is CheckVerdict.PASS
    assert "2 regressions, 6 not attributed, 1 flaky" in summary.log
    assert "warning: " + FRAME + "::test_deprecated_call" in summary.log
    assert "fails-on-baseline: " + FRAME + "::test_always" in summary.log
    assert [c.name for c in failed] == [
        f"deep:pandas:{FRAME}::test_crash",
        f"deep:pandas:{FRAME}::test_legend",
    ]
    assert {c.kind for c in checks} == {CheckKind.DEEP}
    crash, legend = failed
    assert crash.verdict is CheckVerdict.CRASH
    assert legend.verdict is CheckVerdict.RUNTIME_ERROR
    assert legend.error is not None
    assert legend.error.startswith(LEGEND)
    assert f"{CORE}:700" in legend.error
    assert "changed: matplotlib 3.6.3 -> 3.10.9; also changed: numpy 1.23.5 -> 1.26.4" in (
        legend.error
    )
    assert "baseline (as-of: matplotlib==3.6.3, numpy==1.23.5, pandas==1.5.3): passed" in legend.log
    as_json = report.to_json()
    assert as_json["regressions"][1]["changed"] == [
        "matplotlib 3.6.3 -> 3.10.9",
        "numpy 1.23.5 -> 1.26.4",
    ]
    assert len(as_json["not_attributed"]) == 6


def test_judge_without_baseline_or_tests_judges_nothing() -> None:
    report = judge("pandas", here=HERE, here_run=HERE_RUN, baseline=None, baseline_run=None)
    (summary,) = check_results(report)
    assert summary.verdict is CheckVerdict.SKIPPED
    assert summary.kind is CheckKind.DEEP  # judged: it found nothing to judge by
    assert summary.error is not None
    assert "no baseline" in summary.error
    empty = judge("pandas", here=HERE, here_run=run_of(), baseline=None, baseline_run=None)
    assert empty.reason == "its 1 selected test modules ran no test"


def test_only_library_failures_confirmed_by_their_rerun_need_a_baseline() -> None:
    from compat.deep.differential import needs_baseline

    names = {t.test.split("::")[-1] for t in needs_baseline(HERE_RUN, canonicalize_name("pandas"))}
    assert names == {"test_legend", "test_always", "test_new", "test_skipped_there", "test_crash"}


def test_selected_modules_that_ran_no_test_say_why() -> None:
    lines = run_lines({"pandas": "1.5.3", "matplotlib": "3.10.9", "numpy": "1.26.4"})
    module = {
        "event": "module",
        "dependent": "pandas",
        "module": FRAME,
        "tests": 0,
        "duration": 1.0,
        "error": None,
        "log": "ImportError while loading conftest\nE   OSError: The baseline image directory "
        "does not exist.\n",
    }
    run = parse_events([*lines[:-1], json.dumps(module), lines[-1]])
    report = judge("pandas", here=HERE, here_run=run, baseline=None, baseline_run=None)
    assert report.reason == (
        "its 1 selected test modules ran no test: OSError: The baseline image directory "
        "does not exist."
    )


def test_a_dependent_without_shipped_tests_says_it_was_only_imported() -> None:
    lines = [
        *run_lines({"pandas": "1.5.3", "matplotlib": "3.10.9", "numpy": "1.26.4"}),
        json.dumps(
            {
                "event": "dependent",
                "dependent": "matplotlib",
                "modules": 0,
                "reason": "ships no tests",
            }
        ),
    ]
    report = judge(
        "matplotlib", here=HERE, here_run=parse_events(lines), baseline=None, baseline_run=None
    )
    assert report.summary() == "matplotlib 3.10.9: imports only, no shipped tests"
    (summary,) = check_results(report)
    assert summary.verdict is CheckVerdict.SKIPPED
