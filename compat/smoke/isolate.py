"""Running one check with its output captured: in-process (imports, inside a forked
child of the runner), in a forked child (everything else) or as a subprocess
(``--exec``), turned into an Outcome; and the channel through which forked
processes send their records back to the runner.

Runs inside the environment under test: standard library only, Python 3.9+.
"""

from __future__ import annotations

import contextlib
import faulthandler
import gc
import io
import json
import os
import re
import resource
import select
import signal
import subprocess
import sys
import tempfile
import time
import traceback
import unittest
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

LOG_LIMIT = 64 * 1024  # bytes of output kept per check: the tail, where errors are

PASS = "pass"
IMPORT_ERROR = "import-error"
RUNTIME_ERROR = "runtime-error"
CRASH = "crash"
TIMEOUT = "timeout"
SKIPPED = "skipped"
CHECK_ERROR = "check-error"
VERDICTS = (PASS, IMPORT_ERROR, RUNTIME_ERROR, CRASH, TIMEOUT, SKIPPED, CHECK_ERROR)

# The signal on which a forked child writes the traceback of every thread: sent by
# the parent when the child's time is up, a moment before its group is killed.
HUNG = signal.SIGUSR1
_DUMP_GRACE = 0.25

# How a crash begins when the kernel killed the process at the memory limit of the
# environment (a container's --memory): the harness runs such a combination again.
OUT_OF_MEMORY = "killed by the out-of-memory killer"
# where a container sees its own memory cgroup's count of such kills: v2, then v1
_OOM_COUNTS = ("/sys/fs/cgroup/memory.events", "/sys/fs/cgroup/memory/memory.oom_control")


class Skip(unittest.SkipTest):
    """Raised by a check when the installed versions lack what it tests. User
    checks can raise ``unittest.SkipTest`` to the same effect."""


class _TimeLimit(BaseException):
    """Raised by SIGALRM in an in-process check; a BaseException so that the
    imported code's own ``except Exception`` does not swallow it."""


# Not frozen-slotted-kw_only as elsewhere in compat: those need Python 3.10.
@dataclass(frozen=True)
class Outcome:
    verdict: str
    duration: float
    error: str | None = None
    log: str | None = None
    # the distributions loaded when the check's body ended (canonical name to
    # version); None when the check did not run in a process of its own
    inputs: dict[str, str] | None = None
    # CPU seconds of its process and of what that process waited for; None when
    # the check did not run in a process of its own
    cpu: float | None = None

    def record(self) -> dict[str, Any]:
        """The outcome as JSON-ready fields (the result event's, and a record's)."""
        return {
            "verdict": self.verdict,
            "duration": round(self.duration, 4),
            "error": self.error,
            "log": self.log,
            "inputs": self.inputs,
            "cpu": None if self.cpu is None else round(self.cpu, 3),
        }

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> Outcome:
        inputs = record.get("inputs")
        return cls(
            str(record.get("verdict", CRASH)),
            float(record.get("duration") or 0.0),
            record.get("error"),
            record.get("log"),
            dict(inputs) if isinstance(inputs, dict) else None,
            float(record["cpu"]) if record.get("cpu") is not None else None,
        )


def describe_exception(exc: BaseException) -> str:
    """One line saying what went wrong, as Python would print it last."""
    text = traceback.format_exception_only(type(exc), exc)[-1].strip()
    first = text.splitlines()[0] if text else type(exc).__name__
    if isinstance(exc, AssertionError) and not str(exc):
        # A bare assert says nothing: point at it instead.
        frames = traceback.extract_tb(exc.__traceback__)
        if frames:
            last = frames[-1]
            where = f"{Path(last.filename).name}:{last.lineno}"
            first = f"AssertionError at {where}: {(last.line or '').strip()}"
    return first


_HERE = Path(__file__).absolute().parent
_PLUMBING = {str(_HERE / "isolate.py"), str(_HERE / "engine.py"), str(_HERE / "modules.py")}


def _is_plumbing(filename: str) -> bool:
    return (
        filename in _PLUMBING
        or filename.startswith("<frozen importlib")
        or filename.endswith(("importlib/__init__.py", "runpy.py"))
    )


