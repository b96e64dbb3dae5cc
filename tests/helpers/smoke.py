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
    pid: int  # the runner's
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
    with subprocess.Popen(
        [python, *flags, str(RUNNER), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**base_env, **(env or {})},
    ) as proc:
        try:
            stdout, stderr = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            raise
    wall = time.monotonic() - started
    # Every line of stdout is an event: nothing a check prints may land there.
    events = [json.loads(line) for line in stdout.splitlines()]
    return Run(returncode=proc.returncode, pid=proc.pid, events=events, stderr=stderr, wall=wall)


def assert_segfault(
    result: dict[str, Any], printed: str, where: str, *, module: str | None = None
) -> None:
    """A check killed by SIGSEGV: said so (an import check naming the ``module`` in
    flight), with what it printed before and faulthandler's stack through ``where``
    in its log."""
    assert result["verdict"] == "crash", result
    said = "killed by signal SIGSEGV"
    assert result["error"].startswith(f"{module}: {said}" if module else said), result["error"]
    assert printed in result["log"]
    assert "Fatal Python error" in result["log"]
    assert where in result["log"]


def make_dist(
    site: Path,
    name: str,
    module: str,
    source: str,
    *,
    top_level: bool = True,
    version: str = "1.0",
    submodules: tuple[str, ...] = (),
    requires: tuple[str, ...] = (),
) -> None:
    """An installed distribution: one package (empty ``submodules`` beside its
    ``__init__``, dotted below it) and its dist-info."""
    (site / module).mkdir(parents=True)
    (site / module / "__init__.py").write_text(textwrap.dedent(source))
    files = [f"{module}/__init__.py"]
    for sub in submodules:
        *folders, last = sub.split(".")
        for depth in range(1, len(folders) + 1):
            package = site / module / Path(*folders[:depth])
            package.mkdir(exist_ok=True)
            (package / "__init__.py").touch()
            files.append(f"{module}/{'/'.join(folders[:depth])}/__init__.py")
        (site / module / Path(*folders, f"{last}.py")).touch()
        files.append(f"{module}/{'/'.join([*folders, last])}.py")
    info = site / f"{name.replace('-', '_')}-{version}.dist-info"
    info.mkdir()
    metadata = f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n"
    metadata += "".join(f"Requires-Dist: {r}\n" for r in requires)
    (info / "METADATA").write_text(metadata)
    if top_level:
        (info / "top_level.txt").write_text(module + "\n")
    (info / "RECORD").write_text("".join(f"{f},,\n" for f in dict.fromkeys(files)))
