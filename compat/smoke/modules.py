"""The whole-package import: every module a distribution's installed files provide
(its ``RECORD``), imported in a forked child of a runner that has imported nothing
of the environment yet, and each failure judged. It is the distribution's import
check: its essential modules (the top level and the submodules that load its
compiled code, ``dists.modules_to_import``) come first, and any failure of theirs
fails it, whatever caused it.

- Not applicable, listed but never a failure: the import looked for a module that
  nothing installed provides and the error names it (an optional dependency, or
  ``_tkinter`` missing from the interpreter), or the package's own submodule that
  was not built for this platform (``matplotlib.backends._macosx``), or a module
  that fails on another distribution compiled against another NumPy (scipy's
  module importing a matplotlib built for NumPy 1.x): that distribution's own
  import check fails so, and a binary-interface failure names the distribution
  whose compiled module it is, not the one whose import check met it.
- Anything else fails the import check, naming the module, the frame it failed in
  and the partner implicated: the distribution of the innermost frame, or the one
  the error names (``module 'numpy' has no attribute 'Inf'``). A binary-interface
  failure says so in words.

Test code (``tests``/``test`` folders, ``test_*.py``, ``conftest.py``), vendored
trees, example and sandbox folders, ``__main__`` modules and folders that are not
packages are not imported.

Runs inside the environment under test: standard library only, Python 3.9+.
"""

from __future__ import annotations

import functools
import importlib
import importlib.machinery
import importlib.metadata
import importlib.util
import json
import keyword
import os
import re
import sys
import tempfile
import time
import traceback
import warnings
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from . import dists, isolate

# Folders whose modules are not the package's own runtime code: tests, vendored
# trees, and example scripts and sandboxes (statsmodels.sandbox: experimental code
# its package says is not API, whose modules run scripts at import that read data
# files and call what numpy removed years ago; nobody imports them).
SKIPPED_FOLDERS = frozenset(
    {
        "tests",
        "test",
        "examples",
        "example",
        "sandbox",
        "__pycache__",
        "_vendor",
        "vendor",
        "_vendored",
        "vendored",
        "externals",
        "_externals",
        "extern",
        "_extern",
    }
)
_SOURCE_SUFFIXES = tuple(importlib.machinery.SOURCE_SUFFIXES)
_EXTENSION_SUFFIXES = tuple(sorted(importlib.machinery.EXTENSION_SUFFIXES, key=len, reverse=True))

# What an extension built against another NumPy raises when it is loaded.
NUMPY_ABI = re.compile(
    r"numpy\.dtype size changed|compiled using NumPy 1\.x cannot be run in NumPy 2"
    r"|numpy\.core\.multiarray failed to import|numpy\._core\.multiarray failed to import"
    r"|_ARRAY_API not found|module compiled against (?:ABI|API) version"
)
_NUMPY_2_BUILD = re.compile(r"compiled against ABI version 0x2|Expected 88 from C header")
# what an extension that needs NumPy 2's own modules raises under NumPy 1.x
_NEEDS_NUMPY_2 = re.compile(r"numpy\.(?:_core|core)\.multiarray failed to import")
# Standard modules of other platforms (Python 3.9 has no sys.stdlib_module_names)
OTHER_PLATFORMS = frozenset(
    {"winreg", "_winreg", "msvcrt", "_winapi", "winsound", "_msi", "nt", "_overlapped", "_scproxy"}
)
_OUTPUT_TAIL = 8000  # of what the imports wrote, in an import check's log
# The line of an import check's log that says an essential module failed: then
# the distribution does not import at all, which no baseline explains.
ESSENTIAL_FAILED = "essential modules failed: "
_MISSING_LIBRARY = re.compile(r"cannot open shared object file|Error loading shared library")
_QUOTED = re.compile(r"'([A-Za-z_][\w.]*)'")


def _module_stem(filename: str) -> str | None:
    for suffix in _EXTENSION_SUFFIXES + _SOURCE_SUFFIXES:
        if filename.endswith(suffix):
            stem = filename[: -len(suffix)]
            # a plain "libfoo.so" is a shared library beside the modules, not one
            if suffix == ".so" and stem.startswith("lib"):
                return None
            return stem
    return None


def _is_test_file(stem: str) -> bool:
    return stem in ("conftest", "setup") or stem.startswith("test_") or stem.endswith("_test")