def format_traceback(exc: BaseException) -> str:
    """The traceback of ``exc`` without the runner's own frames in front of the
    check's."""
    tb = exc.__traceback__
    while tb is not None and _is_plumbing(tb.tb_frame.f_code.co_filename):
        tb = tb.tb_next
    return "".join(traceback.format_exception(type(exc), exc, tb))


def print_traceback() -> None:
    """The traceback of the exception being handled, to stderr (the log)."""
    exc = sys.exc_info()[1]
    if exc is not None:
        sys.stderr.write(format_traceback(exc))


_CHECKS_DIR = str(_HERE / "checks") + os.sep

# TypeErrors of a call whose arguments do not bind to the callee's signature:
# the callee never ran, so the caller asked for an API that is not there.
SIGNATURE_MISMATCH = re.compile(
    r"unexpected keyword argument"
    r"|missing \d+ required (positional|keyword-only) arguments?"
    r"|takes (from \d+ to )?\d+ positional arguments? but \d+ (was|were) given"
    r"|got multiple values for (keyword )?argument"
    r"|takes no (keyword )?arguments"
    r"|takes exactly (one|\d+) arguments?"
    r"|is an invalid keyword argument for"
    r"|got some positional-only arguments passed as keyword arguments"
)


_LOOKUP_HOOKS = ("__getattr__", "__getattribute__")


def _is_import_machinery(filename: str) -> bool:
    return filename.startswith("<frozen importlib") or filename.endswith(
        ("importlib/__init__.py", "importlib\\__init__.py")
    )


def raised_by_check_code(exc: BaseException) -> bool:
    """Whether ``exc`` was raised by a built-in check's own code (its module,
    helpers or shims), not by the libraries it called: the innermost frame,
    past the import machinery, is in the checks package."""
    frames = traceback.extract_tb(exc.__traceback__)
    while frames and (
        _is_import_machinery(frames[-1].filename)
        # A module's or class's __getattr__ (lazy loading, removed aliases)
        # answers for the attribute lookup the caller made.
        or (isinstance(exc, AttributeError) and frames[-1].name in _LOOKUP_HOOKS)
    ):
        frames.pop()
    return bool(frames) and frames[-1].filename.startswith(_CHECKS_DIR)


def is_check_defect(exc: BaseException) -> bool:
    """The check called an API the installed release never had: an AttributeError,
    a TypeError of arguments that do not bind, or an ImportError of a name, raised
    in the check's own frame. A defect of the check, not an incompatibility; an
    error raised inside the libraries (one calling the other wrongly) is not one."""
    if isinstance(exc, TypeError):
        if not SIGNATURE_MISMATCH.search(str(exc)):
            return False
    elif not isinstance(exc, (AttributeError, ImportError)):
        return False
    return raised_by_check_code(exc)


def classify_exception(exc: BaseException) -> str:
    """Built-in checks: a check calling an API its release lacks is a check-error;
    a failed import inside a check is still an import-error."""
    if isinstance(exc, unittest.SkipTest):
        return SKIPPED
    if is_check_defect(exc):
        return CHECK_ERROR
    if isinstance(exc, ImportError):
        return IMPORT_ERROR
    return RUNTIME_ERROR


def classify_user_exception(exc: BaseException) -> str:
    """User checks: any exception is a runtime-error (unittest.SkipTest skips)."""
    return SKIPPED if isinstance(exc, unittest.SkipTest) else RUNTIME_ERROR


def signal_description(signum: int) -> str:
    try:
        name = signal.Signals(signum).name
    except ValueError:
        name = f"signal {signum}"
    text = signal.strsignal(signum) if hasattr(signal, "strsignal") else None
    return f"killed by signal {name} ({text})" if text else f"killed by signal {name}"


def oom_kills() -> int | None:
    """How many processes the out-of-memory killer has killed in this process's
    memory cgroup, as a container sees its own (cgroup v2 or v1); None when unknown."""
    for path in _OOM_COUNTS:
        try:
            with open(path) as counts:
                for line in counts:
                    key, _, value = line.partition(" ")
                    if key == "oom_kill":
                        return int(value)
        except (OSError, ValueError):
            continue
    return None


def _death(signum: int, oom_before: int | None) -> str:
    """What killed a child: a SIGKILL while the out-of-memory killer's count rose is
    the memory limit's, not the package's."""
    if signum == signal.SIGKILL and oom_before is not None:
        after = oom_kills()
        if after is not None and after > oom_before:
            return f"{OUT_OF_MEMORY}: the environment reached its memory limit"
    return signal_description(signum)


