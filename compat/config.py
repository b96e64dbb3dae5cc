"""How a run runs: every setting of one command that runs combinations, resolved
once (by the command line, from its options, the matrix and these defaults) into
one frozen ``RunConfig`` that the harness, the deep tier and the workflows read.
Each default is written here and nowhere else; ``summary`` prints the resolved
value (``compat -v``).

Where things live (the cache, the results database, the index and how to reach
it) is not a run setting: ``compat.settings.NetworkSettings`` and the command
line's global options carry those."""

from __future__ import annotations

import dataclasses
import enum
import re
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Literal

from compat.errors import UsageError
from compat.matrix import Matrix
from compat.model import Depth

Backend = Literal["auto", "docker", "local"]
BACKENDS: tuple[Backend, ...] = ("auto", "docker", "local")

# what the engine accepts for a memory limit: a number with an optional b/k/m/g unit
_MEMORY = re.compile(r"\d+(\.\d+)?([bkmg]b?)?", re.IGNORECASE)


class ToolchainChoice(enum.StrEnum):
    """What the user asks for (``--toolchain``)."""

    AUTO = "auto"  # the image's compiler, else its package manager's, else PyPI's
    DISTRO = "distro"
    PYPI = "pypi"


@dataclass(frozen=True, kw_only=True, slots=True)
class Timeouts:
    """Every time limit a run can meet, in seconds."""

    # A backstop only: a hung check ends at its own limit, and the suite's 50-odd
    # checks on a busy machine must not add up to a `timeout` verdict, which lock and
    # nightly would read as an incompatibility.
    combination: float = 1800.0  # one combination's whole smoke suite
    check: float = 120.0  # one check of the suite (never more than ``combination``)
    build: float = 3600.0  # one sdist -> wheel build (scikit-learn: many minutes)
    compile: float = 1800.0  # byte-compiling the wheels unpacked for a run, once each
    deep_test: float = 60.0  # one shipped test of the deep tier
    deep_module: float = 900.0  # one test module of the deep tier (its own pytest process)
    deep_run: float = 3600.0  # one run of the deep tier's runner (a combination, baselines)
    image_smoke: float = 600.0  # the whole smoke suite in an image `compat image` built

    def __post_init__(self) -> None:
        for item in dataclasses.fields(self):
            if getattr(self, item.name) <= 0:
                raise UsageError(f"the {item.name} time limit must be positive")
        # a check that outlasts its combination would end as the combination's timeout
        object.__setattr__(self, "check", min(self.check, self.combination))

    def doubled(self) -> Timeouts:
        """Twice the time for a combination and its checks: a rerun after a timeout."""
        return dataclasses.replace(self, combination=2 * self.combination, check=2 * self.check)


@dataclass(frozen=True, kw_only=True, slots=True)
class DeepSelection:
    """Which of the dependents' shipped test modules the deep tier runs."""

    max_modules: int | None = 16  # per dependent, most telling first
    max_foundation_modules: int = 2  # of those reaching only numpy-like foundations
    modules: tuple[str, ...] = ()  # globs on test module paths; empty: the selection
    keyword: str | None = None  # a pytest -k expression


def smoke_only(depth: Depth) -> tuple[str, ...]:
    """The smoke runner's ``--only`` patterns at ``depth``: at ``import``, a pattern
    no built-in check matches (the runner always runs the import checks)."""
    return ("import:*",) if depth is Depth.IMPORT else ()


def as_of_for(given: date | None, matrix: Matrix | None) -> date | None:
    """The day the index is read as of: the command line's, else the matrix's."""
    return given if given is not None or matrix is None else matrix.as_of


@dataclass(frozen=True, kw_only=True, slots=True)
class RunConfig:
    """One run's settings, as resolved from the command line, the matrix and the
    defaults above."""

    backend: Backend = "auto"  # containers of the image, this machine's Python, or either
    jobs: int = 2  # combinations run at the same time
    cpus: float | None = None  # per runner container; None: no limit
    memory: str | None = "4g"  # per container (docker syntax); None: no limit
    pids_limit: int = 2048  # per container
    fetch_parallel: int = 8  # downloads at the same time
    # install the packages of missing shared libraries (and the image's known ones): the
    # lock's Dockerfile installs them anyway, so a combination passing with them passes
    add_system_deps: bool = True
    toolchain: ToolchainChoice = ToolchainChoice.AUTO  # what compiles sdists
    rebuild: bool = False  # build sdists again even when a wheel or a failure is cached
    retest: bool = False  # run combinations already tested on the image again
    reuse: bool = True  # take kept check outcomes with the same inputs (compat.harness.reuse)
    verify_reuse: float = 0.0  # the share of those run anyway and compared
    checks_dir: Path | None = None  # the user's own checks
    exec_cmd: tuple[str, ...] = ()  # a user command run after the checks
    depth: Depth = Depth.SMOKE  # how deep each combination is tested
    as_of: date | None = None  # resolve as the index stood at the end of that day (UTC)
    timeouts: Timeouts = field(default_factory=Timeouts)
    deep: DeepSelection = field(default_factory=DeepSelection)

    def __post_init__(self) -> None:
        if self.backend not in BACKENDS:
            raise UsageError(f"unknown backend {self.backend!r}: use auto, docker or local")
        if self.jobs < 1:
            raise UsageError("jobs must be at least 1")
        # checked here, not when the first container starts: a typo is a usage error
        if self.memory is not None and not _MEMORY.fullmatch(self.memory):
            raise UsageError(f"--memory {self.memory}: give a size with a unit, such as 512m or 4g")
        if self.checks_dir is not None:  # containers bind-mount it: an absolute path
            object.__setattr__(self, "checks_dir", self.checks_dir.resolve())

    @property
    def only(self) -> tuple[str, ...]:
        """The smoke runner's ``--only`` patterns at this depth."""
        return smoke_only(self.depth)

    def summary(self) -> str:
        """The resolved settings, one ``name: value`` line each (``compat -v``)."""
        lines = ["run configuration:"]
        for name, value in _flat(self):
            shown = "-" if value is None or value == () else value
            lines.append(f"  {name}: {shown}")
        return "\n".join(lines)


def _flat(value: object, prefix: str = "") -> list[tuple[str, object]]:
    found: list[tuple[str, object]] = []
    assert dataclasses.is_dataclass(value)
    for item in dataclasses.fields(value):
        inner = getattr(value, item.name)
        name = f"{prefix}{item.name}"
        if dataclasses.is_dataclass(inner):
            found += _flat(inner, f"{name}.")
        elif isinstance(inner, tuple):
            found.append((name, " ".join(map(str, inner)) or ()))
        else:
            found.append((name, inner))
    return found


__all__ = [
    "BACKENDS",
    "Backend",
    "DeepSelection",
    "RunConfig",
    "Timeouts",
    "ToolchainChoice",
    "as_of_for",
    "smoke_only",
]