def module_names(files: Iterable[Sequence[str]]) -> list[str]:
    """The importable modules among a distribution's installed files (each given as
    its path parts, relative to the site directory), parents before children."""
    files = [tuple(parts) for parts in files]
    packages = {
        parts[:-1] for parts in files if len(parts) > 1 and _module_stem(parts[-1]) == "__init__"
    }
    found: set[str] = set()
    for parts in files:
        if not parts or parts[0] == ".." or parts[0].endswith((".dist-info", ".data", ".egg-info")):
            continue
        stem = _module_stem(parts[-1])
        folders = parts[:-1]
        if stem is None or stem == "__main__" or _is_test_file(stem):
            continue
        names = (*folders, stem) if stem != "__init__" else folders
        if not names or any(
            n in SKIPPED_FOLDERS or not n.isidentifier() or keyword.iskeyword(n) for n in names
        ):
            continue
        # Leading namespace folders are fine (google/protobuf); a folder without an
        # __init__ below a package holds data or scripts, not modules.
        inside = False
        is_module = True
        for depth in range(1, len(folders) + 1):
            if folders[:depth] in packages:
                inside = True
            elif inside:
                is_module = False
                break
        if is_module:
            found.add(".".join(names))
    return sorted(found)


def distribution_modules(dist: importlib.metadata.Distribution) -> list[str]:
    return module_names(Path(str(f)).parts for f in dist.files or ())


def distributions_in(paths: Sequence[str]) -> list[importlib.metadata.Distribution]:
    """The distributions installed in the site directories ``paths``, by name."""
    if not paths:
        return []
    found: dict[str, importlib.metadata.Distribution] = {}
    for dist in importlib.metadata.distributions(path=list(paths)):
        try:
            name = dist.metadata["Name"]
        except KeyError:
            continue
        if name:
            found.setdefault(dists.canonical(str(name)), dist)
    return [found[n] for n in sorted(found)]


class Owners:
    """Which installed distribution a module or a file belongs to, by its top-level
    name or its path under a site directory."""

    def __init__(self) -> None:
        self._by_top: dict[str, tuple[str, str]] = {}
        self._roots: set[str] = set()

    def add(self, dist: importlib.metadata.Distribution) -> None:
        name = dists.canonical(str(dist.metadata["Name"]))
        self._roots.add(str(Path(str(dist.locate_file(""))).absolute()))
        for top in dists._top_levels(dist):
            self._by_top.setdefault(top, (name, str(dist.version)))

    def of_module(self, module: str) -> tuple[str, str] | None:
        return self._by_top.get(module.split(".")[0])

    def of_file(self, filename: str) -> tuple[str, str] | None:
        path = Path(filename).absolute()
        for root in self._roots:
            if Path(root) in path.parents:
                top = path.relative_to(root).parts[0]
                return self._by_top.get(_module_stem(top) or top)
        return None


class _Tried:
    """First on ``sys.meta_path``: the top-level name of every import tried, found
    or not (``importlib.util.find_spec`` probes count). A module whose import failed
    leaves ``sys.modules``, and one imported inside a ``try`` that caught its error
    leaves no trace there; either can decide an outcome."""

    def __init__(self) -> None:
        self.tops: set[str] = set()

    def find_spec(self, fullname: str, path: object = None, target: object = None) -> None:
        self.tops.add(fullname.partition(".")[0])


_TRIED = _Tried()


def record_imports() -> None:
    """From now on, in this process and those it forks, remember every import tried."""
    if _TRIED not in sys.meta_path:
        sys.meta_path.insert(0, _TRIED)


def named_absent(text: str) -> list[str]:
    """The modules ``text`` names (as words) that an import in this process tried
    and nothing installed provides: a package saying an optional dependency is
    missing ("dask is required for lightgbm.dask")."""
    words = set(re.findall(r"[A-Za-z_]\w*", text))
    return sorted(top for top in words & _TRIED.tops if not _importable(top))


def inputs(owners: Owners) -> dict[str, str]:
    """The distributions this process's outcome depends on: the owners of every
    top-level module loaded or tried (this package and the standard library own none)."""
    tops = {m for m in list(sys.modules) if "." not in m} | _TRIED.tops
    return dict(sorted(o for o in map(owners.of_module, tops) if o))