def _read_log(handle: IO[bytes]) -> str | None:
    handle.flush()
    size = handle.seek(0, os.SEEK_END)
    start = max(0, size - LOG_LIMIT)
    handle.seek(start)
    data = handle.read()
    if not data.strip():
        return None
    text = data.decode("utf-8", errors="replace")
    if start:
        text = f"[... {start} bytes cut ...]\n" + text
    return text


def _flush_std() -> None:
    for stream in (sys.stdout, sys.stderr):
        try:
            if stream is not None:
                stream.flush()
        except (OSError, ValueError):
            pass


def _redirect_into(fd: int) -> tuple[int, int]:
    """Point fds 1 and 2 at ``fd``; return duplicates of the old ones."""
    _flush_std()
    saved = (os.dup(1), os.dup(2))
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    return saved


def _restore(saved: tuple[int, int]) -> None:
    _flush_std()
    os.dup2(saved[0], 1)
    os.dup2(saved[1], 2)
    os.close(saved[0])
    os.close(saved[1])


def run_inline(
    body: Callable[[], None], timeout: float, *, log: IO[bytes] | None = None
) -> Outcome:
    """Run ``body`` in this process, output captured, time limited by SIGALRM.

    Used for imports (in a forked child of the runner): any exception is an
    import-error. The output goes to ``log`` when given (emptied first): a file
    the parent process shares, so that what a crash left is still read there.
    """
    with contextlib.ExitStack() as stack:
        if log is None:
            log = stack.enter_context(tempfile.TemporaryFile())
        log.seek(0)
        log.truncate()
        return _run_inline(body, timeout, log)


def _run_inline(body: Callable[[], None], timeout: float, log: IO[bytes]) -> Outcome:
    start = time.monotonic()
    saved = _redirect_into(log.fileno())
    streams = sys.stdout, sys.stderr
    sys.stdout, sys.stderr = _unbuffered(1), _unbuffered(2)  # keep the log in order

    def on_alarm(signum: int, frame: object) -> None:
        raise _TimeLimit()

    previous = signal.signal(signal.SIGALRM, on_alarm)
    signal.setitimer(signal.ITIMER_REAL, timeout)
    try:
        body()
        verdict, error = PASS, None
    except _TimeLimit:
        print_traceback()
        verdict, error = TIMEOUT, f"did not finish within {timeout:g} s"
    except KeyboardInterrupt:
        raise
    except BaseException as exc:  # SystemExit too: some packages exit on failure
        print_traceback()
        verdict, error = IMPORT_ERROR, describe_exception(exc)
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
        sys.stdout, sys.stderr = streams
        _restore(saved)
    text = _read_log(log)
    return Outcome(verdict, time.monotonic() - start, error, text)


def run_forked(
    body: Callable[[], None],
    timeout: float,
    classify: Callable[[BaseException], str] = classify_exception,
    *,
    inputs: Callable[[], dict[str, str]] | None = None,
    listen: Channel | None = None,
) -> Outcome:
    """Run ``body`` in a forked child in its own process group.

    The child's fds 1 and 2 go to a temporary file (the log). It reports its
    verdict, and what ``inputs`` says when the body ended, through a pipe; dying
    by a signal is a crash, running past ``timeout`` gets its whole process
    group killed. With ``listen``, the records arriving on that channel are
    handled meanwhile, and each one gives the child ``timeout`` more.
    """
    start = time.monotonic()
    oom_before = oom_kills()
    with tempfile.TemporaryFile() as log:
        read_end, write_end = os.pipe()
        _flush_std()
        with warnings.catch_warnings():
            # Python 3.12+ warns when forking a process that has threads; the
            # checks run no thread pools (see the thread limits set by the runner).
            warnings.simplefilter("ignore", DeprecationWarning)
            pid = os.fork()
        if pid == 0:  # pragma: no cover - the child; measured through its report
            os.close(read_end)
            _child(body, classify, inputs, log.fileno(), write_end, timeout)
        os.close(write_end)
        with contextlib.suppress(OSError):
            os.setpgid(pid, pid)  # also done by the child: whoever runs first
        status, usage, report, timed_out = _wait(pid, read_end, timeout, listen)
        os.close(read_end)
        duration = time.monotonic() - start
        text = _read_log(log)
    cpu = usage.ru_utime + usage.ru_stime
    if timed_out:
        return Outcome(TIMEOUT, duration, f"did not finish within {timeout:g} s", text, cpu=cpu)
    if os.WIFSIGNALED(status):
        return Outcome(CRASH, duration, _death(os.WTERMSIG(status), oom_before), text, cpu=cpu)
    code = os.WEXITSTATUS(status) if os.WIFEXITED(status) else -1
    if report is None or code != 0:
        why = f"exited with status {code} before reporting"
        return Outcome(CRASH, duration, why, text, cpu=cpu)
    return Outcome.from_record({**report, "duration": duration, "log": text, "cpu": cpu})


