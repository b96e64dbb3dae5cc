"""The smoke suite: checks that run INSIDE the environment under test.

This directory is mounted read-only into a container of the base image (or used
from a host venv) and run with that environment's own Python. compat itself is
not installed there, so nothing here imports compat or any third-party module at
module level, and everything runs on Python 3.9+.

Harness contract
================

Command::

    python /opt/compat-smoke/runner.py [--site DIR]... [--package NAME]...
        [--checks-dir DIR]... [--timeout SECONDS] [--only PATTERN]...
        [--reuse NAME]... [--exec -- CMD ARGS...]

``--site DIR`` (repeatable, in order)
    ``site.addsitedir(DIR)`` before any package under test is imported, so .pth
    files inside are honoured. The entries this adds (DIR and what its .pth files
    add) are then moved in front of the interpreter's own site-packages, so the
    composed combination is never shadowed by whatever the image has installed.
``--package NAME`` (repeatable)
    The distribution names of the combination (``numpy``, ``scikit-learn``...;
    a trailing ``==version`` is ignored). Each gets an import check, and so do
    every distribution of the ``--site`` directories, each of the six known
    distributions (numpy, scipy, pandas, matplotlib, scikit-learn, lightgbm)
    found installed without being named, and every installed distribution these
    require: a transitive dependency is part of the combination too. An import
    check is the distribution's whole-package import: its essential modules
    (the top level, and the compiled submodules of the six), then every other
    module it installs, in a forked child of the runner that imported nothing
    of the environment before; if it dies, the module in flight gets what
    killed it and a fresh child goes on with the rest (see ``modules.py`` for
    how a module's failure is judged; an essential module's fails the check
    whatever caused it). The import checks run in dependency order (those six
    first, in that order, then the others). A built-in
    check runs only when every distribution it needs was imported and their
    installed versions are in the ranges it declares valid for; otherwise it
    is ``skipped``, its error naming what is missing, failed to import, or out
    of range (``needs lightgbm>=3.0, have 2.3.1``).
``--checks-dir DIR`` (repeatable)
    Every ``*.py`` file in DIR (sorted, files starting with ``_`` left out) is
    one check named ``user:<file name>``: run as ``__main__`` with runpy in a
    forked child (DIR first on sys.path), then its zero-argument top-level
    ``test_*`` functions are called. Any exception, or ``sys.exit`` with a
    non-zero status, is ``runtime-error``; ``unittest.SkipTest`` is ``skipped``.
Plugins
    Modules that installed distributions name in the ``compat.checks`` entry
    point group are loaded after the built-in checks, in a forked child of the
    runner (a failure to load is check ``plugin:<entry point>``, an
    import-error); the checks they register with ``compat_smoke.checks.check``
    are selected, skipped and reused like the built-in ones and run in forked
    children of that process (their inputs include the plugins').
``--timeout SECONDS`` (default 60)
    The time limit of each check (imports, built-in, user and exec alike).
``--only PATTERN`` (repeatable)
    fnmatch patterns on check names; built-in, user and exec checks that match
    none are not run (and not reported). Import checks always run: the others
    depend on them.
``--reuse NAME`` (repeatable)
    A built-in, plugin or user check named NAME that would run (selected by
    ``--only``, its needs imported, valid for the installed versions) is not
    run: the runner writes a ``reuse`` event for it instead of ``start`` and
    ``result``, and the harness supplies the outcome it kept. One that would be
    skipped is skipped as usual. ``--reuse import:DIST`` says the harness kept a
    pass of that import check: the whole-package import of DIST does not run,
    and the checks that need DIST run as if it had imported.
``--exec -- CMD ARGS...``
    Must come last: everything after ``--`` is the command. After all other
    checks it runs as check ``exec``, in a new session, with ``PYTHONPATH`` set
    to the entries the ``--site`` options added (then any inherited
    PYTHONPATH) and ``PYTHONUNBUFFERED=1``. A non-zero exit is
    ``runtime-error``, whose error is ``exit status N: <last line of output>``
    and whose log is the tail of the output; death by a signal is ``crash``.
    (.pth ``import`` lines of the site dirs are not re-run through a
    PYTHONPATH: a command that needs them must compose sites itself.)

Output: JSON lines on stdout, one object per line, flushed per line::

    {"event": "start", "check": NAME, "kind": KIND}
    {"event": "result", "check": NAME, "kind": KIND, "verdict": V, "duration": SECONDS,
     "error": FIRST_LINE_OR_NULL, "log": FULL_TEXT_OR_NULL,
     "inputs": {DIST: VERSION, ...} or null, "cpu": SECONDS_OR_NULL}
    {"event": "reuse", "check": NAME}
    {"event": "done", "counts": {VERDICT: N, ...}, "duration": SECONDS}

A result's ``cpu`` is the CPU time of the check's own processes and of what they
waited for (null for a check that ran in a process it shared).

Check names: ``import:<distribution>``, ``<needs joined by +>:<name>`` for the
built-in checks (e.g. ``pandas+numpy:groupby-agg``; see
``compat.smoke.checks.builtin_checks()``), ``user:<file>`` and ``exec``.
Their ``kind`` says what they are, so that the harness reads no meaning out of
a name: ``import`` for the import checks, ``smoke`` for the built-in and plugin
checks, ``user`` for the user checks and ``exec``.
Every check emits ``start`` then ``result``, skipped ones included, or only
``reuse``, so that a runner killed from outside leaves the check in flight in
the last ``start``. ``inputs`` are the distributions (canonical name, version)
that own a top-level module in ``sys.modules`` when the check's body ended
(passing or raising), in the check's own process, those that the interpreter's
start-up loaded (through .pth files) included, and those owning a top-level
module that any import in that process or its forking parents tried, found or not
(a failed import leaves ``sys.modules``; ``importlib.util.find_spec`` probes);
neither this package nor the standard library is one. An import check's inputs
are those of every process its whole-package import ran in. They are null for
``exec``, and for a check that did not run in a
process of its own or did not end there: skipped before running, ``timeout``,
``crash``, or failed by its zygote.

Order: the import checks; the built-in checks that do not run (skipped or
reused), in registration order; those that run, in the order of the zygote tree
(below): depth first, a zygote's own checks in registration order, then its
child zygotes, those of fewer distributions first, then by import order; then
the plugins' checks, the user checks, ``exec``.

``V`` is one of :data:`VERDICTS`. ``counts`` has every verdict as a key.
``error`` is the first line of what went wrong, e.g.
``ImportError: numpy.core.multiarray failed to import``,
``OSError: libgomp.so.1: cannot open shared object file: No such file or
directory``, ``killed by signal SIGSEGV (Segmentation fault)``; for an assertion
without a message it names the file, line and source of the assert. ``log``
holds everything the check wrote to its stdout/stderr (file descriptors 1 and 2
are redirected, so output of C code is caught too) and the traceback, at most
the last 64 KiB; it is null when empty. An import check's log is its
whole-package import's summary: the counts, each distinct error with the
modules that had it, what was not applicable and why, the file the top level
was imported from, and a traceback per error. Nothing but events is written to stdout:
stray output of the runner goes to stderr.

Verdicts: ``import-error`` (an import raised, including inside a check),
``runtime-error`` (any other exception), ``crash`` (killed by a signal, or
exited without reporting; a SIGKILL while the memory cgroup's count of
out-of-memory kills rose is ``killed by the out-of-memory killer: ...``, which
the harness runs again alone), ``timeout`` (killed after ``--timeout``; the log ends
with a dump of every thread's stack taken just before), ``skipped`` (a needed
distribution is missing or failed to import, or the installed version is
outside the check's valid range or lacks what the check tests; ``error`` says
which), ``check-error`` (a built-in check called an API the installed release
never had: an AttributeError, a TypeError of arguments that do not bind, or an
ImportError of a name, raised in the check's own code rather than inside a
library; a defect of the check, not an incompatibility).

Exit status: 0 when the suite ran to the end, whatever the verdicts (the
interpreter's teardown is skipped: a library crashing at exit does not count);
2 for a bad command line; 3 when the runner itself failed.

Isolation and speed: the runner process imports no distribution under test,
nor the plugins; it alone writes the events, from what its forked children
report through a pipe. Each built-in check runs in a forked child of a
*zygote*: a forked process that imported (as their import checks do) the
distributions of a needs-set, below the zygotes that imported some of what
those require, so that each check's process and its ancestors imported only
what its needs require. The zygote for needs S is a child of the zygote for T
when every distribution of T is in S or required by S's distributions
(transitively, from installed metadata), the one of those whose imports took
longest (numpy, then scipy, then scikit-learn+scipy); its root is the runner.
A zygote whose imports fail or that dies gives every check below it that got
no result its outcome, the error saying ``(importing DIST for S)`` or ``(the
process importing S for its checks)``. User checks are forked from the runner.
Every check runs in its own process group, killed with its group on timeout.
Thread pools are limited to one thread (OMP, OpenBLAS, MKL, ...; forced, since
forking with live pools deadlocks) and matplotlib uses the Agg backend. A run
under ``-O`` re-executes itself without it, as the checks assert.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

SMOKE_DIR = Path(__file__).resolve().parent
"""The directory to mount into the environment under test."""

RUNNER = SMOKE_DIR / "runner.py"

VERDICTS = ("pass", "import-error", "runtime-error", "crash", "timeout", "skipped", "check-error")
"""Every verdict a check can get, best first."""


def runner_argv(
    python: str,
    *,
    smoke_dir: str = "/opt/compat-smoke",
    sites: tuple[str, ...] | list[str] = (),
    packages: tuple[str, ...] | list[str] = (),
    checks_dirs: tuple[str, ...] | list[str] = (),
    timeout: float | None = None,
    only: tuple[str, ...] | list[str] = (),
    exec_cmd: tuple[str, ...] | list[str] = (),
    reuse: Sequence[str] = (),
) -> list[str]:
    """The command line that runs the suite from ``smoke_dir`` with ``python``."""
    argv = [python, smoke_dir.rstrip("/") + "/runner.py"]
    for site_dir in sites:
        argv += ["--site", site_dir]
    for package in packages:
        argv += ["--package", package]
    for checks_dir in checks_dirs:
        argv += ["--checks-dir", checks_dir]
    if timeout is not None:
        argv += ["--timeout", repr(float(timeout))]
    for pattern in only:
        argv += ["--only", pattern]
    for name in reuse:
        argv += ["--reuse", name]
    if exec_cmd:
        argv += ["--exec", "--", *exec_cmd]
    return argv
