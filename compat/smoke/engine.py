"""The runner's main loop: compose the sites, import the packages, run the
checks, write the events. The contract is in this package's docstring.

Runs inside the environment under test: standard library only, Python 3.9+.
"""

from __future__ import annotations

import argparse
import faulthandler
import fnmatch
import functools
import importlib
import importlib.metadata
import inspect
import json
import os
import runpy
import site
import sys
import time
import traceback
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import IO, Any

from . import checks as checks_package
from . import dists, isolate, modules
from .checks import builtin_checks

VERDICTS = isolate.VERDICTS
DEFAULT_TIMEOUT = 60.0

# Forced, not defaulted: forking a process whose BLAS/OpenMP pools already run
# threads can deadlock the child, and small checks gain nothing from threads.
THREAD_LIMITS = {
    "OMP_NUM_THREADS": "1",
    "OPENBLAS_NUM_THREADS": "1",
    "MKL_NUM_THREADS": "1",
    "BLIS_NUM_THREADS": "1",
    "VECLIB_MAXIMUM_THREADS": "1",
    "NUMEXPR_NUM_THREADS": "1",
    "LOKY_MAX_CPU_COUNT": "1",
}

# why a check whose packages the combination lacks is skipped: said once, as a count
NOT_IN_COMBINATION = "not in the combination"


class UsageError(Exception):
    """The command line is wrong: exit status 2."""


class Events:
    """The JSON-lines event stream, on a file descriptor of its own."""

    def __init__(self, stream: IO[str]) -> None:
        self._stream = stream
        self.counts = dict.fromkeys(VERDICTS, 0)

    def _emit(self, event: dict[str, Any]) -> None:
        self._stream.write(json.dumps(event) + "\n")
        self._stream.flush()

    def start(self, check: str) -> None:
        self._emit({"event": "start", "check": check})

    def result(self, check: str, outcome: isolate.Outcome) -> None:
        self.counts[outcome.verdict] = self.counts.get(outcome.verdict, 0) + 1
        self._emit(
            {
                "event": "result",
                "check": check,
                "verdict": outcome.verdict,
                "duration": round(outcome.duration, 4),
                "error": outcome.error,
                "log": outcome.log,
            }
        )

    def sweep(self, sweep: modules.Sweep) -> None:
        self._emit(
            {
                "event": "sweep",
                "dist": sweep.name,
                "version": sweep.version,
                "verdict": sweep.verdict,
                "error": sweep.error,
                "inputs": sweep.inputs,
                "summary": sweep.summary(),
            }
        )

    def done(self, duration: float) -> None:
        self._emit({"event": "done", "counts": self.counts, "duration": round(duration, 3)})


def parse_args(argv: Sequence[str]) -> tuple[argparse.Namespace, list[str]]:
    """The options, and the ``--exec`` command (everything after its ``--``)."""
    argv = list(argv)
    command: list[str] = []
    has_exec = "--exec" in argv
    if has_exec:
        at = argv.index("--exec")
        argv, command = argv[:at], argv[at + 1 :]
        if command[:1] == ["--"]:
            command = command[1:]
        if not command:
            raise UsageError("--exec needs a command after it: --exec -- CMD ARGS...")
    parser = argparse.ArgumentParser(
        prog="runner.py", description="Run the compat smoke suite in this environment."
    )
    parser.add_argument("--site", action="append", default=[], metavar="DIR")
    parser.add_argument("--package", action="append", default=[], metavar="NAME")
    parser.add_argument("--checks-dir", action="append", default=[], metavar="DIR")
    parser.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT, metavar="SECONDS")
    parser.add_argument("--only", action="append", default=[], metavar="PATTERN")
    parser.add_argument("--skip-sweep", action="append", default=[], metavar="NAME")
    args = parser.parse_args(argv)
    if args.timeout <= 0:
        raise UsageError("--timeout must be positive")
    for directory in args.site + args.checks_dir:
        if not Path(directory).is_dir():
            raise UsageError(f"not a directory: {directory}")
    return args, command


def compose_sites(directories: Sequence[str]) -> list[str]:
    """``site.addsitedir`` each directory in order (so .pth files work), then move
    what that added in front of the interpreter's own site-packages. Returns the
    added entries, in order."""
    before = list(sys.path)
    for directory in directories:
        site.addsitedir(str(Path(directory).absolute()))
    added = [entry for entry in sys.path if entry not in before]
    rest = [entry for entry in sys.path if entry not in added]
    own = set(site.getsitepackages()) if hasattr(site, "getsitepackages") else set()
    user_site = site.getusersitepackages() if hasattr(site, "getusersitepackages") else None
    own.add(user_site or "")
    at = next(
        (
            i
            for i, entry in enumerate(rest)
            if entry in own or Path(entry).name in ("site-packages", "dist-packages")
        ),
        len(rest),
    )
    sys.path[:] = rest[:at] + added + rest[at:]
    return added


