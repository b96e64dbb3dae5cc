"""What a backend must provide, and what it learns about an image.

A ``Backend`` performs the effects (``DockerBackend``: containers of the target
image; ``LocalBackend``: this machine's Python); ``compat.harness.pipeline`` decides
what is done and when, the same for both."""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from collections.abc import Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path

from compat.effects.container import Executor
from compat.harness.toolchain import Toolchain
from compat.model import Pin
from compat.targets.probe import ImageFacts
from compat.targets.target import Target

# compileall's arguments: every module of the given directories, in parallel, except
# the packages' own test suites (a third of the files; nothing imports them).
COMPILE_ARGS = ("-m", "compileall", "-q", "-j0", "-x", r"/tests?/")


def compile_command(python: str, dirs: Sequence[str]) -> list[str]:
    return [python, "-I", "-S", *COMPILE_ARGS, *dirs]


def compile_too_long(limit: float) -> str:
    """What a backend says when byte-compiling outlasts its limit."""
    return f"compiling bytecode took longer than {limit:.0f}s (--compile-timeout)"


@dataclass(frozen=True, kw_only=True, slots=True)
class ImageInfo:
    """An image (or the host) as the harness sees it: what its probe found, and what
    containers are started from."""

    image: str  # what containers are started from ("" for the host)
    image_id: str | None
    facts: ImageFacts  # the interpreter, libc, package manager and toolchain
    added_packages: tuple[str, ...] = ()  # system packages added on top of the base
    reference: str = ""  # the image as the user named it, for names of derived images

    @property
    def interpreter_key(self) -> str:
        """Same key, same bytecode: what compile stamps are per."""
        return f"{self.facts.cache_tag}-{self.facts.magic}"


class Backend(ABC):
    """The effects a backend performs; the pipeline decides what and when."""

    kind: str
    # whether builds run without a network: their pip then installs build requirements
    # from the ``requires`` directory given to build_wheel, which the pipeline fills
    builds_offline: bool = False

    @abstractmethod
    def inspect(self, target: Target) -> ImageInfo:
        """Learn the target's interpreter (and whether its image can be reached)."""

    @abstractmethod
    def build_wheel(
        self, info: ImageInfo, pin: Pin, sdist: Path, out_dir: Path, *, requires: Path | None = None
    ) -> Path:
        """Build ``sdist`` into a wheel in ``out_dir`` (its whole log as BUILD_LOG
        there, where the backend keeps one); BuildFailed when it cannot. An offline
        backend's build takes its build requirements from ``requires`` only."""

    def toolchain(self, info: ImageInfo) -> Toolchain:
        """What ``build_wheel`` compiles with on ``info``'s image (builds are cached per
        toolchain). The host builds with its own compiler."""
        return Toolchain.IMAGE

    @abstractmethod
    def compile(self, info: ImageInfo, dirs: Sequence[Path]) -> None:
        """Compile the bytecode of ``dirs`` with the target's interpreter."""

    @abstractmethod
    def site_dir(self, host_dir: Path) -> str:
        """Where a directory of the installs is seen by the runner."""

    @abstractmethod
    def file_path(self, host_file: Path) -> str:
        """Where a file of the wheelhouse is seen by the runner."""

    @abstractmethod
    def interpreter(self, info: ImageInfo) -> list[str]:
        """The interpreter that runs the smoke runner, with its flags."""

    @abstractmethod
    def smoke_dir(self, info: ImageInfo) -> str:
        """Where the smoke suite (``compat/smoke``) is seen by that interpreter."""

    @abstractmethod
    def checks_dir(self) -> str | None:
        """Where the user's checks are seen by the runner, if any were given."""

    @abstractmethod
    def executor(self, info: ImageInfo) -> AbstractContextManager[Executor]:
        """Something that runs commands where the combinations run, thread-safe."""

    def with_system_packages(self, info: ImageInfo, packages: Sequence[str]) -> ImageInfo | None:
        """An image like ``info``'s with ``packages`` installed; None when impossible."""
        return None

    def close(self) -> None:  # noqa: B027 - most backends hold nothing
        """Release what the backend holds (clients, leftovers)."""


# a compiler's diagnostic: ``numpy/core/src/x.c:3072:12: error: ...`` (gcc, clang),
# ``error[E0425]: ...`` (rustc), ``Error: ...`` (gfortran)
_COMPILER_ERROR = re.compile(r"^\S+:\d+(:\d+)?: (fatal )?error: |^error\[E\d+\]: |^Error: ")
# what a build backend says after a compiler failed: the command line, not the cause
_COMMAND_FAILED = re.compile(r"command .* failed|failed with exit (status|code)", re.IGNORECASE)


def build_error_line(output: str) -> str:
    """The most telling line of a failed build: the compiler's first error, else
    the last line that says error (not the command that failed)."""
    lines = [ln.strip() for ln in output.splitlines() if ln.strip()]
    first = next((line for line in lines if _COMPILER_ERROR.search(line)), None)
    if first is not None:
        return first[:300]
    telling = [ln for ln in lines if "note:" not in ln and not _COMMAND_FAILED.search(ln)]
    for pattern in (r"\berror:", r"\bERROR\b", r"Error\b"):
        for line in reversed(telling):
            if re.search(pattern, line):
                return line[:300]
    return lines[-1][:300] if lines else "the build produced no wheel"
