"""How combinations are run: limits, parallelism, where the caches live."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from compat.errors import UsageError
from compat.harness.toolchain import ToolchainChoice
from compat.settings import NetworkSettings

# what the engine accepts for a memory limit: a number with an optional b/k/m/g unit
_MEMORY = re.compile(r"\d+(\.\d+)?([bkmg]b?)?", re.IGNORECASE)


# A backstop only: a hung check ends at its own check_timeout, and the suite's 50-odd
# checks on a busy machine must not add up to a `timeout` verdict, which lock and
# nightly would read as an incompatibility.
COMBO_TIMEOUT = 1800.0


@dataclass(frozen=True, kw_only=True, slots=True)
class RunOptions:
    cache_dir: Path  # wheelhouse, installs, builds and probes live under it
    jobs: int = 2  # combinations run at the same time
    combo_timeout: float = COMBO_TIMEOUT  # wall time for one combination's whole suite
    check_timeout: float = 120.0  # handed to the smoke runner for each check
    build_timeout: float = 3600.0  # one sdist -> wheel build (scikit-learn: many minutes)
    toolchain: ToolchainChoice = ToolchainChoice.AUTO  # what compiles sdists
    rebuild: bool = False  # build sdists again even when a wheel or a failure is cached
    cpus: float | None = None  # per runner container; None: no limit
    memory: str | None = "4g"  # per runner container (docker syntax); None: no limit
    pids_limit: int = 2048
    # install the packages of missing shared libraries (and the image's known ones): the
    # lock's Dockerfile installs them anyway, so a combination passing with them passes
    add_system_deps: bool = True
    checks_dir: Path | None = None  # the user's own checks
    exec_cmd: tuple[str, ...] = ()  # a user command run after the checks
    only: tuple[str, ...] = ()  # fnmatch patterns of the checks to run (imports always run)
    reuse: bool = True  # take kept check outcomes with the same inputs (compat.harness.reuse)
    verify_reuse: float = 0.0  # the share of those run anyway and compared
    network: NetworkSettings = field(default_factory=NetworkSettings)
    fetch_parallel: int = 8

    def __post_init__(self) -> None:
        if self.jobs < 1:
            raise ValueError("jobs must be at least 1")
        # checked here, not when the first container starts: a typo is a usage error
        if self.memory is not None and not _MEMORY.fullmatch(self.memory):
            raise UsageError(f"--memory {self.memory}: give a size with a unit, such as 512m or 4g")
        # containers bind-mount these: the engine needs absolute paths
        object.__setattr__(self, "cache_dir", self.cache_dir.resolve())
        if self.checks_dir is not None:
            object.__setattr__(self, "checks_dir", self.checks_dir.resolve())
