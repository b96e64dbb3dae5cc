"""Running the smoke suite in an environment (``run_suite``, the one way, used by
scans and by ``compat image``), and one run of it for one prepared combination: the
runner's command line (with what is kept from earlier runs), the run, and what it
found."""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from compat.config import RunConfig, Timeouts
from compat.effects.container import Executor
from compat.harness.backend import Backend, ImageInfo
from compat.harness.classify import SuiteOutcome, classify, unrequested_notes
from compat.harness.elf import needed_sonames
from compat.harness.reuse import Reuse
from compat.model import CheckResult, CheckVerdict, Combo, ComboResult, FileKind, Verdict
from compat.smoke import runner_argv
from compat.smoke.isolate import OUT_OF_MEMORY
from compat.targets.sysdeps import needed_of
from compat.targets.target import PackageManager

log = logging.getLogger("compat.harness")


def hit_a_limit(verdict: Verdict, error: str | None) -> bool:
    """Whether a run may have met the machine's limits rather than the packages'
    defects: it timed out, or the out-of-memory killer ended a check (another
    combination running beside it may have taken the memory). Such a combination
    runs again, alone, once the others are done."""
    if verdict is Verdict.TIMEOUT:
        return True
    return verdict is Verdict.CRASH and OUT_OF_MEMORY in (error or "")


@dataclass(frozen=True, kw_only=True, slots=True)
class Prepared:
    """A combination ready to run: its directories in the installs, in pin order."""

    combo: Combo
    shas: tuple[str, ...]  # content hashes of the wheels installed, one per pin
    builds: tuple[CheckResult, ...] = ()  # one "build:NAME" per wheel built from its sdist
    notes: tuple[str, ...] = ()  # what the builds mean for users (no OpenMP...)


def run_suite(
    executor: Executor,
    argv: Sequence[str],
    *,
    timeout: float,
    package_manager: PackageManager | None,
    libc: str,
    label: str,
    keys: Mapping[str, str] | None = None,
    reused: Mapping[str, CheckResult] | None = None,
) -> SuiteOutcome:
    """The one way the smoke suite runs in an environment, for a scan and for
    ``compat image`` alike: the runner's ``argv`` (``compat.smoke.runner_argv``)
    executed by ``executor`` (a scan's runner container, this machine, a container of
    a built image) within ``timeout``, again when its container was replaced under it
    (another run's limit killed it), and what it reported classified."""
    for _attempt in range(3):
        result = executor.exec(argv, timeout=timeout)
        if not result.interrupted:
            break
        log.info("%s: run again (its container was replaced)", label)
    return classify(
        result.stdout,
        result.stderr,
        exit_code=result.exit_code,
        timed_out=result.timed_out,
        elapsed=result.duration,
        package_manager=package_manager,
        libc=libc,
        keys=keys,
        reused=reused,
    )


@dataclass(frozen=True, kw_only=True, slots=True)
class _Inputs:
    """What one combination's run takes from earlier runs: checks (``reused`` of
    the ``reusable`` under ``check_keys``; the rest of them run again, to compare)."""

    check_keys: Mapping[str, str]
    reusable: Mapping[str, CheckResult]
    reused: Mapping[str, CheckResult]


def _inputs(info: ImageInfo, prepared: Prepared, reuse: Reuse | None) -> _Inputs:
    if reuse is None:
        return _Inputs(check_keys={}, reusable={}, reused={})
    combo = prepared.combo
    image_id = info.image_id or f"host:{info.interpreter_key}"
    # a wheel built here from its sdist is its own build (toolchain, flags), not the
    # version alone
    built = {
        pin.name: sha
        for pin, sha in zip(combo.pins, prepared.shas, strict=True)
        if pin.kind is FileKind.SDIST
    }
    check_keys = reuse.keys(image_id=image_id, installed=combo.versions, built=built)
    reusable = reuse.find(check_keys, combo.versions)
    verify = reuse.to_verify(reusable)
    reused = {name: c for name, c in reusable.items() if name not in verify}
    return _Inputs(check_keys=check_keys, reusable=reusable, reused=reused)


def _suite(
    executor: Executor,
    backend: Backend,
    info: ImageInfo,
    placed: Placed,
    config: RunConfig,
    inputs: _Inputs,
    *,
    timeouts: Timeouts,
    passed: Mapping[str, CheckResult],
) -> SuiteOutcome:
    """One run of the smoke suite for ``placed``: what ``inputs`` keep and what
    ``passed`` an earlier run of it are not run again."""
    combo = placed.prepared.combo
    python, *flags = placed.python
    checks_dir = backend.checks_dir()
    taken = {**inputs.reused, **passed}
    argv = runner_argv(
        python,
        smoke_dir=placed.suite_dir,
        sites=list(placed.sites),
        packages=list(combo.requested),
        checks_dirs=[checks_dir] if checks_dir else [],
        timeout=timeouts.check,
        only=config.only,
        exec_cmd=config.exec_cmd,
        reuse=sorted(taken),
    )
    argv[1:1] = flags  # the interpreter's own flags go before the script
    return run_suite(
        executor,
        argv,
        timeout=timeouts.combination,
        package_manager=info.facts.package_manager,
        libc=info.facts.libc,
        label=combo.label(),
        keys=inputs.check_keys,
        reused=taken,
    )


