"""The one door to subprocesses: logs the command, enforces a wall-time limit by
killing the whole process group, and reports failure as a compat error."""

from __future__ import annotations

import contextlib
import logging
import os
import shlex
import signal
import subprocess
import time
from collections.abc import Mapping, Sequence
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
) -> Completed:
    """Run ``argv`` to the end (or to ``timeout``), capturing its output.

    ``env`` replaces the environment when given (the core never reads ``os.environ``:
    callers decide). With ``check``, a non-zero exit or a timeout raises CommandFailed.
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
    timed_out = False
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        timed_out = True
        _kill_group(proc)
        out, err = proc.communicate()
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


def _kill_group(proc: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
