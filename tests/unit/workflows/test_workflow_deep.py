"""deep/step.deepen over a fake backend that replays runner events, with a
real SQLite results database: verdicts, attribution and the baseline cache."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any, cast

import pytest
from packaging.utils import NormalizedName, canonicalize_name

from compat.config import RunConfig, Timeouts
from compat.deep.running import DeepOutcome
from compat.deep.step import deepen
from compat.index.base import Index
from compat.model import CheckVerdict, Combo, ComboResult, DistFile, Verdict
from compat.store import Store
from compat.targets.target import Target
from tests.helpers.deep import (
    FRAME,
    LEGEND,
    LIBRARY_FRAMES,
    combo_of_versions,
    deep_test_event,
    run_lines,
    stack_frame,
)
from tests.helpers.pipeline import ScriptedPipeline
from tests.helpers.report import make_target
from tests.helpers.reporter import RecordingReporter

NEW = {"pandas": "1.5.3", "matplotlib": "3.10.9", "numpy": "1.26.4"}
OLD = {"pandas": "1.5.3", "matplotlib": "3.6.3", "numpy": "1.26.4"}
HERE = combo_of_versions(NEW)
BASELINE = combo_of_versions(OLD)
LAYER = combo_of_versions({"pytest": "8.3.5", "hypothesis": "6.100.0"})


def replaying(lines: dict[str, list[str]]) -> ScriptedPipeline:
    """A pipeline whose deep runner replays canned output per combination."""
    return ScriptedPipeline(
        deep=lambda job: DeepOutcome(job=job, events=tuple(lines[job.combo.id]))
    )


@pytest.fixture
def store(tmp_path: Path) -> Store:
    return Store.open(f"sqlite:///{tmp_path / 'results.db'}")


def passed(target: Target, c: Combo) -> ComboResult:
    return ComboResult(combo=c, verdict=Verdict.PASS, image_id=target.image_id, backend="fake")


class Bare:
    """An index with nothing on it: no upload times (so the baseline is the
    known-good one), no source distributions."""

    def files(self, name: NormalizedName) -> Sequence[DistFile]:
        return ()


def run(
    store: Store,
    backend: ScriptedPipeline,
    result: ComboResult,
    target: Target,
    config: RunConfig | None = None,
) -> ComboResult:
    return deepen(
        result,
        target=target,
        pipeline=backend,
        store=store,
        index=cast("Index", Bare()),
        reporter=RecordingReporter(),
        config=config or RunConfig(),
        test_layer=LAYER,
    )


def legend_run(versions: dict[str, str], legend: str, **kw: Any) -> list[str]:
    return run_lines(
        versions,
        deep_test_event("test_legend", legend, frames=LIBRARY_FRAMES, error=LEGEND, **kw),
        deep_test_event("test_ok", "passed"),
    )


def test_a_regression_against_the_known_good_baseline_fails_the_combination(
    store: Store,
) -> None:
    target = make_target("bookworm")
    with store.run(target, backend="fake") as run_id:
        store.record(run_id, target, passed(target, BASELINE))
    backend = replaying(
        {
            HERE.id: legend_run(NEW, "failed", rerun="failed"),
            BASELINE.id: legend_run(OLD, "passed"),
        }
    )
    quick = RunConfig(timeouts=Timeouts(deep_test=5.0))
    result = run(store, backend, passed(target, HERE), target, quick)
    assert result.verdict is Verdict.RUNTIME_ERROR
    # the combination's run and its baseline's, each test limited as the settings say
    assert [(j.combo, j.test_timeout) for j in backend.jobs] == [(HERE, 5.0), (BASELINE, 5.0)]
    assert backend.test_layers == [LAYER, LAYER]  # the given layer, for both runs
    test_id = "pandas/tests/plotting/frame/test_frame.py::test_legend"
    assert result.failed_check == f"deep:pandas:{test_id}"
    assert result.error is not None
    assert "matplotlib 3.6.3 -> 3.10.9" in result.error
    names = [c.name for c in result.checks]
    assert names == ["deep:pandas", f"deep:pandas:{test_id}"]
    assert result.checks[0].verdict is CheckVerdict.PASS
    assert result.notes == (
        "deep: pandas: 2 tests in 1 modules; 1 regressions, 0 not attributed, 0 flaky",
    )
    # the baseline ran only the failing module, for pandas only
    assert [(j.combo, j.dependents, j.modules) for j in backend.jobs] == [
        (HERE, (), ()),
        (BASELINE, ("pandas",), ("pandas/tests/plotting/frame/test_frame.py",)),
    ]

    # a second run pays for neither the baseline nor the combination's own tests:
    # both outcomes come from the database (the same pins, image, layer, settings)
    backend.jobs.clear()
    again = run(store, backend, passed(target, HERE), target, quick)
    assert again.verdict is Verdict.RUNTIME_ERROR
    assert again.checks == result.checks
    assert backend.jobs == []
    # on another image the combination runs its tests again
    other = make_target("trixie")
    backend.jobs.clear()
    run(store, backend, passed(other, HERE), other)
    assert [j.combo for j in backend.jobs] == [HERE]  # another image: its own run


def test_the_shipped_tests_run_with_the_system_packages_the_smoke_run_had(
    store: Store,
) -> None:
    """A combination that passed "needs libgomp1" on bookworm runs its own tests
    and its baseline's with libgomp1 too: in the bare image lightgbm cannot load."""
    target = make_target("bookworm")
    with store.run(target, backend="fake") as run_id:  # teaches the store: bookworm needs it
        learned = dataclasses.replace(passed(target, BASELINE), added_system_deps=("libgomp1",))
        store.record(run_id, target, learned)
    backend = replaying(
        {
            HERE.id: legend_run(NEW, "failed", rerun="failed"),
            BASELINE.id: legend_run(OLD, "passed"),
        }
    )
    here = dataclasses.replace(passed(target, HERE), added_system_deps=("libfoo1",))
    assert run(store, backend, here, target).verdict is Verdict.RUNTIME_ERROR
    assert backend.deep_system_packages == [("libfoo1", "libgomp1")] * 2  # its run, the baseline's


