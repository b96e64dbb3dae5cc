"""A child process of the deep runner, in the environment under test.

    python child.py --site DIR... [--tooling DIR...] probe NAME...
    python child.py --site DIR... [--tooling DIR...] pytest ARGS...

Both compose the combination's site directories the way the smoke runner does
(``site.addsitedir`` each, then in front of the interpreter's own site-packages)
and put the test layer (``--tooling``: pytest, hypothesis...) *behind* them, so
the combination's own pins always win.

``probe`` prints one JSON object: per distribution NAME its version, top-level
import names, the directory holding them, whether it ships test modules, and the
modules ``import <top>`` loads (each imported in a forked child of a process
that has imported nothing). ``pytest`` runs pytest with :mod:`plugin`.

Standard library only until pytest is imported; Python 3.9+.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import json
import os
import site
import sys
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType
from typing import Any

HERE = Path(__file__).absolute().parent
# Forced: test suites spawn pools that would fight over the two cores.
THREAD_LIMITS = {
    "OMP_NUM_THREADS": "1",
    "OPENBLAS_NUM_THREADS": "1",
    "MKL_NUM_THREADS": "1",
    "BLIS_NUM_THREADS": "1",
    "NUMEXPR_NUM_THREADS": "1",
    "LOKY_MAX_CPU_COUNT": "1",
    "MPLBACKEND": "Agg",
    "PYTHONHASHSEED": "0",
}


def compose(sites: Sequence[str], tooling: Sequence[str]) -> None:
    """The combination in front of the interpreter's site-packages, the test
    layer at the very end."""
    sys.path[:] = [p for p in sys.path if Path(p or os.curdir).absolute() != HERE]
    before = list(sys.path)
    for directory in sites:
        site.addsitedir(str(Path(directory).absolute()))
    added = [p for p in sys.path if p not in before]
    rest = [p for p in sys.path if p not in added]
    at = next(
        (i for i, p in enumerate(rest) if Path(p).name in ("site-packages", "dist-packages")),
        len(rest),
    )
    sys.path[:] = rest[:at] + added + rest[at:]
    for directory in tooling:
        before = list(sys.path)
        site.addsitedir(str(Path(directory).absolute()))
        new = [p for p in sys.path if p not in before]
        sys.path[:] = [p for p in sys.path if p not in new] + new


def top_levels(dist: importlib.metadata.Distribution) -> list[str]:
    """The importable top-level names a distribution installs."""
    text = dist.read_text("top_level.txt")
    names = [n.strip() for n in (text or "").splitlines() if n.strip()]
    if not names:
        for file in dist.files or ():
            first = file.parts[0] if file.parts else ""
            if len(file.parts) > 1 and file.parts[1] == "__init__.py":
                names.append(first)
            elif len(file.parts) == 1 and first.endswith(".py"):
                names.append(first[:-3])
    return sorted({n for n in names if n.isidentifier() and not n.startswith("_")})


def _norm(name: str) -> str:
    return name.lower().replace("_", "-").replace(".", "-")


def find_dist(name: str) -> importlib.metadata.Distribution | None:
    wanted = _norm(name)
    for path in sys.path:
        for dist in importlib.metadata.distributions(path=[path]):
            if _norm(dist.metadata["Name"] or "") == wanted:
                return dist
    return None


def loaded_by_import(top: str) -> list[str]:
    """The modules ``import top`` loads, measured in a forked child."""
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        os.close(read)
        status = 0
        try:
            before = set(sys.modules)
            importlib.import_module(top)
            data = json.dumps(sorted(set(sys.modules) - before))
        except BaseException as exc:  # reported, not raised
            data = json.dumps({"error": f"{type(exc).__name__}: {exc}"})
            status = 1
        with os.fdopen(write, "w") as stream:
            stream.write(data)
        os._exit(status)
    os.close(write)
    with os.fdopen(read) as stream:
        text = stream.read()
    os.waitpid(pid, 0)
    try:
        value = json.loads(text)
    except ValueError:
        return []
    return value if isinstance(value, list) else []


def probe(names: Sequence[str]) -> dict[str, Any]:
    found: dict[str, Any] = {}
    for name in names:
        dist = find_dist(name)
        if dist is None:
            continue
        tops = top_levels(dist)
        root = None
        ships_tests = False
        for top in tops:
            spec = importlib.util.find_spec(top)
            if spec is not None and spec.submodule_search_locations:
                package_dir = Path(next(iter(spec.submodule_search_locations)))
                root = root or str(package_dir.parent)
                ships_tests = ships_tests or any(package_dir.rglob("tests/test_*.py"))
        found[_norm(name)] = {
            "version": dist.version,
            "top_level": tops,
            "root": root,
            "ships_tests": ships_tests,
            "loads": sorted({m for top in tops for m in loaded_by_import(top)}),
        }
    return found


class Tried:
    """First on ``sys.meta_path``: the top-level name of every import tried, found or
    not (an optional partner probed inside a ``try`` leaves no trace in ``sys.modules``
    but can decide a test's outcome)."""

    def __init__(self) -> None:
        self.tops: set[str] = set()

    def find_spec(self, fullname: str, path: object = None, target: object = None) -> None:
        self.tops.add(fullname.partition(".")[0])


def _load_plugin() -> ModuleType:
    spec = importlib.util.spec_from_file_location("_compat_deep_plugin", HERE / "plugin.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def owners(sites: Sequence[str]) -> dict[str, str]:
    """Top-level import name -> distribution, for everything installed in ``sites``
    (transitive dependencies included: a failure inside ``dateutil`` is
    python-dateutil's, which may have changed too)."""
    found: dict[str, str] = {}
    for directory in sites:
        for dist in importlib.metadata.distributions(path=[str(Path(directory).absolute())]):
            name = _norm(dist.metadata["Name"] or "")
            for top in top_levels(dist) if name else ():
                found.setdefault(top, name)
    return found


def main(argv: Sequence[str]) -> int:
    args = list(argv)
    sites: list[str] = []
    tooling: list[str] = []
    while args and args[0] in ("--site", "--tooling"):
        (sites if args[0] == "--site" else tooling).append(args[1])
        args = args[2:]
    if not args or args[0] not in ("probe", "pytest"):
        print(
            "usage: child.py [--site DIR]... [--tooling DIR]... probe|pytest ...", file=sys.stderr
        )
        return 2
    os.environ.update(THREAD_LIMITS)
    compose(sites, tooling)
    if args[0] == "probe":
        print(json.dumps({"distributions": probe(args[1:]), "owners": owners(sites)}))
        return 0
    plugin = _load_plugin()
    tried = Tried()
    sys.meta_path.insert(0, tried)
    import pytest  # the test layer, now on sys.path

    code = pytest.main(args[1:], plugins=[plugin.make(tooling, tried.tops)])
    return int(code)


if __name__ == "__main__":
    status = main(sys.argv[1:])
    sys.stdout.flush()
    sys.stderr.flush()
    # Skip the teardown of the whole stack: a library crashing at exit must not
    # turn a finished module into a crash.
    os._exit(status)
