"""The whole-package import as the host reads it: which modules of a distribution
failed to import (from its import check's log, written by
``compat.smoke.modules``), and which of those fail the same way on a baseline,
the same release with other partners, and so implicate no partner here."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping

from packaging.utils import NormalizedName, canonicalize_name

from compat.model import CheckKind, CheckResult, CheckVerdict
from compat.smoke.modules import ESSENTIAL_FAILED, NUMPY_ABI

_FAILED = re.compile(r"^failed: (?P<module>[\w.]+): (?P<error>.*)$")
_SAME = re.compile(r"^  \d+ more with the same error: (?P<modules>.*)$")
_EXCEPTION = re.compile(r"^([\w.]+):")


def dependent_of(check: CheckResult) -> NormalizedName | None:
    """The distribution an import check is of (``import:<name>``)."""
    _, sep, rest = check.name.partition(":")
    return canonicalize_name(rest) if check.kind is CheckKind.IMPORT and sep and rest else None


def failed_modules(log: str) -> dict[str, str]:
    """Module -> error line of every module the sweep in ``log`` failed to import."""
    found: dict[str, str] = {}
    error: str | None = None
    for line in log.splitlines():
        if failed := _FAILED.match(line):
            error = failed["error"]
            found[failed["module"]] = error
        elif (same := _SAME.match(line)) and error is not None:
            for module in same["modules"].split(", "):
                found[module.strip()] = error
        elif not line.startswith("  "):
            error = None
    return found


def sweep_failed(check: CheckResult) -> dict[str, str]:
    """The failed modules of an import check whose essential modules imported
    (its top level, its compiled submodules), else nothing."""
    if dependent_of(check) is None or check.verdict is not CheckVerdict.IMPORT_ERROR:
        return {}
    if any(line.startswith(ESSENTIAL_FAILED) for line in check.log.splitlines()):
        return {}  # the package does not import at all: nothing to compare
    failed = failed_modules(check.log)
    if not any((check.error or "").startswith(f"{m}: ") for m in failed):
        return {}  # an older runner's: its top level itself failed
    return failed


def wants_baseline(check: CheckResult) -> bool:
    """Whether a baseline could change the check: some module failed otherwise
    than on NumPy's binary interface (which always counts)."""
    return any(not NUMPY_ABI.search(error) for error in sweep_failed(check).values())


def _exception(error: str) -> str:
    found = _EXCEPTION.match(error)
    return found[1] if found else error


def compare(check: CheckResult, baseline: Mapping[str, str], baseline_label: str) -> CheckResult:
    """``check`` with the modules that fail on the baseline too (the same module,
    the same exception) taken out of its failures and listed as not attributed; a
    pass when none is left. Binary-interface failures always count."""
    failed = sweep_failed(check)
    same = sorted(
        m
        for m, error in failed.items()
        if not NUMPY_ABI.search(error)
        and m in baseline
        and _exception(baseline[m]) == _exception(error)
    )
    if not same:
        return check
    left = {m: e for m, e in failed.items() if m not in same}
    note = f"not attributed, failing the same way on the baseline ({baseline_label}): " + ", ".join(
        same
    )
    log = f"{check.log}\n{note}"
    if not left:
        return dataclasses.replace(check, verdict=CheckVerdict.PASS, error=None, log=log)
    first = next(iter(left))
    more = f" (and {len(left) - 1} more modules)" if len(left) > 1 else ""
    return dataclasses.replace(check, error=f"{first}: {left[first]}{more}", log=log)
