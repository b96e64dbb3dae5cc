"""Check outcomes reused by what the checks imported.

Each built-in and user check runs in a process that imported only what it needs,
and reports the distributions it imported or tried to import (its inputs); an
import check's inputs are its distribution's whole-package import's, taken over
every installed distribution. Its outcome depends on
the image it ran in (system packages included: a derived image has its own ID),
the code that defines it and runs it, the versions of its inputs, and which
distributions are installed at all (an optional dependency is probed without
being imported; a wheel built here from an sdist counts as its build). Those, but
the versions, make its reuse key; a later combination with the same key whose
installed versions agree with a stored outcome's inputs takes that outcome
without running the check (``--reuse`` to the runner, which still skips what it
would skip). A pass is reused as a pass and a failure as that failure (its
inputs include the import that failed: every import tried counts); a timeout or
a crash is never reused, as either may not happen again. A reused import check is
taken as imported, so only a passing one is reused. Plugin checks (their code is
not on the host) and ``exec`` always run.

Reuse is verified, not assumed: with ``--verify-reuse`` a share of the outcomes
that would be reused run again, and a rerun that disagrees is said, kept in the
results database and ends reuse under that key.
"""

from __future__ import annotations

import dataclasses
import hashlib
import random
import sys
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Protocol

from packaging.utils import NormalizedName
from packaging.version import InvalidVersion, Version

from compat.model import CheckResult, CheckVerdict, Inputs
from compat.smoke import SMOKE_DIR
from compat.smoke.checks import builtin_checks
from compat.smoke.engine import user_checks

IMPORT = "import:"


class Reusable(Protocol):
    """What is kept under reuse keys (``compat.store.Reader``)."""

    def reusable(self, keys: Iterable[str]) -> dict[str, list[tuple[Inputs, int]]]: ...


class KeptChecks(Reusable, Protocol):
    """Where outcomes are kept (``compat.store.Store``)."""

    def kept_checks(self, wanted: Mapping[str, int]) -> dict[str, tuple[str, CheckResult]]: ...

    def record_disagreement(self, kept: CheckResult, found: CheckResult) -> None: ...


def _digest(paths: Iterable[Path]) -> str:
    digest = hashlib.sha256()
    for path in paths:
        digest.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()


def _runner_code() -> str:
    """The digest of the runner: what runs the import checks and the others."""
    return _digest(sorted(SMOKE_DIR.glob("*.py")))


def _check_code() -> dict[str, str]:
    """The digest of the code of each built-in check: its module, the toolkit the
    checks share and the runner that runs them."""
    toolkit = [SMOKE_DIR / "checks" / "__init__.py", SMOKE_DIR / "checks" / "shims.py"]
    runner = _digest([*sorted(SMOKE_DIR.glob("*.py")), *toolkit])
    modules: dict[str, str] = {}
    code = {}
    for check in builtin_checks():
        module = check.func.__module__
        if module not in modules:
            source = sys.modules[module].__file__
            assert source is not None
            modules[module] = _digest([Path(source)])
        code[check.name] = f"{runner}:{modules[module]}"
    return code


def _user_code(checks_dir: Path | None) -> dict[str, str]:
    """The digest of each user check's code: its script and the runner."""
    if checks_dir is None:
        return {}
    runner = _runner_code()
    return {
        name: f"{runner}:{_digest([Path(path)])}" for name, path in user_checks([str(checks_dir)])
    }


class Keys:
    """The reuse keys of a pipeline's checks: the code of each (built-in, user and
    import checks), the image and the installed distributions."""

    def __init__(self, checks_dir: Path | None) -> None:
        self._code = {**_check_code(), **_user_code(checks_dir)}
        self._runner = _runner_code()

    def __call__(
        self,
        *,
        image_id: str,
        installed: Iterable[NormalizedName],
        built: Mapping[NormalizedName, str] | None = None,
    ) -> dict[str, str]:
        """The reuse key of each check that may be reused, by check name. ``built``:
        the wheel (its sha256) of each distribution built here from its sdist."""
        built = built or {}
        installed = sorted(installed)
        names = "\n".join(f"{n} built {built[n]}" if n in built else n for n in installed)
        code = {**self._code, **{f"{IMPORT}{n}": self._runner for n in installed}}
        return {
            name: hashlib.sha256(f"{digest}\n{image_id}\n{name}\n{names}".encode()).hexdigest()
            for name, digest in code.items()
        }


