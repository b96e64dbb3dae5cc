"""Which toolchain turns an sdist into a wheel for an image, and how it is set up.

Three kinds:
- ``image``: the image already carries a C compiler and Python's headers;
- ``distro``: its package manager installs one (apt, apk, dnf: see sysdeps.TOOLCHAIN);
- ``pypi``: an image with no package manager (or ``--toolchain pypi``) gets its
  compiler and build tools from PyPI, into a builder container of the same image:
  ``ziglang`` as ``zig cc``/``zig c++`` targeting the image's own libc (as maturin
  ``--zig`` and cargo-zigbuild use it), cmake, ninja, meson and Cython. Zig ships no
  OpenMP runtime: packages that would use one are built without it, and the results,
  the lock and the report say so.

Builders have no network: pip installs the toolchain and a build's requirements from
FIND_LINKS only, a directory compat fills on the host (``compat.harness.buildreqs``).

Everything here is pure: the builder script is text, the choice a function of what
the image inspection found.
"""

from __future__ import annotations

import enum
import hashlib
import re
import shlex
from collections.abc import Mapping
from dataclasses import dataclass

from packaging.requirements import Requirement
from packaging.utils import NormalizedName, canonicalize_name

from compat.config import ToolchainChoice
from compat.errors import UsageError
from compat.targets.target import PackageManager

# Where the builder container sees things (mounted from the host's cache directory).
TOOLCHAIN_DIR = "/compat/toolchain"  # the PyPI toolchain's venv and zig's cache, kept per image
SDIST_DIR = "/compat/sdist"
OUT_DIR = "/compat/out"
FIND_LINKS = "/compat/build-wheels"  # every build requirement, fetched by compat; read-only
BUILD_LOG = "compat-build.log"  # a backend leaves the whole build log in the out dir

# The PyPI toolchain, pinned so that a build's key names what built it. Every one has a
# musllinux and a manylinux wheel (or is pure Python); nothing here is built from source.
PYPI_TOOLCHAIN: tuple[str, ...] = (
    "pip==26.3",
    "ziglang==0.17.1",
    "cmake==4.4.5",
    "ninja==1.13.2",
    "meson==1.12.1",
    "Cython==3.3.1",
)

OPENMP_NOTE = "built without OpenMP: single-threaded training"


class Toolchain(enum.StrEnum):
    IMAGE = "image"  # the image's own compiler
    DISTRO = "distro"  # installed with the image's package manager
    PYPI = "pypi"  # ziglang, cmake, ninja, meson from PyPI


def choose(
    choice: ToolchainChoice,
    *,
    package_manager: PackageManager | None,
    compiler: str | None,
    has_python_headers: bool,
) -> Toolchain:
    """The toolchain a build uses on an image with these facts."""
    if choice is ToolchainChoice.PYPI:
        return Toolchain.PYPI
    if choice is ToolchainChoice.DISTRO:
        if package_manager is None:
            raise UsageError(
                "--toolchain distro: the image has no package manager; "
                "use --toolchain pypi (or auto)"
            )
        return Toolchain.DISTRO
    if compiler and has_python_headers:
        return Toolchain.IMAGE
    if package_manager is not None:
        return Toolchain.DISTRO
    return Toolchain.PYPI


# zig links its own libc++ and libunwind into every C++ extension, with their debug
# information: lightgbm's library comes out at 70 MB unstripped, 7.6 MB stripped.
# cmake, meson and setuptools all read LDFLAGS.
LDFLAGS = "-s"


def toolchain_key(toolchain: Toolchain, package_manager: PackageManager | None) -> str:
    """What a cached build is keyed by besides the sdist and the image: a change of the
    pinned PyPI toolchain builds again."""
    if toolchain is Toolchain.PYPI:
        digest = hashlib.sha256("\n".join((*PYPI_TOOLCHAIN, LDFLAGS)).encode()).hexdigest()[:12]
        return f"pypi-{digest}"
    if toolchain is Toolchain.DISTRO:
        return f"distro-{package_manager}"
    return "image"


@dataclass(frozen=True, kw_only=True, slots=True)
class BuildSettings:
    """How one project is built with a toolchain, and what that means for its users."""

    config_settings: tuple[str, ...] = ()  # pip --config-settings KEY=VALUE
    notes: tuple[str, ...] = ()  # said with every verdict on the wheel built so


# Projects whose build needs telling that there is no OpenMP (the others find out
# themselves: scikit-learn's meson build makes OpenMP optional and warns).
_NO_OPENMP: Mapping[NormalizedName, tuple[str, ...]] = {
    canonicalize_name("lightgbm"): ("cmake.define.USE_OPENMP=OFF",),
    canonicalize_name("scikit-learn"): (),
}


def build_settings(name: str, toolchain: Toolchain) -> BuildSettings:
    """The settings for building ``name`` with ``toolchain``."""
    key = canonicalize_name(name)
    if toolchain is Toolchain.PYPI and key in _NO_OPENMP:
        return BuildSettings(config_settings=_NO_OPENMP[key], notes=(f"{key} {OPENMP_NOTE}",))
    return BuildSettings()


