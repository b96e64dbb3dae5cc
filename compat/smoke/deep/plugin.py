"""The pytest plugin of a deep-tier child: one JSON line per test to the file
named by ``COMPAT_DEEP_OUT``, a per-test time limit (``COMPAT_DEEP_TIMEOUT``),
and optional selection by node id (``COMPAT_DEEP_ONLY``: a file of node ids to
run; ``COMPAT_DEEP_DESELECT``: a file of node ids not to run).

Loaded only by :mod:`child` after the test layer is on ``sys.path``; even so
it imports pytest only inside :func:`make`, so that the package stays
importable (and checkable) with the standard library alone.

Each line: ``{"event": "start", "test": ID}`` before a test runs (so a crash
names its test), then ``{"event": "test", "test": ID, "outcome": O,
"duration": S, "error": LINE, "frames": [...], "log": TEXT}`` with O one of
passed, failed, error (setup or teardown), timeout, skipped, xfailed, xpassed.
A module that fails to collect gives one ``error`` line with the module's id.
At the end, ``{"event": "imports", "tops": [NAME...]}``: the top-level name of
every module the process loaded or tried to import.
Frames, innermost last: ``{"path": P, "line": N, "function": F, "root": R}``,
P relative to the ``sys.path`` entry holding the file, R one of ``site``
(code of the environment under test), ``tooling`` (the test layer), ``stdlib``
or ``other``.
"""

from __future__ import annotations

import json
import linecache
import os
import re
import signal
import sys
import sysconfig
import time
import types
from collections.abc import Generator, Iterable
from pathlib import Path
from typing import Any

LOG_LIMIT = 8 * 1024
MAX_FRAMES = 12
_LOCATION = re.compile(
    r"^(?P<path>[^\s:][^:\n]*\.py):(?P<line>\d+): in (?P<func>\S+)", re.MULTILINE
)


class DeepTestTimeout(BaseException):
    """Raised by SIGALRM in the test: a BaseException so that the code under
    test's ``except Exception`` does not swallow it."""


def _stdlib_dirs() -> list[str]:
    paths = sysconfig.get_paths()
    return [os.path.realpath(paths[k]) for k in ("stdlib", "platstdlib") if k in paths]


class Recorder:
    def __init__(
        self, out: str, timeout: float, tooling: Iterable[str], tried: set[str] | None = None
    ) -> None:
        self._out = open(out, "a", encoding="utf-8")  # noqa: SIM115 - lives as long as pytest
        self._tried = tried if tried is not None else set()
        self._timeout = timeout
        self._tooling = [os.path.realpath(p) for p in tooling]
        self._stdlib = _stdlib_dirs()
        self._roots = sorted(
            {os.path.realpath(p) for p in sys.path if p and Path(p).is_dir()},
            key=len,
            reverse=True,
        )
        self._phases: dict[str, dict[str, Any]] = {}
        self._only = _read_ids("COMPAT_DEEP_ONLY")
        self._deselect = _read_ids("COMPAT_DEEP_DESELECT") or set()

    def _emit(self, event: dict[str, Any]) -> None:
        self._out.write(json.dumps(event) + "\n")
        self._out.flush()

    def frame(self, filename: str, line: int, function: str) -> dict[str, Any]:
        if not Path(filename).is_absolute():
            # Cython names its sources relative to the package root.
            return {
                "path": filename.replace(os.sep, "/"),
                "line": line,
                "function": function,
                "root": "site",
            }
        real = os.path.realpath(filename)
        root_kind = "other"
        if any(real.startswith(t + os.sep) for t in self._tooling):
            root_kind = "tooling"
        elif any(real.startswith(s + os.sep) for s in self._stdlib) and "-packages" not in real:
            root_kind = "stdlib"
        rel = real
        for root in self._roots:
            if real.startswith(root + os.sep):
                rel = real[len(root) + 1 :]
                if root_kind == "other":
                    root_kind = "site"
                break
        return {
            "path": rel.replace(os.sep, "/"),
            "line": line,
            "function": function,
            "root": root_kind,
        }

    def frames_of(self, tb: types.TracebackType | None) -> list[dict[str, Any]]:
        frames: list[dict[str, Any]] = []
        while tb is not None:
            code = tb.tb_frame.f_code
            frames.append(self.frame(code.co_filename, tb.tb_lineno, code.co_name))
            tb = tb.tb_next
        return frames[-MAX_FRAMES:]

    def frames_of_text(self, text: str) -> list[dict[str, Any]]:
        """Frames from a traceback pytest already formatted (collection errors)."""
        return [
            self.frame(str(Path.cwd() / m.group("path")), int(m.group("line")), m.group("func"))
            for m in _LOCATION.finditer(text)
        ][-MAX_FRAMES:]

    # pytest hooks -------------------------------------------------------------

    def pytest_collection_modifyitems(self, config: Any, items: list[Any]) -> None:
        if self._only is None and not self._deselect:
            return
        keep = [
            i
            for i in items
            if (self._only is None or i.nodeid in self._only) and i.nodeid not in self._deselect
        ]
        dropped = [i for i in items if i not in keep]
        if dropped:
            config.hook.pytest_deselected(items=dropped)
        items[:] = keep

    def pytest_runtest_protocol(self, item: Any, nextitem: Any) -> Generator[None, None, None]:
        self._emit({"event": "start", "test": item.nodeid})
        self._phases[item.nodeid] = {"duration": 0.0}

        def on_alarm(signum: int, frame: types.FrameType | None) -> None:
            raise DeepTestTimeout(f"test exceeded its time limit of {self._timeout:g} s")

        previous = signal.signal(signal.SIGALRM, on_alarm)
        signal.setitimer(signal.ITIMER_REAL, self._timeout)
        started = time.monotonic()
        try:
            yield
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, previous)
        record = self._phases.pop(item.nodeid)
        record.setdefault("outcome", "passed")
        record["duration"] = round(time.monotonic() - started, 4)
        self._emit({"event": "test", "test": item.nodeid, **record})

    def pytest_runtest_makereport(self, item: Any, call: Any) -> Generator[None, Any, None]:
        outcome = yield
        report: Any = outcome.get_result()
        record = self._phases.get(item.nodeid)
        if record is None or record.get("outcome", "passed") != "passed":
            return  # the first failing phase tells
        if report.skipped:
            if hasattr(report, "wasxfail"):
                record["outcome"] = "xfailed"
            elif report.when == "call" or "outcome" not in record:
                record["outcome"] = "skipped"
            return
        if report.passed:
            if hasattr(report, "wasxfail"):
                record["outcome"] = "xpassed"
            return
        excinfo = call.excinfo
        timed_out = excinfo is not None and excinfo.errisinstance(DeepTestTimeout)
        record["outcome"] = (
            "timeout" if timed_out else "failed" if report.when == "call" else "error"
        )
        if excinfo is not None:
            record["error"] = _first_line(excinfo.exconly())
            record["frames"] = self.frames_of(excinfo.tb)
            record["warning"] = _from_a_warning(excinfo)
        record["log"] = _tail(str(report.longrepr))

    def pytest_sessionfinish(self, session: Any, exitstatus: int) -> None:
        """What the module's tests could depend on: the top-level name of every module
        loaded or tried in this process (the host maps them to distributions)."""
        loaded = {name.partition(".")[0] for name in list(sys.modules)}
        self._emit({"event": "imports", "tops": sorted(loaded | self._tried)})

    def pytest_collectreport(self, report: Any) -> None:
        if not report.failed:
            return
        text = str(report.longrepr)
        error = next(
            (ln[1:].strip() for ln in text.splitlines() if ln.startswith("E ")),
            _first_line(text),
        )
        self._emit(
            {
                "event": "test",
                "test": report.nodeid,
                "outcome": "error",
                "duration": 0.0,
                "error": error,
                "frames": self.frames_of_text(text),
                "log": _tail(text),
                "warning": _a_warning(error),
            }
        )


