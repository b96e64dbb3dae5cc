"""A test module's outcome is kept by what its processes imported: another
combination holding the same versions of those distributions takes it without
running the module (the runner is told ``--reuse-module``); a change to anything
it imported runs it again."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any, cast

import pytest
from packaging.utils import NormalizedName

from compat.config import RunConfig
from compat.deep.running import DeepJob, DeepOutcome
from compat.deep.step import deepen
from compat.index.base import Index
from compat.model import Combo, ComboResult, DistFile, Verdict
from compat.store import Store
from tests.helpers.deep import FRAME, combo_of_versions, deep_test_event
from tests.helpers.pipeline import ScriptedPipeline
from tests.helpers.report import make_target
from tests.helpers.reporter import RecordingReporter

ALONE = "pandas/tests/test_alone.py"  # imports pandas and numpy, not matplotlib
IMPORTS = {FRAME: ["pandas", "matplotlib", "numpy", "pytest"], ALONE: ["pandas", "numpy"]}
LAYER = combo_of_versions({"pytest": "8.3.5", "hypothesis": "6.100.0"})
TARGET = make_target("bookworm")


def runner(job: DeepJob, failing: frozenset[str] = frozenset()) -> DeepOutcome:
    """The deep runner as it behaves: both modules selected, a kept one not run;
    the test of each module in ``failing`` fails."""
    versions = {str(p.name): str(p.version) for p in job.combo.pins}
    events: list[dict[str, Any]] = [
        {
            "event": "environment",
            "distributions": {
                n: {"version": v, "top_level": [n]} for n, v in sorted(versions.items())
            },
            "owners": {n: n for n in versions},
        },
        {"event": "dependent", "dependent": "pandas", "version": versions["pandas"],
         "partners": ["matplotlib", "numpy"], "foundations": ["numpy"], "selected": 2,
         "modules": 2},
    ]  # fmt: skip
    for module in (FRAME, ALONE):
        events.append({"event": "selected", "dependent": "pandas", "module": module})
    for module in (FRAME, ALONE):
        if module in job.reuse_modules:
            events.append({"event": "module", "dependent": "pandas", "module": module,
                           "reused": True})  # fmt: skip
            continue
        outcome = "failed" if module in failing else "passed"
        events.append(deep_test_event("test_one", outcome, module=module))
        events.append({"event": "module", "dependent": "pandas", "module": module, "tests": 1,
                       "duration": 1.0, "error": None, "log": None,
                       "imports": IMPORTS[module]})  # fmt: skip
    events.append({"event": "done", "counts": {}, "duration": 2.0})
    return DeepOutcome(job=job, events=tuple(json.dumps(e) for e in events))


class Bare:
    def files(self, name: NormalizedName) -> Sequence[DistFile]:
        return ()


@pytest.fixture
def store(tmp_path: Path) -> Store:
    return Store.open(f"sqlite:///{tmp_path / 'results.db'}")


def deepened(
    store: Store,
    backend: ScriptedPipeline,
    versions: dict[str, str],
    config: RunConfig = RunConfig(),
    reporter: RecordingReporter | None = None,
) -> ComboResult:
    combo: Combo = combo_of_versions(versions)
    passed = ComboResult(combo=combo, verdict=Verdict.PASS, image_id=TARGET.image_id)
    return deepen(
        passed,
        target=TARGET,
        pipeline=backend,
        store=store,
        index=cast("Index", Bare()),
        reporter=reporter or RecordingReporter(),
        config=config,
        test_layer=LAYER,
    )


def kept_by_last_run(backend: ScriptedPipeline) -> list[str]:
    """The modules the last deep job told the runner not to run."""
    return list(backend.jobs[-1].reuse_modules)


def test_a_module_is_kept_by_the_versions_it_imported(store: Store) -> None:
    backend = ScriptedPipeline(deep=runner)
    first = deepened(store, backend, {"pandas": "2.2.3", "matplotlib": "3.9.2", "numpy": "2.0.2"})
    assert first.verdict is Verdict.PASS
    assert kept_by_last_run(backend) == []

    # a new matplotlib: the module that never imported it is kept, the other runs
    moved = deepened(store, backend, {"pandas": "2.2.3", "matplotlib": "3.10.0", "numpy": "2.0.2"})
    assert kept_by_last_run(backend) == [ALONE]
    assert moved.verdict is Verdict.PASS
    assert "2 tests in 2 modules" in " ".join(moved.notes)  # the kept one counts

    # a new numpy: both imported it, both run
    deepened(store, backend, {"pandas": "2.2.3", "matplotlib": "3.10.0", "numpy": "2.1.0"})
    assert kept_by_last_run(backend) == []

    # another set of installed names (a distribution added) is another context
    deepened(
        store,
        backend,
        {"pandas": "2.2.3", "matplotlib": "3.9.2", "numpy": "2.0.2", "scipy": "1.14.1"},
    )
    assert kept_by_last_run(backend) == []


def test_kept_modules_are_run_again_to_verify_them_and_a_contradicted_one_is_never_kept_again(
    store: Store,
) -> None:
    first = {"pandas": "2.2.3", "matplotlib": "3.9.2", "numpy": "2.0.2"}
    moved = {**first, "matplotlib": "3.10.0"}
    deepened(store, ScriptedPipeline(deep=runner), first)

    # every kept module runs again and agrees: nothing said, and it stays kept
    reporter = RecordingReporter()
    agreed = deepened(
        store, ScriptedPipeline(deep=runner), moved, RunConfig(verify_reuse=1.0), reporter
    )
    assert not any("disagreement" in line for line in [*agreed.notes, *reporter.lines])
    backend = ScriptedPipeline(deep=runner)
    deepened(store, backend, {**first, "matplotlib": "3.10.3"})
    assert kept_by_last_run(backend) == [ALONE]

    # a rerun that fails where the kept outcome passed (an input it did not name)
    def now_failing(job: DeepJob) -> DeepOutcome:
        return runner(job, failing=frozenset({ALONE}))

    reporter = RecordingReporter()
    backend = ScriptedPipeline(deep=now_failing)
    other = {**first, "matplotlib": "3.10.1"}
    contradicted = deepened(store, backend, other, RunConfig(verify_reuse=1.0), reporter)
    assert kept_by_last_run(backend) == []  # verified: run again, not taken
    (said,) = [line for line in contradicted.notes if "disagreement" in line]
    assert f"deep test module {ALONE} had 0 failing tests" in said
    assert "has 1 failing now" in said
    assert said in reporter.lines

    # from then on that module is not reused under those inputs, verified or not
    backend = ScriptedPipeline(deep=runner)
    deepened(store, backend, {**first, "matplotlib": "3.10.2"})
    assert kept_by_last_run(backend) == []
