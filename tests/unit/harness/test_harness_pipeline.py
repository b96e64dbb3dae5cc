"""The shared flow with a fake runtime: composition, pre-run verdicts, delivery,
system-package retries and cleanup."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from pathlib import Path

import pytest

from compat.config import RunConfig, Timeouts
from compat.effects.container import ExecResult
from compat.errors import (
    BuildFailed,
    ExitCode,
    FilesUnavailable,
    ImageBuildFailed,
    OfflineCacheMiss,
)
from compat.harness import Pipeline, prerun_failures
from compat.harness.backend import ImageInfo
from compat.harness.builds import BuildRecord
from compat.model import CheckVerdict, Combo, ComboResult, FileKind, Pin, Verdict
from compat.reporter import Reporter
from compat.smoke.checks import builtin_checks
from compat.smoke.isolate import OUT_OF_MEMORY
from compat.store import Store, sqlite_url
from tests.helpers.harness import (
    FakeBackend,
    Served,
    combo_of_pins,
    done_event,
    elf_needing,
    exec_result,
    glibc_target,
    passing_suite,
    pin_for,
    result_event,
    runner_stdout,
    sites_of,
    start_event,
    write_wheel,
)
from tests.helpers.reporter import RecordingReporter

GOMP = "ImportError: libgomp.so.1: cannot open shared object file: No such file or directory"


@pytest.fixture
def served() -> Served:
    return Served()


def _backend(backend: FakeBackend, served: Served, tmp_path: Path, **options: object) -> Pipeline:
    config = RunConfig(**options)  # type: ignore[arg-type]
    return Pipeline(backend, config, cache_dir=tmp_path / "cache", client=served.client())


def _run(
    pipeline: Pipeline, combos: list[Combo]
) -> tuple[list[ComboResult], list[ComboResult], list[tuple[str, int, int]]]:
    delivered: list[ComboResult] = []
    reporter = RecordingReporter()
    results = pipeline.run(glibc_target(), combos, on_result=delivered.append, reporter=reporter)
    return results, delivered, reporter.stages


def test_sites_are_composed_from_the_store_in_pin_order(tmp_path: Path, served: Served) -> None:
    wheels = tmp_path / "w"
    wheels.mkdir()
    numpy = served.add(write_wheel(wheels, "numpy", "2.0.2"))
    pandas = served.add(write_wheel(wheels, "pandas", "2.2.3"))
    old_numpy = served.add(write_wheel(wheels, "numpy", "1.26.4"))
    combos = [combo_of_pins(numpy, pandas, requested=["pandas"]), combo_of_pins(old_numpy, pandas)]
    runtime = FakeBackend(lambda argv: exec_result(passing_suite("import")))
    results, delivered, stages = _run(_backend(runtime, served, tmp_path), combos)

    assert [r.verdict for r in results] == [Verdict.PASS, Verdict.PASS]
    assert [r.combo for r in results] == combos  # in the order given
    assert sorted(r.combo.id for r in delivered) == sorted(c.id for c in combos)
    calls = {tuple(sites_of(c)): c for c in runtime.executor_obj.calls}
    assert set(calls) == {
        (f"/store/{numpy.sha256}", f"/store/{pandas.sha256}"),
        (f"/store/{old_numpy.sha256}", f"/store/{pandas.sha256}"),
    }
    first = calls[(f"/store/{numpy.sha256}", f"/store/{pandas.sha256}")]
    assert first[:4] == ["python3", "-I", "-S", "/opt/compat-smoke/sha256:base/runner.py"]
    assert first[first.index("--package") + 1] == "pandas"
    # each file fetched once, each wheel unpacked once, compiled once for the interpreter
    assert sorted(served.requests) == sorted({f"/{p.filename}" for c in combos for p in c.pins})
    assert len(runtime.compiled) == 1
    assert len(runtime.compiled[0][1]) == 3
    assert ("run", 2, 2) in stages
    assert ("fetch", 3, 3) in stages

    # a second scan reuses everything: no download, no compile
    runtime2 = FakeBackend(lambda argv: exec_result(passing_suite("import")))
    _run(_backend(runtime2, served, tmp_path), combos)
    assert len(served.requests) == 3
    assert runtime2.compiled == []


def test_the_runner_command_carries_flags_timeout_and_exec(tmp_path: Path, served: Served) -> None:
    wheels = tmp_path / "w"
    wheels.mkdir()
    numpy = served.add(write_wheel(wheels, "numpy", "2.0.2"))
    backend = FakeBackend(lambda argv: exec_result(passing_suite("import")))
    pipeline = _backend(
        backend, served, tmp_path, timeouts=Timeouts(check=30.0), exec_cmd=("python", "-c", "pass")
    )
    _run(pipeline, [combo_of_pins(numpy)])
    (argv,) = backend.executor_obj.calls
    # the interpreter's flags before the script, then what compat.smoke.runner_argv adds
    assert argv[:4] == ["python3", "-I", "-S", "/opt/compat-smoke/sha256:base/runner.py"]
    assert argv[argv.index("--timeout") + 1] == "30.0"
    assert argv[argv.index("--exec") :] == ["--exec", "--", "python", "-c", "pass"]


def test_depth_import_runs_only_the_import_checks(tmp_path: Path, served: Served) -> None:
    from compat.config import smoke_only
    from compat.model import Depth

    wheels = tmp_path / "w"
    wheels.mkdir()
    numpy = served.add(write_wheel(wheels, "numpy", "2.0.2"))
    backend = FakeBackend(lambda argv: exec_result(passing_suite("import")))
    pipeline = _backend(backend, served, tmp_path, depth=Depth.IMPORT)
    _run(pipeline, [combo_of_pins(numpy)])
    (argv,) = backend.executor_obj.calls
    assert argv[argv.index("--only") + 1] == "import:*"
    assert smoke_only(Depth.SMOKE) == smoke_only(Depth.DEEP) == ()


def _not_all_fetched(
    pipeline: Pipeline, combos: list[Combo]
) -> tuple[list[ComboResult], FilesUnavailable]:
    """What a run delivered before it ended saying what it could not fetch."""
    delivered: list[ComboResult] = []
    with pytest.raises(FilesUnavailable) as raised:
        pipeline.run(glibc_target(), combos, on_result=delivered.append, reporter=Reporter())
    return delivered, raised.value


def test_a_file_that_did_not_fetch_leaves_its_combinations_unrun_and_unrecorded(
    tmp_path: Path, served: Served
) -> None:
    w = tmp_path / "w"
    w.mkdir()
    good = served.add(write_wheel(w, "good", "1.0"))
    gone = pin_for(write_wheel(w, "gone", "1.0"))  # not served: 404
    runtime = FakeBackend(lambda argv: exec_result(passing_suite("import")))
    # a download says nothing of whether packages work together: no verdict for
    # the combination needing it, and the run ends saying so, once the others ran
    delivered, raised = _not_all_fetched(
        _backend(runtime, served, tmp_path), [combo_of_pins(good, gone), combo_of_pins(good)]
    )
    assert [(r.combo.pins, r.verdict) for r in delivered] == [((good,), Verdict.PASS)]
    assert raised.not_run == 1
    assert raised.exit_code == ExitCode.INDEX_UNAVAILABLE
    assert "gone-1.0-py3-none-any.whl" in str(raised)
    assert "404" in str(raised)
    assert len(runtime.executor_obj.calls) == 1


def test_an_sdist_whose_build_requirements_were_out_of_reach_gives_no_verdict(
    tmp_path: Path, served: Served
) -> None:
    w = tmp_path / "w"
    w.mkdir()
    good = served.add(write_wheel(w, "good", "1.0"))
    sdist_file = w / "native-1.0.tar.gz"
    sdist_file.write_bytes(b"sdist bytes")
    sdist = served.add(sdist_file, FileKind.SDIST)
    down = BuildFailed(sdist, "a build requirement could not be fetched: 503", unreachable=True)
    runtime = FakeBackend(
        lambda argv: exec_result(passing_suite("import")), builds={sdist.filename: down}
    )
    delivered, raised = _not_all_fetched(
        _backend(runtime, served, tmp_path), [combo_of_pins(good, sdist), combo_of_pins(good)]
    )
    assert [r.verdict for r in delivered] == [Verdict.PASS]
    assert raised.problems == ["native==1.0 (sdist): a build requirement could not be fetched: 503"]
    assert not list((tmp_path / "cache" / "builds").rglob("*.json"))  # tried again next time


def test_offline_the_files_come_from_the_cache_or_the_run_names_what_it_lacks(
    tmp_path: Path, served: Served
) -> None:
    w = tmp_path / "w"
    w.mkdir()
    kept = served.add(write_wheel(w, "kept", "1.0"))
    missing = served.add(write_wheel(w, "missing", "1.0"))
    runtime = FakeBackend(lambda argv: exec_result(passing_suite("import")))
    _run(_backend(runtime, served, tmp_path), [combo_of_pins(kept)])  # fills the cache
    fetched = len(served.requests)

    offline = Pipeline(
        runtime, RunConfig(), cache_dir=tmp_path / "cache", client=served.client(), cache_only=True
    )
    with pytest.raises(OfflineCacheMiss) as raised:
        _run(offline, [combo_of_pins(kept, missing), combo_of_pins(kept)])
    assert raised.value.missing == [f"file {missing.filename} ({missing.url})"]
    results, _, _ = _run(offline, [combo_of_pins(kept)])
    assert [r.verdict for r in results] == [Verdict.PASS]
    assert len(served.requests) == fetched  # nothing downloaded


def test_sdist_is_built_once_and_its_wheel_used(tmp_path: Path, served: Served) -> None:
    w = tmp_path / "w"
    w.mkdir()
    sdist_file = w / "native-1.0.tar.gz"
    sdist_file.write_bytes(b"sdist bytes")
    sdist = served.add(sdist_file, FileKind.SDIST)
    broken_file = w / "broken-2.0.tar.gz"
    broken_file.write_bytes(b"broken sdist")
    broken = served.add(broken_file, FileKind.SDIST)
    built = write_wheel(tmp_path, "native", "1.0")
    runtime = FakeBackend(
        lambda argv: exec_result(passing_suite("import")),
        builds={sdist.filename: built, broken.filename: "error: no C compiler"},
    )
    combos = [combo_of_pins(sdist), combo_of_pins(broken), combo_of_pins(sdist, broken)]
    reporter = RecordingReporter()
    results = _backend(runtime, served, tmp_path).run(
        glibc_target(), combos, on_result=lambda _: None, reporter=reporter
    )
    stages = reporter.stages
    # a build says when it starts and how it ended: a log shows minutes of building
    assert [line for line in reporter.lines if "buil" in line] == [
        "building native==1.0 from its source distribution (build 1 of 2)",
        "built native==1.0 in 0 s",
        "building broken==2.0 from its source distribution (build 2 of 2)",
        "failed to build broken==2.0 in 2 s",
    ]
    assert [r.verdict for r in results] == [
        Verdict.PASS,
        Verdict.BUILD_FAILED,
        Verdict.BUILD_FAILED,
    ]
    assert results[1].error == "broken==2.0 (sdist): error: no C compiler"
    assert results[1].log == "compiler says no"
    assert results[1].duration == 1.5
    assert sorted(runtime.built) == [broken.filename, sdist.filename]
    (call,) = runtime.executor_obj.calls
    from tests.helpers.harness import sha256_of

    assert sites_of(call) == [f"/store/{sha256_of(built)}"]
    assert ("build", 2, 2) in stages

    # builds are cached per (sdist, image): failures too, and a cached one says nothing
    runtime2 = FakeBackend(lambda argv: exec_result(passing_suite("import")), builds={})
    quiet = RecordingReporter()
    results2 = _backend(runtime2, served, tmp_path).run(
        glibc_target(), combos, on_result=lambda _: None, reporter=quiet
    )
    assert not [line for line in quiet.lines if "buil" in line]
    assert runtime2.built == []
    assert [r.verdict for r in results2] == [r.verdict for r in results]


def test_prerun_failures_without_a_build_record() -> None:
    sdist = Pin.from_json(
        {
            "name": "x",
            "version": "1",
            "filename": "x-1.tar.gz",
            "url": "u",
            "sha256": "ab" * 32,
            "kind": "sdist",
        }
    )
    ready, failed = prerun_failures(
        [combo_of_pins(sdist)], builds={}, unpack_failed={}, backend="fake"
    )
    assert ready == []
    assert failed[0].verdict is Verdict.BUILD_FAILED
    ok_record = BuildRecord(ok=True, duration=1, wheel_sha256="cd" * 32, wheel_filename="x.whl")
    ready, failed = prerun_failures(
        [combo_of_pins(sdist)],
        builds={sdist.sha256: ok_record},
        unpack_failed={"cd" * 32: "bad RECORD"},
        backend="fake",
    )
    assert failed[0].verdict is Verdict.INSTALL_FAILED
    assert "bad RECORD" in (failed[0].error or "")


def test_corrupt_wheel_is_install_failed(tmp_path: Path, served: Served) -> None:
    w = tmp_path / "w"
    w.mkdir()
    bad = w / "bad-1.0-py3-none-any.whl"
    bad.write_bytes(b"not a zip")
    pin = served.add(bad)
    runtime = FakeBackend(lambda argv: exec_result(passing_suite("import")))
    results, _, _ = _run(_backend(runtime, served, tmp_path), [combo_of_pins(pin)])
    assert results[0].verdict is Verdict.INSTALL_FAILED
    assert runtime.executor_obj.calls == []


def _lightgbm_wheel(directory: Path, version: str) -> Path:
    """A lightgbm wheel whose compiled library links against the system's libgomp, as
    the manylinux wheels do."""
    return write_wheel(
        directory,
        "lightgbm",
        version,
        {
            "lightgbm/__init__.py": f"VERSION = {version!r}\n",
            "lightgbm/lib/lib_lightgbm.so": elf_needing("libgomp.so.1", "libc.so.6"),
        },
    )


def _lightgbm_answer(argv: list[str]) -> ExecResult:
    if "/opt/compat-smoke/sha256:derived/runner.py" in argv:
        return exec_result(passing_suite("import lightgbm"))
    return exec_result(
        runner_stdout(
            start_event("import lightgbm"),
            result_event("import lightgbm", "import-error", GOMP),
            done_event(),
        )
    )


def test_without_system_deps_a_missing_library_is_reported_with_its_package(
    tmp_path: Path, served: Served
) -> None:
    w = tmp_path / "w"
    w.mkdir()
    pin = served.add(_lightgbm_wheel(w, "4.6.0"))
    runtime = FakeBackend(_lightgbm_answer)
    results, delivered, _ = _run(
        _backend(runtime, served, tmp_path, add_system_deps=False), [combo_of_pins(pin)]
    )
    (r,) = results
    assert r.verdict is Verdict.IMPORT_ERROR
    assert r.system_deps == ("libgomp1",)
    assert r.failed_check == "import lightgbm"
    assert "libgomp1" in (r.error or "")
    assert runtime.derived == []
    assert delivered == results


@pytest.mark.parametrize("system_deps", [True, False])
def test_packages_the_image_is_known_to_need_are_installed_before_the_first_run(
    tmp_path: Path, served: Served, system_deps: bool
) -> None:
    w = tmp_path / "w"
    w.mkdir()
    pin = served.add(_lightgbm_wheel(w, "4.6.0"))
    runtime = FakeBackend(_lightgbm_answer)
    pipeline = _backend(runtime, served, tmp_path, add_system_deps=system_deps)
    delivered: list[ComboResult] = []
    (r,) = pipeline.run(
        glibc_target(),
        [combo_of_pins(pin)],
        on_result=delivered.append,
        reporter=RecordingReporter(),
        system_packages=("libgomp1",),
    )
    (argv,) = runtime.executor_obj.calls  # one run, never a first one that fails
    if system_deps:
        assert "/opt/compat-smoke/sha256:derived/runner.py" in argv
        assert (r.verdict, r.added_system_deps) == (Verdict.PASS, ("libgomp1",))
    else:  # --no-system-deps: the bare image, whatever is known
        assert runtime.derived == []
        assert (r.verdict, r.added_system_deps) == (Verdict.IMPORT_ERROR, ())
    assert delivered == [r]


def test_a_known_package_is_noted_only_on_combinations_whose_files_need_it(
    tmp_path: Path, served: Served
) -> None:
    """Every run happens where libgomp1 is installed (the image is known to need it);
    only lightgbm's library names libgomp.so.1: numpy alone never needs it."""
    w = tmp_path / "w"
    w.mkdir()
    lightgbm = served.add(_lightgbm_wheel(w, "4.6.0"))
    numpy = served.add(
        write_wheel(w, "numpy", "2.0.2", {"numpy/_core.so": elf_needing("libm.so.6")})
    )
    runtime = FakeBackend(_lightgbm_answer)
    results = _backend(runtime, served, tmp_path).run(
        glibc_target(),
        [combo_of_pins(numpy), combo_of_pins(numpy, lightgbm)],
        on_result=lambda _: None,
        reporter=RecordingReporter(),
        system_packages=("libgomp1",),
    )
    assert [(r.verdict, r.added_system_deps) for r in results] == [
        (Verdict.PASS, ()),
        (Verdict.PASS, ("libgomp1",)),
    ]
    assert all(r.image_id == "sha256:derived" for r in results)  # both ran where it is