def _read_ids(variable: str) -> set[str] | None:
    path = os.environ.get(variable)
    if not path:
        return None
    return {line for line in Path(path).read_text(encoding="utf-8").splitlines() if line}


def _from_a_warning(excinfo: Any) -> bool:
    """Whether the failure is only a warning: one the dependent's test configuration
    turns into an error, or one whose issuing failed on a filter the test session left
    behind (``issubclass() arg 2 must be a class``). Outside a test session the code
    warns and goes on."""
    if excinfo.errisinstance(Warning):
        return True
    tb = excinfo.tb
    while tb.tb_next is not None:
        tb = tb.tb_next
    line = linecache.getline(tb.tb_frame.f_code.co_filename, tb.tb_lineno).strip()
    return line.startswith(("warnings.warn(", "warn(", "_warnings.warn("))


def _a_warning(error: str) -> bool:
    """Whether a collection error's ``Class: message`` line names a warning class
    (``pyparsing.warnings.PyparsingDeprecationWarning``), looked up among the
    modules already loaded: the test configuration made a warning an error."""
    dotted = error.partition(":")[0].strip()
    module, _, name = dotted.rpartition(".")
    owner = sys.modules.get(module or "builtins")
    found = getattr(owner, name, None) if name.isidentifier() else None
    return isinstance(found, type) and issubclass(found, Warning)


def _first_line(text: str) -> str:
    for line in text.splitlines():
        if line.strip():
            return line.strip()[:500]
    return ""


def _tail(text: str) -> str:
    data = text.encode("utf-8", "replace")
    if len(data) <= LOG_LIMIT:
        return text
    return "...\n" + data[-LOG_LIMIT:].decode("utf-8", "replace")


_WRAPPERS = ("pytest_runtest_protocol", "pytest_runtest_makereport")


def make(tooling: Iterable[str], tried: set[str] | None = None) -> Recorder:
    """The plugin object for ``pytest.main(plugins=[...])``; ``tried``: the top-level
    names of the imports tried in this process (found or not), kept up to date."""
    import pytest  # the test layer's, on sys.path by now

    for name in _WRAPPERS:
        pytest.hookimpl(hookwrapper=True)(getattr(Recorder, name))  # marks the function
    return Recorder(
        os.environ["COMPAT_DEEP_OUT"],
        float(os.environ.get("COMPAT_DEEP_TIMEOUT", "60")),
        tooling,
        tried,
    )