def test_a_regression_blamed_on_an_unrequested_dependency_says_how_to_pin_it(
    store: Store,
) -> None:
    """pandas 1.5.3, matplotlib and numpy requested; the resolver chose
    python-dateutil 4.0.0, and dateutil time zones break in pandas' own code."""
    target = make_target("bookworm")
    here = dataclasses.replace(
        combo_of_versions({**NEW, "python-dateutil": "4.0.0"}),
        requested=tuple(canonicalize_name(n) for n in NEW),
    )
    # the known-good baseline: other partners (numpy), and the python-dateutil of its day
    baseline = combo_of_versions({**NEW, "numpy": "1.24.1", "python-dateutil": "2.8.2"})
    with store.run(target, backend="fake") as run_id:
        store.record(run_id, target, passed(target, baseline))
    in_pandas = [stack_frame(FRAME), stack_frame("pandas/_libs/tslibs/timezones.pyx")]
    test = "test_ts_plot_with_tz['dateutil/US/Eastern']"
    failing = deep_test_event(test, "failed", frames=in_pandas, rerun="failed", error="E")
    backend = replaying(
        {
            here.id: run_lines(NEW, failing, owners={"dateutil": "python-dateutil"}),
            baseline.id: run_lines(NEW, deep_test_event(test, "passed")),
        }
    )
    result = run(store, backend, passed(target, here), target)
    assert result.verdict is Verdict.RUNTIME_ERROR
    assert result.notes[-1] == (
        "deep: the likeliest cause, python-dateutil 2.8.2 -> 4.0.0, was not requested "
        "(the resolver chose it); to test the requested pins with the baseline's, add "
        "python-dateutil==2.8.2"
    )
    # blamed on a requested package (matplotlib) a regression adds no such note:
    # test_a_regression_against_the_known_good_baseline_fails_the_combination


def test_an_unfinished_or_killed_module_run_is_not_cached(store: Store) -> None:
    target = make_target("bookworm")
    lines = legend_run(NEW, "passed")
    killed = json.dumps(
        {"event": "module", "dependent": "pandas", "module": FRAME, "error": "timeout: 900 s"}
    )
    for events in (lines[:-1], [*lines[:-1], killed, lines[-1]]):  # no "done"; a killed module
        backend = replaying({HERE.id: events})
        run(store, backend, passed(target, HERE), target)
        run(store, backend, passed(target, HERE), target)
        assert [j.combo for j in backend.jobs] == [HERE, HERE]


def test_flaky_and_no_baseline_never_fail(store: Store, tmp_path: Path) -> None:
    target = make_target("bookworm")
    backend = replaying({HERE.id: legend_run(NEW, "failed", rerun="passed")})
    result = run(store, backend, passed(target, HERE), target)
    assert result.verdict is Verdict.PASS
    (summary,) = result.checks
    assert "0 regressions, 0 not attributed, 1 flaky" in summary.log
    assert len(backend.jobs) == 1  # a flaky test needs no baseline

    confirmed = replaying({HERE.id: legend_run(NEW, "failed", rerun="failed")})
    fresh = Store.open(f"sqlite:///{tmp_path / 'fresh.db'}")  # nothing cached
    result = run(fresh, confirmed, passed(target, HERE), target)
    assert result.verdict is Verdict.PASS  # no known-good baseline: nothing judged
    (summary,) = result.checks
    assert summary.verdict is CheckVerdict.SKIPPED
    assert summary.error is not None
    assert "no baseline" in summary.error
    assert "1 failing tests not judged" in summary.error


def test_a_runtime_failure_gets_deep_evidence_and_keeps_its_verdict(store: Store) -> None:
    target = make_target("bookworm")
    with store.run(target, backend="fake") as run_id:
        store.record(run_id, target, passed(target, BASELINE))
    backend = replaying(
        {
            HERE.id: legend_run(NEW, "failed", rerun="failed"),
            BASELINE.id: legend_run(OLD, "passed"),
        }
    )
    smoke_failed = ComboResult(
        combo=HERE,
        verdict=Verdict.RUNTIME_ERROR,
        failed_check="pandas+matplotlib:plot-kinds-options",
        error=LEGEND,
        image_id=target.image_id,
    )
    result = run(store, backend, smoke_failed, target)
    assert result.verdict is Verdict.RUNTIME_ERROR
    assert result.failed_check == "pandas+matplotlib:plot-kinds-options"
    deep = [c for c in result.checks if c.verdict is CheckVerdict.RUNTIME_ERROR]
    assert len(deep) == 1
    assert deep[0].error is not None
    assert "changed: matplotlib 3.6.3 -> 3.10.9" in deep[0].error


def test_a_failing_combination_is_not_deepened(store: Store) -> None:
    target = make_target("bookworm")
    backend = replaying({})
    failed = ComboResult(combo=HERE, verdict=Verdict.IMPORT_ERROR)
    assert run(store, backend, failed, target) is failed
    assert backend.jobs == []