def test_by_default_a_missing_library_is_installed_and_the_combination_retried(
    tmp_path: Path, served: Served
) -> None:
    w = tmp_path / "w"
    w.mkdir()
    pin = served.add(_lightgbm_wheel(w, "4.6.0"))
    runtime = FakeBackend(_lightgbm_answer)
    results, delivered, stages = _run(_backend(runtime, served, tmp_path), [combo_of_pins(pin)])
    (r,) = results
    assert r.verdict is Verdict.PASS
    assert r.added_system_deps == ("libgomp1",)
    assert r.image_id == "sha256:derived"
    assert runtime.derived == [("libgomp1",)]
    assert delivered == results  # the held first result is replaced, not delivered too
    # the retry is counted apart: no stage ever reports more done than its total
    assert [s for s in stages if s[0] in ("run", "retry")] == [
        ("run", 0, 1),
        ("run", 1, 1),
        ("retry", 0, 1),
        ("retry", 1, 1),
    ]
    assert all(done <= total for _, done, total in stages)


def test_a_library_the_first_run_finds_missing_is_installed_before_the_others_run(
    tmp_path: Path, served: Served
) -> None:
    w = tmp_path / "w"
    w.mkdir()
    pins = [served.add(_lightgbm_wheel(w, f"4.{i}.0")) for i in range(4)]
    runtime = FakeBackend(_lightgbm_answer)
    reporter = RecordingReporter()
    pipeline = _backend(runtime, served, tmp_path, jobs=2)
    results = pipeline.run(
        glibc_target(),
        [combo_of_pins(p) for p in pins],
        on_result=lambda _: None,
        reporter=reporter,
    )
    assert all((r.verdict, r.added_system_deps) == (Verdict.PASS, ("libgomp1",)) for r in results)
    bare = [a for a in runtime.executor_obj.calls if "/opt/compat-smoke/sha256:base/runner.py" in a]
    assert len(bare) == 1  # the first alone; the others ran where libgomp1 is installed
    assert len(runtime.executor_obj.calls) == 5  # and the first once more there
    assert "installing libgomp1, which the first run found this image needs" in " ".join(
        reporter.lines
    )


