"""The flow every backend shares: fetch, build, unpack, compile, run, classify.

The backend (Docker or the host) performs the effects; this module decides what
is done once (files, builds, unpacking, bytecode) and what per combination (one
run of the smoke suite over site directories composed from the installs).
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from pathlib import Path

import httpx

from compat.config import RunConfig
from compat.effects.container import Executor
from compat.effects.http import http_client
from compat.errors import FilesUnavailable, HarnessError, ImageBuildFailed, UnpackFailed
from compat.harness.backend import Backend, ImageInfo
from compat.harness.building import Builder
from compat.harness.builds import BuildRecord
from compat.harness.installs import Installs
from compat.harness.jobs import Suite, SuiteJob, SuiteRun
from compat.harness.prerun import prerun_failures
from compat.harness.reuse import KeptChecks, Reuse
from compat.harness.schedule import Progress, Stage, run_placed
from compat.harness.suite import Placed, Prepared, hit_a_limit, run_one
from compat.harness.wheelhouse import FileRef, Wheelhouse
from compat.index.base import Index
from compat.model import (
    Combo,
    ComboResult,
    Pin,
    Verdict,
)
from compat.reporter import Reporter
from compat.settings import NetworkSettings
from compat.targets.target import Target

log = logging.getLogger("compat.harness")

OnResult = Callable[[ComboResult], None]
_MAX_SYSDEP_ROUNDS = 3  # a fixed library can reveal the next missing one


def _not_installed(result: ComboResult, packages: Sequence[str], why: str) -> ComboResult:
    """``result`` (failed for want of ``packages``) with a note saying why they were
    not added; the verdict stays what the image gives."""
    note = f"system packages {', '.join(packages)} not added: {why}"
    return dataclasses.replace(result, notes=(*result.notes, note))


class TimedOut:
    """The results of combinations ready to run (``ready``) that timed out or ran
    out of memory, held with the image they ran in until the other combinations
    are done."""

    def __init__(self, ready: Sequence[Prepared]) -> None:
        self.by_id = {p.combo.id: p for p in ready}
        self.held: list[tuple[ImageInfo, Prepared, ComboResult]] = []
        self._lock = threading.Lock()

    def settle(self, info: ImageInfo, result: ComboResult, deliver: OnResult) -> None:
        """Hold ``result`` (from ``info``) when it met a limit (``hit_a_limit``: a
        timeout, the memory limit), else ``deliver`` it."""
        if not hit_a_limit(result.verdict, result.error):
            deliver(result)
            return
        with self._lock:
            self.held.append((info, self.by_id[result.combo.id], result))


class Pipeline:
    """Runs combinations for a target over one backend; one per scan (the backend
    holds the engine client). ``client`` replaces the HTTP client (tests); ``index``
    is where offline builds' requirements are found (the configured index if None);
    ``cache_only`` (``--offline``) fetches nothing: what the cache lacks is named in
    OfflineCacheMiss."""

    def __init__(
        self,
        backend: Backend,
        config: RunConfig,
        *,
        cache_dir: Path,
        network: NetworkSettings | None = None,
        client: httpx.Client | None = None,
        index: Index | None = None,
        cache_only: bool = False,
    ) -> None:
        self.backend = backend
        self.config = config
        self.cache_dir = cache_dir.resolve()
        self.network = network or NetworkSettings()
        self.cache_only = cache_only
        self._client = client
        self._owns_client = client is None
        self.builder = Builder(
            backend,
            config,
            cache_dir=self.cache_dir,
            network=self.network,
            index=index,
            cache_only=cache_only,
        )
        self.installs = Installs(self.cache_dir)

    @property
    def kind(self) -> str:
        return self.backend.kind

    def close(self) -> None:
        if self._owns_client and self._client is not None:
            self._client.close()
            self._client = None
        self.builder.close()
        self.backend.close()

    def __enter__(self) -> Pipeline:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _wheelhouse(self) -> Wheelhouse:
        if self._client is None:
            network = self.network
            # reads of a large wheel stall longer than an index page's
            self._client = http_client(
                network,
                connections=self.config.fetch_parallel,
                read_timeout=max(network.timeout, 60.0),
            )
        return Wheelhouse(
            self.cache_dir,
            self._client,
            parallel=self.config.fetch_parallel,
            cache_only=self.cache_only,
        )

    def fetch(self, ref: FileRef) -> str:
        """One file in the wheelhouse (downloaded and checked once), readable by the
        runner's unprivileged user, as the runner sees it; FetchFailed."""
        path = self._wheelhouse().fetch_one(ref)
        path.chmod(0o644)
        return self.backend.file_path(path)

    # ---- preparation -------------------------------------------------------------

    def _build(
        self, info: ImageInfo, wheelhouse: Wheelhouse, pins: Sequence[Pin], reporter: Reporter
    ) -> dict[str, BuildRecord]:
        return self.builder.build_all(info, wheelhouse, pins, reporter)

    def prepare(
        self, target: Target, combos: Sequence[Combo], reporter: Reporter
    ) -> tuple[ImageInfo, list[Prepared], list[ComboResult], FilesUnavailable | None]:
        """Everything before the first run: fetch, build, unpack, compile. A
        combination with a file that did not fetch, or an sdist whose build
        requirements did not, is neither ready nor failed: what kept it from running
        is returned, to raise once the others ran."""
        progress = reporter.stage_progress
        wheelhouse = self._wheelhouse()
        refs = [
            FileRef(filename=p.filename, url=p.url, sha256=p.sha256) for c in combos for p in c.pins
        ]
        got, failed = wheelhouse.fetch(refs, progress=lambda d, t: progress("fetch", d, t))
        fetched = [c for c in combos if not any(p.sha256 in failed for p in c.pins)]

        info = self.backend.inspect(target)
        sdists = [p for c in fetched for p in c.source_builds]
        builds = self._build(info, wheelhouse, sdists, reporter)
        # an sdist whose build requirements were out of reach: as if it did not fetch
        unbuilt = {
            pin.sha256: f"{pin} (sdist): {builds[pin.sha256].error}"
            for pin in sdists
            if builds[pin.sha256].unreachable
        }
        runnable = [c for c in fetched if not any(p.sha256 in unbuilt for p in c.pins)]
        problems = [str(exc) for exc in failed.values()] + list(unbuilt.values())
        unfetched = (
            FilesUnavailable(problems, not_run=len(combos) - len(runnable)) if problems else None
        )

        wheels: dict[str, Path] = {}
        for sha, path in got.items():
            if path.name.endswith(".whl"):
                wheels[sha] = path
        for record in builds.values():
            if record.ok and record.wheel_sha256 and record.wheel_filename:
                wheels[record.wheel_sha256] = wheelhouse.path(
                    record.wheel_sha256, record.wheel_filename
                )
        unpack_failed = self._unpack(wheels, progress)

        ready, failures = prerun_failures(
            runnable,
            builds=builds,
            unpack_failed=unpack_failed,
            backend=self.backend.kind,
            image_id=info.image_id,
        )
        self._compile(info, ready, progress)
        return info, ready, failures, unfetched

    def _unpack(self, wheels: dict[str, Path], progress: Progress) -> dict[str, str]:
        """Unpack what the installs lack, a few at a time (zlib and file writes release
        the GIL); returns sha256 -> reason for the wheels that failed."""
        todo = {sha: path for sha, path in wheels.items() if not self.installs.has(sha)}
        failed: dict[str, str] = {}
        done = len(wheels) - len(todo)
        progress("unpack", done, len(wheels))
        if not todo:
            return failed
        with ThreadPoolExecutor(max_workers=4, thread_name_prefix="compat-unpack") as pool:
            futures = {
                pool.submit(self.installs.unpack, path, sha): sha for sha, path in todo.items()
            }
            for future in as_completed(futures):
                try:
                    future.result()
                except UnpackFailed as exc:
                    failed[futures[future]] = exc.reason
                done += 1
                progress("unpack", done, len(wheels))
        return failed

    def _compile(self, info: ImageInfo, ready: Sequence[Prepared], progress: Progress) -> None:
        needed = self.installs.needing_compile(
            (s for p in ready for s in p.shas), info.interpreter_key
        )
        progress("compile", 0, len(needed))
        if needed:
            self.backend.compile(info, [self.installs.dir_for(s) for s in needed])
            self.installs.mark_compiled(needed, info.interpreter_key)
        progress("compile", len(needed), len(needed))

    # ---- running -----------------------------------------------------------------

    def _run_smoke(
        self,
        info: ImageInfo,
        ready: Sequence[Prepared],
        deliver: OnResult,
        stage: Stage,
        *,
        reuse: Reuse | None,
        progress: Progress,
        again: Mapping[str, ComboResult] | None = None,
    ) -> None:
        """The smoke suite for each of ``ready`` in ``info``'s environment,
        ``config.jobs`` at a time. With ``again`` (by combination, the results that
        timed out): each one's rerun, one at a time, with twice the time."""

        def run(executor: Executor, prepared: Prepared) -> ComboResult:
            placed = self.place(info, prepared)
            first = again.get(prepared.combo.id) if again else None
            args = (placed, self.config, reuse)
            return run_one(executor, self.backend, info, *args, first=first)

        jobs = 1 if again else self.config.jobs
        executor = self.backend.executor(info)
        run_placed(executor, ready, run, deliver, jobs=jobs, stage=stage, progress=progress)

    def run(
        self,
        target: Target,
        combos: Sequence[Combo],
        *,
        on_result: OnResult,
        reporter: Reporter,
        system_packages: Sequence[str] = (),
        kept: KeptChecks | None = None,
    ) -> list[ComboResult]:
        """Fetch, build, prepare and run ``combos``; each result goes to ``on_result``
        as soon as it is known (so an interrupted scan keeps what it has), and the
        stages report through ``reporter.stage_progress``: fetch, build, unpack,
        compile, run, retry, rerun. Results come back in the order of ``combos``.

        ``system_packages`` (what the image is known to need) are installed before
        the first run, unless the options turn system packages off. A check whose
        outcome ``kept`` has for the same inputs is not run again. A combination that
        timed out, or whose check the memory limit ended, runs again once the others
        are done, alone, with twice the time. What could not be fetched is raised
        (``FilesUnavailable``) once the others ran."""
        reuse = (
            Reuse(kept, checks_dir=self.config.checks_dir, verify=self.config.verify_reuse)
            if kept is not None and self.config.reuse
            else None
        )
        progress = reporter.stage_progress
        order = {c.id: i for i, c in enumerate(combos)}
        results: dict[str, ComboResult] = {}
        lock = threading.Lock()

        def deliver(result: ComboResult) -> None:
            with lock:
                results[result.combo.id] = result
            on_result(result)

        info, ready, failures, unfetched = self.prepare(target, combos, reporter)
        for failure in failures:
            deliver(failure)
        total = len(ready)
        progress("run", 0, total)

        held: list[tuple[Prepared, ComboResult]] = []
        timed_out = TimedOut(ready)

        def first_pass(image: ImageInfo) -> OnResult:
            def sort(result: ComboResult) -> None:
                # a missing library is retried whatever else failed: a worse failure
                # of another check must not leave the packages needing it untested
                if self.config.add_system_deps and result.system_deps:
                    with lock:
                        held.append((timed_out.by_id[result.combo.id], result))
                else:
                    timed_out.settle(image, result, deliver)

            return sort

        first = self.with_known_packages(info, ready, system_packages, reporter)
        # one combination alone first: a library it finds missing is installed
        # before the others run, not found missing by each of them and run again
        probe = ready[:1] if self.config.add_system_deps and total > self.config.jobs else []
        rest = ready[len(probe) :]
        stage = Stage(name="run", total=total)
        self._run_smoke(first, probe, first_pass(first), stage, reuse=reuse, progress=progress)
        found = sorted({p for _, r in held for p in r.system_deps} - set(system_packages))
        if found:
            first = self.with_known_packages(
                info, rest, [*system_packages, *found], reporter, learned="the first run"
            )
        stage = Stage(name="run", total=total, before=len(probe))
        self._run_smoke(first, rest, first_pass(first), stage, reuse=reuse, progress=progress)
        # a held result is not final until its retry or rerun answered: an interruption
        # (Ctrl-C, SIGTERM, the engine gone) leaves it undelivered, so nothing records
        # it and a rerun runs that combination again
        self._retry_with_system_packages(info, held, timed_out, deliver, progress, reuse)
        self._rerun_alone(timed_out, deliver, progress, reuse)
        if unfetched is not None:
            raise unfetched
        return sorted(results.values(), key=lambda r: order.get(r.combo.id, len(order)))

    def place(
        self, info: ImageInfo, prepared: Prepared, *, beside: Prepared | None = None
    ) -> Placed:
        """Where ``prepared`` (and ``beside``, behind it) is in ``info``'s environment,
        as either suite's command line names it."""

        def sites(shas: Sequence[str]) -> tuple[str, ...]:
            return tuple(self.backend.site_dir(self.installs.dir_for(s)) for s in shas)

        return Placed(
            prepared=prepared,
            python=tuple(self.backend.interpreter(info)),
            suite_dir=self.backend.smoke_dir(info),
            sites=sites(prepared.shas),
            beside=sites(beside.shas) if beside is not None else (),
            installed=tuple(self.installs.dir_for(s) for s in prepared.shas),
        )

    def run_each(
        self,
        target: Target,
        jobs: Sequence[SuiteJob],
        *,
        beside: Combo,
        timeout: float,
        suite: Suite,
        system_packages: Sequence[str] = (),
        reporter: Reporter,
    ) -> list[SuiteRun]:
        """Prepare every job's combination and ``beside`` (installed behind each), as
        for the smoke suite, then run each job's command where the smoke suite runs:
        the image with ``system_packages`` (unless system packages are off), no
        network; ``suite.at_once`` at a time, counted in its own stage."""
        combos = list({c.id: c for c in [*(j.combo for j in jobs), beside]}.values())
        info, ready, failures, unfetched = self.prepare(target, combos, reporter)
        if unfetched is not None:
            raise unfetched
        failed = {f.combo.id: f.error or f.verdict.value for f in failures}
        if beside.id in failed:
            raise HarnessError(
                f"{suite.beside_is} ({beside.label()}) could not be installed: {failed[beside.id]}"
            )
        by_id = {p.combo.id: p for p in ready}
        info = self.with_known_packages(info, ready, system_packages, reporter)
        runs = {
            i: SuiteRun(job=job, error=failed.get(job.combo.id, "not prepared"))
            for i, job in enumerate(jobs)
            if job.combo.id not in by_id
        }
        todo = [(i, job) for i, job in enumerate(jobs) if i not in runs]

        def run(executor: Executor, item: tuple[int, SuiteJob]) -> tuple[int, SuiteRun]:
            i, job = item
            placed = self.place(info, by_id[job.combo.id], beside=by_id[beside.id])
            started = time.monotonic()
            result = executor.exec(list(job.command(placed)), timeout=timeout, on_line=job.on_line)
            return i, SuiteRun(job=job, result=result, duration=time.monotonic() - started)

        def keep(ran: tuple[int, SuiteRun]) -> None:
            runs[ran[0]] = ran[1]

        reporter.stage_progress(suite.stage, 0, len(todo))
        run_placed(
            self.backend.executor(info),
            todo,
            run,
            keep,
            jobs=suite.at_once,
            stage=Stage(name=suite.stage, total=len(todo)),
            progress=reporter.stage_progress,
        )
        return [runs[i] for i in range(len(jobs))]

    def with_known_packages(
        self,
        base: ImageInfo,
        ready: Sequence[Prepared],
        packages: Sequence[str],
        reporter: Reporter,
        *,
        learned: str = "earlier runs",
    ) -> ImageInfo:
        """Where the first runs happen: ``base`` with the packages it is known to need
        (so nothing runs twice to find the same missing library; ``learned`` says
        who found it), else ``base``."""
        if not (self.config.add_system_deps and packages and ready):
            return base
        wanted = sorted(set(packages))
        names = ", ".join(wanted)
        try:
            derived = self.backend.with_system_packages(base, wanted)
        except ImageBuildFailed as exc:  # a library found missing is retried as usual
            reporter.warning(f"installing {names}, which this image needs, failed: {exc.reason}")
            return base
        if derived is None:
            return base
        reporter.notice(
            f"installing {names}, which {learned} found this image needs "
            "(--no-system-deps: the bare image)"
        )
        self._compile(derived, ready, reporter.stage_progress)
        return derived

    def _retry_with_system_packages(
        self,
        base: ImageInfo,
        held: list[tuple[Prepared, ComboResult]],
        timed_out: TimedOut,
        deliver: OnResult,
        progress: Progress,
        reuse: Reuse | None,
    ) -> None:
        """Run again, in an image with the missing libraries' packages installed, the
        combinations whose import failed for want of a shared library. Each round is
        a stage of its own ("retry"), counted apart from the first pass's "run"; a
        retry that times out is held in ``timed_out``."""
        for _round in range(_MAX_SYSDEP_ROUNDS):
            if not held:
                return
            groups: dict[tuple[str, ...], list[Prepared]] = {}
            first: dict[str, ComboResult] = {}
            for prepared, result in held:
                packages = tuple(sorted({*result.added_system_deps, *result.system_deps}))
                groups.setdefault(packages, []).append(prepared)
                first[prepared.combo.id] = result
            by_id = {p.combo.id: p for p, _ in held}
            next_held: list[tuple[Prepared, ComboResult]] = []
            lock = threading.Lock()
            retried = 0
            progress("retry", 0, len(held))
            for packages, members in groups.items():
                try:
                    derived = self.backend.with_system_packages(base, packages)
                    why = "the image has no package manager to install them"
                except ImageBuildFailed as exc:
                    derived, why = None, f"installing them failed: {exc.reason}"
                if derived is None:  # the first answer is final, and says why
                    for prepared in members:
                        deliver(_not_installed(first[prepared.combo.id], packages, why))
                    retried += len(members)
                    progress("retry", retried, len(held))
                    continue
                self._compile(derived, members, progress)

                def again(
                    result: ComboResult,
                    packages: tuple[str, ...] = packages,
                    by_id: dict[str, Prepared] = by_id,
                    next_held: list[tuple[Prepared, ComboResult]] = next_held,
                    lock: threading.Lock = lock,
                    derived: ImageInfo = derived,
                ) -> None:
                    # it found them missing itself: each is needed, whatever its files say
                    result = dataclasses.replace(result, added_system_deps=packages)
                    grew = set(result.system_deps) - set(packages)
                    if result.verdict is Verdict.IMPORT_ERROR and grew:
                        with lock:  # one more library is missing: another round
                            next_held.append((by_id[result.combo.id], result))
                    else:
                        timed_out.settle(derived, result, deliver)

                stage = Stage(name="retry", total=len(held), before=retried)
                self._run_smoke(derived, members, again, stage, reuse=reuse, progress=progress)
                retried += len(members)
            held[:] = next_held
        for _prepared, result in held:  # still missing one more after the last round
            deliver(result)

    def _rerun_alone(
        self, timed_out: TimedOut, deliver: OnResult, progress: Progress, reuse: Reuse | None
    ) -> None:
        """Run again the combinations that met a limit, once every other is done and
        one at a time, with twice the time, each where it ran (stage "rerun"): a
        machine busy with other runs may have run out their clock or their memory,
        not the packages."""
        if not timed_out.held:
            return
        groups: dict[str, tuple[ImageInfo, list[Prepared]]] = {}
        for info, prepared, _first in timed_out.held:
            groups.setdefault(info.image, (info, []))[1].append(prepared)
        again = {prepared.combo.id: first for _info, prepared, first in timed_out.held}
        progress("rerun", 0, len(again))
        done = 0
        for info, members in groups.values():
            stage = Stage(name="rerun", total=len(again), before=done)
            self._run_smoke(
                info, members, deliver, stage, reuse=reuse, progress=progress, again=again
            )
            done += len(members)
