"""Turn the smoke runner's JSON lines (and how its process ended) into verdicts."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from compat.model import (
    CheckKind,
    CheckResult,
    CheckVerdict,
    Combo,
    Verdict,
    overall,
    sorted_inputs,
    unrequested_culprits,
)
from compat.targets.sysdeps import missing_libraries, packages_for
from compat.targets.target import PackageManager

_LOG_TAIL = 8000  # characters of raw output kept per combination


@dataclass(frozen=True, kw_only=True, slots=True)
class SuiteOutcome:
    """How one run of the smoke suite went, before it becomes a ComboResult (the
    suite names its per-check outcome ``compat.smoke.isolate.Outcome``)."""

    verdict: Verdict
    checks: tuple[CheckResult, ...]
    error: str | None
    failed_check: str | None
    missing_libraries: tuple[str, ...]
    system_deps: tuple[str, ...]
    log: str


def parse_events(stdout: str) -> tuple[list[dict[str, object]], list[str]]:
    """JSON events from the runner's output, and every other line (noise from C code)."""
    events: list[dict[str, object]] = []
    other: list[str] = []
    for line in stdout.splitlines():
        stripped = line.strip()
        if stripped.startswith("{"):
            try:
                event = json.loads(stripped)
            except json.JSONDecodeError:
                other.append(line)
                continue
            if isinstance(event, dict) and "event" in event:
                events.append(event)
                continue
        if stripped:
            other.append(line)
    return events, other


def _signal_name(code: int | None) -> str:
    import signal

    if code is None:
        return "a signal"
    signum = -code if code < 0 else code - 128
    try:
        return signal.Signals(signum).name
    except ValueError:
        return f"exit status {code}"


def _kind(event: Mapping[str, object]) -> CheckKind:
    """The kind a runner's event gives its check; a runner that gives none or one
    unknown here is not the one this harness ships (its checks count as smoke)."""
    try:
        return CheckKind(str(event.get("kind")))
    except ValueError:
        return CheckKind.SMOKE


def unrequested_notes(combo: Combo, checks: Sequence[CheckResult]) -> tuple[str, ...]:
    """A note for each dependency nobody requested that a failing check names: how
    to test the requested pins apart from it."""
    return tuple(
        f"{check.name} implicates {name} {combo.version_of(name)}, which was not requested "
        f"(the resolver chose it): to test the requested pins apart from it, add "
        f"'{name}<{combo.version_of(name)}'"
        for name, check in unrequested_culprits(combo, checks).items()
    )


def classify(
    stdout: str,
    stderr: str,
    *,
    exit_code: int | None,
    timed_out: bool,
    elapsed: float,
    package_manager: PackageManager | None,
    libc: str = "glibc",
    keys: Mapping[str, str] | None = None,
    reused: Mapping[str, CheckResult] | None = None,
) -> SuiteOutcome:
    """Classify one run of the runner.

    ``exit_code`` is the process's status (negative or >128 for a signal, None when
    unknown); ``timed_out`` says the wall-time limit ended it. ``keys`` are the
    reuse keys of the checks (recorded with their outcomes), ``reused`` the kept
    outcomes the runner was told to reuse (taken where it says it did).
    """
    events, noise = parse_events(stdout)
    checks: list[CheckResult] = []
    started: str | None = None
    started_kind = CheckKind.RUNNER
    finished = False
    for event in events:
        kind = event.get("event")
        if kind == "start":
            started = str(event.get("check"))
            started_kind = _kind(event)
        elif kind == "result":
            name = str(event.get("check"))
            try:
                verdict = CheckVerdict(str(event.get("verdict")))
            except ValueError:
                verdict = CheckVerdict.RUNTIME_ERROR
            error = event.get("error")
            duration = event.get("duration", 0.0)
            inputs = event.get("inputs")
            check = CheckResult(
                name=name,
                kind=_kind(event),
                verdict=verdict,
                duration=float(duration) if isinstance(duration, int | float) else 0.0,
                error=str(error) if error else None,
                log=str(event.get("log") or ""),
                inputs=sorted_inputs(inputs) if isinstance(inputs, dict) else None,
                key=(keys or {}).get(name),
            )
            checks.append(check)
            if started == name:
                started = None
        elif kind == "reuse":
            name = str(event.get("check"))
            taken = (reused or {}).get(name)
            checks.append(
                taken
                or CheckResult(
                    name=name,
                    kind=CheckKind.RUNNER,
                    verdict=CheckVerdict.RUNTIME_ERROR,
                    duration=0.0,
                    error="the smoke runner reused an outcome it was not given",
                )
            )
        elif kind == "done":
            finished = True

    tail = "\n".join(noise + ([stderr] if stderr else []))[-_LOG_TAIL:]
    if not finished:
        # the runner did not reach the end: a check in flight got the blame
        if timed_out:
            verdict = CheckVerdict.TIMEOUT
            error = f"no result within the time limit ({elapsed:.0f}s)"
        elif exit_code == 0:
            verdict = CheckVerdict.RUNTIME_ERROR
            error = "the smoke runner stopped without reporting the end of the suite"
        else:
            verdict = CheckVerdict.CRASH
            error = f"the process died ({_signal_name(exit_code)})"
        first_stderr = next((ln for ln in reversed(stderr.splitlines()) if ln.strip()), "")
        if verdict is not CheckVerdict.TIMEOUT and first_stderr and started is None:
            error = f"{error}: {first_stderr.strip()}"
        checks.append(
            CheckResult(
                # the check in flight, or the runner itself when none was
                name=started or "smoke-runner",
                kind=started_kind if started else CheckKind.RUNNER,
                verdict=verdict,
                duration=0.0,
                error=error,
                log=tail,
            )
        )

    verdict_, culprit = overall(checks)
    text = "\n".join(f"{c.error or ''}\n{c.log}" for c in checks if c.verdict.as_verdict())
    libs = missing_libraries(text + "\n" + tail)
    # with no package manager, name the packages the libc's usual distro would use
    manager = package_manager or (PackageManager.APK if libc == "musl" else PackageManager.APT)
    deps = packages_for(libs, manager)
    error_line = culprit.error if culprit else None
    if error_line and libs and deps:
        error_line = f"{error_line} (system package: {', '.join(deps)})"
    return SuiteOutcome(
        verdict=verdict_,
        checks=tuple(checks),
        error=error_line,
        failed_check=culprit.name if culprit else None,
        missing_libraries=libs,
        system_deps=deps,
        log=tail,
    )