def test_add_system_deps_retries_when_another_check_fails_worse(
    tmp_path: Path, served: Served
) -> None:
    w = tmp_path / "w"
    w.mkdir()
    pin = served.add(_lightgbm_wheel(w, "4.6.0"))

    def answer(argv: list[str]) -> ExecResult:
        if "/opt/compat-smoke/sha256:derived/runner.py" in argv:
            return exec_result(passing_suite("import lightgbm"))
        return exec_result(
            runner_stdout(
                start_event("import lightgbm"),
                result_event("import lightgbm", "import-error", GOMP),
                start_event("other"),
                result_event("other", "runtime-error", "AssertionError"),
                done_event(),
            )
        )

    runtime = FakeBackend(answer)
    results, delivered, _ = _run(
        _backend(runtime, served, tmp_path, add_system_deps=True), [combo_of_pins(pin)]
    )
    (r,) = results
    assert runtime.derived == [("libgomp1",)]
    assert r.added_system_deps == ("libgomp1",)
    assert r.verdict is Verdict.PASS
    assert delivered == results


def test_add_system_deps_without_package_manager_keeps_the_failure(
    tmp_path: Path, served: Served
) -> None:
    w = tmp_path / "w"
    w.mkdir()
    pin = served.add(_lightgbm_wheel(w, "4.6.0"))
    runtime = FakeBackend(_lightgbm_answer, derive=False)
    results, delivered, _ = _run(
        _backend(runtime, served, tmp_path, add_system_deps=True), [combo_of_pins(pin)]
    )
    assert results[0].verdict is Verdict.IMPORT_ERROR
    assert results[0].notes == (
        "system packages libgomp1 not added: the image has no package manager to install them",
    )
    assert delivered == results


