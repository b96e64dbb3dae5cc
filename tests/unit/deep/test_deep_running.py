"""compat.deep.running.DeepTier over a real pipeline and a fake backend: the deep
runner's command line as the pipeline places it (Pipeline.run_each), and the
run's end read from its parsed events."""

from __future__ import annotations

import json
import threading
from pathlib import Path

from compat.config import RunConfig
from compat.deep.running import DeepJob, DeepOutcome, DeepTier, deep_runner
from compat.effects.container import ExecResult
from compat.harness import Pipeline
from compat.model import Combo
from compat.reporter import Reporter
from tests.helpers.harness import (
    Answer,
    FakeBackend,
    Served,
    combo_of_pins,
    exec_result,
    glibc_target,
    sites_of,
    write_wheel,
)
from tests.helpers.reporter import RecordingReporter

TEST = json.dumps({"event": "test", "dependent": "pandas", "test": "t.py::a", "outcome": "passed"})
DONE = json.dumps({"event": "done", "duration": 2.5})


def _tier(tmp_path: Path, answer: Answer) -> tuple[DeepTier, FakeBackend, Combo, Combo]:
    served = Served()
    wheels = tmp_path / "w"
    wheels.mkdir()
    numpy = served.add(write_wheel(wheels, "numpy", "2.0.2"))
    pandas = served.add(write_wheel(wheels, "pandas", "2.2.3"))
    pytest_pin = served.add(write_wheel(wheels, "pytest", "8.3.0"))
    backend = FakeBackend(answer)
    pipeline = Pipeline(
        backend, RunConfig(jobs=2), cache_dir=tmp_path / "c", client=served.client()
    )
    tier = deep_runner(pipeline)
    assert isinstance(tier, DeepTier)
    return tier, backend, combo_of_pins(numpy, pandas), combo_of_pins(pytest_pin)


def _run(tier: DeepTier, here: Combo, layer: Combo) -> DeepOutcome:
    job = DeepJob(combo=here, test_timeout=45.0, module_timeout=300.0)
    (outcome,) = tier.run_deep(glibc_target(), [job], layer, timeout=900.0, reporter=Reporter())
    return outcome


def test_the_deep_runner_runs_beside_the_smoke_runner_with_the_test_layer_behind(
    tmp_path: Path,
) -> None:
    tier, backend, here, layer = _tier(tmp_path, lambda argv: exec_result(f"{TEST}\n{DONE}\n"))
    outcome = _run(tier, here, layer)

    assert outcome.error is None
    assert outcome.run.complete
    assert [t.test for t in outcome.run.outcomes] == ["t.py::a"]
    (argv,) = backend.executor_obj.calls
    assert argv[:4] == ["python3", "-I", "-S", "/opt/compat-smoke/sha256:base/deep/runner.py"]
    assert sites_of(argv) == [f"/store/{p.sha256}" for p in here.pins]
    tooling = [argv[i + 1] for i, a in enumerate(argv) if a == "--tooling"]
    assert tooling == [f"/store/{layer.pins[0].sha256}"]
    assert argv[argv.index("--timeout") + 1] == "45.0"
    assert argv[argv.index("--jobs") + 1] == "2"


def test_a_run_that_never_reached_its_end_did_not_finish(tmp_path: Path) -> None:
    # exit 0, but no "done" event: the runner was cut short
    tier, _, here, layer = _tier(tmp_path, lambda argv: exec_result(f"{TEST}\n"))
    outcome = _run(tier, here, layer)
    assert outcome.error is not None
    assert outcome.error.startswith("the deep runner failed (exit 0)")
    assert not outcome.run.complete
    assert len(outcome.events) == 1


def test_a_run_past_its_limit_says_so(tmp_path: Path) -> None:
    def timed_out(argv: list[str]) -> ExecResult:
        return ExecResult(exit_code=None, stdout=TEST, stderr="", duration=900.0, timed_out=True)

    tier, _, here, layer = _tier(tmp_path, timed_out)
    assert _run(tier, here, layer).error == "the deep run exceeded 900 s"


def test_deep_runs_go_one_at_a_time_counted_as_a_stage_of_their_own(tmp_path: Path) -> None:
    lock = threading.Lock()
    running: list[int] = []
    beside: list[int] = []  # at each start: how many other runs were in flight

    def answer(argv: list[str]) -> ExecResult:
        with lock:
            beside.append(len(running))
            running.append(1)
        try:
            return exec_result(f"{TEST}\n{DONE}\n")
        finally:
            with lock:
                running.pop()

    tier, _, here, layer = _tier(tmp_path, answer)
    reporter = RecordingReporter()
    jobs = [DeepJob(combo=here, test_timeout=45.0, module_timeout=float(m)) for m in (1, 2, 3)]
    outcomes = tier.run_deep(glibc_target(), jobs, layer, timeout=900.0, reporter=reporter)

    assert [o.job for o in outcomes] == jobs  # in the order given
    assert all(o.error is None for o in outcomes)
    assert beside == [0, 0, 0]
    deep = [s for s in reporter.stages if s[0] == "deep"]
    assert deep == [("deep", k, 3) for k in range(4)]


def test_each_dependent_counts_its_modules_as_the_runner_finishes_them(tmp_path: Path) -> None:
    def event(**fields: object) -> str:
        return json.dumps(fields)

    said = [
        # 40 candidate modules, 2 of them run
        event(event="dependent", dependent="pandas", selected=40, modules=2),
        event(event="selected", dependent="pandas", module="pandas/tests/a.py"),
        event(event="selected", dependent="pandas", module="pandas/tests/b.py"),
        TEST,
        event(event="module", dependent="pandas", module="pandas/tests/a.py", tests=1),
        "not an event: a cut-off line",
        event(event="module", dependent="pandas", module="pandas/tests/b.py", reused=True),
        # a dependent with nothing selected has no progress line
        event(event="dependent", dependent="numpy", selected=3, modules=0),
        DONE,
    ]
    tier, _, here, layer = _tier(tmp_path, lambda argv: exec_result("\n".join(said) + "\n"))
    reporter = RecordingReporter()
    job = DeepJob(combo=here, test_timeout=45.0, module_timeout=300.0)
    (outcome,) = tier.run_deep(glibc_target(), [job], layer, timeout=900.0, reporter=reporter)

    assert outcome.error is None
    modules = [s for s in reporter.stages if s[0].startswith("deep ")]
    assert modules == [("deep pandas", 0, 2), ("deep pandas", 1, 2), ("deep pandas", 2, 2)]
