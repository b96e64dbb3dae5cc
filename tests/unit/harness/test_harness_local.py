"""The local backend end to end with real subprocesses and a stand-in runner that
follows the smoke runner's contract: crash, timeout, pass, composition."""

from __future__ import annotations

import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from compat.config import RunConfig, Timeouts
from compat.errors import HarnessError
from compat.harness import Pipeline, make_pipeline
from compat.harness.local_backend import LocalBackend
from compat.model import Combo, ComboResult, Pin, Verdict
from compat.reporter import Reporter
from tests.helpers.harness import combo_of_pins, glibc_target, image_info, pin_for, write_wheel
from tests.helpers.reporter import RecordingReporter

# Imports every --package after adding every --site; a module attribute decides what
# the "check" does, so each wheel can make the runner pass, crash or hang.
RUNNER = textwrap.dedent(
    """
    import json, os, signal, site, sys, time
    args = sys.argv[1:]
    sites = [args[i + 1] for i, a in enumerate(args) if a == "--site"]
    packages = [args[i + 1] for i, a in enumerate(args) if a == "--package"]
    for d in sites:
        site.addsitedir(d)
    def emit(**e):
        print(json.dumps(e), flush=True)
    for p in packages:
        emit(event="start", check="import " + p)
        try:
            mod = __import__(p)
        except ImportError as exc:
            emit(event="result", check="import " + p, verdict="import-error", duration=0,
                 error=f"{type(exc).__name__}: {exc}", log="")
            continue
        action = getattr(mod, "ACTION", "pass")
        if action == "segv":
            os.kill(os.getpid(), signal.SIGSEGV)
        if action == "hang":
            time.sleep(60)
        emit(event="result", check="import " + p, verdict="pass", duration=0, error=None, log="")
    emit(event="done", counts={})
    """
)


MakeWheel = Callable[[str, str], Pin]
MakeBackend = Callable[..., Pipeline]
World = tuple[MakeWheel, MakeBackend]


@pytest.fixture
def world(tmp_path: Path) -> World:
    wheels = tmp_path / "wheels"
    wheels.mkdir()
    served: dict[str, bytes] = {}

    def wheel(name: str, action: str) -> Pin:
        path = write_wheel(wheels, name, "1.0", {f"{name}/__init__.py": f"ACTION = {action!r}\n"})
        served[f"/{path.name}"] = path.read_bytes()
        return pin_for(path)

    runner = tmp_path / "runner.py"
    runner.write_text(RUNNER)

    def backend(**options: Any) -> Pipeline:
        config = RunConfig(**options)
        client = httpx.Client(
            transport=httpx.MockTransport(lambda r: httpx.Response(200, content=served[r.url.path]))
        )
        local = LocalBackend(config, smoke_dir=tmp_path)
        return Pipeline(local, config, cache_dir=tmp_path / "cache", client=client)

    return wheel, backend


def _run(pipeline: Pipeline, combos: list[Combo]) -> list[ComboResult]:
    return pipeline.run(glibc_target(), combos, on_result=lambda r: None, reporter=Reporter())


@pytest.mark.slow
def test_pass_crash_timeout_and_the_scan_goes_on(world: World) -> None:
    wheel, backend = world
    good, segv, hang = wheel("good", "pass"), wheel("segv", "segv"), wheel("hang", "hang")
    other = wheel("other", "pass")
    combos = [
        combo_of_pins(good),
        combo_of_pins(segv, good, requested=["good", "segv"]),
        combo_of_pins(hang),
        combo_of_pins(other, good),
    ]
    results = _run(backend(jobs=2, timeouts=Timeouts(combination=3)), combos)
    assert [r.verdict for r in results] == [
        Verdict.PASS,
        Verdict.CRASH,
        Verdict.TIMEOUT,
        Verdict.PASS,
    ]
    crash = results[1]
    assert crash.failed_check == "import segv"
    assert "SIGSEGV" in (crash.error or "")
    assert [c.verdict.value for c in crash.checks] == ["pass", "crash"]
    assert results[2].failed_check == "import hang"
    assert results[2].duration < 10
    assert all(r.backend == "local" for r in results)


@pytest.mark.slow
def test_bytecode_is_compiled_once_into_the_store(world: World, tmp_path: Path) -> None:
    wheel, backend = world
    good = wheel("good", "pass")
    _run(backend(), [combo_of_pins(good)])
    site = tmp_path / "cache" / "installs" / good.sha256
    assert list((site / "good" / "__pycache__").glob("__init__.*.pyc"))


def test_make_pipeline_local_says_it_tests_the_host(tmp_path: Path) -> None:
    reporter = RecordingReporter()
    b = make_pipeline(RunConfig(backend="local"), cache_dir=tmp_path, reporter=reporter)
    assert b.kind == "local"
    assert "host platform only" in reporter.lines[0]


def test_make_pipeline_auto_falls_back_to_local(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import docker
    from docker.errors import DockerException

    def from_env(**_: Any) -> Any:
        raise DockerException("no engine")

    monkeypatch.setattr(docker, "from_env", from_env)
    reporter = RecordingReporter()
    b = make_pipeline(RunConfig(backend="auto"), cache_dir=tmp_path, reporter=reporter)
    said = reporter.lines
    assert b.kind == "local"
    assert len(said) == 1
    assert "no engine" in said[0]
    assert "host platform only" in said[0]


@pytest.mark.slow
def test_compiling_past_its_limit_names_the_option(tmp_path: Path) -> None:
    local = LocalBackend(RunConfig(timeouts=Timeouts(compile=0.001)))
    with pytest.raises(HarnessError, match=r"longer than 0s \(--compile-timeout\)"):
        local.compile(image_info(), [tmp_path])
