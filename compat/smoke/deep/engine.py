"""The deep runner's main loop: probe the combination, select test modules,
run them with pytest in parallel child processes, rerun what failed once, and
write the events. The contract is in this package's docstring.

Runs inside the environment under test: standard library only, Python 3.9+.
"""

from __future__ import annotations

import argparse
import contextlib
import fnmatch
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from .sdist import TEST_TREES, UNREADABLE, extract_tests, sdist_paths
from .selection import (
    Selection,
    candidates,
    index_package,
    partner_fixtures,
    partner_tests,
    spread,
)

# Test modules of a dependent whose partners are all foundations, spread over its
# subpackages: every one of its tests touches a partner, and scipy's are slow.
SPREAD_BUDGET = 8

HERE = Path(__file__).absolute().parent
CHILD = HERE / "child.py"
DEFAULT_TIMEOUT = 60.0
DEFAULT_MODULE_TIMEOUT = 900.0
DEFAULT_MARKERS = "not slow and not network and not db and not single_cpu"
FAILING = ("failed", "error", "timeout", "crash")
SHIPS_NO_TESTS = "ships no tests"  # a dependent's reason, as the host reads it
_MAX_CONTINUATIONS = 3  # a module whose tests keep crashing gives up after this
_OUTPUT_TAIL = 4096
# Variables that would let a test reach the network or the user's own config.
_DROPPED_ENV = ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY", "PYTHONPATH")


_LIVE: set[subprocess.Popen[bytes]] = set()
_LIVE_LOCK = threading.Lock()


def _stop_children(signum: int, frame: object) -> None:
    """SIGTERM/SIGINT: kill every running pytest process group, then exit.
    They run in sessions of their own and would otherwise outlive us."""
    with _LIVE_LOCK:
        for proc in list(_LIVE):
            with contextlib.suppress(OSError):
                os.killpg(proc.pid, signal.SIGKILL)
    os._exit(128 + signum)


class UsageError(Exception):
    """The command line is wrong: exit status 2."""


class Events:
    """The JSON-lines event stream; written from several worker threads."""

    def __init__(self, stream: IO[str]) -> None:
        self._stream = stream
        self._lock = threading.Lock()
        self.counts: dict[str, int] = {}

    def emit(self, event: dict[str, Any]) -> None:
        with self._lock:
            if event.get("event") == "test":
                outcome = str(event.get("outcome"))
                self.counts[outcome] = self.counts.get(outcome, 0) + 1
            self._stream.write(json.dumps(event) + "\n")
            self._stream.flush()


@dataclass
class Job:
    """One selected test module of one dependent."""

    dependent: str
    root: str
    selection: Selection
    tests: tuple[str, ...] | None = None  # the test functions to run; None: all
    results: dict[str, dict[str, Any]] = field(default_factory=dict)


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="runner.py", description="Run dependents' shipped tests in this environment."
    )
    parser.add_argument("--site", action="append", default=[], metavar="DIR")
    parser.add_argument("--tooling", action="append", default=[], metavar="DIR")
    parser.add_argument("--package", action="append", default=[], metavar="NAME")
    parser.add_argument("--dependent", action="append", default=[], metavar="NAME")
    parser.add_argument("--jobs", "-j", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT, metavar="SECONDS")
    parser.add_argument(
        "--module-timeout", type=float, default=DEFAULT_MODULE_TIMEOUT, metavar="SECONDS"
    )
    parser.add_argument("--max-modules", type=int, default=0, metavar="N")
    parser.add_argument("--max-foundation-modules", type=int, default=-1, metavar="N")
    parser.add_argument("--module", action="append", default=[], metavar="PATTERN")
    parser.add_argument("--markers", default=DEFAULT_MARKERS, metavar="EXPR")
    parser.add_argument("--keyword", metavar="EXPR")
    parser.add_argument("--no-rerun", action="store_true")
    parser.add_argument("--select-only", action="store_true")
    parser.add_argument("--work", metavar="DIR")
    parser.add_argument("--sdist", action="append", default=[], metavar="NAME=PATH")
    parser.add_argument("--reuse-module", action="append", default=[], metavar="PATH")
    args = parser.parse_args(argv)
    if args.timeout <= 0 or args.module_timeout <= 0 or args.jobs < 1:
        raise UsageError("--timeout, --module-timeout and --jobs must be positive")
    for directory in args.site + args.tooling:
        if not Path(directory).is_dir():
            raise UsageError(f"not a directory: {directory}")
    if not args.package:
        raise UsageError("name the combination's packages with --package")
    try:
        archives = sdist_paths(args.sdist)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    for archive in archives.values():
        if not archive.is_file():
            raise UsageError(f"not a file: {archive}")
    return args