def test_a_failed_system_package_install_keeps_the_failure_and_says_why(
    tmp_path: Path, served: Served
) -> None:
    w = tmp_path / "w"
    w.mkdir()
    pin = served.add(_lightgbm_wheel(w, "4.6.0"))

    class NoInstall(FakeBackend):
        def with_system_packages(
            self, info: ImageInfo, packages: Sequence[str]
        ) -> ImageInfo | None:
            raise ImageBuildFailed("compat-sysdeps/x", "E: Unable to locate package", [])

    results, delivered, _ = _run(
        _backend(NoInstall(_lightgbm_answer), served, tmp_path, add_system_deps=True),
        [combo_of_pins(pin)],
    )
    (r,) = results
    assert r.verdict is Verdict.IMPORT_ERROR
    assert r.notes == (
        "system packages libgomp1 not added: installing them failed: E: Unable to locate package",
    )
    assert delivered == results


def _interrupted(pipeline: Pipeline, combos: list[Combo]) -> list[ComboResult]:
    """What a run that Ctrl-C ends delivered before it ended."""
    delivered: list[ComboResult] = []
    with pytest.raises(KeyboardInterrupt):
        pipeline.run(glibc_target(), combos, on_result=delivered.append, reporter=Reporter())
    return delivered


def test_an_interrupted_retry_delivers_nothing_for_the_combinations_in_it(
    tmp_path: Path, served: Served
) -> None:
    w = tmp_path / "w"
    w.mkdir()
    gbm = served.add(_lightgbm_wheel(w, "4.6.0"))
    other = served.add(write_wheel(w, "numpy", "2.0.0"))

    def answer(argv: list[str]) -> ExecResult:
        if "/opt/compat-smoke/sha256:derived/runner.py" in argv:
            raise KeyboardInterrupt
        if any(gbm.sha256 in s for s in sites_of(argv)):
            return _lightgbm_answer(argv)
        return exec_result(passing_suite("import numpy"))

    pipeline = _backend(FakeBackend(answer), served, tmp_path, add_system_deps=True, jobs=1)
    delivered = _interrupted(pipeline, [combo_of_pins(other), combo_of_pins(gbm)])
    assert [r.combo.requested for r in delivered] == [("numpy",)]  # the final one only


