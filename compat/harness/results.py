"""What running a combination produced: one result per check, one per combination.

Outcomes are values, not exceptions: every failure of a combination ends up here,
serialisable, so the caller can store it as soon as it is known.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from compat.model import Combo, Verdict


class CheckVerdict(enum.StrEnum):
    """What the smoke runner says about one check."""

    PASS = "pass"
    IMPORT_ERROR = "import-error"
    RUNTIME_ERROR = "runtime-error"
    CRASH = "crash"
    TIMEOUT = "timeout"
    SKIPPED = "skipped"

    def as_verdict(self) -> Verdict | None:
        """The combination verdict this check implies; None for a skipped check."""
        if self is CheckVerdict.SKIPPED:
            return None
        return Verdict(self.value)


def worst(verdicts: Iterable[Verdict]) -> Verdict:
    """The worst of ``verdicts`` (PASS for none)."""
    return max(verdicts, key=lambda v: v.severity, default=Verdict.PASS)


@dataclass(frozen=True, kw_only=True, slots=True)
class CheckResult:
    name: str
    verdict: CheckVerdict
    duration: float
    error: str | None = None  # first line of the failure
    log: str = ""

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "verdict": self.verdict.value,
            "duration": self.duration,
            "error": self.error,
            "log": self.log,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> CheckResult:
        return cls(
            name=data["name"],
            verdict=CheckVerdict(data["verdict"]),
            duration=float(data["duration"]),
            error=data.get("error"),
            log=data.get("log", ""),
        )


@dataclass(frozen=True, kw_only=True, slots=True)
class ComboResult:
    combo: Combo
    verdict: Verdict
    checks: tuple[CheckResult, ...] = ()
    error: str | None = None  # first line of the first failure
    failed_check: str | None = None
    duration: float = 0.0  # wall time of the run (or of the failed preparation step)
    system_deps: tuple[str, ...] = ()  # distro packages a missing shared library points to
    added_system_deps: tuple[str, ...] = ()  # packages installed into a derived image for it
    backend: str = ""
    image_id: str | None = None
    log: str = ""

    @property
    def ok(self) -> bool:
        return self.verdict.ok

    def to_json(self) -> dict[str, Any]:
        return {
            "combo": self.combo.to_json(),
            "verdict": self.verdict.value,
            "checks": [c.to_json() for c in self.checks],
            "error": self.error,
            "failed_check": self.failed_check,
            "duration": self.duration,
            "system_deps": list(self.system_deps),
            "added_system_deps": list(self.added_system_deps),
            "backend": self.backend,
            "image_id": self.image_id,
            "log": self.log,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ComboResult:
        return cls(
            combo=Combo.from_json(data["combo"]),
            verdict=Verdict(data["verdict"]),
            checks=tuple(CheckResult.from_json(c) for c in data.get("checks", ())),
            error=data.get("error"),
            failed_check=data.get("failed_check"),
            duration=float(data.get("duration", 0.0)),
            system_deps=tuple(data.get("system_deps", ())),
            added_system_deps=tuple(data.get("added_system_deps", ())),
            backend=data.get("backend", ""),
            image_id=data.get("image_id"),
            log=data.get("log", ""),
        )


def overall(checks: Iterable[CheckResult]) -> tuple[Verdict, CheckResult | None]:
    """The worst verdict among ``checks`` and the first check that has it."""
    found: Verdict = Verdict.PASS
    culprit: CheckResult | None = None
    for check in checks:
        v = check.verdict.as_verdict()
        if v is None or v is Verdict.PASS:
            continue
        if culprit is None or v.severity > found.severity:
            found, culprit = v, check
    return found, culprit