class _Asked:
    """A finder that finds nothing and remembers what it was asked for: first on
    ``sys.meta_path``, every module whose import began; last, every module that no
    finder found."""

    def __init__(self) -> None:
        self.names: list[str] = []

    def find_spec(self, fullname: str, path: object = None, target: object = None) -> None:
        self.names.append(fullname)


def _chain(exc: BaseException) -> list[BaseException]:
    seen: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and current not in seen:
        seen.append(current)
        current = current.__cause__ or current.__context__
    return seen


def _mentions(chain: list[BaseException], module: str) -> bool:
    last = module.rsplit(".", 1)[-1]
    for exc in chain:
        if isinstance(exc, ImportError) and exc.name in (module, last):
            return True
        if re.search(rf"(?<![\w.]){re.escape(last)}(?![\w])", str(exc)):
            return True
    return False


def _importable(top: str) -> bool:
    if top in sys.modules:
        return True
    try:
        return importlib.util.find_spec(top) is not None
    except (ImportError, ValueError):
        return False


def not_applicable(
    exc: BaseException, absent: Sequence[str], own_tops: Sequence[str]
) -> str | None:
    """Why a failed import is not the package's failure, or None when it is."""
    if isinstance(exc, isolate._TimeLimit) or not isinstance(exc, Exception):
        return None
    if isinstance(exc, ImportError) and "does not define module export function" in str(exc):
        return "a shared library, not a Python module"
    chain = _chain(exc)
    for name in dict.fromkeys(absent):
        top = name.split(".")[0]
        if not _importable(top) and _mentions(chain, name):
            return f"needs {top}, which is not installed"
    for name in dict.fromkeys(absent):
        if "." in name and name.split(".")[0] in own_tops and _mentions(chain, name):
            return f"{name} is not built for this platform"
    # a standard module of another platform, asked for through a lazy importer
    # ("cannot import name 'winreg' from 'six.moves'")
    stdlib = OTHER_PLATFORMS | frozenset(getattr(sys, "stdlib_module_names", ()))
    for quoted in _QUOTED.findall("\n".join(str(e) for e in chain)):
        top = quoted.split(".")[0]
        if top in stdlib and not _importable(top):
            return f"needs {top}, which this Python does not have"
    return None


def for_numpy_2(exc: BaseException, module: str, tops: Sequence[str], owners: Owners) -> str | None:
    """Why a submodule built for NumPy 2 alone (h5py._npystrings and blosc2.utf8_ext,
    NumPy 2's string dtype) is not applicable under NumPy 1.x: its package loads it
    only under NumPy 2. The package's own top level failing so still counts."""
    numpy = owners.of_module("numpy")
    if module in tops or numpy is None or not numpy[1].startswith("1."):
        return None
    if not _NEEDS_NUMPY_2.search("\n".join(str(e) for e in _chain(exc))):
        return None
    return f"built for NumPy 2 alone; NumPy {numpy[1]} is installed"


@dataclass
class ModuleFailure:
    module: str
    verdict: str
    error: str
    log: str = ""
    origin: str | None = None  # the module whose code raised, when it is known