def build_notes(names: list[str] | tuple[str, ...], toolchain: Toolchain) -> tuple[str, ...]:
    """What the users of wheels built with ``toolchain`` must know, in order."""
    return tuple(n for name in names for n in build_settings(name, toolchain).notes)


# Runs inside the builder with the image's own Python: the `zig cc` target for its
# architecture and libc (glibc with its version: the wheel must not need a newer one).
_ZIG_TARGET = (
    "import platform; "
    "m = platform.machine(); "
    'arch = {"amd64": "x86_64", "arm64": "aarch64"}.get(m.lower(), m); '
    "name, version = platform.libc_ver(); "
    'glibc = ".".join(version.split(".")[:2]); '
    'print(arch + "-linux-" + ("gnu." + glibc if name == "glibc" else "musl"))'
)  # one line: a Dockerfile RUN takes it as it is


_WRAPPED = (
    ("cc", 'cc -target "%s"'),
    ("c++", 'c++ -target "%s"'),
    ("ar", "ar"),
    ("ranlib", "ranlib"),
)
_PIP_QUIET = "--disable-pip-version-check --no-input --progress-bar off"


def _from(links: str | None) -> str:
    """pip's options for installing from the directory ``links`` alone, never from an
    index (pip hands them on to the installs of build isolation); "" for the index."""
    return f" --no-index --find-links {links}" if links else ""


def toolchain_requirements(toolchain: Toolchain) -> tuple[Requirement, ...]:
    """What the builder installs before any build with ``toolchain``: compat fetches it."""
    if toolchain is Toolchain.PYPI:
        return tuple(Requirement(r) for r in PYPI_TOOLCHAIN)
    return ()


def install_commands(python: str, venv: str, *, links: str | None = None) -> list[str]:
    """Shell commands (one per line, each to be joined with ``&&``) that put the pinned
    PyPI toolchain into a fresh venv made by ``python``: from the index, or from the
    directory ``links`` alone."""
    requirements = " ".join(shlex.quote(r) for r in PYPI_TOOLCHAIN)
    return [
        f"rm -rf {venv}",
        f"{python} -m venv {venv}",
        f"{venv}/bin/python -m pip install -q {_PIP_QUIET}{_from(links)} --only-binary :all: "
        f"{requirements}",
    ]


def wrapper_commands(venv: str, bin_dir: str) -> list[str]:
    """Shell commands writing ``cc``, ``c++``, ``ar`` and ``ranlib`` into ``bin_dir``: each
    runs the venv's zig for the image's own architecture and libc. One line each, no
    here-documents: a Dockerfile's RUN takes them as they are."""
    zig = (
        f"ZIG=\"$({venv}/bin/python -c 'import os, ziglang; "
        'print(os.path.join(os.path.dirname(ziglang.__file__), "zig"))\')"'
    )
    target = f'TARGET="$({venv}/bin/python -I -S -c {shlex.quote(_ZIG_TARGET)})"'
    commands = [
        # `#!/usr/bin/env python3` build scripts (scikit-learn's) need it; BusyBox-only
        # images may have env in /bin alone. The builder only: never the final image.
        # (BusyBox's `command -v env` may answer a bare name: the path is spelt out)
        # (grouped: joined with && in a Dockerfile, a bare || list would hide a failure)
        "{ [ -e /usr/bin/env ] || [ ! -x /bin/env ] || ln -s /bin/env /usr/bin/env; }",
        zig,
        target,
        f"mkdir -p {bin_dir}",
    ]
    for name, command in _WRAPPED:
        args = '"$ZIG" "$TARGET"' if "%s" in command else '"$ZIG"'
        body = f'#!/bin/sh\\nexec "%s" {command} "$@"\\n'
        commands.append(f"printf '{body}' {args} > {bin_dir}/{name}")
    commands += [
        f"chmod +x {bin_dir}/*",
        f"ln -sf c++ {bin_dir}/g++",
        f"ln -sf cc {bin_dir}/gcc",
        'echo "compat: zig $("$ZIG" version) for $TARGET"',
    ]
    return commands


def build_environment(venv: str, bin_dir: str, zig_cache: str) -> str:
    """One ``export`` line that points every build backend at the wrappers."""
    cc, cxx = f"{bin_dir}/cc", f"{bin_dir}/c++"
    return (
        f'export PATH="{bin_dir}:{venv}/bin:$PATH" CC={cc} CXX={cxx} '
        f"AR={bin_dir}/ar RANLIB={bin_dir}/ranlib "
        # setuptools takes LDSHARED from sysconfig (the compiler the image's Python was
        # built with, long gone) unless told
        f'LDSHARED="{cc} -shared" LDCXXSHARED="{cxx} -shared" CMAKE_GENERATOR=Ninja '
        f'LDFLAGS="{LDFLAGS}" '
        # zig caches the libc and libc++ pieces it compiles
        f"ZIG_GLOBAL_CACHE_DIR={zig_cache} ZIG_LOCAL_CACHE_DIR={zig_cache}"
    )