def test_interrupted_exec_is_run_again(tmp_path: Path, served: Served) -> None:
    w = tmp_path / "w"
    w.mkdir()
    pin = served.add(write_wheel(w, "a", "1.0"))
    answers = [
        ExecResult(exit_code=None, stdout="", stderr="", duration=0.1, interrupted=True),
        exec_result(passing_suite("import a")),
    ]
    runtime = FakeBackend(lambda argv: answers.pop(0))
    results, _, _ = _run(_backend(runtime, served, tmp_path), [combo_of_pins(pin)])
    assert results[0].verdict is Verdict.PASS
    assert len(runtime.executor_obj.calls) == 2


@pytest.mark.parametrize("exc", [KeyboardInterrupt, RuntimeError])
def test_executor_is_closed_when_the_caller_interrupts(
    tmp_path: Path, served: Served, exc: type[BaseException]
) -> None:
    w = tmp_path / "w"
    w.mkdir()
    pins = [served.add(write_wheel(w, f"p{i}", "1.0")) for i in range(4)]
    runtime = FakeBackend(lambda argv: exec_result(passing_suite("import")))
    backend = _backend(runtime, served, tmp_path, jobs=2)

    def on_result(_: ComboResult) -> None:
        raise exc("stop")

    with pytest.raises(exc):
        backend.run(
            glibc_target(),
            [combo_of_pins(p) for p in pins],
            on_result=on_result,
            reporter=Reporter(),
        )
    assert runtime.opened == runtime.closed == 1


