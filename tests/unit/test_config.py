"""The run configuration: every setting is read by something, ``compat -v`` prints
it, and a limit given on the command line is the limit the harness hands on."""

from __future__ import annotations

import ast
import contextlib
import dataclasses
import json
from collections.abc import Callable, Iterator, Sequence
from datetime import date
from pathlib import Path
from typing import Any, cast

import click
import pytest
from click.testing import CliRunner
from packaging.utils import NormalizedName

from compat.cli import cli
from compat.config import DeepSelection, RunConfig, Timeouts
from compat.deep.keys import settings_key
from compat.deep.running import deep_runner
from compat.deep.step import deepen
from compat.harness import Pipeline
from compat.index.base import Index
from compat.model import ComboResult, Depth, DistFile, Verdict
from compat.store import sqlite_url
from compat.workflows.session import Session
from tests.helpers.harness import (
    FakeBackend,
    Served,
    combo_of_pins,
    exec_result,
    glibc_target,
    write_wheel,
)
from tests.helpers.reporter import RecordingReporter

ROOT = Path(__file__).parent.parent.parent / "compat"

# where each value of the configuration is read from: ``config.jobs``,
# ``self.config.timeouts.check``, ``config.deep.keyword``
HOLDERS: dict[type[Any], tuple[str, ...]] = {
    RunConfig: ("config",),
    Timeouts: ("timeouts",),
    DeepSelection: ("deep",),
}


def _holder(node: ast.expr) -> str | None:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return node.attr
    return None


def unread(sources: Sequence[str], holders: dict[type[Any], tuple[str, ...]]) -> list[str]:
    """The fields of ``holders``' classes that no source reads as
    ``<holder>.<field>``."""
    reads: set[tuple[str, str]] = set()
    for source in sources:
        for node in ast.walk(ast.parse(source)):
            if isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Load):
                holder = _holder(node.value)
                if holder is not None:
                    reads.add((holder, node.attr))
    return [
        f"{cls.__name__}.{field.name}"
        for cls, names in holders.items()
        for field in dataclasses.fields(cls)
        if not any((name, field.name) in reads for name in names)
    ]


def test_every_run_setting_is_read_by_something() -> None:
    sources = [
        path.read_text(encoding="utf-8")
        for path in sorted(ROOT.rglob("*.py"))
        if path != ROOT / "config.py"  # the configuration reading itself counts for nothing
    ]
    assert unread(sources, HOLDERS) == []


def test_a_setting_nothing_reads_is_found() -> None:
    @dataclasses.dataclass(frozen=True)
    class Planted:
        jobs: int = 1
        forgotten: float = 2.0

    sources = ["def run(config):\n    return config.jobs\n", "forgotten = 3\n"]
    assert unread(sources, {Planted: ("config",)}) == ["Planted.forgotten"]


def test_the_summary_names_every_setting() -> None:
    config = RunConfig(jobs=3, timeouts=Timeouts(deep_test=7.0), deep=DeepSelection(modules=("a",)))
    summary = config.summary()
    assert "  jobs: 3" in summary
    assert "  timeouts.deep_test: 7.0" in summary
    assert "  deep.modules: a" in summary
    assert "  depth: smoke" in summary
    assert "  as_of: -" in summary
    lines = summary.splitlines()[1:]
    fields = [f for f in dataclasses.fields(RunConfig) if f.name not in ("timeouts", "deep")]
    assert len(lines) == len(fields) + len(dataclasses.fields(Timeouts)) + len(
        dataclasses.fields(DeepSelection)
    )


def test_the_deep_runs_cached_before_keep_their_key() -> None:
    # the text a deep run's cache key has always held for the default settings
    assert settings_key(RunConfig()) == (
        "DeepSettings(max_modules=16, max_foundation_modules=2, timeout=3600.0, "
        "modules=(), keyword=None, test_timeout=60.0)"
    )
    other = settings_key(RunConfig(timeouts=Timeouts(deep_module=60.0)))
    assert other.endswith(", module_timeout=60.0)")


def test_a_check_never_outlasts_its_combination() -> None:
    assert Timeouts(combination=50.0).check == 50.0
    assert Timeouts(combination=500.0, check=20.0).check == 20.0


class Bare:
    """An index with no source distributions."""

    def files(self, name: NormalizedName) -> Sequence[DistFile]:
        return ()


