"""The built-in checks and the small toolkit they share.

Each check is a function decorated with :func:`check`, naming the distributions
it needs and the releases of them it is written for (``valid``: a specifier per
distribution); outside that range the runner skips it with the reason. A check
imports its packages inside its body (never at module level: this module is
also imported on the host, and in combinations that lack them) and asserts
results, raising :class:`Skip` when the installed versions lack what it tests.
Spellings that changed between releases go through :mod:`.shims`.

Runs inside the environment under test: standard library only, Python 3.9+.
"""

from __future__ import annotations

import contextlib
import functools
import importlib
import importlib.util
import io
import re
import signal
import sys
import sysconfig
import time
import traceback
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .. import dists, modules, versions
from ..isolate import Skip

__all__ = [
    "Check",
    "OutOfTime",
    "Skip",
    "breaks_stack",
    "builtin_checks",
    "check",
    "installed",
    "mod",
    "optional_dependency_missing",
    "raised_in",
    "render",
    "until",
    "version",
]

# The order checks run in: single packages first, so that a failure of a base
# library is seen before the cross-package failures it causes.
MODULES = (
    "numpy_core",
    "scipy_core",
    "matplotlib_core",
    "matplotlib_deps",
    "pandas_numpy",
    "pandas_timezones",
    "pandas_engines",
    "pandas_matplotlib",
    "pandas_scipy",
    "sklearn_scipy",
    "sklearn_estimators",
    "sklearn_parallel",
    "sklearn_pandas",
    "sklearn_matplotlib",
    "sklearn_others",
    "lightgbm_core",
    "lightgbm_partners",
)

CheckFunc = Callable[[], None]


@dataclass(frozen=True)
class Check:
    """One built-in check: its name, the distributions it needs, the releases of
    them it is valid for (distribution, specifier), its body."""

    name: str
    needs: tuple[str, ...]
    func: CheckFunc
    valid: tuple[tuple[str, str], ...] = ()

    @property
    def summary(self) -> str:
        return (self.func.__doc__ or "").strip().split("\n")[0]

    def invalid_for(self, installed: Mapping[str, str]) -> str | None:
        """Why the check does not apply to the ``installed`` versions (canonical
        name to version), e.g. ``needs lightgbm>=3.0, have 2.3.1``; None when it does."""
        reasons = []
        for dist, specifier in self.valid:
            have = installed.get(dist)
            if have is None:
                reasons.append(f"needs {dist}{specifier}, not installed")
                continue
            try:
                ok = versions.satisfies(have, specifier)
            except versions.InvalidVersion:
                ok = True  # an unparsable local build: let the check itself decide
            if not ok:
                reasons.append(f"needs {dist}{specifier}, have {have}")
        return "; ".join(reasons) or None


_REGISTRY: list[Check] = []

# The runner's time limit per check (set by the engine from --timeout). Sweeps
# over a registry stop starting new items past half of it: on a starved machine
# covering less is a miss, a timeout would be a false "incompatible".
CHECK_TIMEOUT = 60.0
SWEEP_SHARE = 0.5


def sweep_deadline() -> float:
    """The monotonic time after which a sweep starts nothing new."""
    return time.monotonic() + SWEEP_SHARE * CHECK_TIMEOUT


class OutOfTime(BaseException):
    """An item of a sweep ran past the sweep's share of the time limit."""


@contextlib.contextmanager
def until(deadline: float) -> Iterator[None]:
    """Run the block until the monotonic ``deadline`` at most: past it, OutOfTime
    is raised inside it (a BaseException: the libraries' ``except Exception`` lets
    it through). One item that is slow on a starved machine (a first numba
    compilation) is then a miss, never a timeout of the whole check."""
    remaining = deadline - time.monotonic()
    if remaining <= 0:
        raise OutOfTime()

    def on_alarm(signum: int, frame: object) -> None:
        raise OutOfTime()

    previous = signal.signal(signal.SIGALRM, on_alarm)
    signal.setitimer(signal.ITIMER_REAL, remaining)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def check(
    *needs: str, name: str | None = None, valid: Mapping[str, str] | None = None
) -> Callable[[CheckFunc], CheckFunc]:
    """Register a check needing ``needs`` (canonical distribution names), valid
    for the releases ``valid`` names (e.g. ``{"lightgbm": ">=3.0"}``).

    Its name defaults to ``<needs joined by +>:<function name without check_>``,
    e.g. ``pandas+numpy:groupby-agg``.
    """
    ranges = tuple(
        sorted((dists.canonical(d), s.replace(" ", "")) for d, s in (valid or {}).items())
    )
    for _, specifier in ranges:
        versions.check_specifier(specifier)  # a typo fails at load, on the host's tests too

    def register(func: CheckFunc) -> CheckFunc:
        short = (
            func.__name__[len("check_") :] if func.__name__.startswith("check_") else func.__name__
        )
        full = name or "+".join(needs) + ":" + short.replace("_", "-")
        if any(c.name == full for c in _REGISTRY):
            raise ValueError(f"two checks are named {full}")
        _REGISTRY.append(Check(name=full, needs=tuple(needs), func=func, valid=ranges))
        return func

    return register


def builtin_checks() -> list[Check]:
    """Every built-in check, in running order (imports the check modules)."""
    for module_name in MODULES:
        importlib.import_module(f"{__name__}.{module_name}")
    return list(_REGISTRY)


