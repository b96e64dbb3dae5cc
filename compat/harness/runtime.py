"""What a backend must provide (the Runtime), and what it learns about an image."""

from __future__ import annotations

import json
import re
from abc import ABC, abstractmethod
from collections.abc import Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from compat.effects.container import Executor
from compat.errors import HarnessError
from compat.harness.toolchain import Toolchain
from compat.model import Pin
from compat.targets.target import Target

# Run with `python -I -S -c`: reports what the harness needs to know about an
# interpreter and its image. Standard library only, old Pythons too.
INSPECT_SCRIPT = r"""
import glob, importlib.util, json, os, platform, shutil, sys, sysconfig
def which(*names):
    for n in names:
        p = shutil.which(n)
        if p:
            return p
    return None
managers = (("apk", "apk"), ("apt", "apt-get"), ("dnf", "dnf"), ("dnf", "microdnf"), ("dnf", "yum"))
manager = next((k for k, exe in managers if which(exe)), None)
libc = "musl" if glob.glob("/lib/ld-musl-*.so.1") else (platform.libc_ver()[0] or "glibc")
include = sysconfig.get_paths().get("include") or ""
print(json.dumps({
    "python": sys.executable,
    "version": platform.python_version(),
    "cache_tag": sys.implementation.cache_tag,
    "magic": importlib.util.MAGIC_NUMBER.hex(),
    "libc": libc,
    "package_manager": manager,
    "compiler": which("cc", "gcc", "clang"),
    "timeout_utility": which("timeout"),
    "has_python_headers": os.path.exists(os.path.join(include, "Python.h")),
    "uid": os.getuid(),
}))
"""


# compileall's arguments: every module of the given directories, in parallel, except
# the packages' own test suites (a third of the files; nothing imports them).
COMPILE_ARGS = ("-m", "compileall", "-q", "-j0", "-x", r"/tests?/")


def compile_command(python: str, dirs: Sequence[str]) -> list[str]:
    return [python, "-I", "-S", *COMPILE_ARGS, *dirs]


@dataclass(frozen=True, kw_only=True, slots=True)
class ImageInfo:
    """An image (or the host) as the harness sees it."""

    image: str  # what containers are started from ("" for the host)
    image_id: str | None
    python: str  # interpreter path inside
    version: str
    cache_tag: str
    magic: str
    libc: str
    package_manager: str | None
    compiler: str | None
    timeout_utility: str | None
    has_python_headers: bool
    added_packages: tuple[str, ...] = ()  # system packages added on top of the base
    reference: str = ""  # the image as the user named it, for names of derived images

    @property
    def interpreter_key(self) -> str:
        """Same key, same bytecode: what compile stamps are per."""
        return f"{self.cache_tag}-{self.magic}"

    @classmethod
    def from_inspect(cls, output: str, *, image: str, image_id: str | None) -> ImageInfo:
        line = next((ln for ln in reversed(output.splitlines()) if ln.startswith("{")), "")
        try:
            data: dict[str, Any] = json.loads(line)
        except json.JSONDecodeError as exc:
            raise HarnessError(
                f"cannot inspect the Python of {image or 'the host'}: {output.strip()[-500:]}"
            ) from exc
        return cls(
            image=image,
            image_id=image_id,
            python=data["python"] or "python3",
            version=data["version"],
            cache_tag=data["cache_tag"],
            magic=data["magic"],
            libc=data["libc"],
            package_manager=data.get("package_manager"),
            compiler=data.get("compiler"),
            timeout_utility=data.get("timeout_utility"),
            has_python_headers=bool(data.get("has_python_headers")),
        )


class Runtime(ABC):
    """The effects a backend performs; the pipeline decides what and when."""

    kind: str

    @abstractmethod
    def inspect(self, target: Target) -> ImageInfo:
        """Learn the target's interpreter (and whether its image can be reached)."""

    @abstractmethod
    def build_wheel(self, info: ImageInfo, pin: Pin, sdist: Path, out_dir: Path) -> Path:
        """Build ``sdist`` into a wheel in ``out_dir``; BuildFailed when it cannot."""

    def toolchain(self, info: ImageInfo) -> Toolchain:
        """What ``build_wheel`` compiles with on ``info``'s image (builds are cached per
        toolchain). The host builds with its own compiler."""
        return Toolchain.IMAGE

    @abstractmethod
    def compile(self, info: ImageInfo, dirs: Sequence[Path]) -> None:
        """Compile the bytecode of ``dirs`` with the target's interpreter."""

    @abstractmethod
    def site_dir(self, host_dir: Path) -> str:
        """Where an install-store directory is seen by the runner."""

    @abstractmethod
    def runner_command(self, info: ImageInfo) -> list[str]:
        """The smoke runner, as a command line (interpreter, flags, script)."""

    @abstractmethod
    def checks_dir(self) -> str | None:
        """Where the user's checks are seen by the runner, if any were given."""

    @abstractmethod
    def executor(self, info: ImageInfo) -> AbstractContextManager[Executor]:
        """Something that runs commands where the combinations run, thread-safe."""

    def with_system_packages(self, info: ImageInfo, packages: Sequence[str]) -> ImageInfo | None:
        """An image like ``info``'s with ``packages`` installed; None when impossible."""
        return None

    def close(self) -> None:  # noqa: B027 - most runtimes hold nothing
        """Release what the runtime holds (clients, leftovers)."""


def build_error_line(output: str) -> str:
    """The most telling line of a failed build."""
    lines = [ln.strip() for ln in output.splitlines() if ln.strip()]
    for pattern in (r"\berror:", r"\bERROR\b", r"Error\b"):
        for line in reversed(lines):
            if re.search(pattern, line) and "note:" not in line:
                return line[:300]
    return lines[-1][:300] if lines else "the build produced no wheel"
