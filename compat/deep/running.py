"""Running the deep tier's in-environment runner (:mod:`compat.smoke.deep`) where
the combinations run (``Pipeline.run_each``: the same installs, the same
container, the same non-root user, no network); pytest and its kin come as a
separate test layer (a combination of their own, installed beside and behind the
one under test)."""

from __future__ import annotations

import ast
import fnmatch
import functools
import logging
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Protocol, runtime_checkable

from packaging.utils import NormalizedName

from compat.deep.outcomes import DeepRun, ModulesDone, parse_events
from compat.errors import FetchFailed, HarnessError, UsageError
from compat.harness.jobs import Suite, SuiteJob, SuiteRun
from compat.harness.pipeline import Pipeline
from compat.harness.suite import Placed
from compat.harness.wheelhouse import FileRef
from compat.index.base import Index
from compat.model import Combo, FileKind
from compat.reporter import Reporter
from compat.resolve.candidates import CandidateSource, requested
from compat.resolve.history import WHEELS_ONLY
from compat.resolve.resolver import Resolver
from compat.smoke.deep import runner_options
from compat.targets.target import Target

log = logging.getLogger("compat.deep")

TEST_LAYER = ("pytest", "hypothesis")
"""What the shipped test modules need besides the combination itself."""

DEEP_SUITE = Suite(
    stage="deep",
    beside_is="the deep tier's test layer",
    # one run at a time: each spreads its test modules over the run's --jobs
    # processes itself, and runs side by side would multiply those processes and
    # the memory the dependents' test suites take (each container has --memory)
    at_once=1,
)


@dataclass(frozen=True, kw_only=True, slots=True)
class DeepJob:
    """One run of the deep runner over one combination."""

    combo: Combo
    test_timeout: float  # seconds one test may run (``Timeouts.deep_test``)
    module_timeout: float  # seconds one test module may run (``Timeouts.deep_module``)
    dependents: tuple[NormalizedName, ...] = ()  # empty: each requested package with tests
    modules: tuple[str, ...] = ()  # module paths (globs) to keep; empty: all selected
    max_modules: int | None = None  # per dependent, most telling first
    max_foundation_modules: int | None = None  # of those reaching only foundations
    keyword: str | None = None  # a pytest -k expression
    # source distributions of dependents, whose test trees run where a wheel ships none
    sdists: tuple[tuple[NormalizedName, FileRef], ...] = ()
    # selected modules not to run: their outcomes are kept (``deep_modules``)
    reuse_modules: tuple[str, ...] = ()


@dataclass(frozen=True, kw_only=True, slots=True)
class DeepOutcome:
    """What one job produced: the runner's JSON-lines events, and why it did not
    finish, if so."""

    job: DeepJob
    events: tuple[str, ...] = ()
    error: str | None = None
    duration: float = 0.0

    @property
    def run(self) -> DeepRun:
        """The events as values (the one reading of them: ``parse_events``)."""
        return parse_events(self.events)


@runtime_checkable
class DeepRunner(Protocol):
    """What the deep tier needs of the harness: ``DeepTier`` over a ``Pipeline``, or
    a fake."""

    def run_deep(
        self,
        target: Target,
        jobs: Sequence[DeepJob],
        test_layer: Combo,
        *,
        timeout: float,
        system_packages: Sequence[str] = (),
        reporter: Reporter,
    ) -> list[DeepOutcome]: ...


class DeepTier:
    """The deep runner over a pipeline: each job's combination and the test layer
    prepared as for the smoke suite, then the runner run for each job where the
    smoke suite ran, through the pipeline's one way to run prepared combinations
    (one at a time: ``DEEP_SUITE``); each spreads its test modules over ``jobs``
    processes."""

    def __init__(self, pipeline: Pipeline) -> None:
        self.pipeline = pipeline

    def run_deep(
        self,
        target: Target,
        jobs: Sequence[DeepJob],
        test_layer: Combo,
        *,
        timeout: float,
        system_packages: Sequence[str] = (),
        reporter: Reporter,
    ) -> list[DeepOutcome]:
        """Run each job with ``timeout`` seconds for the whole run, in the image with
        ``system_packages`` (unless the pipeline is told --no-system-deps)."""
        runs = self.pipeline.run_each(
            target,
            [
                SuiteJob(
                    combo=j.combo,
                    command=functools.partial(self._command, j),
                    on_line=ModulesDone(reporter.stage_progress),
                )
                for j in jobs
            ],
            beside=test_layer,
            suite=DEEP_SUITE,
            timeout=timeout,
            system_packages=system_packages,
            reporter=reporter,
        )
        return [_outcome(job, run, timeout) for job, run in zip(jobs, runs, strict=True)]

    def _command(self, job: DeepJob, placed: Placed) -> list[str]:
        """The deep runner's command line for ``job``, its combination placed."""
        options = runner_options(
            packages=list(job.combo.requested),
            sites=list(placed.sites),
            tooling=list(placed.beside),
            dependents=list(job.dependents),
            jobs=self.pipeline.config.jobs,
            timeout=job.test_timeout,
            module_timeout=job.module_timeout,
            max_modules=job.max_modules,
            max_foundation_modules=job.max_foundation_modules,
            modules=list(job.modules),
            keyword=job.keyword,
            reuse_modules=list(job.reuse_modules),
            sdists=self._sdists_for(job),
        )
        # the deep runner sits beside the smoke runner, in the suite's deep/
        script = str(PurePosixPath(placed.suite_dir) / "deep" / "runner.py")
        return [*placed.python, script, *options]

    def _sdists_for(self, job: DeepJob) -> dict[str, str]:
        """The sdists the runner gets, as it sees them: those of the job's dependents
        whose installed wheel ships no tests, or ships them without the data they
        need (fetched once into the wheelhouse). One that cannot be fetched is left
        out: the dependent is then imported only, or its tests run as shipped."""
        found: dict[str, str] = {}
        for name, ref in job.sdists:
            try:
                pin = job.combo.pin(name)
            except KeyError:
                continue
            installed = self.pipeline.installs.dir_for(pin.sha256)
            if ships_tests(installed) and not (
                missing_test_data(installed) and _selects_any(installed, job.modules)
            ):
                continue
            try:
                found[name] = self.pipeline.fetch(ref)
            except FetchFailed as exc:
                log.warning("%s: no tests from its sdist: %s", name, exc)
        return found