def only_importing() -> None:
    """In a forked process that imports and forks and then ends: no cyclic garbage
    collection, which would otherwise walk the growing heap again and again (about a
    tenth of the time of importing a large package). Its forked children collect
    again."""
    gc.disable()


def _child(
    body: Callable[[], None],
    classify: Callable[[BaseException], str],
    inputs: Callable[[], dict[str, str]] | None,
    log_fd: int,
    report_fd: int,
    timeout: float,
) -> None:
    """The forked side: never returns into the runner's code."""
    report: dict[str, Any] = {"verdict": CRASH, "error": "the check did not report"}
    try:
        # What the parent holds is never collected here: a full collection would
        # touch (and so copy) every page of it. A parent that only imports
        # (``only_importing``) runs without collections; its checks run with them.
        gc.freeze()
        gc.enable()
        with contextlib.suppress(OSError):
            os.setpgid(0, 0)
        for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGALRM):
            signal.signal(signum, signal.SIG_DFL)
        os.dup2(log_fd, 1)
        os.dup2(log_fd, 2)
        # Unbuffered, so that what a check printed before crashing is in the log.
        sys.stdout = _unbuffered(1)
        sys.stderr = _unbuffered(2)
        faulthandler.enable(file=sys.stderr, all_threads=True)
        # Where it hung, written when the parent says time is up. Not a watchdog
        # thread (faulthandler.dump_traceback_later): it reads the frames of the
        # running thread and can crash the process it was to describe.
        faulthandler.register(HUNG, file=sys.stderr, all_threads=True)
        warnings.simplefilter("default")
        try:
            body()
            report = {"verdict": PASS, "error": None}
        except SystemExit as exc:
            if exc.code in (None, 0):
                report = {"verdict": PASS, "error": None}
            else:
                print_traceback()
                report = {"verdict": RUNTIME_ERROR, "error": f"sys.exit({exc.code!r})"}
        except BaseException as exc:
            verdict = classify(exc)
            if verdict == SKIPPED:
                report = {"verdict": SKIPPED, "error": str(exc) or "skipped"}
            else:
                print_traceback()
                report = {"verdict": verdict, "error": describe_exception(exc)}
        faulthandler.unregister(HUNG)
        if inputs is not None:
            report["inputs"] = inputs()
    finally:
        try:
            _flush_std()
            _write_all(report_fd, json.dumps(report).encode())
        finally:
            os._exit(0)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


class Channel:
    """JSON records, one a line, sent by forked processes (every fork inherits the
    write end) and handled in the runner, which alone reads them, while it waits
    in :func:`run_forked`."""

    # Every record starts so: the start of the last whole record in a line that a
    # dying sender cut short.
    _START = b'{"record": '

    def __init__(self, handle: Callable[[dict[str, Any]], None]) -> None:
        self._read, self._write = os.pipe()
        self._handle = handle
        self._pending = b""

    def send(self, kind: str, **fields: Any) -> None:
        """From a forked process (the reader itself must never send: a full pipe
        would block it)."""
        _write_all(self._write, (json.dumps({"record": kind, **fields}) + "\n").encode())

    def as_sender(self) -> None:
        """In a forked process that sends: drop its copy of the read end, so that
        once the runner is gone a send fails instead of blocking on a full pipe."""
        if self._read >= 0:
            os.close(self._read)
            self._read = -1

    def fileno(self) -> int:
        return self._read

    def receive(self) -> bool:
        """Handle what can be read now; False when there was nothing."""
        try:
            chunk = os.read(self._read, 65536)
        except BlockingIOError:
            return False
        if not chunk:
            return False
        *lines, self._pending = (self._pending + chunk).split(b"\n")
        for line in lines:
            at = line.rfind(self._START)
            try:
                record = json.loads(line[max(at, 0) :].decode())
            except ValueError:
                continue
            if isinstance(record, dict):
                self._handle(record)
        return True

    def drain(self) -> None:
        """Handle everything already sent, without waiting for more."""
        os.set_blocking(self._read, False)
        try:
            while self.receive():
                pass
        finally:
            os.set_blocking(self._read, True)
        self._pending = b""  # a record cut short by a sender that died

    def close(self) -> None:
        os.close(self._read)
        os.close(self._write)