def _name(spec: str) -> str:
    for sep in ("==", ">", "<", "~", "!", "[", ";", " "):
        spec = spec.split(sep, 1)[0]
    return spec.strip().lower().replace("_", "-").replace(".", "-")


def child_argv(args: argparse.Namespace, *rest: str) -> list[str]:
    argv = [sys.executable, str(CHILD)]
    for directory in args.site:
        argv += ["--site", str(Path(directory).absolute())]
    for directory in args.tooling:
        argv += ["--tooling", str(Path(directory).absolute())]
    return [*argv, *rest]


def child_env(work: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in _DROPPED_ENV}
    home = work / "home"
    home.mkdir(exist_ok=True)
    env.update(
        HOME=str(home),
        MPLCONFIGDIR=str(home / "mpl"),
        XDG_CACHE_HOME=str(home / "cache"),
        PYTHONDONTWRITEBYTECODE="1",
        no_proxy="*",
        NO_PROXY="*",
    )
    return env


def probe(
    args: argparse.Namespace, names: Sequence[str], work: Path
) -> tuple[dict[str, Any], dict[str, str]]:
    """The named distributions as installed, and the owner of every top-level
    name the combination installs."""
    done = subprocess.run(
        child_argv(args, "probe", *names),
        capture_output=True,
        text=True,
        env=child_env(work),
        cwd=str(work),
        timeout=600,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"probing the environment failed:\n{done.stderr[-_OUTPUT_TAIL:]}")
    value: dict[str, Any] = json.loads(done.stdout)
    return value["distributions"], value["owners"]


def _tests_root(
    args: argparse.Namespace, dependent: str, dep: dict[str, Any], work: Path
) -> tuple[str | None, str]:
    """Where the dependent's tests are and where they come from (``wheel``, its
    installed package; ``sdist``, the test trees of its source distribution;
    ``wheel+sdist``, the sdist's copy of the test packages the wheel ships without
    their data), or None and why there are none."""
    archive = sdist_paths(args.sdist).get(dependent)
    if archive is None:
        return (dep["root"], "wheel") if dep["ships_tests"] else (None, SHIPS_NO_TESTS)
    into = work / "sdist-tests" / dependent
    if dep["ships_tests"]:
        folders = _test_folders(Path(dep["root"]), dep["top_level"])
        try:
            found = extract_tests(archive, into, folders)
        except UNREADABLE:
            found = []
        return (str(into), "wheel+sdist") if found else (dep["root"], "wheel")
    try:
        trees = extract_tests(archive, into)
    except UNREADABLE as exc:
        return None, f"{SHIPS_NO_TESTS} (its sdist could not be read: {exc})"
    return (str(into), "sdist") if trees else (None, f"{SHIPS_NO_TESTS} (none in its sdist either)")


def _test_folders(root: Path, tops: Sequence[str]) -> list[str]:
    """The installed test packages of a dependent (``matplotlib/tests``), relative
    to its site directory."""
    return sorted(
        {
            path.parent.relative_to(root).as_posix()
            for top in tops
            for path in (root / top).rglob("test_*.py")
            if path.parent.name in TEST_TREES
        }
    )