def run_one(
    executor: Executor,
    backend: Backend,
    info: ImageInfo,
    placed: Placed,
    config: RunConfig,
    reuse: Reuse | None,
    *,
    first: ComboResult | None = None,
) -> ComboResult:
    """Run the smoke suite once for one combination and classify what happened;
    checks kept from an earlier run with the same inputs are not run again (see
    ``compat.harness.reuse``).

    A result that met a limit (``hit_a_limit``) is not final: a busy machine, not
    the packages, may have run out the clock or the memory, so the pipeline runs it
    again alone, with twice the time, what passed ``first`` kept (this call, with
    ``first`` the result that met it). A timeout that persists stays a timeout:
    undecided, never an incompatibility; the memory limit met alone is a crash."""
    prepared = placed.prepared
    inputs = _inputs(info, prepared, reuse)
    timeouts = config.timeouts.doubled() if first else config.timeouts
    passed = {
        c.name: c
        for c in (first.checks[len(prepared.builds) :] if first else ())
        if c.verdict is CheckVerdict.PASS
    }
    start = time.monotonic()
    outcome = _suite(
        executor, backend, info, placed, config, inputs, timeouts=timeouts, passed=passed
    )
    # a run that met a limit is compared with the kept outcomes when it ran again
    final = first is not None or not hit_a_limit(outcome.verdict, outcome.error)
    disagreements = reuse.verified(inputs.reusable, outcome.checks) if reuse and final else []
    for line in disagreements:
        log.warning("%s: %s", prepared.combo.label(), line)
    rerun = (_rerun_note(first, outcome, timeouts),) if first else ()
    return ComboResult(
        combo=prepared.combo,
        verdict=outcome.verdict,
        checks=(*prepared.builds, *outcome.checks),
        notes=(
            *prepared.notes,
            *rerun,
            *unrequested_notes(prepared.combo, outcome.checks),
            *disagreements,
        ),
        error=outcome.error,
        failed_check=outcome.failed_check,
        duration=time.monotonic() - start + (first.duration if first else 0.0),
        system_deps=outcome.system_deps,
        # a rerun runs where its first run did: what that needed of the image holds
        added_system_deps=first.added_system_deps if first else _needed_of(info, placed),
        backend=backend.kind,
        image_id=info.image_id,
        log=outcome.log,
    )


@dataclass(frozen=True, kw_only=True, slots=True)
class Placed:
    """A prepared combination placed in its environment (``Pipeline.place``): the one
    view either suite's command line (the smoke runner's, the deep runner's) is made
    from."""

    prepared: Prepared
    python: tuple[str, ...]  # the interpreter, with its flags
    suite_dir: str  # the smoke suite (``compat/smoke``; the deep runner in its deep/)
    sites: tuple[str, ...]  # its installs' site directories, in pin order
    beside: tuple[str, ...]  # those of the combination installed beside it
    installed: tuple[Path, ...] = ()  # its installs on this machine, to read their files


def _needed_of(info: ImageInfo, placed: Placed) -> tuple[str, ...]:
    """What the image had installed, as far as this combination's files need it."""
    if not info.added_packages:
        return ()
    return needed_of(
        info.added_packages, needed_sonames(placed.installed), info.facts.package_manager
    )


def _rerun_note(first: ComboResult, again: SuiteOutcome, slower: Timeouts) -> str:
    """What the rerun of a combination that met a limit found."""
    what = first.failed_check or "the suite"
    ran = f"run again alone with twice the time ({slower.check:g} s a check)"
    if first.verdict is Verdict.CRASH:
        if hit_a_limit(again.verdict, again.error):
            return (
                f"{what} was killed at the memory limit; {ran}, it was again: it needs "
                "more memory than the limit allows (a larger --memory decides it)"
            )
        return f"{what} was killed at the memory limit; {ran}: {again.verdict.value}"
    if again.verdict is Verdict.TIMEOUT:
        return (
            f"{what} timed out; {ran}, it timed out again: undecided, not an "
            "incompatibility (a longer --check-timeout or a less busy machine decides it)"
        )
    return f"{what} timed out; {ran}: {again.verdict.value}"