@dataclass
class Sweep:
    """What importing every module of one distribution gave."""

    name: str
    version: str
    total: int = 0
    imported: int = 0
    not_applicable: list[tuple[str, str]] = field(default_factory=list)
    unattributed: list[tuple[str, str]] = field(default_factory=list)
    failures: list[ModuleFailure] = field(default_factory=list)
    duration: float = 0.0
    # the distributions the modules loaded, with their versions: what the outcome
    # depends on besides which distributions are installed
    inputs: dict[str, str] = field(default_factory=dict)
    essential: frozenset[str] = frozenset()  # its top level and compiled submodules
    essential_seconds: float = 0.0  # importing the essential modules, from nothing
    location: str | None = None  # the file the top level was imported from
    output: str = ""  # what the imports wrote
    cpu: float = 0.0  # of the importing children

    @property
    def essential_failed(self) -> list[str]:
        return [f.module for f in self.failures if f.module in self.essential]

    def outcome(self) -> isolate.Outcome:
        """The distribution's import check: the summary, then the tail of what the
        imports wrote."""
        log = self.summary()
        if self.output.strip():
            log += f"\n--- what the imports wrote ---\n{self.output[-_OUTPUT_TAIL:]}"
        return isolate.Outcome(
            self.verdict, self.duration, self.error, log, self.inputs or None, self.cpu
        )

    @property
    def verdict(self) -> str:
        order = (isolate.CRASH, isolate.TIMEOUT, isolate.IMPORT_ERROR, isolate.RUNTIME_ERROR)
        for verdict in order:
            if any(f.verdict == verdict for f in self.failures):
                return verdict
        return isolate.PASS

    def groups(self) -> list[list[ModuleFailure]]:
        """The failures by error, each led by the module whose own code raised it
        when that module is among them (``_smoothers_lowess``, not ``statsmodels.api``
        which imports it)."""
        groups: dict[str, list[ModuleFailure]] = {}
        for failure in self.failures:
            groups.setdefault(f"{failure.verdict}: {failure.error}", []).append(failure)
        ordered = []
        for group in groups.values():
            lead = next((f for f in group if f.module == f.origin), group[0])
            ordered.append([lead, *(f for f in group if f is not lead)])
        return ordered

    @property
    def error(self) -> str | None:
        groups = self.groups()
        if not groups:
            return None
        first = groups[0][0]
        rest = len(self.failures) - 1
        if not rest:
            return f"{first.module}: {first.error}"
        how = "with the same error" if len(groups) == 1 else f"{len(groups)} distinct errors"
        return f"{first.module}: {first.error} (and {rest} more modules, {how})"

    def summary(self) -> str:
        """What the log says: counts, each distinct error once with every module
        that had it, what was not applicable and why, one traceback per error."""
        what = f"{self.name} {self.version}" if self.version else f"{self.name} (no distribution)"
        lines = [
            f"{what}: {self.total} modules, {self.imported} imported, "
            f"{len(self.not_applicable)} not applicable, {len(self.unattributed)} not attributed, "
            f"{len(self.failures)} failed "
            f"({self.duration:.1f} s)"
        ]
        if self.location:
            lines.append(f"imported from {self.location}")
        if self.essential_failed:
            lines.append(ESSENTIAL_FAILED + ", ".join(self.essential_failed))
        groups = self.groups()
        for group in groups:
            lines.append(f"failed: {group[0].module}: {group[0].error}")
            if len(group) > 1:
                others = ", ".join(f.module for f in group[1:])
                lines.append(f"  {len(group) - 1} more with the same error: {others}")
        if self.unattributed:
            lines.append("not attributed (fails by itself, no partner implicated):")
            lines += [f"  {module}: {error}" for module, error in self.unattributed]
        if self.not_applicable:
            lines.append("not applicable:")
            lines += [f"  {module}: {why}" for module, why in self.not_applicable]
        for group in groups:
            if group[0].log:
                lines.append(f"--- {group[0].module} ---\n{group[0].log.rstrip()}")
        return "\n".join(lines)


def origin(exc: BaseException) -> str | None:
    """The module whose code raised ``exc``: the innermost frame's file as a dotted
    name (Cython names its frames by a path relative to the site directory)."""
    frames = [
        f
        for f in traceback.extract_tb(exc.__traceback__)
        if not f.filename.startswith("<") and not isolate._is_plumbing(f.filename)
    ]
    if not frames:
        return None
    path = Path(frames[-1].filename)
    if path.is_absolute():
        roots = [Path(p).absolute() for p in sys.path if p]
        inside = [r for r in roots if r in path.parents]
        if not inside:
            return None
        path = path.relative_to(max(inside, key=lambda r: len(r.parts)))
    stem = _module_stem(path.name) or path.name.split(".")[0]
    parts = [*path.parts[:-1], stem] if stem != "__init__" else list(path.parts[:-1])
    return ".".join(parts) if parts and all(p.isidentifier() for p in parts) else None


def abi_words(name: str, version: str, text: str, numpy: str | None) -> str | None:
    """A NumPy binary-interface failure said in words, or None if it is not one."""
    if not NUMPY_ABI.search(text) or numpy is None:
        return None
    if _NUMPY_2_BUILD.search(text):
        built = "NumPy 2.x"
    elif int(numpy.split(".")[0]) >= 2:
        built = "NumPy 1.x"
    else:
        built = "a different NumPy"
    return f"{name} {version} was compiled against {built}; NumPy {numpy} is installed"