def wheel_command(
    python: str,
    sdist: str,
    out_dir: str,
    *,
    name: str,
    settings: BuildSettings,
    links: str | None = None,
) -> str:
    """pip building one sdist: only the project itself from source, its build
    requirements (cmake, ninja, numpy...) as wheels where they exist, from the index
    or from the directory ``links`` alone."""
    config = "".join(f" --config-settings={shlex.quote(c)}" for c in settings.config_settings)
    return (
        f"{python} -m pip wheel -v {_PIP_QUIET}{_from(links)} --no-cache-dir --no-deps "
        f"--prefer-binary --no-binary {shlex.quote(name)}{config} -w {out_dir} {sdist}"
    )


def image_build_script(python: str, sdist: str) -> str:
    """The build with the image's own (or its distro's) compiler: pip of a fresh venv
    where the image can make one (else the image's own), from FIND_LINKS."""
    return (
        "set -e; cd /tmp; "
        f"if {python} -m venv /tmp/build-env >/dev/null 2>&1; "
        f"then PY=/tmp/build-env/bin/python; else PY={python}; fi; "
        f'"$PY" -m pip wheel --no-deps --no-cache-dir --disable-pip-version-check'
        f"{_from(FIND_LINKS)} -w {OUT_DIR} {sdist}"
    )


# written into TOOLCHAIN_DIR once the PyPI toolchain is installed whole
TOOLCHAIN_READY = f"ready-{toolchain_key(Toolchain.PYPI, None)}"


def pypi_build_script(
    *,
    python: str,
    sdist: str,
    settings: BuildSettings,
    no_binary: str,
) -> str:
    """A POSIX shell script (BusyBox is enough) for a builder container of the image:
    set up (or reuse) the PyPI toolchain in TOOLCHAIN_DIR, point CC/CXX/AR at zig, and
    build ``sdist`` into OUT_DIR with pip (build isolation: the project's own declared
    build requirements, from FIND_LINKS). It runs as the unprivileged user that owns
    TOOLCHAIN_DIR and OUT_DIR."""
    venv, bin_dir = f"{TOOLCHAIN_DIR}/venv", "/tmp/compat-bin"
    stamp = f"{TOOLCHAIN_DIR}/{TOOLCHAIN_READY}"
    lines = [
        "set -e",
        "cd /tmp",
        f"if [ ! -f {stamp} ]; then",
        f'  echo "compat: installing the PyPI toolchain into {venv}"',
        *(f"  {c}" for c in install_commands(python, venv, links=FIND_LINKS)),
        f"  touch {stamp}",
        "fi",
        *wrapper_commands(venv, bin_dir),
        build_environment(venv, bin_dir, f"{TOOLCHAIN_DIR}/zig-cache"),
        wheel_command(
            f"{venv}/bin/python",
            shlex.quote(sdist),
            OUT_DIR,
            name=no_binary,
            settings=settings,
            links=FIND_LINKS,
        ),
    ]
    return "\n".join(lines) + "\n"


# pip's and OpenSSL's words for "the network could not be reached"
_NETWORK = re.compile(
    r"Temporary failure in name resolution|Name or service not known|"
    r"Network is unreachable|Connection refused|Connection reset|ConnectTimeout|"
    r"Read timed out|ReadTimeoutError|NewConnectionError|MaxRetryError|"
    r"CERTIFICATE_VERIFY_FAILED|SSLError|ProxyError|"
    r"Could not fetch URL|HTTP error 5\d\d"
)
# ...and what pip says when an index it should read gave it nothing at all
_NOTHING_FROM_INDEX = re.compile(
    r"Could not find a version that satisfies the requirement .* \(from versions: none\)"
)


def network_failure(log: str) -> bool:
    """Whether a failed build's log shows the index could not be reached, for a build
    that downloads its own requirements (on the host): such a failure says nothing
    about the package and is not cached."""
    return _NETWORK.search(log) is not None or _NOTHING_FROM_INDEX.search(log) is not None


def reached_for_network(log: str) -> str | None:
    """The line of an offline build's log that shows the build itself tried to reach
    the network (a setup script downloading sources), if any."""
    return next((line.strip() for line in log.splitlines() if _NETWORK.search(line)), None)


__all__ = [
    "BUILD_LOG",
    "FIND_LINKS",
    "OPENMP_NOTE",
    "PYPI_TOOLCHAIN",
    "BuildSettings",
    "Toolchain",
    "ToolchainChoice",
    "build_environment",
    "build_notes",
    "build_settings",
    "choose",
    "image_build_script",
    "install_commands",
    "network_failure",
    "pypi_build_script",
    "reached_for_network",
    "toolchain_key",
    "toolchain_requirements",
    "wheel_command",
    "wrapper_commands",
]
