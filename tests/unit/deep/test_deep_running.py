"""compat.deep.running.DeepTier over a real pipeline and a fake backend: the deep
runner's command line as the pipeline places it (Pipeline.run_each), and the
run's end read from its parsed events."""

from __future__ import annotations

import io
import json
import tarfile
import threading
from pathlib import Path

import pytest

from compat.config import RunConfig
from compat.deep.running import DeepJob, DeepOutcome, DeepTier, deep_runner, missing_test_data
from compat.effects.container import ExecResult
from compat.harness import Pipeline
from compat.harness.wheelhouse import FileRef
from compat.model import Combo, FileKind
from compat.reporter import Reporter
from tests.helpers.harness import (
    Answer,
    FakeBackend,
    Served,
    combo_of_pins,
    exec_result,
    glibc_target,
    pin_for,
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


def test_test_data_a_wheel_leaves_out_is_read_from_its_test_packages(tmp_path: Path) -> None:
    files = {
        # matplotlib's: the tests refuse to run without their baseline images
        "mpl/tests/__init__.py": (
            "from pathlib import Path\n"
            "if not (Path(__file__).parent / 'baseline_images').exists():\n"
            "    raise OSError('The baseline image directory does not exist.')\n"
        ),
        "mpl/kit/tests/__init__.py": (
            "import os\n"
            "if not os.path.isdir(os.path.join(os.path.dirname(__file__), 'data')):\n"
            "    raise OSError('no data')\n"
        ),
        # what it looks for is there
        "other/tests/__init__.py": (
            "from pathlib import Path\n(Path(__file__).parent / 'here').exists()\n"
        ),
        "other/tests/here/x.txt": "",
        # not a test package, or nothing looked for
        "mpl/__init__.py": (
            "from pathlib import Path\n(Path(__file__).parent / 'absent').exists()\n"
        ),
        "plain/tests/__init__.py": "",
    }
    for rel, text in files.items():
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text(text)
    assert missing_test_data(tmp_path) == ["mpl/kit/tests/data", "mpl/tests/baseline_images"]
    (tmp_path / "mpl/tests/baseline_images").mkdir()
    assert missing_test_data(tmp_path) == ["mpl/kit/tests/data"]


GUARD = (
    "from pathlib import Path\n"
    "if not (Path(__file__).parent / 'baseline_images').exists():\n"
    "    raise OSError('The baseline image directory does not exist.')\n"
)


@pytest.mark.parametrize(
    ("guarded", "modules", "given"),
    [
        (True, (), True),
        (True, ("mplx/tests/test_*.py",), True),
        (True, ("pandas/tests/*",), False),  # none of its modules would run
        (False, (), False),  # its tests have what they need
    ],
)
def test_a_wheel_whose_tests_need_data_from_its_sdist_gets_the_sdist(
    tmp_path: Path, guarded: bool, modules: tuple[str, ...], given: bool
) -> None:
    served = Served()
    (tmp_path / "w").mkdir()
    files = {
        "mplx/__init__.py": "",
        "mplx/tests/__init__.py": GUARD if guarded else "",
        "mplx/tests/test_draw.py": "def test_draw():\n    pass\n",
    }
    mplx = served.add(write_wheel(tmp_path / "w", "mplx", "1.0", files))
    pytest_pin = served.add(write_wheel(tmp_path / "w", "pytest", "8.3.0"))
    sdist = tmp_path / "w" / "mplx-1.0.tar.gz"
    with tarfile.open(sdist, "w:gz") as archive:
        data = b"png"
        info = tarfile.TarInfo("mplx-1.0/lib/mplx/tests/baseline_images/test_draw/a.png")
        info.size = len(data)
        archive.addfile(info, io.BytesIO(data))
    served.files[f"/{sdist.name}"] = sdist.read_bytes()
    ref = pin_for(sdist, kind=FileKind.SDIST)
    backend = FakeBackend(lambda argv: exec_result(f"{TEST}\n{DONE}\n"))
    pipeline = Pipeline(backend, RunConfig(), cache_dir=tmp_path / "c", client=served.client())
    tier = deep_runner(pipeline)
    job = DeepJob(
        combo=combo_of_pins(mplx),
        sdists=((mplx.name, FileRef(filename=sdist.name, url=ref.url, sha256=ref.sha256)),),
        modules=modules,
        test_timeout=45.0,
        module_timeout=300.0,
    )
    (outcome,) = tier.run_deep(
        glibc_target(), [job], combo_of_pins(pytest_pin), timeout=900.0, reporter=Reporter()
    )
    assert outcome.error is None
    (argv,) = backend.executor_obj.calls
    sdists = [argv[i + 1] for i, a in enumerate(argv) if a == "--sdist"]
    assert [s.partition("=")[0] for s in sdists] == (["mplx"] if given else [])
    assert (f"/{sdist.name}" in served.requests) == given