def plan(args: argparse.Namespace, info: dict[str, Any], events: Events, work: Path) -> list[Job]:
    """The modules to run, per dependent, most telling first."""
    names = [_name(p) for p in args.package]
    wanted = [_name(d) for d in args.dependent] or names
    jobs: list[Job] = []
    for dependent in wanted:
        dep = info.get(dependent)
        root, source = (
            (None, "not installed") if not dep else _tests_root(args, dependent, dep, work)
        )
        if not dep or not dep["root"] or root is None:
            events.emit(
                {"event": "dependent", "dependent": dependent, "modules": 0, "reason": source}
            )
            continue
        partners = {p: info[p]["top_level"] for p in names if p != dependent and p in info}
        loads = set(dep["loads"])
        foundations = sorted(p for p, tops in partners.items() if any(t in loads for t in tops))
        index: dict[str, Any] = {}
        for top in dep["top_level"]:
            index.update(index_package(Path(dep["root"]), top))
        if source == "sdist":  # its tests beside the installed package's modules
            for tree in TEST_TREES:
                index.update(index_package(Path(root), tree))
        chosen = candidates(index, core=loads, partners=partners, foundations=foundations)
        narrowed = _narrow(
            Path(root if source == "sdist" else dep["root"]), chosen, partners, foundations
        )
        chosen = [c for c in chosen if narrowed.get(c.module.path) != ()]
        if args.module:
            chosen = [
                s for s in chosen if any(fnmatch.fnmatchcase(s.module.path, p) for p in args.module)
            ]
        total = len(chosen)
        specific = [s for s in chosen if set(s.partners) - set(foundations)]
        if not specific:
            # every partner is a foundation (statsmodels on numpy, scipy and
            # pandas): its tests are all there is, so a spread over its subpackages
            budget = min(args.max_modules or len(chosen), SPREAD_BUDGET)
            chosen = spread(chosen, budget)
        else:
            if args.max_modules:
                chosen = chosen[: args.max_modules]
            if args.max_foundation_modules >= 0:
                # Modules that reach only foundations (numpy, for pandas) come last
                # and have a budget of their own: every test touches a foundation.
                specific = [s for s in chosen if s in specific]
                rest = [s for s in chosen if s not in specific]
                chosen = specific + rest[: args.max_foundation_modules]
        events.emit(
            {
                "event": "dependent",
                "dependent": dependent,
                "version": dep["version"],
                "partners": sorted(partners),
                "foundations": foundations,
                "selected": total,
                "modules": len(chosen),
                "tests_from": source,
            }
        )
        for sel in chosen:
            tests = narrowed.get(sel.module.path)
            events.emit(
                {
                    "event": "selected",
                    "dependent": dependent,
                    "module": sel.module.path,
                    "partners": list(sel.partners),
                    **({"tests": list(tests)} if tests is not None else {}),
                }
            )
            # a module of a test package the sdist lacks runs as the wheel ships it
            here = root if (Path(root) / sel.module.path).is_file() else dep["root"]
            jobs.append(Job(dependent=dependent, root=here, selection=sel, tests=tests))
    return jobs


def _narrow(
    root: Path,
    chosen: Sequence[Selection],
    partners: dict[str, list[str]],
    foundations: Sequence[str],
) -> dict[str, tuple[str, ...] | None]:
    """Per module that imports its partners only optionally (scipy's stats tests
    and matplotlib), the test functions that use them (none: the module is
    dropped); the others run whole."""
    found: dict[str, tuple[str, ...] | None] = {}
    conftests: dict[Path, tuple[str, ...]] = {}
    for sel in chosen:
        if not sel.own_only:
            continue
        tops = {t for p in sel.partners if p not in foundations for t in partners.get(p, ())}
        path = root / sel.module.path
        fixtures: list[str] = []
        for parent in [*reversed(path.relative_to(root).parents)][1:]:
            conftest = root / parent / "conftest.py"
            if conftest not in conftests:
                conftests[conftest] = _conftest_fixtures(root, conftest, tops)
            fixtures += conftests[conftest]
        try:
            source = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            continue
        found[sel.module.path] = partner_tests(source, tops, fixtures=fixtures)
    return found


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8") if path.is_file() else ""
    except (OSError, UnicodeDecodeError):
        return ""


def _conftest_fixtures(root: Path, conftest: Path, tops: set[str]) -> tuple[str, ...]:
    """A conftest's fixtures that import a partner, its own and those it imports
    by name from a module of the package (matplotlib's ``pd`` fixture comes from
    ``matplotlib.testing.conftest``)."""
    text = _read(conftest)
    found = list(partner_fixtures(text, tops))
    for match in _FROM_IMPORT.finditer(re.sub(r"#[^\n]*", "", text)):
        module = root / (match.group("module").replace(".", "/") + ".py")
        names = {n.strip().split(" as ")[-1] for n in match.group("names").split(",")}
        found += [f for f in partner_fixtures(_read(module), tops) if f in names]
    return tuple(dict.fromkeys(found))


_FROM_IMPORT = re.compile(
    r"^from[ \t]+(?P<module>[\w.]+)[ \t]+import[ \t]+\(?(?P<names>[\w ,\t\n]+)\)?", re.M
)