def test_a_check_kept_with_the_same_inputs_is_not_run_again(tmp_path: Path, served: Served) -> None:
    """The first combination's check imported numpy only; the second has the same
    numpy and another pandas: the runner is told to reuse it and the kept outcome
    stands in, naming the result that ran it. --no-reuse runs it again."""
    wheels = tmp_path / "w"
    wheels.mkdir()
    numpy = served.add(write_wheel(wheels, "numpy", "2.0.2"))
    first, second = (served.add(write_wheel(wheels, "pandas", v)) for v in ("2.2.3", "2.1.4"))
    name = builtin_checks()[0].name

    def answer(argv: list[str]) -> ExecResult:
        if "--reuse" in argv:
            reused = argv[argv.index("--reuse") + 1]
            return exec_result(runner_stdout({"event": "reuse", "check": reused}, done_event()))
        ran = {**result_event(name, log="checked"), "inputs": {"numpy": "2.0.2"}}
        return exec_result(runner_stdout(start_event(name), ran, done_event(**{"pass": 1})))

    with Store.open(sqlite_url(tmp_path / "results.db")) as store:
        backend = FakeBackend(answer)
        pipeline = _backend(backend, served, tmp_path)
        run_id = store.start_run(glibc_target(), backend="docker")

        def run(*pins: Pin) -> ComboResult:
            (done_,) = pipeline.run(
                glibc_target(), [combo_of_pins(*pins)],
                on_result=lambda r: None, reporter=Reporter(), kept=store,
            )  # fmt: skip
            store.record(run_id, glibc_target(), done_)
            return done_

        ran = run(numpy, first)
        (check,) = ran.checks
        assert (check.inputs, check.reused_from) == ((("numpy", "2.0.2"),), None)
        taken = run(numpy, second)
        (check,) = taken.checks
        assert check.reused_from is not None
        assert (check.verdict, check.inputs) == (CheckVerdict.PASS, (("numpy", "2.0.2"),))
        assert "checked" in check.log
        assert [c.count("--reuse") for c in backend.executor_obj.calls] == [0, 1]

        fresh = _backend(FakeBackend(answer), served, tmp_path, reuse=False)
        (again,) = fresh.run(
            glibc_target(), [combo_of_pins(numpy, second)],
            on_result=lambda r: None, reporter=Reporter(), kept=store,
        )  # fmt: skip
        assert again.checks[0].reused_from is None

    # in one run, one at a time: the second starts once the first is recorded
    with Store.open(sqlite_url(tmp_path / "one-run.db")) as store:
        run_id = store.start_run(glibc_target(), backend="docker")
        one = _backend(FakeBackend(answer), served, tmp_path, jobs=1)

        def record(result: ComboResult) -> None:
            store.record(run_id, glibc_target(), result)

        both = one.run(
            glibc_target(), [combo_of_pins(numpy, first), combo_of_pins(numpy, second)],
            on_result=record, reporter=Reporter(), kept=store,
        )  # fmt: skip
        assert [r.checks[0].reused_from is None for r in both] == [True, False]


def _suite_timing_out(argv: list[str], *, slow_until: float) -> ExecResult:
    """numpy's import passes; pandas:slow times out while the check limit is below
    ``slow_until``; a reused check is reused as the runner does."""
    limit = float(argv[argv.index("--timeout") + 1])
    reuse = {argv[i + 1] for i, a in enumerate(argv) if a == "--reuse"}
    items: list[dict[str, object]] = []
    for check in ("import:numpy", "pandas:fast"):
        if check in reuse:
            items.append({"event": "reuse", "check": check})
        else:
            items += [start_event(check), result_event(check)]
    if limit < slow_until:
        items += [start_event("pandas:slow"), result_event("pandas:slow", "timeout", "ran out")]
    else:
        items += [start_event("pandas:slow"), result_event("pandas:slow")]
    return exec_result(runner_stdout(*items, done_event()))


