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

from packaging.utils import NormalizedName

from compat.config import RunConfig, Timeouts
from compat.effects.container import Executor
from compat.harness.backend import Backend, ImageInfo
from compat.harness.classify import SuiteOutcome, classify, unrequested_notes
from compat.harness.elf import needed_sonames
from compat.harness.reuse import Reuse
from compat.harness.sweeps import SweepCache, SweepRecord
from compat.model import CheckResult, CheckVerdict, Combo, ComboResult, FileKind, Verdict
from compat.smoke import runner_argv
from compat.targets.sysdeps import needed_of
from compat.targets.target import PackageManager

log = logging.getLogger("compat.harness")


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
    kept_sweeps: Mapping[NormalizedName, SweepRecord] | None = None,
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
        kept_sweeps=kept_sweeps,
        keys=keys,
        reused=reused,
    )


def run_one(
    executor: Executor,
    backend: Backend,
    info: ImageInfo,
    placed: Placed,
    config: RunConfig,
    sweeps: SweepCache,
    reuse: Reuse | None,
) -> ComboResult:
    """Run the smoke suite once for one combination and classify what happened;
    whole-package imports and checks kept from an earlier run with the same inputs
    are not run again (see ``compat.harness.sweeps`` and ``compat.harness.reuse``)."""
    prepared = placed.prepared
    combo = prepared.combo
    python, *flags = placed.python
    checks_dir = backend.checks_dir()
    image_id = info.image_id or f"host:{info.interpreter_key}"
    keys = {
        p.name: sweeps.key(image_id=image_id, pin=p, installed=combo.versions) for p in combo.pins
    }
    kept = {
        name: r
        for name, key in keys.items()
        if config.reuse and (r := sweeps.find(key, combo.versions))
    }
    # a wheel built here from its sdist is its own build (toolchain, flags), not the
    # version alone
    built = {
        pin.name: sha
        for pin, sha in zip(combo.pins, prepared.shas, strict=True)
        if pin.kind is FileKind.SDIST
    }
    check_keys = (
        reuse.keys(image_id=image_id, installed=combo.versions, built=built) if reuse else {}
    )
    reusable = reuse.find(check_keys, combo.versions) if reuse else {}
    verify = reuse.to_verify(reusable) if reuse else set()
    reused = {name: c for name, c in reusable.items() if name not in verify}

    def suite(timeouts: Timeouts, passed: Mapping[str, CheckResult] | None = None) -> SuiteOutcome:
        taken = {**reused, **(passed or {})}
        argv = runner_argv(
            python,
            smoke_dir=placed.suite_dir,
            sites=list(placed.sites),
            packages=list(combo.requested),
            checks_dirs=[checks_dir] if checks_dir else [],
            timeout=timeouts.check,
            only=config.only,
            exec_cmd=config.exec_cmd,
            skip_sweeps=sorted(kept),
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
            kept_sweeps=kept,
            keys=check_keys,
            reused=taken,
        )

    start = time.monotonic()
    outcome = suite(config.timeouts)
    rerun: tuple[str, ...] = ()
    swept = outcome.sweeps
    if outcome.verdict is Verdict.TIMEOUT:
        # A busy machine, not the packages, may have run out the clock: run again with
        # twice the time, what passed kept, before anyone reads it. A timeout that
        # persists stays a timeout: undecided, never an incompatibility.
        slower = config.timeouts.doubled()
        passed = {c.name: c for c in outcome.checks if c.verdict is CheckVerdict.PASS}
        first = outcome
        outcome = suite(slower, passed)
        rerun = (_rerun_note(first, outcome, slower),)
        swept += outcome.sweeps
    for record in swept:
        if record.dist in keys:
            sweeps.keep(keys[record.dist], record)
    disagreements = reuse.verified(reusable, outcome.checks) if reuse else []
    for line in disagreements:
        log.warning("%s: %s", combo.label(), line)
    return ComboResult(
        combo=combo,
        verdict=outcome.verdict,
        checks=(*prepared.builds, *outcome.checks),
        notes=(
            *prepared.notes,
            *rerun,
            *unrequested_notes(combo, outcome.checks),
            *disagreements,
        ),
        error=outcome.error,
        failed_check=outcome.failed_check,
        duration=time.monotonic() - start,
        system_deps=outcome.system_deps,
        # what the image had installed, as far as this combination's files need it
        added_system_deps=needed_of(
            info.added_packages,
            needed_sonames(placed.installed),
            info.facts.package_manager,
        )
        if info.added_packages
        else (),
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


def _rerun_note(first: SuiteOutcome, again: SuiteOutcome, slower: Timeouts) -> str:
    """What the rerun of a combination that timed out found."""
    what = first.failed_check or "the suite"
    if again.verdict is Verdict.TIMEOUT:
        return (
            f"{what} timed out; run again with twice the time ({slower.check:g} s a check), "
            "it timed out again: undecided, not an incompatibility (a longer --check-timeout "
            "or a less busy machine decides it)"
        )
    return (
        f"{what} timed out; run again with twice the time ({slower.check:g} s a check): "
        f"{again.verdict.value}"
    )