def matching(
    kept: Reusable, keys: Mapping[str, str], versions: Mapping[NormalizedName, Version]
) -> dict[str, int]:
    """For each of ``keys`` (by check name) under which ``kept`` has an outcome
    whose inputs ``versions`` has, the latest result that ran it so."""
    candidates = kept.reusable(keys.values())
    found = {}
    for name, key in keys.items():
        latest_first = sorted(candidates.get(key, ()), key=lambda c: -c[1])
        match = next((rid for inputs, rid in latest_first if holds(inputs, versions)), None)
        if match is not None:
            found[name] = match
    return found


class Reuse:
    """The reuse keys of a pipeline's checks, and what is kept under them.
    ``verify`` is the share of reusable outcomes run again and compared."""

    def __init__(
        self,
        kept: KeptChecks,
        *,
        checks_dir: Path | None,
        verify: float = 0.0,
        rng: random.Random | None = None,
    ) -> None:
        self._kept = kept
        self.keys = Keys(checks_dir)
        self._verify = verify
        self._rng = rng or random.Random()

    def find(
        self, keys: Mapping[str, str], versions: Mapping[NormalizedName, Version]
    ) -> dict[str, CheckResult]:
        """The kept outcome of each check whose inputs ``versions`` has, as reused."""
        wanted = {keys[name]: rid for name, rid in matching(self._kept, keys, versions).items()}
        names = {key: name for name, key in keys.items()}
        return {
            names[key]: reused(check, uid)
            for key, (uid, check) in self._kept.kept_checks(wanted).items()
        }

    def to_verify(self, reusable: Mapping[str, CheckResult]) -> set[str]:
        """Which of the ``reusable`` checks to run anyway, to compare."""
        return {name for name in sorted(reusable) if self._rng.random() < self._verify}

    def verified(self, kept: Mapping[str, CheckResult], ran: Iterable[CheckResult]) -> list[str]:
        """Compare checks that ran with the ``kept`` outcomes they could have taken.
        Each disagreement is recorded (nothing is reused under its key again) and
        described. A rerun that timed out says nothing of the kept outcome."""
        said = []
        for check in ran:
            before = kept.get(check.name)
            if before is None or check.verdict in (before.verdict, CheckVerdict.TIMEOUT):
                continue
            self._kept.record_disagreement(before, check)
            said.append(
                f"reuse disagreement: {check.name} was {before.verdict.value} in result "
                f"{before.reused_from} with the same inputs, and is {check.verdict.value} "
                "now; it is not reused under that key again"
            )
        return said


def holds(inputs: Inputs, versions: Mapping[NormalizedName, Version]) -> bool:
    """Whether each input installed by the combination has the version it had.
    An input the combination does not install came with the image, whose ID is
    in the key, as is the set of installed names."""
    for name, version in inputs:
        have = versions.get(NormalizedName(name))
        if have is None:
            continue
        try:
            same = have == Version(version)
        except InvalidVersion:
            same = str(have) == version
        if not same:
            return False
    return True


def reused(check: CheckResult, uid: str) -> CheckResult:
    """``check`` (as stored from result ``uid``) taken by a combination that did
    not run it."""
    if check.reused_from is None:  # else its log says so already
        loaded = ", ".join(f"{n} {v}" for n, v in check.inputs or ())
        note = f"reused: not run again; it ran with the same inputs ({loaded}) in result {uid}"
        check = dataclasses.replace(check, log="\n".join(p for p in (note, check.log) if p))
    return dataclasses.replace(check, duration=0.0, reused_from=uid)