def _unbuffered(fd: int) -> IO[str]:
    raw = io.FileIO(fd, "w", closefd=False)
    return io.TextIOWrapper(raw, encoding="utf-8", errors="backslashreplace", write_through=True)


def _wait(
    pid: int, read_end: int, timeout: float, listen: Channel | None
) -> tuple[int, resource.struct_rusage, dict[str, Any] | None, bool]:
    """Reap ``pid`` (killing its group once ``timeout`` has passed, since the start
    or the last record on ``listen``); return its status, resource usage, report
    and whether it timed out."""
    deadline = time.monotonic() + timeout
    chunks: list[bytes] = []
    eof = False
    timed_out = False
    while True:
        reaped, status, usage = os.wait4(pid, os.WNOHANG)
        if reaped:
            break
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            status, usage = _time_up(pid)
            timed_out = True
            break
        fds = [] if eof else [read_end]
        if listen is not None:
            fds.append(listen.fileno())
        wait = min(0.002 if eof else 0.05, remaining)
        if not fds:
            time.sleep(wait)
            continue
        ready, _, _ = select.select(fds, [], [], wait)
        if listen is not None and listen.fileno() in ready and listen.receive():
            deadline = time.monotonic() + timeout
        if read_end in ready:
            chunk = os.read(read_end, 65536)
            if chunk:
                chunks.append(chunk)
            else:
                eof = True
    _kill_group(pid)  # leftovers the check started
    if listen is not None:
        listen.drain()
    os.set_blocking(read_end, False)
    try:
        while True:
            chunk = os.read(read_end, 65536)
            if not chunk:
                break
            chunks.append(chunk)
    except BlockingIOError:
        pass  # a grandchild still holds the pipe; what is there is enough
    try:
        report = json.loads(b"".join(chunks).decode()) if chunks else None
    except ValueError:
        report = None
    return status, usage, report if isinstance(report, dict) else None, timed_out


def _time_up(pid: int) -> tuple[int, resource.struct_rusage]:
    """Have ``pid`` write where it is, give it a moment to, then kill its group;
    its status and resource usage. However it dies now, it ran out of time."""
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, HUNG)
    until = time.monotonic() + _DUMP_GRACE
    while time.monotonic() < until:
        reaped, status, usage = os.wait4(pid, os.WNOHANG)
        if reaped:
            return status, usage
        time.sleep(0.01)
    _kill_group(pid)
    _, status, usage = os.wait4(pid, 0)
    return status, usage


def _kill_group(pgid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signal.SIGKILL)


def run_command(argv: Sequence[str], env: Mapping[str, str], timeout: float) -> Outcome:
    """Run a command in a new session with output captured; kill its group on timeout."""
    start = time.monotonic()
    with tempfile.TemporaryFile() as log:
        try:
            proc = subprocess.Popen(
                list(argv),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=dict(env),
                start_new_session=True,
            )
        except OSError as exc:
            return Outcome(RUNTIME_ERROR, time.monotonic() - start, describe_exception(exc))
        timed_out = False
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            _kill_group(proc.pid)
            proc.wait()
            timed_out = True
        _kill_group(proc.pid)
        duration = time.monotonic() - start
        text = _read_log(log)
    if timed_out:
        return Outcome(TIMEOUT, duration, f"did not finish within {timeout:g} s", text)
    if proc.returncode < 0:
        return Outcome(CRASH, duration, signal_description(-proc.returncode), text)
    if proc.returncode == 0:
        return Outcome(PASS, duration, None, text)
    lines = [line for line in (text or "").splitlines() if line.strip()]
    last = lines[-1].strip() if lines else "no output"
    return Outcome(RUNTIME_ERROR, duration, f"exit status {proc.returncode}: {last}", text)
