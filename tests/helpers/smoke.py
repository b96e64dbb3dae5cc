"""Running the smoke runner as the harness does: a subprocess writing JSON events,
with the host's Python on tiny fake site directories."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from compat.smoke import RUNNER


@dataclass(frozen=True, kw_only=True, slots=True)
class Run:
    returncode: int
    events: list[dict[str, Any]]
    stderr: str
    wall: float

    @property
    def results(self) -> dict[str, dict[str, Any]]:
        return {e["check"]: e for e in self.events if e["event"] == "result"}

    def verdict(self, check: str) -> str:
        return str(self.results[check]["verdict"])

    @property
    def done(self) -> dict[str, Any]:
        assert self.events[-1]["event"] == "done", self.events[-1]
        return self.events[-1]


def run_runner(
    *args: str,
    python: str = sys.executable,
    flags: tuple[str, ...] = ("-S",),
    timeout: float = 60,
    env: dict[str, str] | None = None,
) -> Run:
    base_env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
    base_env["PYTHONDONTWRITEBYTECODE"] = "1"  # the smoke dir is read-only in real use
    started = time.monotonic()
    proc = subprocess.run(
        [python, *flags, str(RUNNER), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**base_env, **(env or {})},
        check=False,
    )
    wall = time.monotonic() - started
    # Every line of stdout is an event: nothing a check prints may land there.
    events = [json.loads(line) for line in proc.stdout.splitlines()]
    return Run(returncode=proc.returncode, events=events, stderr=proc.stderr, wall=wall)


def make_dist(site: Path, name: str, module: str, source: str, *, top_level: bool = True) -> None:
    """An installed distribution: one module and its dist-info."""
    (site / module).mkdir(parents=True)
    (site / module / "__init__.py").write_text(textwrap.dedent(source))
    info = site / f"{name.replace('-', '_')}-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 1.0\n")
    if top_level:
        (info / "top_level.txt").write_text(module + "\n")
    (info / "RECORD").write_text(f"{module}/__init__.py,,\n")
