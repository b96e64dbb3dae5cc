"""The deep tier's runner: a combination's dependents' own shipped test modules,
run INSIDE the environment under test with pytest.

Like the smoke suite it is mounted read-only and run with the environment's own
Python; standard library only at import time, Python 3.9+. pytest and what the
test modules need (hypothesis...) come from a separate *test layer* of site
directories (``--tooling``), placed behind the combination's own, so they never
change its pins. The host side (baselines, differential comparison,
attribution, verdicts) is :mod:`compat.deep`.

Harness contract
================

Command::

    python /opt/compat-smoke/deep/runner.py --package NAME... [--site DIR]...
        [--tooling DIR]... [--dependent NAME]... [--jobs N] [--timeout SECONDS]
        [--module-timeout SECONDS] [--max-modules N] [--max-foundation-modules N]
        [--module GLOB]...
        [--markers EXPR] [--keyword EXPR] [--no-rerun] [--select-only] [--work DIR]
        [--sdist NAME=PATH]... [--reuse-module PATH]...

``--package``: the combination's named distributions. Each that ships test
modules is a *dependent* (or only those named by ``--dependent``); the others
are its *partners*. ``--sdist NAME=PATH``: the source distribution of a
dependent whose wheel ships no tests, whose top-level test trees (``tests``,
``test``, ``testing``; never the package's source) are extracted and run
against the installed wheel; or of one whose wheel ships tests without their
data, whose copy of those test packages (``lib/matplotlib/tests``, baseline
images included) runs in their place. ``--site``/``--tooling``: site
directories of the combination and of the test layer. Selection (:mod:`.selection`): a
dependent's test modules that reach a partner through what they import;
``--max-modules`` keeps the N most telling per dependent,
``--max-foundation-modules`` at most N of those that reach only partners
``import dependent`` itself loads (numpy for pandas); a dependent whose partners
are all such foundations (statsmodels on numpy, scipy and pandas) gets a spread
over its test folders instead, up to 8 modules. ``--module`` those whose
path matches a glob. ``--reuse-module``: a selected module whose outcomes the host
keeps (it imported the same versions before) is not run; its module event says
``"reused": true`` and the host adds its tests. Each module runs in its own pytest process
(``--jobs`` at a time, longest first), offline (proxies dropped), in a scratch
HOME, with ``-m EXPR`` (default: not slow, network, db or single_cpu), ``-k EXPR``
when ``--keyword`` is given, and a per-test time limit. A process killed by a
signal marks the running test ``crash`` and the module goes on without it.
A module whose collection failed on a warning made an error (its test
configuration's filters) runs again with ``-W default``. Unless ``--no-rerun``,
failing tests are run once more in a fresh process.

Output: JSON lines on stdout, flushed per line::

    {"event": "environment", "python": V, "distributions": {NAME: {"version",
     "top_level"}}, "owners": {TOP_LEVEL: NAME}}
    {"event": "dependent", "dependent": D, "version": V, "partners": [...],
     "foundations": [...], "selected": N, "modules": M,
     "tests_from": "wheel"|"sdist"|"wheel+sdist"}
    {"event": "selected", "dependent": D, "module": PATH, "partners": [...],
     "tests": [NAME...]}
    {"event": "test", "dependent": D, "module": PATH, "test": NODE_ID,
     "outcome": O, "duration": S, "error": LINE, "frames": [...], "log": TEXT,
     "rerun": O2}
    {"event": "module", "dependent": D, "module": PATH, "tests": N,
     "duration": S, "error": WHY_KILLED_OR_NULL, "log": TAIL_OR_NULL,
     "imports": [TOP_LEVEL...] or null}
    {"event": "done", "counts": {O: N}, "duration": S}

``imports``: the top-level name of every module its pytest processes loaded or
tried to import (found or not), which ``owners`` maps to the distributions the
module's outcome can depend on; null when a process was killed before saying.
``tests`` is present when the module imports its partners only optionally (in a
module-level ``try:`` or inside functions, as scipy's stats tests do
matplotlib): only the test functions that use them run (``-k``); a module none
of whose tests does is not selected. ``owners`` maps every top-level import
name the combination installs (transitive dependencies included) to its
distribution. ``O`` is one of passed, failed, error, timeout, crash, skipped,
xfailed, xpassed; ``rerun`` is present for failing tests only. ``frames``
(innermost last) are ``{"path", "line", "function", "root"}``: PATH relative to
the ``sys.path`` entry holding the file
(``pandas/plotting/_matplotlib/core.py``) and ROOT ``site`` (the environment
under test), ``tooling`` (the test layer), ``stdlib`` or ``other``. NODE_ID is
relative to the directory holding the dependent, e.g.
``pandas/tests/plotting/test_misc.py::test_x``.

Exit status: 0 when the run finished, 2 for a bad command line, 3 when the
runner itself failed.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

DEEP_DIR = Path(__file__).resolve().parent
RUNNER = DEEP_DIR / "runner.py"

OUTCOMES = ("passed", "failed", "error", "timeout", "crash", "skipped", "xfailed", "xpassed")
"""Every outcome a test can get."""
FAILING = ("failed", "error", "timeout", "crash")


def runner_options(
    *,
    packages: tuple[str, ...] | list[str] = (),
    sites: tuple[str, ...] | list[str] = (),
    tooling: tuple[str, ...] | list[str] = (),
    dependents: tuple[str, ...] | list[str] = (),
    jobs: int | None = None,
    timeout: float | None = None,
    module_timeout: float | None = None,
    max_modules: int | None = None,
    max_foundation_modules: int | None = None,
    modules: tuple[str, ...] | list[str] = (),
    keyword: str | None = None,
    rerun: bool = True,
    sdists: dict[str, str] | None = None,
    reuse_modules: tuple[str, ...] | list[str] = (),
) -> list[str]:
    """The runner's options (see the contract above); ``sdists``: name -> path."""
    argv: list[str] = []
    for name, path in sorted((sdists or {}).items()):
        argv += ["--sdist", f"{name}={path}"]
    for option, values in (
        ("--package", packages),
        ("--site", sites),
        ("--tooling", tooling),
        ("--dependent", dependents),
        ("--module", modules),
        ("--reuse-module", reuse_modules),
    ):
        for value in values:
            argv += [option, value]
    if jobs is not None:
        argv += ["--jobs", str(jobs)]
    if timeout is not None:
        argv += ["--timeout", repr(float(timeout))]
    if module_timeout is not None:
        argv += ["--module-timeout", repr(float(module_timeout))]
    if max_modules:
        argv += ["--max-modules", str(max_modules)]
    if max_foundation_modules is not None:
        argv += ["--max-foundation-modules", str(max_foundation_modules)]
    if keyword:
        argv += ["--keyword", keyword]
    if not rerun:
        argv.append("--no-rerun")
    return argv


def runner_argv(
    python: str, *, deep_dir: str = "/opt/compat-smoke/deep", **options: Any
) -> list[str]:
    """The command line that runs the deep tier from ``deep_dir`` with ``python``;
    ``options`` as for :func:`runner_options`."""
    return [python, deep_dir.rstrip("/") + "/runner.py", *runner_options(**options)]