def _outcome(job: DeepJob, run: SuiteRun, timeout: float) -> DeepOutcome:
    """What the runner's run of ``job`` gave: a run that timed out, failed or did
    not reach its end (no ``done`` event) did not finish."""
    if run.result is None:
        return DeepOutcome(job=job, error=run.error or "not prepared")
    result = run.result
    outcome = DeepOutcome(job=job, events=tuple(result.stdout.splitlines()), duration=run.duration)
    error = None
    if result.timed_out:
        error = f"the deep run exceeded {timeout:g} s"
    elif result.exit_code != 0 or not outcome.run.complete:
        error = f"the deep runner failed (exit {result.exit_code}): " + (
            result.output_tail(12) or "no output"
        )
    if error is None:
        return outcome
    log.warning("%s: %s", job.combo.label(), error)
    return DeepOutcome(job=job, events=outcome.events, error=error, duration=run.duration)


def deep_runner(pipeline: object) -> DeepRunner:
    """``pipeline`` as the deep tier needs it: a real pipeline runs the deep runner
    through ``DeepTier``; a backend without it says so."""
    if isinstance(pipeline, Pipeline):
        return DeepTier(pipeline)
    if not isinstance(pipeline, DeepRunner):
        raise UsageError(f"the {getattr(pipeline, 'kind', '?')} backend cannot run --depth deep")
    return pipeline


def test_layer_for(index: Index, target: Target) -> Combo:
    """pytest and hypothesis resolved for the target, as a combination of their own."""
    resolved = Resolver(CandidateSource(index, target, WHEELS_ONLY)).resolve(
        [requested(n) for n in TEST_LAYER]
    )
    if not isinstance(resolved, Combo):
        raise HarnessError(f"cannot resolve the deep tier's test layer: {resolved}")
    return resolved


def sdist_refs(
    index: Index, combo: Combo, names: Iterable[NormalizedName]
) -> tuple[tuple[NormalizedName, FileRef], ...]:
    """The source distribution of each named pin's release, where the index has one
    (a ``DeepJob``'s ``sdists``: fetched only for a wheel that ships no tests)."""
    found = []
    for name in names:
        version = combo.versions.get(name)
        sdist = next(
            (
                f
                for f in index.files(name)
                if f.kind is FileKind.SDIST and f.version == version and not f.yanked
            ),
            None,
        )
        if sdist is not None:
            found.append(
                (name, FileRef(filename=sdist.filename, url=sdist.url, sha256=sdist.sha256))
            )
    return tuple(found)


def ships_tests(install_dir: Path) -> bool:
    """Whether an unpacked wheel holds test modules of its own."""
    return any(install_dir.rglob("tests/test_*.py")) or any(install_dir.rglob("test/test_*.py"))


def missing_test_data(install_dir: Path) -> list[str]:
    """The folders an unpacked wheel's test packages look for beside them and that
    the wheel leaves out, relative to it: matplotlib's ``tests/__init__.py`` refuses
    to run without ``baseline_images``, which only its sdist has. Read from the
    packages' ``__init__.py``: a ``(... / "name").exists()`` or an
    ``os.path.exists(os.path.join(..., "name"))`` (``is_dir``, ``isdir`` too)."""
    missing = []
    for init in sorted(install_dir.rglob("__init__.py")):
        if init.parent.name not in ("tests", "test"):
            continue
        try:
            tree = ast.parse(init.read_text(encoding="utf-8"))
        except (OSError, SyntaxError, UnicodeDecodeError, ValueError):
            continue
        for name in sorted(set(_looked_for(tree))):
            if not (init.parent / name).exists():
                missing.append((init.parent / name).relative_to(install_dir).as_posix())
    return missing


def _selects_any(install_dir: Path, modules: Sequence[str]) -> bool:
    """Whether ``--deep-module`` globs (none: every module) match a test module of
    an unpacked wheel."""
    return not modules or any(
        fnmatch.fnmatchcase(path.relative_to(install_dir).as_posix(), glob)
        for path in install_dir.rglob("test_*.py")
        for glob in modules
    )


def _looked_for(tree: ast.AST) -> Iterator[str]:
    """The single path components whose existence ``tree`` tests."""
    for node in ast.walk(tree):
        if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)):
            continue
        if node.func.attr not in ("exists", "is_dir", "isdir"):
            continue
        if isinstance(node.func.value, ast.BinOp) and isinstance(node.func.value.op, ast.Div):
            path = node.func.value.right  # (Path(__file__).parent / "name").exists()
        elif node.args and isinstance(node.args[0], ast.Call) and node.args[0].args:
            path = node.args[0].args[-1]  # os.path.exists(os.path.join(here, "name"))
        else:
            continue
        name = path.value if isinstance(path, ast.Constant) else None
        if isinstance(name, str) and name.strip("./") and "/" not in name:
            yield name


__all__ = [
    "DEEP_SUITE",
    "TEST_LAYER",
    "DeepJob",
    "DeepOutcome",
    "DeepRunner",
    "DeepTier",
    "deep_runner",
    "missing_test_data",
    "sdist_refs",
    "ships_tests",
    "test_layer_for",
]