def _keyword(args: argparse.Namespace, job: Job) -> str | None:
    """``--keyword`` and the job's own test functions, both as one -k expression."""
    names = " or ".join(job.tests) if job.tests else None
    if args.keyword and names:
        return f"({args.keyword}) and ({names})"
    return args.keyword or names


def _write_ids(path: Path, ids: Sequence[str]) -> str:
    path.write_text("".join(i + "\n" for i in ids), encoding="utf-8")
    return str(path)


def run_pytest(
    args: argparse.Namespace,
    job: Job,
    work: Path,
    *,
    only: Sequence[str] | None = None,
    deselect: Sequence[str] = (),
    options: Sequence[str] = (),
) -> tuple[list[dict[str, Any]], str | None, str]:
    """One pytest process over one module (``options`` added to its command
    line): its test lines, what killed it (None when it ended by itself) and the
    tail of its output."""
    scratch = Path(tempfile.mkdtemp(prefix="mod-", dir=str(work)))
    out = scratch / "events.jsonl"
    ini = scratch / "pytest.ini"
    ini.write_text("[pytest]\n", encoding="utf-8")
    env = child_env(work)
    env["COMPAT_DEEP_OUT"] = str(out)
    env["COMPAT_DEEP_TIMEOUT"] = repr(args.timeout)
    if only is not None:
        env["COMPAT_DEEP_ONLY"] = _write_ids(scratch / "only.txt", only)
    if deselect:
        env["COMPAT_DEEP_DESELECT"] = _write_ids(scratch / "deselect.txt", deselect)
    argv = child_argv(
        args,
        "pytest",
        str(Path(job.root) / job.selection.module.path),
        "-c",
        str(ini),
        "--rootdir",
        job.root,
        "--confcutdir",
        job.root,
        "--basetemp",
        str(scratch / "tmp"),
        "-m",
        args.markers,
        *(["-k", keyword] if (keyword := _keyword(args, job)) else []),
        "-p",
        "no:cacheprovider",
        "-p",
        "no:randomly",
        "-q",
        "--tb=short",
        "-o",
        "console_output_style=classic",
        *options,
    )
    killed: str | None = None
    with open(scratch / "output.txt", "wb") as output:
        proc = subprocess.Popen(
            argv,
            stdout=output,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=str(scratch),
            start_new_session=True,
        )
        with _LIVE_LOCK:
            _LIVE.add(proc)
        try:
            code = proc.wait(timeout=args.module_timeout)
            if code < 0:
                killed = f"killed by signal {signal.Signals(-code).name}"
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            killed = f"timeout: the module exceeded {args.module_timeout:g} s"
        finally:
            with _LIVE_LOCK:
                _LIVE.discard(proc)
    tail = (scratch / "output.txt").read_bytes()[-_OUTPUT_TAIL:].decode("utf-8", "replace")
    lines: list[dict[str, Any]] = []
    if out.exists():
        for text in out.read_text(encoding="utf-8").splitlines():
            try:
                lines.append(json.loads(text))
            except ValueError:
                continue  # a line cut short by a crash
    shutil.rmtree(scratch, ignore_errors=True)
    return lines, killed, tail


def _collect(
    lines: list[dict[str, Any]], killed: str | None, tail: str
) -> tuple[dict[str, dict[str, Any]], str | None]:
    """Finished tests by id, and the test that was running when the process died."""
    finished: dict[str, dict[str, Any]] = {}
    running: str | None = None
    for line in lines:
        if line.get("event") == "start":
            running = line["test"]
        elif line.get("event") == "test":
            finished[line["test"]] = line
            if running == line["test"]:
                running = None
    if killed and running is not None:
        finished[running] = {
            "event": "test",
            "test": running,
            "outcome": "timeout" if killed.startswith("timeout") else "crash",
            "duration": 0.0,
            "error": killed,
            "frames": [],
            "log": tail,
        }
        return finished, running
    return finished, None