def mod(name: str) -> Any:
    """Import a module of the environment under test (untyped on purpose: the
    checks are written against many versions of each package)."""
    return importlib.import_module(name)


@functools.lru_cache(maxsize=None)
def _installed_version(dist: str) -> str | None:
    found = dists.find_distribution(dist)
    return None if found is None else str(found.version)


def installed(dist: str, specifier: str) -> bool:
    """Whether the installed ``dist`` (a distribution name) meets ``specifier``:
    for a check's branches between releases that it covers both of."""
    have = _installed_version(dists.canonical(dist))
    return have is not None and versions.satisfies(have, specifier)


_NUMBERS = re.compile(r"\d+")


def version(module_or_name: Any) -> tuple[int, ...]:
    """The leading release numbers of a module's ``__version__``: ``2.0.2rc1`` → (2, 0, 2)."""
    module = mod(module_or_name) if isinstance(module_or_name, str) else module_or_name
    release = str(module.__version__).split("+")[0]
    numbers = []
    for part in release.split("."):
        match = _NUMBERS.match(part)
        if not match:
            break
        numbers.append(int(match.group()))
        if match.end() != len(part):  # 0rc1, 1b2: the rest is a pre-release
            break
    return tuple(numbers)


def close(actual: Any, expected: Any, tol: float = 1e-6) -> bool:
    """Element-wise closeness of numbers or arrays (relative and absolute ``tol``)."""
    np = mod("numpy")
    return bool(np.allclose(actual, expected, rtol=tol, atol=tol))


PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def render(figure: Any, dpi: int = 30) -> None:
    """Draw a matplotlib figure to PNG and to SVG and check both came out whole."""
    png = io.BytesIO()
    figure.savefig(png, format="png", dpi=dpi)
    assert png.getvalue().startswith(PNG_MAGIC)
    svg = io.BytesIO()
    figure.savefig(svg, format="svg")
    assert svg.getvalue().rstrip().endswith(b"</svg>")


@functools.lru_cache(maxsize=4)
def _import_roots(path: tuple[str, ...]) -> tuple[frozenset[Path], tuple[Path, ...]]:
    """The standard library's directories, and the absolute directories of ``path``
    innermost first (resolved once per ``sys.path``, not per exception)."""
    stdlib = {Path(sysconfig.get_path(key)).resolve() for key in ("stdlib", "platstdlib")}
    stdlib |= {d / "lib-dynload" for d in stdlib}
    roots = sorted(
        {Path(p).resolve() for p in path if p and Path(p).is_absolute()},
        key=lambda root: len(root.parts),
        reverse=True,
    )
    return frozenset(stdlib), tuple(roots)


def raised_in(exc: BaseException) -> str | None:
    """The top-level package whose code raised ``exc``: that of its innermost frame
    in a directory of ``sys.path`` (site-packages, or a site directory the runner
    composed) other than the standard library's, or None."""
    stdlib, roots = _import_roots(tuple(sys.path))
    for frame in reversed(traceback.extract_tb(exc.__traceback__)):
        path = Path(frame.filename)
        if not path.is_absolute():
            continue  # <string>, frozen modules
        path = path.resolve()
        # the innermost directory holding it: site-packages before the stdlib it sits in
        root = next((r for r in roots if r in path.parents), None)
        if root is None or root in stdlib:
            continue
        return path.relative_to(root).parts[0].split(".")[0]
    return None


def optional_dependency_missing(exc: BaseException) -> bool:
    """A feature needing an optional partner the combination does not have, not a
    break: a ModuleNotFoundError for a module that is not installed at all (pandas'
    kde plots without scipy), or an error naming a module this process tried to
    import and nothing installed provides (lightgbm's "dask is required")."""
    if not isinstance(exc, ModuleNotFoundError) or not exc.name:
        return bool(modules.named_absent(str(exc)))
    top = exc.name.split(".")[0]
    try:
        return importlib.util.find_spec(top) is None
    except (ImportError, ValueError):
        return False


def breaks_stack(
    exc: BaseException,
    *,
    partners: tuple[str, ...],
    named: tuple[str, ...] = (),
    sparse_input: bool = False,
) -> bool:
    """Whether an exception out of a sweep over a package's own registry (every
    estimator, plot kind, window type...) is a break of the stack rather than
    the package refusing input it documents it refuses.

    A break: a wrong result (AssertionError), any exception but ValueError, and
    a ValueError raised inside one of ``partners`` (the package handed a partner
    what the partner no longer takes) or whose message names a release of one of
    ``named`` (the package saying the installed partner lacks what it needs). Not a
    break: a ValueError of the package's own validation, a singular matrix, a
    NotImplementedError, and sparse input refused."""
    np = mod("numpy")
    message = str(exc).lower()
    if isinstance(exc, AssertionError):
        return True
    if optional_dependency_missing(exc):
        return False
    if sparse_input and ("sparse" in message or "dense" in message):
        return False
    if isinstance(exc, (np.linalg.LinAlgError, NotImplementedError)):
        return False
    if not isinstance(exc, ValueError):
        return True
    if any(
        re.search(rf"{re.escape(name.lower())}\s*(>=|>|<|version|\d)", message) for name in named
    ):
        return True  # "... not available in SciPy >= 1.11": a release of the partner
    return raised_in(exc) in partners
