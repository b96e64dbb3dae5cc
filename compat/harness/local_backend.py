"""Running combinations on the host's own Python, for machines without Docker.

This tests the host platform only (its Python, its libc, its system libraries),
whatever the target says: the results are labelled with backend "local".
"""

from __future__ import annotations

import logging
import shutil
import sys
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path

from compat.config import RunConfig
from compat.effects import cmd
from compat.effects.container import ExecResult, Executor, OnLine
from compat.errors import BuildFailed, HarnessError
from compat.harness.backend import (
    Backend,
    ImageInfo,
    build_error_line,
    compile_command,
    compile_too_long,
)
from compat.model import Pin
from compat.settings import NetworkSettings
from compat.smoke import SMOKE_DIR
from compat.targets.probe import host_facts
from compat.targets.target import Target

log = logging.getLogger("compat.harness")


class LocalExecutor:
    """Runs each command as a host subprocess in a scratch directory."""

    def __init__(self, workdir: Path) -> None:
        self._workdir = workdir

    def exec(
        self,
        argv: Sequence[str],
        *,
        timeout: float | None = None,
        env: Mapping[str, str] | None = None,
        on_line: OnLine | None = None,
    ) -> ExecResult:
        scratch = Path(tempfile.mkdtemp(dir=self._workdir))
        try:
            done = cmd.run(
                argv, env=env, cwd=scratch, timeout=timeout, check=False, on_line=on_line
            )
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
        code = done.returncode
        if code is not None and code < 0:
            code = 128 - code  # a signal, reported the way a shell (and docker) does
        return ExecResult(
            exit_code=code,
            stdout=done.stdout,
            stderr=done.stderr,
            duration=done.duration,
            timed_out=done.timed_out,
        )


class LocalBackend(Backend):
    kind = "local"

    def __init__(
        self,
        config: RunConfig,
        *,
        network: NetworkSettings | None = None,
        python: str | None = None,
        smoke_dir: Path | None = None,
    ) -> None:
        self.config = config
        self.network = network or NetworkSettings()
        self.python = python or sys.executable
        self.smoke = smoke_dir or SMOKE_DIR  # a stand-in suite in tests

    def inspect(self, target: Target) -> ImageInfo:
        info = ImageInfo(image="", image_id=None, facts=host_facts(self.python))
        if info.facts.python_version != target.python_version:
            log.warning(
                "the local backend tests the host's Python %s, not the target's %s",
                info.facts.python_version,
                target.python_version,
            )
        return info

    def build_wheel(
        self, info: ImageInfo, pin: Pin, sdist: Path, out_dir: Path, *, requires: Path | None = None
    ) -> Path:
        # the host builds online: pip downloads the build requirements itself
        network = self.network
        argv = [
            self.python, "-m", "pip", "wheel", "--no-deps", "--no-cache-dir",
            "--disable-pip-version-check", "--index-url", network.index_url,
            "-w", str(out_dir), str(sdist),
        ]  # fmt: skip
        if network.ca_bundle is not None:
            argv[4:4] = ["--cert", str(network.ca_bundle)]
        if network.proxy:
            argv[4:4] = ["--proxy", network.proxy]
        done = cmd.run(argv, timeout=self.config.timeouts.build, check=False)
        wheels = sorted(out_dir.glob("*.whl"))
        if not done.ok or not wheels:
            reason = (
                f"the build took longer than {self.config.timeouts.build:.0f}s"
                if done.timed_out
                else build_error_line(done.output)
            )
            tail = "\n".join(done.output.splitlines()[-40:])
            raise BuildFailed(
                pin, reason, log=tail, duration=done.duration, timed_out=done.timed_out
            )
        return wheels[0]

    def compile(self, info: ImageInfo, dirs: Sequence[Path]) -> None:
        done = cmd.run(
            compile_command(self.python, [str(d) for d in dirs]),
            timeout=self.config.timeouts.compile,
            check=False,
        )
        if done.timed_out:
            raise HarnessError(compile_too_long(self.config.timeouts.compile))
        if done.returncode not in (0, 1):  # 1: some file did not compile
            raise HarnessError(f"compiling bytecode failed: {done.output[-2000:]}")

    def site_dir(self, host_dir: Path) -> str:
        return str(host_dir)

    def file_path(self, host_file: Path) -> str:
        return str(host_file)

    def interpreter(self, info: ImageInfo) -> list[str]:
        return [self.python, "-I", "-S"]

    def smoke_dir(self, info: ImageInfo) -> str:
        return str(self.smoke)

    def checks_dir(self) -> str | None:
        return str(self.config.checks_dir.resolve()) if self.config.checks_dir else None

    @contextmanager
    def executor(self, info: ImageInfo) -> Iterator[Executor]:
        workdir = Path(tempfile.mkdtemp(prefix="compat-run-"))
        try:
            yield LocalExecutor(workdir)
        finally:
            shutil.rmtree(workdir, ignore_errors=True)