def failed_last(begun: Sequence[str], absent: Sequence[str]) -> str | None:
    """The innermost module whose import failed: the last one begun that was found
    and is not loaded (a failed import leaves ``sys.modules``)."""
    missing = set(absent)
    return next((m for m in reversed(begun) if m not in sys.modules and m not in missing), None)


def abi_failure(exc: BaseException, failed: str | None, owners: Owners) -> tuple[str, str] | None:
    """For a NumPy binary-interface failure, the distribution whose compiled module
    it is: that of ``failed``, the innermost module whose import failed. None when
    ``exc`` is not one, or that module is unknown or NumPy's own."""
    if failed is None or not NUMPY_ABI.search("\n".join(str(e) for e in _chain(exc))):
        return None
    owner = owners.of_module(failed)
    return owner if owner and owner[0] != "numpy" else None


def built_elsewhere(
    exc: BaseException, built: tuple[str, str] | None, name: str, owners: Owners
) -> str | None:
    """Why a module of ``name`` that fails on another distribution's build for
    another NumPy (``built``: scipy's module importing a matplotlib compiled against
    NumPy 1.x) is not ``name``'s failure: that distribution's own import check fails so."""
    numpy = owners.of_module("numpy")
    if built is None or built[0] == name or numpy is None:
        return None
    text = "\n".join(str(e) for e in _chain(exc))
    return f"needs {built[0]}: {abi_words(*built, text, numpy[1])} (import:{built[0]} fails)"


def describe_failure(
    exc: BaseException,
    built: tuple[str, str] | None,
    *,
    name: str,
    version: str,
    owners: Owners,
) -> tuple[str, bool]:
    """One line (the exception, where it was raised, the partner it implicates),
    and whether a partner is implicated at all; ``built`` is the distribution whose
    build for another NumPy failed (``abi_failure``), when known."""
    line = isolate.describe_exception(exc)
    text = "\n".join(str(e) for e in _chain(exc))
    numpy = owners.of_module("numpy")
    if numpy:
        words = abi_words(*(built or (name, version)), text, numpy[1])
        if words:
            return f"{line} ({words}; partner: numpy {numpy[1]})", True
    frames = [
        f
        for f in traceback.extract_tb(exc.__traceback__)
        if not f.filename.startswith("<frozen") and not isolate._is_plumbing(f.filename)
    ]
    details = [f"at {Path(frames[-1].filename).name}:{frames[-1].lineno}"] if frames else []
    # the distribution of the innermost frame that is not the package's own, else
    # one the error names ("module 'numpy' has no attribute 'Inf'")
    owners_seen = [owners.of_file(f.filename) for f in reversed(frames)]
    owners_seen += [owners.of_module(quoted) for quoted in _QUOTED.findall(text)]
    partner = next((o for o in owners_seen if o and o[0] != name), None)
    if partner:
        details.append(f"partner: {partner[0]} {partner[1]}")
    return (f"{line} ({'; '.join(details)})" if details else line), partner is not None


def _import_all(
    modules: Sequence[str], out: int, sweep: Sweep, owners: Owners, tops: Sequence[str]
) -> None:
    """The forked child: import each module of ``sweep``'s distribution, one JSON
    line per start and outcome."""
    isolate.only_importing()
    warnings.simplefilter("ignore")
    begun, absent = _Asked(), _Asked()
    sys.meta_path.insert(0, begun)
    sys.meta_path.append(absent)

    def write(record: dict[str, str | float | None]) -> None:
        os.write(out, (json.dumps(record) + "\n").encode())

    try:
        _import_each(modules, write, (begun, absent), sweep, owners, tops)
    finally:
        write({"inputs": json.dumps(inputs(owners))})