def run_module(args: argparse.Namespace, job: Job, work: Path, events: Events) -> None:
    started = time.monotonic()
    results: dict[str, dict[str, Any]] = {}
    killed: str | None = None
    tail = ""
    tops: set[str] | None = set()  # None once a process ended without saying
    options: tuple[str, ...] = ()
    for _ in range(_MAX_CONTINUATIONS + 1):
        lines, killed, tail = run_pytest(args, job, work, deselect=sorted(results), options=options)
        finished, crashed = _collect(lines, killed, tail)
        tops = _imports(lines, tops)
        if not options and _collected_on_a_warning(finished, job):
            # The test configuration made a warning at import an error (matplotlib's
            # makes every warning one) and no test ran; an import outside a test
            # session only shows it. Again, with warnings shown, not raised.
            options = ("-W", "default")
            continue
        results.update(finished)
        if crashed is None or killed is None or killed.startswith("timeout"):
            break  # ended by itself, or out of time: do not start it again
    if not args.no_rerun:
        failing = sorted(t for t, r in results.items() if r.get("outcome") in FAILING)
        if failing:
            lines, again_killed, again_tail = run_pytest(
                args, job, work, only=failing, options=options
            )
            again, _ = _collect(lines, again_killed, again_tail)
            tops = _imports(lines, tops)
            for test in failing:
                results[test]["rerun"] = again.get(test, {}).get("outcome", "not-run")
    for test in sorted(results):
        record = {k: v for k, v in results[test].items() if k != "event"}
        events.emit(
            {
                "event": "test",
                "dependent": job.dependent,
                "module": job.selection.module.path,
                **record,
            }
        )
    events.emit(
        {
            "event": "module",
            "dependent": job.dependent,
            "module": job.selection.module.path,
            "tests": len(results),
            "duration": round(time.monotonic() - started, 3),
            "error": killed,
            "log": tail if killed or not results else None,
            "imports": sorted(tops) if tops is not None else None,
        }
    )


def _collected_on_a_warning(finished: dict[str, dict[str, Any]], job: Job) -> bool:
    """Whether the module's collection failed on a warning made an error."""
    collected = finished.get(job.selection.module.path, {})
    return collected.get("outcome") == "error" and bool(collected.get("warning"))


def _imports(lines: list[dict[str, Any]], tops: set[str] | None) -> set[str] | None:
    """``tops`` with what one pytest process of a module loaded or tried; None when
    it (or one before it) ended without saying (killed)."""
    said = [line.get("tops") for line in lines if line.get("event") == "imports"]
    if tops is None or not said or not isinstance(said[-1], list):
        return None
    return tops | {str(top) for top in said[-1]}


def run(args: argparse.Namespace, events: Events) -> None:
    started = time.monotonic()
    work = Path(args.work or tempfile.mkdtemp(prefix="compat-deep-"))
    work.mkdir(parents=True, exist_ok=True)
    try:
        names = sorted({_name(p) for p in args.package} | {_name(d) for d in args.dependent})
        info, owners = probe(args, names, work)
        events.emit(
            {
                "event": "environment",
                "python": sys.version.split()[0],
                "distributions": {
                    n: {"version": i["version"], "top_level": i["top_level"]}
                    for n, i in sorted(info.items())
                },
                "owners": dict(sorted(owners.items())),
            }
        )
        jobs = plan(args, info, events, work)
        reused = set(args.reuse_module)
        for job in jobs:
            if job.selection.module.path in reused:  # the host keeps its outcomes
                path = job.selection.module.path
                events.emit(
                    {"event": "module", "dependent": job.dependent, "module": path, "reused": True}
                )
        jobs = [j for j in jobs if j.selection.module.path not in reused]
        if not args.select_only:
            # Longest first keeps both cores busy to the end.
            jobs.sort(key=lambda j: -_size(Path(j.root) / j.selection.module.path))
            with ThreadPoolExecutor(max_workers=args.jobs) as pool:
                for future in [pool.submit(run_module, args, j, work, events) for j in jobs]:
                    future.result()
        events.emit(
            {
                "event": "done",
                "counts": events.counts,
                "duration": round(time.monotonic() - started, 3),
            }
        )
    finally:
        if not args.work:
            shutil.rmtree(work, ignore_errors=True)


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0


def main(argv: Sequence[str] | None = None) -> int:
    try:
        args = parse_args(sys.argv[1:] if argv is None else argv)
    except UsageError as exc:
        print(f"runner.py: error: {exc}", file=sys.stderr)
        return 2
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else 2
    for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(signum, _stop_children)
    sys.stdout.flush()
    events_stream = os.fdopen(os.dup(1), "w", encoding="utf-8")
    os.dup2(2, 1)  # stray output never corrupts the events
    try:
        run(args, Events(events_stream))
    except Exception:
        traceback.print_exc()
        print("runner.py: the deep runner itself failed (above)", file=sys.stderr)
        return 3
    finally:
        events_stream.close()
    return 0
