"""Running the deep tier's in-environment runner (:mod:`compat.smoke.deep`) where
the combinations run: the same installs, the same container, the same
non-root user, no network; pytest and its kin come as a separate test layer
(a combination of their own, installed beside and behind the one under test).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING

from packaging.utils import NormalizedName

from compat.errors import FetchFailed, HarnessError
from compat.harness.suite import Prepared
from compat.harness.wheelhouse import FileRef
from compat.index.base import Index
from compat.model import Combo, FileKind
from compat.smoke.deep import runner_options
from compat.targets.target import Target

if TYPE_CHECKING:  # the pipeline calls run_deep: a runtime import would be circular
    from compat.harness.pipeline import Pipeline
    from compat.reporter import Reporter

log = logging.getLogger("compat.harness")


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


@dataclass(frozen=True, kw_only=True, slots=True)
class DeepOutcome:
    """What one job produced: the runner's JSON-lines events (parsed by
    ``compat.deep.outcomes.parse_events``), and why it did not finish, if so."""

    job: DeepJob
    events: tuple[str, ...] = ()
    error: str | None = None
    duration: float = 0.0


def run_deep(
    pipeline: Pipeline,
    target: Target,
    jobs: Sequence[DeepJob],
    test_layer: Combo,
    *,
    timeout: float,
    system_packages: Sequence[str] = (),
    reporter: Reporter,
) -> list[DeepOutcome]:
    """Prepare every job's combination and the test layer (fetch, unpack, compile,
    as for the smoke suite), then run the deep runner for each job in turn; each
    spreads its test modules over ``config.jobs`` processes. The jobs run where
    the smoke suite ran: the image with ``system_packages`` (unless the pipeline
    is told --no-system-deps)."""
    combos = list({c.id: c for c in [*(j.combo for j in jobs), test_layer]}.values())
    info, ready, failures = pipeline.prepare(target, combos, reporter.stage_progress)
    failed = {f.combo.id: f.error or f.verdict.value for f in failures}
    if test_layer.id in failed:
        raise HarnessError(
            f"the deep tier's test layer ({test_layer.label()}) could not be installed: "
            f"{failed[test_layer.id]}"
        )
    by_id: dict[str, Prepared] = {p.combo.id: p for p in ready}
    info = pipeline.with_known_packages(info, ready, system_packages, reporter)
    backend, installs = pipeline.backend, pipeline.installs
    tooling = [backend.site_dir(installs.dir_for(s)) for s in by_id[test_layer.id].shas]
    outcomes: list[DeepOutcome] = []
    with backend.executor(info) as executor:
        for job in jobs:
            prepared = by_id.get(job.combo.id)
            if prepared is None:
                outcomes.append(
                    DeepOutcome(job=job, error=failed.get(job.combo.id, "not prepared"))
                )
                continue
            sdists = _sdists_for(pipeline, job)
            options = runner_options(
                packages=list(job.combo.requested),
                sites=[backend.site_dir(installs.dir_for(s)) for s in prepared.shas],
                tooling=tooling,
                dependents=list(job.dependents),
                jobs=pipeline.config.jobs,
                timeout=job.test_timeout,
                module_timeout=job.module_timeout,
                max_modules=job.max_modules,
                max_foundation_modules=job.max_foundation_modules,
                modules=list(job.modules),
                keyword=job.keyword,
                sdists=sdists,
            )
            # the deep runner sits beside the smoke runner, in the suite's deep/
            script = str(PurePosixPath(backend.smoke_dir(info)) / "deep" / "runner.py")
            command = [*backend.interpreter(info), script, *options]
            started = time.monotonic()
            result = executor.exec(command, timeout=timeout)
            events = tuple(result.stdout.splitlines())
            error = None
            if result.timed_out:
                error = f"the deep run exceeded {timeout:g} s"
            elif result.exit_code != 0 or not any('"event": "done"' in e for e in events[-2:]):
                error = f"the deep runner failed (exit {result.exit_code}): " + (
                    result.output_tail(12) or "no output"
                )
            if error:
                log.warning("%s: %s", job.combo.label(), error)
            outcomes.append(
                DeepOutcome(
                    job=job, events=events, error=error, duration=time.monotonic() - started
                )
            )
    return outcomes


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


def _sdists_for(pipeline: Pipeline, job: DeepJob) -> dict[str, str]:
    """The sdists the runner gets, as it sees them: those of the job's dependents
    whose installed wheel ships no tests (fetched once into the wheelhouse). One
    that cannot be fetched is left out: the dependent is then imported only."""
    found: dict[str, str] = {}
    for name, ref in job.sdists:
        try:
            pin = job.combo.pin(name)
        except KeyError:
            continue
        if ships_tests(pipeline.installs.dir_for(pin.sha256)):
            continue
        try:
            found[name] = pipeline.backend.file_path(pipeline.fetch(ref))
        except FetchFailed as exc:
            log.warning("%s: no tests from its sdist: %s", name, exc)
    return found