def import_body(dist_name: str) -> Callable[[], None]:
    """The import check of one distribution: its top-level and deep modules."""

    def body() -> None:
        dist = dists.find_distribution(dist_name)
        modules = dists.modules_to_import(dist_name, dist)
        if dist is None:
            print(f"no distribution {dist_name} is installed; importing {modules[0]}")
        else:
            print(f"{dist_name} {dist.version} in {dist.locate_file('')}")
        for module_name in modules:
            importlib.import_module(module_name)
        top = sys.modules[modules[0]]
        print(f"imported {modules[0]} from {getattr(top, '__file__', None)}")

    return body


def sweep_all(
    packages: Sequence[str], timeout: float, *, skip: Iterable[str] = ()
) -> dict[str, modules.Sweep]:
    """The whole-package import of each installed distribution of ``packages``
    but those in ``skip``. Every one of them is a partner a failure may name."""
    found = {name: dists.find_distribution(name) for name in packages}
    owners = modules.Owners()
    for dist in found.values():
        if dist is not None:
            owners.add(dist)
    skipped = {dists.canonical(n) for n in skip}
    return {
        name: modules.sweep(dist, owners, timeout)
        for name, dist in found.items()
        if dist is not None and name not in skipped
    }


def with_sweep(outcome: isolate.Outcome, sweep: modules.Sweep | None) -> isolate.Outcome:
    """The import check's outcome: the in-process import of the top level, then
    the whole-package import (which decides when the first passed)."""
    if sweep is None:
        return outcome
    log = "\n".join(text for text in (outcome.log, sweep.summary()) if text)
    duration = outcome.duration + sweep.duration
    if outcome.verdict != isolate.PASS or sweep.verdict == isolate.PASS:
        return isolate.Outcome(outcome.verdict, duration, outcome.error, log)
    return isolate.Outcome(sweep.verdict, duration, sweep.error, log)


PLUGIN_GROUP = "compat.checks"
"""The entry point group through which installed distributions contribute checks."""


def load_plugins(timeout: float) -> list[tuple[str, isolate.Outcome]]:
    """Load the modules that installed distributions name in the ``compat.checks``
    entry point group. They register checks with the built-ins' own decorator,
    imported as ``compat_smoke.checks`` (``needs``, ``valid``, ``Skip``, ``mod``),
    and so run with the same declarations and isolation. Returns the outcome of
    loading each, named ``plugin:<entry point>``, for those that failed."""
    found: Any = importlib.metadata.entry_points()  # a dict on Python 3.9
    selected = (
        found.select(group=PLUGIN_GROUP)
        if hasattr(found, "select")
        else found.get(PLUGIN_GROUP, [])
    )
    package = sys.modules[__package__ or "__main__"]
    sys.modules.setdefault("compat_smoke", package)
    sys.modules.setdefault("compat_smoke.checks", checks_package)
    failed = []
    for entry in sorted({e.name: e for e in selected}.values(), key=lambda e: e.name):
        outcome = isolate.run_inline(functools.partial(_load, entry), timeout)
        if outcome.verdict != isolate.PASS:
            failed.append((f"plugin:{entry.name}", outcome))
    return failed


def _load(entry: importlib.metadata.EntryPoint) -> None:
    entry.load()


def installed_versions(names: Iterable[str]) -> dict[str, str]:
    """Canonical name to installed version, for the checks' validity ranges."""
    found = {}
    for name in names:
        dist = dists.find_distribution(name)
        if dist is not None:
            found[name] = str(dist.version)
    return found


def user_check_body(path: str) -> Callable[[], None]:
    """A user script: run as __main__, then its zero-argument test_* functions."""

    def body() -> None:
        sys.path.insert(0, str(Path(path).parent))
        sys.argv = [path]
        namespace = runpy.run_path(path, run_name="__main__")
        for name, func in list(namespace.items()):
            if not (name.startswith("test_") and inspect.isfunction(func)):
                continue
            if func.__module__ != "__main__":
                continue  # imported from elsewhere, not this script's test
            required = [
                p.name
                for p in inspect.signature(func).parameters.values()
                if p.default is p.empty and p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
            ]
            if required:
                raise TypeError(
                    f"{name} takes fixtures ({', '.join(required)}): run it with --exec and pytest"
                )
            func()

    return body