def test_the_deep_test_timeout_on_the_command_line_reaches_the_runner(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    wheels = tmp_path / "w"
    wheels.mkdir()
    served = Served()
    numpy = served.add(write_wheel(wheels, "numpy", "2.0.2"))
    layer = combo_of_pins(served.add(write_wheel(wheels, "pytest", "8.3.5")))
    here = combo_of_pins(numpy)
    runner_calls: list[list[str]] = []

    def answer(argv: list[str]) -> Any:
        runner_calls.append(argv)
        return exec_result(json.dumps({"event": "done", "counts": {}, "duration": 0.1}) + "\n")

    backend = FakeBackend(answer)
    passed = ComboResult(combo=here, verdict=Verdict.PASS, image_id="sha256:base", backend="fake")

    @contextlib.contextmanager
    def open_target(settings: object, reporter: object, config: RunConfig, **_: object) -> Any:
        # the real pipeline over a fake engine, as compat check opens it
        with Pipeline(
            backend, config, cache_dir=tmp_path / "cache", client=served.client()
        ) as pipeline:
            yield pipeline, glibc_target()

    @contextlib.contextmanager
    def open_index(settings: object, as_of: object) -> Iterator[Index]:
        yield cast("Index", Bare())

    def check_pins(reqs: object, *, open_session: Callable[[], Session], **_: object) -> Any:
        session = open_session()  # as compat check builds it, from the command line
        return deepen(
            passed,
            target=glibc_target(),
            pipeline=deep_runner(session.pipeline),
            store=session.store,
            index=session.index,
            reporter=RecordingReporter(),
            config=session.config,
            test_layer=layer,
        )

    monkeypatch.setattr("compat.cli.scan.open_target", open_target)
    monkeypatch.setattr("compat.cli.scan.open_index", open_index)
    monkeypatch.setattr("compat.cli.scan.check_pins", check_pins)
    args = ["-v", "--cache-dir", str(tmp_path / "cache"), "--db", sqlite_url(tmp_path / "r.db")]
    done = CliRunner().invoke(
        cli, [*args, "check", "--depth", "deep", "--deep-test-timeout", "7", "numpy==2.0.2"]
    )
    assert done.exit_code == 0, done.output
    # -v shows the configuration the command resolved
    assert "run configuration:" in done.stderr
    assert "  timeouts.deep_test: 7.0" in done.stderr
    assert f"  depth: {Depth.DEEP.value}" in done.stderr
    # the runner got that limit for each test
    (runner,) = [argv for argv in runner_calls if any(a.endswith("deep/runner.py") for a in argv)]
    assert runner[runner.index("--timeout") + 1] == "7.0"
    assert runner[runner.index("--module-timeout") + 1] == "900.0"  # each module, as by default


def test_compat_v_scan_prints_the_configuration_it_resolved(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    matrix = tmp_path / "m.toml"
    matrix.write_text('as-of = 2024-01-31\n[packages]\nnumpy = ">=1"\n')
    seen: list[RunConfig] = []

    @contextlib.contextmanager
    def open_target(settings: object, reporter: object, config: RunConfig, **_: object) -> Any:
        yield object(), glibc_target()

    @contextlib.contextmanager
    def open_session(settings: object, reporter: object, config: RunConfig, **_: object) -> Any:
        seen.append(config)
        raise click.exceptions.Exit(0)  # nothing to run here
        yield

    monkeypatch.setattr("compat.cli.scan.open_target", open_target)
    monkeypatch.setattr("compat.cli.scan.open_session", open_session)
    args = ["--cache-dir", str(tmp_path / "cache"), "--db", sqlite_url(tmp_path / "r.db")]
    done = CliRunner().invoke(
        cli, ["-v", *args, "scan", "--matrix", str(matrix), "--depth", "import", "--retest"]
    )
    assert done.exit_code == 0, done.output
    (config,) = seen
    assert config.as_of == date(2024, 1, 31)  # the matrix's, as none was given
    assert (config.depth, config.retest, config.reuse) == (Depth.IMPORT, True, False)
    assert "  as_of: 2024-01-31" in done.stderr
    assert "  depth: import" in done.stderr
    quiet = CliRunner().invoke(cli, [*args, "scan", "--matrix", str(matrix)])
    assert "run configuration" not in quiet.stderr  # only with -v
