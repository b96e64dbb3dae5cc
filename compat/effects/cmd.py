"""The one door to subprocesses: logs the command, enforces a wall-time limit by
killing the whole process group, and reports failure as a compat error."""

from __future__ import annotations

import contextlib
import logging
import os
import shlex
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from compat.errors import CommandFailed, HarnessError

log = logging.getLogger("compat.effects")


@dataclass(frozen=True, kw_only=True, slots=True)
class Completed:
    """How a process ended. ``returncode`` is negative for a signal, None on timeout."""

    returncode: int | None
    stdout: str
    stderr: str
    duration: float
    timed_out: bool = False

    @property
    def output(self) -> str:
        return self.stdout + self.stderr

    @property
    def ok(self) -> bool:
        return self.returncode == 0


def run(
    argv: Sequence[str | Path],
    *,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
    timeout: float | None = None,
    check: bool = True,
    on_line: Callable[[str], None] | None = None,
) -> Completed:
    """Run ``argv`` to the end (or to ``timeout``), capturing its output.

    ``env`` replaces the environment when given (the core never reads ``os.environ``:
    callers decide). With ``check``, a non-zero exit or a timeout raises CommandFailed.
    ``on_line`` is given each line of standard output as it comes.
    """
    args = [str(a) for a in argv]
    log.debug("run: %s", shlex.join(args))
    start = time.monotonic()
    try:
        # own session, so a timeout kills the grandchildren too
        proc = subprocess.Popen(
            args,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            stdin=subprocess.DEVNULL,
            env=dict(env) if env is not None else None,
            cwd=cwd,
            start_new_session=True,
        )
    except OSError as exc:
        raise HarnessError(f"cannot run {args[0]}: {exc}") from exc
    try:
        if on_line is None:
            out, err, timed_out = _communicate(proc, timeout)
        else:
            out, err, timed_out = _streamed(proc, timeout, on_line)
    except BaseException:  # KeyboardInterrupt included: leave nothing running
        _kill_group(proc)
        proc.wait()
        raise
    result = Completed(
        returncode=None if timed_out else proc.returncode,
        stdout=out.decode(errors="replace"),
        stderr=err.decode(errors="replace"),
        duration=time.monotonic() - start,
        timed_out=timed_out,
    )
    log.debug("exit %s after %.1fs: %s", result.returncode, result.duration, args[0])
    if check and not result.ok:
        raise CommandFailed(args, returncode=result.returncode, output=result.output)
    return result


def _communicate(proc: subprocess.Popen[bytes], timeout: float | None) -> tuple[bytes, bytes, bool]:
    """Its output, once it ended or ``timeout`` had it killed; and whether it was."""
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        _kill_group(proc)
        out, err = proc.communicate()
        return out, err, True
    return out, err, False


def _streamed(
    proc: subprocess.Popen[bytes], timeout: float | None, on_line: Callable[[str], None]
) -> tuple[bytes, bytes, bool]:
    """As ``_communicate``, each line of standard output handed to ``on_line`` as
    it comes."""
    stdout, stderr = proc.stdout, proc.stderr
    assert stdout is not None
    assert stderr is not None
    out: list[bytes] = []
    err: list[bytes] = []

    def read_out() -> None:
        for line in stdout:
            out.append(line)
            on_line(line.decode(errors="replace").rstrip("\n"))

    def read_err() -> None:
        err.append(stderr.read())

    readers = [threading.Thread(target=read, daemon=True) for read in (read_out, read_err)]
    for reader in readers:
        reader.start()
    timed_out = False
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        _kill_group(proc)
        proc.wait()
        timed_out = True
    for reader in readers:
        reader.join()
    stdout.close()
    stderr.close()
    return b"".join(out), b"".join(err), timed_out


def _kill_group(proc: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
