"""The runner's main loop: compose the sites, run the import checks, the
built-in checks (through the zygote tree, :mod:`.tree`), the plugins' and the
user's, and write the events: the runner alone writes them, from the records its
forked children send back. It never imports a distribution under test itself.
The contract is in this package's docstring.

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
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from . import checks as checks_package
from . import dists, isolate, modules, tree
from .checks import Check, builtin_checks

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
# The kind of each check, told with its events (the harness's CheckKind values).
IMPORT_CHECK, SMOKE_CHECK, USER_CHECK = "import", "smoke", "user"


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

    def start(self, check: str, kind: str = SMOKE_CHECK) -> None:
        self._emit({"event": "start", "check": check, "kind": kind})

    def result(self, check: str, outcome: isolate.Outcome, kind: str = SMOKE_CHECK) -> None:
        self.counts[outcome.verdict] = self.counts.get(outcome.verdict, 0) + 1
        self._emit({"event": "result", "check": check, "kind": kind, **outcome.record()})

    def reuse(self, check: str) -> None:
        self._emit({"event": "reuse", "check": check})

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
    parser.add_argument("--reuse", action="append", default=[], metavar="NAME")
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


def run_imports(
    packages: Sequence[str], owners: modules.Owners, timeout: float, events: Events
) -> dict[str, modules.Sweep]:
    """The import check of each distribution, in order: its whole-package import
    (``modules.sweep``), each in forked children of this process, which imports
    none of them. ``owners`` names the partners a failure may implicate and the
    inputs an import check records: every installed distribution."""
    done = {}
    for name in packages:
        events.start(f"import:{name}", IMPORT_CHECK)
        done[name] = modules.sweep(name, owners, timeout)
        events.result(f"import:{name}", done[name].outcome(), IMPORT_CHECK)
    return done


@dataclass(frozen=True)
class Selection:
    """What the command line and the import checks decide about a check: whether
    it is reported (``--only``), skipped, reused (``--reuse``) or run."""

    only: tuple[str, ...]
    reuse: frozenset[str]
    imported: dict[str, bool]  # distribution: whether its import check passed
    have: dict[str, str]  # the installed versions of those that imported

    def selected(self, name: str) -> bool:
        return not self.only or any(fnmatch.fnmatchcase(name, p) for p in self.only)

    def skipped(self, chk: Check) -> isolate.Outcome | None:
        """The outcome of a check that cannot run here, or None."""
        missing = [n for n in chk.needs if n not in self.imported]
        broken = [n for n in chk.needs if n in self.imported and not self.imported[n]]
        if missing:
            why = f"needs {', '.join(missing)}: {NOT_IN_COMBINATION}"
        elif broken:
            why = f"needs {', '.join(broken)}: failed to import"
        else:
            why = chk.invalid_for(self.have) or ""
        return isolate.Outcome(isolate.SKIPPED, 0.0, why) if why else None

    def to_run(self, checks: Iterable[Check], report: tree.Report) -> list[Check]:
        """The checks of ``checks`` to run; the others are reported (skipped with
        ``start`` and ``result``, reused with ``reuse``) through ``report``."""
        running = []
        for chk in checks:
            if not self.selected(chk.name):
                continue
            skipped = self.skipped(chk)
            if skipped is not None:
                report.start(chk.name)
                report.result(chk.name, skipped)
            elif chk.name in self.reuse:
                report.reuse(chk.name)
            else:
                running.append(chk)
        return running


PLUGIN_GROUP = "compat.checks"
"""The entry point group through which installed distributions contribute checks."""


def plugin_entries() -> list[importlib.metadata.EntryPoint]:
    """The ``compat.checks`` entry points of the installed distributions, by name
    (read from their metadata: nothing is loaded)."""
    found: Any = importlib.metadata.entry_points()  # a dict on Python 3.9
    selected = (
        found.select(group=PLUGIN_GROUP)
        if hasattr(found, "select")
        else found.get(PLUGIN_GROUP, [])
    )
    return sorted({e.name: e for e in selected}.values(), key=lambda e: e.name)


def plugins_body(
    entries: Sequence[importlib.metadata.EntryPoint],
    selection: Selection,
    channel: isolate.Channel,
    timeout: float,
    inputs: Callable[[], dict[str, str]],
) -> Callable[[], None]:
    """The plugins' zygote: load the modules that installed distributions name in
    the ``compat.checks`` entry point group, then run the checks they registered,
    each in a child of its own. They register with the built-ins' own decorator,
    imported as ``compat_smoke.checks`` (``needs``, ``valid``, ``Skip``, ``mod``),
    and so run with the same declarations and isolation. A module that fails to
    load is check ``plugin:<entry point>``, reported only then."""

    def body() -> None:
        channel.as_sender()
        builtin = {chk.name for chk in builtin_checks()}
        package = sys.modules[__package__ or "__main__"]
        sys.modules.setdefault("compat_smoke", package)
        sys.modules.setdefault("compat_smoke.checks", checks_package)
        report = tree.Sender(channel)
        for entry in entries:
            name = f"plugin:{entry.name}"
            channel.send("loading", check=name)
            outcome = isolate.run_inline(functools.partial(_load, entry), timeout)
            if outcome.verdict != isolate.PASS:
                report.start(name)
                report.result(name, outcome)
        channel.send("loaded")
        added = [chk for chk in builtin_checks() if chk.name not in builtin]
        for chk in selection.to_run(added, report):
            report.start(chk.name)
            report.result(chk.name, isolate.run_forked(chk.func, timeout, inputs=inputs))

    return body


def _load(entry: importlib.metadata.EntryPoint) -> None:
    entry.load()


def every_owner() -> modules.Owners:
    """The owner of each top-level module, over every distribution on sys.path
    (the first of a name wins, as in an import)."""
    owners = modules.Owners()
    for dist in importlib.metadata.distributions():
        try:
            name = dist.metadata["Name"]
        except KeyError:  # Python 3.14+, a dist-info without a Name
            continue
        if name:
            owners.add(dist)
    return owners


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
    # An import check the host reuses (a pass) is not run again.
    reused = [name for name in packages if f"import:{name}" in args.reuse]
    to_import = [name for name in packages if name not in reused]
    # Every import tried from here on, in any process forked below, counts among
    # the inputs of the outcome it belongs to.
    modules.record_imports()
    owners = every_owner()
    imports = run_imports(to_import, owners, args.timeout, events)
    for name in reused:
        events.reuse(f"import:{name}")

    # What a check needs is imported when its essential modules are: a failure
    # elsewhere in the package (which a baseline may yet explain) skips no check.
    imported = {name: not sweep.essential_failed for name, sweep in imports.items()}
    imported.update((name, True) for name in reused)
    selection = Selection(
        only=tuple(args.only),
        reuse=frozenset(args.reuse),
        imported=imported,
        have=installed_versions(name for name, ok in imported.items() if ok),
    )
    inputs = functools.partial(modules.inputs, owners)
    # Those that do not run first (skipped, reused), then the others by the tree.
    running = selection.to_run(builtin_checks(), events)
    cost = {name: sweep.essential_seconds for name, sweep in imports.items()}
    tree.run(running, packages, cost, args.timeout, events, inputs)

    entries = plugin_entries()
    if entries:
        relay = tree.Relay(events)
        channel = isolate.Channel(relay)
        try:
            body = plugins_body(entries, selection, channel, args.timeout, inputs)
            died = isolate.run_forked(body, args.timeout + 10, listen=channel)
            if died.verdict != isolate.PASS and relay.in_flight is not None:
                relay.fail([relay.in_flight], died)
        finally:
            channel.close()

    for name, path in user_checks(args.checks_dir):
        if not selection.selected(name):
            continue
        if name in selection.reuse:
            events.reuse(name)
            continue
        events.start(name, USER_CHECK)
        events.result(
            name,
            isolate.run_forked(
                user_check_body(path),
                args.timeout,
                isolate.classify_user_exception,
                inputs=inputs,
            ),
            USER_CHECK,
        )

    if command and selection.selected("exec"):
        env = dict(os.environ)
        inherited = [env["PYTHONPATH"]] if env.get("PYTHONPATH") else []
        env["PYTHONPATH"] = os.pathsep.join(added + inherited)
        # stdout and stderr share the log: keep them in the order they were written.
        env["PYTHONUNBUFFERED"] = "1"
        events.start("exec", USER_CHECK)
        events.result("exec", isolate.run_command(command, env, args.timeout), USER_CHECK)

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