@pytest.mark.parametrize("slow_until", [50.0, 1000.0])
def test_a_timeout_is_run_again_with_twice_the_time_and_persists_only_as_undecided(
    tmp_path: Path, served: Served, slow_until: float
) -> None:
    wheels = tmp_path / "w"
    wheels.mkdir()
    numpy = served.add(write_wheel(wheels, "numpy", "2.0.2"))
    backend = FakeBackend(lambda argv: _suite_timing_out(argv, slow_until=slow_until))
    pipeline = _backend(backend, served, tmp_path, timeouts=Timeouts(check=30.0))
    (result,), _delivered, _ = _run(pipeline, [combo_of_pins(numpy)])

    first, again = backend.executor_obj.calls
    assert first[first.index("--timeout") + 1] == "30.0"
    assert again[again.index("--timeout") + 1] == "60.0"
    # what passed the first time is kept, not run again
    assert {again[i + 1] for i, a in enumerate(again) if a == "--reuse"} == {
        "import:numpy",
        "pandas:fast",
    }
    assert {c.name: c.verdict for c in result.checks} == {
        "import:numpy": CheckVerdict.PASS,
        "pandas:fast": CheckVerdict.PASS,
        "pandas:slow": CheckVerdict.PASS if slow_until < 60 else CheckVerdict.TIMEOUT,
    }
    if slow_until < 60:  # the machine was slow, the packages fine
        assert result.verdict is Verdict.PASS
        assert any("timed out; run again alone with twice the time" in n for n in result.notes)
    else:
        assert result.verdict is Verdict.TIMEOUT
        assert result.verdict.undecided
        assert not result.verdict.ok
        assert any("undecided, not an incompatibility" in n for n in result.notes)


@pytest.mark.parametrize("again", [False, True], ids=["beside-another", "alone-too"])
def test_a_check_killed_at_the_memory_limit_is_run_again_alone(
    tmp_path: Path, served: Served, again: bool
) -> None:
    wheels = tmp_path / "w"
    wheels.mkdir()
    numpy = served.add(write_wheel(wheels, "numpy", "2.0.2"))
    killed = f"{OUT_OF_MEMORY}: the environment reached its memory limit"

    def answer(argv: list[str]) -> ExecResult:
        first = argv[argv.index("--timeout") + 1] == "30.0"
        if not (first or again):
            return exec_result(passing_suite("import:numpy", "numpy:big"))
        return exec_result(
            runner_stdout(
                start_event("import:numpy"),
                result_event("import:numpy"),
                start_event("numpy:big"),
                result_event("numpy:big", "crash", killed),
                done_event(**{"pass": 1, "crash": 1}),
            )
        )

    backend = FakeBackend(answer)
    pipeline = _backend(backend, served, tmp_path, timeouts=Timeouts(check=30.0))
    (result,), _delivered, _ = _run(pipeline, [combo_of_pins(numpy)])

    assert len(backend.executor_obj.calls) == 2  # the second one alone, as a timeout's
    if again:  # a need of its own, said as one
        assert result.verdict is Verdict.CRASH
        assert any("a larger --memory decides it" in n for n in result.notes)
    else:  # the memory another run took, not the packages
        assert result.verdict is Verdict.PASS
        assert any("was killed at the memory limit; run again alone" in n for n in result.notes)


class _Timeline:
    """Answers as ``_suite_timing_out`` for the combination with ``slow`` in its
    sites (else every check passes) and notes, for each exec, the sites it ran, its
    check limit and which other execs were in flight when it started."""

    def __init__(self, slow: str) -> None:
        self.slow = slow
        self.running: set[int] = set()
        self.started: list[tuple[str, str, set[int]]] = []  # site, limit, others running
        self.ended: list[int] = []  # exec numbers, in the order they ended
        self.lock = threading.Lock()

    def __call__(self, argv: list[str]) -> ExecResult:
        site, limit = sites_of(argv)[0], argv[argv.index("--timeout") + 1]
        with self.lock:
            number = len(self.started)
            self.started.append((site, limit, set(self.running)))
            self.running.add(number)
        try:
            if self.slow in site:
                return _suite_timing_out(argv, slow_until=50.0)
            return exec_result(passing_suite("import:numpy"))
        finally:
            with self.lock:
                self.running.discard(number)
                self.ended.append(number)


