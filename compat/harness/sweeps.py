"""Whole-package imports kept on disk and reused by their inputs.

A distribution's whole-package import depends on the image it ran in (system
packages included: a derived image has its own ID), the code that ran it, the
distribution's own file, the versions of the distributions its modules loaded
or tried to import (reported by the runner), and which distributions are
installed at all. A combination whose pin matches a kept outcome on all of these
skips that import (``--skip-sweep``) and takes the kept outcome, saying so in the
check's log. Only passes are kept: a crash or a hang may not happen again, and a
failure costs a rerun, never a verdict.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import tempfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from packaging.utils import NormalizedName, canonicalize_name
from packaging.version import Version

from compat.model import CheckResult, CheckVerdict, Pin, sorted_inputs
from compat.smoke import SMOKE_DIR

_KEPT = (CheckVerdict.PASS,)
_CODE = ("modules.py", "engine.py", "isolate.py", "dists.py")


@dataclass(frozen=True, kw_only=True, slots=True)
class SweepRecord:
    """One whole-package import's outcome, as the runner's ``sweep`` event gave it."""

    dist: NormalizedName
    verdict: CheckVerdict
    error: str | None
    inputs: Mapping[NormalizedName, str]  # what its modules loaded: name -> version
    summary: str

    @classmethod
    def from_event(cls, event: Mapping[str, Any]) -> SweepRecord:
        inputs = event.get("inputs") or {}
        return cls(
            dist=canonicalize_name(str(event["dist"])),
            verdict=CheckVerdict(str(event["verdict"])),
            error=str(event["error"]) if event.get("error") else None,
            inputs={canonicalize_name(str(n)): str(v) for n, v in dict(inputs).items()},
            summary=str(event.get("summary") or ""),
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "dist": self.dist,
            "verdict": self.verdict.value,
            "error": self.error,
            "inputs": dict(self.inputs),
            "summary": self.summary,
        }

    def holds_for(self, versions: Mapping[NormalizedName, Version]) -> bool:
        """Whether every distribution it loaded is installed at the same version."""
        return all(
            name in versions and str(versions[name]) == version
            for name, version in self.inputs.items()
        )

    def applied_to(self, check: CheckResult) -> CheckResult:
        """The import check of its distribution (its top level imported in this
        run) with this outcome of the whole-package import, as the runner would
        have combined them."""
        loaded = ", ".join(f"{n} {v}" for n, v in sorted(self.inputs.items()))
        note = f"whole-package import reused from an earlier run with the same inputs ({loaded})"
        log = "\n".join(part for part in (check.log, self.summary, note) if part)
        inputs = sorted_inputs({str(n): v for n, v in self.inputs.items()}) if self.inputs else None
        if check.verdict is not CheckVerdict.PASS or self.verdict is CheckVerdict.PASS:
            return dataclasses.replace(check, log=log, inputs=inputs)
        return dataclasses.replace(
            check, verdict=self.verdict, error=self.error, log=log, inputs=inputs
        )


def _code_digest() -> str:
    digest = hashlib.sha256()
    for name in _CODE:
        digest.update(name.encode() + b"\0" + (SMOKE_DIR / name).read_bytes())
    return digest.hexdigest()


class SweepCache:
    """Kept whole-package imports under ``cache_dir/sweeps``, a file per key."""

    def __init__(self, cache_dir: Path) -> None:
        self.dir = cache_dir / "sweeps"
        self._code = _code_digest()

    def key(self, *, image_id: str, pin: Pin, installed: Iterable[NormalizedName]) -> str:
        digest = hashlib.sha256(f"{self._code}\n{image_id}\n{pin.name}\n{pin.sha256}".encode())
        for name in sorted(installed):
            digest.update(f"\n{name}".encode())
        return digest.hexdigest()[:32]

    def _path(self, key: str) -> Path:
        return self.dir / f"{key}.json"

    def _records(self, key: str) -> list[SweepRecord]:
        try:
            data = json.loads(self._path(key).read_text())
            return [SweepRecord.from_event(d) for d in data]
        except (OSError, ValueError, KeyError, TypeError):
            return []  # none kept, or a damaged file: run the import again

    def find(self, key: str, versions: Mapping[NormalizedName, Version]) -> SweepRecord | None:
        """A kept pass whose inputs all have ``versions`` (a failure an older compat
        kept is not taken)."""
        return next(
            (r for r in self._records(key) if r.verdict in _KEPT and r.holds_for(versions)), None
        )

    def keep(self, key: str, record: SweepRecord) -> None:
        if record.verdict not in _KEPT:
            return
        others = [r for r in self._records(key) if r.inputs != record.inputs]
        self.dir.mkdir(parents=True, exist_ok=True)
        # written whole, then renamed: a reader never sees half a file
        handle, temporary = tempfile.mkstemp(dir=self.dir, suffix=".tmp")
        with os.fdopen(handle, "w") as out:
            json.dump([r.to_json() for r in (*others, record)], out)
        Path(temporary).replace(self._path(key))