def user_checks(directories: Sequence[str]) -> list[tuple[str, str]]:
    """(check name, path) of every user script, in order."""
    found: list[tuple[str, str]] = []
    for directory in directories:
        for path in sorted(Path(directory).iterdir()):
            if path.suffix == ".py" and not path.name.startswith("_") and path.is_file():
                name = f"user:{path.name}"
                if any(existing == name for existing, _ in found):
                    name = f"user:{path.parent.absolute().name}/{path.name}"
                found.append((name, str(path)))
    return found


def run(args: argparse.Namespace, command: list[str], events: Events) -> None:
    started = time.monotonic()
    os.environ.update(THREAD_LIMITS)
    os.environ["MPLBACKEND"] = "Agg"
    added = compose_sites(args.site)

    def selected(name: str) -> bool:
        return not args.only or any(fnmatch.fnmatchcase(name, p) for p in args.only)

    checks_package.CHECK_TIMEOUT = args.timeout
    # The combination: what was asked for, every distribution of its site
    # directories, any known distribution installed beside them, and what these
    # require (a transitive dependency is part of the combination too).
    in_sites = modules.distributions_in(added)
    named = list(args.package) + dists.installed_known()
    packages = dists.ordered(
        named
        + [dists.canonical(str(d.metadata["Name"])) for d in in_sites]
        + dists.with_dependencies(named)
    )
    # Every module of every distribution, before this process imports any of them.
    # the host has the outcome of those it names in --skip-sweep
    sweeps = sweep_all(packages, args.timeout, skip=args.skip_sweep)
    imported: dict[str, bool] = {}
    for dist_name in packages:
        name = f"import:{dist_name}"
        events.start(name)
        outcome = isolate.run_inline(import_body(dist_name), args.timeout)
        imported[dist_name] = outcome.verdict == isolate.PASS
        sweep = sweeps.get(dist_name)
        if sweep is not None:
            events.sweep(sweep)
        events.result(name, with_sweep(outcome, sweep))

    have = installed_versions(name for name, ok in imported.items() if ok)
    for name, outcome in load_plugins(args.timeout):
        events.start(name)
        events.result(name, outcome)
    for chk in builtin_checks():  # the plugins' checks too, after the built-in ones
        if not selected(chk.name):
            continue
        events.start(chk.name)
        missing = [n for n in chk.needs if n not in imported]
        broken = [n for n in chk.needs if n in imported and not imported[n]]
        if missing:
            outcome = isolate.Outcome(
                isolate.SKIPPED, 0.0, f"needs {', '.join(missing)}: {NOT_IN_COMBINATION}"
            )
        elif broken:
            outcome = isolate.Outcome(
                isolate.SKIPPED, 0.0, f"needs {', '.join(broken)}: failed to import"
            )
        elif chk.invalid_for(have):
            outcome = isolate.Outcome(isolate.SKIPPED, 0.0, chk.invalid_for(have))
        else:
            outcome = isolate.run_forked(chk.func, args.timeout)
        events.result(chk.name, outcome)

    for name, path in user_checks(args.checks_dir):
        if selected(name):
            events.start(name)
            events.result(
                name,
                isolate.run_forked(
                    user_check_body(path), args.timeout, isolate.classify_user_exception
                ),
            )

    if command and selected("exec"):
        env = dict(os.environ)
        inherited = [env["PYTHONPATH"]] if env.get("PYTHONPATH") else []
        env["PYTHONPATH"] = os.pathsep.join(added + inherited)
        # stdout and stderr share the log: keep them in the order they were written.
        env["PYTHONUNBUFFERED"] = "1"
        events.start("exec")
        events.result("exec", isolate.run_command(command, env, args.timeout))

    events.done(time.monotonic() - started)


def main(argv: Sequence[str] | None = None) -> int:
    try:
        args, command = parse_args(sys.argv[1:] if argv is None else argv)
    except UsageError as exc:
        print(f"runner.py: error: {exc}", file=sys.stderr)
        return 2
    except SystemExit as exc:  # argparse: --help, or a bad option (already printed)
        return exc.code if isinstance(exc.code, int) else 2

    # Events go to a private duplicate of stdout; fd 1 itself is pointed at
    # stderr, so that stray output from anything loaded can never corrupt them.
    sys.stdout.flush()
    events_stream = os.fdopen(os.dup(1), "w", encoding="utf-8")
    os.dup2(2, 1)
    # If an import crashes the runner, its stack goes to the real stderr.
    crash_stream = os.fdopen(os.dup(2), "w")
    faulthandler.enable(file=crash_stream, all_threads=True)
    try:
        run(args, command, Events(events_stream))
    except Exception:
        traceback.print_exc()
        print("runner.py: the smoke runner itself failed (above)", file=sys.stderr)
        return 3
    finally:
        events_stream.close()
    return 0