def test_a_timeout_is_run_again_alone_once_the_other_combinations_are_done(
    tmp_path: Path, served: Served
) -> None:
    wheels = tmp_path / "w"
    wheels.mkdir()
    pins = [served.add(write_wheel(wheels, "numpy", v)) for v in ("2.0.2", "2.1.0", "1.26.4")]
    timeline = _Timeline(slow=pins[0].sha256)
    pipeline = _backend(
        FakeBackend(timeline), served, tmp_path, jobs=2, timeouts=Timeouts(check=30.0)
    )
    results, delivered, stages = _run(pipeline, [combo_of_pins(p) for p in pins])

    assert [r.verdict for r in results] == [Verdict.PASS] * 3
    assert any("run again alone with twice the time" in n for n in results[0].notes)
    # the slow one first timed out, and was delivered last, after its rerun
    assert [limit for site, limit, _ in timeline.started if pins[0].sha256 in site] == [
        "30.0",
        "60.0",
    ]
    assert delivered[-1].combo == results[0].combo
    rerun = len(timeline.started) - 1
    site, limit, beside = timeline.started[rerun]
    assert (pins[0].sha256 in site, limit) == (True, "60.0")
    # it started once every other run had ended, and nothing ran beside it
    assert timeline.ended[:rerun] == sorted(timeline.ended[:rerun])
    assert set(timeline.ended[:rerun]) == set(range(rerun))
    assert beside == set()
    assert ("rerun", 1, 1) in stages
    assert ("run", 3, 3) in stages


def test_a_timeout_interrupted_before_its_rerun_is_not_recorded(
    tmp_path: Path, served: Served
) -> None:
    wheels = tmp_path / "w"
    wheels.mkdir()
    slow, quick = (served.add(write_wheel(wheels, "numpy", v)) for v in ("2.0.2", "2.1.0"))

    def answer(argv: list[str]) -> ExecResult:
        if argv[argv.index("--timeout") + 1] == "60.0":
            raise KeyboardInterrupt  # Ctrl-C as the rerun starts
        if slow.sha256 in sites_of(argv)[0]:
            return _suite_timing_out(argv, slow_until=50.0)
        return exec_result(passing_suite("import:numpy"))

    pipeline = _backend(FakeBackend(answer), served, tmp_path, timeouts=Timeouts(check=30.0))
    delivered = _interrupted(pipeline, [combo_of_pins(slow), combo_of_pins(quick)])
    assert [r.combo.pins for r in delivered] == [(quick,)]


def test_a_retry_with_system_packages_that_times_out_is_run_again_where_it_ran(
    tmp_path: Path, served: Served
) -> None:
    def answer(argv: list[str]) -> ExecResult:
        if "/opt/compat-smoke/sha256:derived/runner.py" in argv:
            return _suite_timing_out(argv, slow_until=50.0)
        return _lightgbm_answer(argv)

    w = tmp_path / "w"
    w.mkdir()
    pin = served.add(_lightgbm_wheel(w, "4.6.0"))
    runtime = FakeBackend(answer)
    pipeline = _backend(runtime, served, tmp_path, timeouts=Timeouts(check=30.0))
    (r,), delivered, stages = _run(pipeline, [combo_of_pins(pin)])

    assert r.verdict is Verdict.PASS
    assert r.image_id == "sha256:derived"
    assert r.added_system_deps == ("libgomp1",)  # what the retry found, kept by its rerun
    assert any("run again alone with twice the time" in n for n in r.notes)
    limits = [(a[3], a[a.index("--timeout") + 1]) for a in runtime.executor_obj.calls]
    assert limits == [
        ("/opt/compat-smoke/sha256:base/runner.py", "30.0"),
        ("/opt/compat-smoke/sha256:derived/runner.py", "30.0"),
        ("/opt/compat-smoke/sha256:derived/runner.py", "60.0"),
    ]
    assert delivered == [r]
    assert [s for s in stages if s[0] in ("retry", "rerun")] == [
        ("retry", 0, 1),
        ("retry", 1, 1),
        ("rerun", 0, 1),
        ("rerun", 1, 1),
    ]


def test_a_decided_failure_outranks_a_timeout_and_is_not_run_again(
    tmp_path: Path, served: Served
) -> None:
    wheels = tmp_path / "w"
    wheels.mkdir()
    numpy = served.add(write_wheel(wheels, "numpy", "2.0.2"))
    stdout = runner_stdout(
        start_event("pandas:slow"),
        result_event("pandas:slow", "timeout", "ran out"),
        start_event("pandas:broken"),
        result_event("pandas:broken", "runtime-error", "AttributeError: gone"),
        done_event(),
    )
    backend = FakeBackend(lambda argv: exec_result(stdout))
    (result,), _delivered, _ = _run(_backend(backend, served, tmp_path), [combo_of_pins(numpy)])
    assert result.verdict is Verdict.RUNTIME_ERROR
    assert result.failed_check == "pandas:broken"
    assert len(backend.executor_obj.calls) == 1