def _import_each(
    modules: Sequence[str],
    write: Callable[[dict[str, str | float | None]], None],
    asked: tuple[_Asked, _Asked],
    sweep: Sweep,
    owners: Owners,
    tops: Sequence[str],
) -> None:
    begun, absent = asked
    for module in modules:
        write({"start": module})
        del begun.names[:], absent.names[:]
        essential = module in sweep.essential
        started = time.monotonic()
        try:
            importlib.import_module(module)
            seconds = time.monotonic() - started
            where = getattr(sys.modules[module], "__file__", None) if essential else None
            write({"module": module, "status": "ok", "seconds": seconds, "file": where})
        except SystemExit as exc:
            if exc.code in (None, 0):
                write({"module": module, "status": "ok"})
            else:
                # a script exiting: nothing of a partner in sight
                status = "error" if essential else "unattributed"
                write({"module": module, "status": status, "error": f"sys.exit({exc.code!r})"})
        except BaseException as exc:
            built = abi_failure(exc, failed_last(begun.names, absent.names), owners)
            # an essential module that does not import fails the import check,
            # whatever it needed
            why = not essential and (
                not_applicable(exc, absent.names, tops)
                or for_numpy_2(exc, module, tops, owners)
                or built_elsewhere(exc, built, sweep.name, owners)
            )
            if why:
                write({"module": module, "status": "n/a", "why": why})
                continue
            error, implicated = describe_failure(
                exc, built, name=sweep.name, version=sweep.version, owners=owners
            )
            # a shared library the image lacks is the environment's: it counts
            implicated = essential or implicated or bool(_MISSING_LIBRARY.search(error))
            write(
                {
                    "module": module,
                    # a module failing with no partner in sight fails with every
                    # partner: a defect of this release (or of it on this Python)
                    "status": "error" if implicated else "unattributed",
                    "error": error,
                    "origin": origin(exc),
                    "log": isolate.format_traceback(exc)[-4000:],
                }
            )


def sweep(name: str, owners: Owners, timeout: float) -> Sweep:
    """The import check of distribution ``name``: its essential modules, then every
    other module of it, in forked children; a crash or a hang is charged to the
    module in flight, and the rest go on in a fresh child. With no distribution of
    that name installed, its essential modules alone."""
    dist = dists.find_distribution(name)
    essential = dists.modules_to_import(name, dist)
    if dist is None:
        result = Sweep(name=dists.canonical(name), version="")
        tops, rest = essential[:1], []
    else:
        result = Sweep(name=dists.canonical(str(dist.metadata["Name"])), version=str(dist.version))
        tops, rest = dists._top_levels(dist), distribution_modules(dist)
    modules = list(dict.fromkeys([*essential, *rest]))
    result.total = len(modules)
    result.essential = frozenset(essential)
    started = time.monotonic()
    retried: set[str] = set()
    while modules:
        with tempfile.TemporaryFile() as records:
            fd = records.fileno()
            batch = list(modules)
            body = functools.partial(_import_all, batch, fd, result, owners, tops)
            outcome = isolate.run_forked(body, timeout)
            records.seek(0)
            lines = [json.loads(line) for line in records.read().decode().splitlines() if line]
        result.cpu += outcome.cpu or 0.0
        if outcome.verdict == isolate.PASS and outcome.log:
            result.output += outcome.log  # a child that died left its output to its module
        in_flight = None
        for record in lines:
            if "inputs" in record:
                result.inputs.update(json.loads(record["inputs"]))
                continue
            if "start" in record:
                in_flight = record["start"]
                continue
            in_flight = None
            module = record["module"]
            modules.remove(module)
            if record["status"] == "ok":
                result.imported += 1
                if module in result.essential:
                    result.essential_seconds += record.get("seconds") or 0.0
                    result.location = result.location or record.get("file")
            elif record["status"] == "n/a":
                result.not_applicable.append((module, record["why"]))
            elif record["status"] == "unattributed":
                result.unattributed.append((module, record["error"]))
            else:
                result.failures.append(
                    ModuleFailure(
                        module,
                        isolate.IMPORT_ERROR,
                        record["error"],
                        record.get("log", ""),
                        record.get("origin"),
                    )
                )
        if in_flight is None:
            if outcome.verdict != isolate.PASS and modules:  # died between two modules
                result.failures.append(
                    ModuleFailure(
                        modules[0], outcome.verdict, outcome.error or "", outcome.log or ""
                    )
                )
                modules.pop(0)
            elif modules:
                break  # cannot happen: a child that finished reported every module
            continue
        if (
            outcome.verdict == isolate.TIMEOUT
            and in_flight not in retried
            and batch[0] != in_flight
        ):
            # the limit was the batch's: give the module a child and a limit of its own
            retried.add(in_flight)
            continue
        modules.remove(in_flight)
        result.failures.append(
            ModuleFailure(in_flight, outcome.verdict, outcome.error or "", outcome.log or "")
        )
    result.duration = time.monotonic() - started
    return result
