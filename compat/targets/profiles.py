"""Named base profiles and the wheel tags they accept, derived without Docker.

A profile knows what its default image ships (Python version, libc family and
version), which is enough to compute the tags the image's own interpreter would
report. Probing a real image (``probe.py``) replaces the derivation when an engine
is at hand.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from packaging.tags import Tag, compatible_tags, cpython_tags
from packaging.version import Version

from compat.errors import UsageError
from compat.targets.target import Libc, PackageManager, Target

# manylinux legacy aliases are accepted right after their PEP 600 equivalent
_LEGACY_MANYLINUX = {(2, 17): "manylinux2014", (2, 12): "manylinux2010", (2, 5): "manylinux1"}


@dataclass(frozen=True, kw_only=True, slots=True)
class Release:
    """One image of a profile: its reference and what it ships."""

    image: str
    python: Version  # full version, as close to the image's as known
    libc_version: tuple[int, int]
    distribution: str  # what its /etc/os-release calls itself, e.g. "Debian 13 (trixie)"


@dataclass(frozen=True, kw_only=True, slots=True)
class Profile:
    name: str
    libc: Libc
    package_manager: PackageManager  # how builders install toolchains and system libraries
    releases: tuple[Release, ...]  # one per supported Python minor
    default_python: str

    def release(self, python: str | None) -> Release:
        wanted = python or self.default_python
        for release in self.releases:
            if f"{release.python.major}.{release.python.minor}" == wanted:
                return release
        offered = ", ".join(f"{r.python.major}.{r.python.minor}" for r in self.releases)
        raise UsageError(f"--base {self.name} offers Python {offered}, not {wanted}")


def _python_images(suffix: str, libc: tuple[int, int], distribution: str) -> tuple[Release, ...]:
    # the python:X.Y images of Docker's official library; their patch versions move,
    # the minor is what decides wheel tags
    versions = ("3.10.19", "3.11.14", "3.12.12", "3.13.9", "3.14.0")
    return tuple(
        Release(
            image=f"python:{v.rsplit('.', 1)[0]}-{suffix}",
            python=Version(v),
            libc_version=libc,
            distribution=distribution,
        )
        for v in versions
    )


PROFILES: dict[str, Profile] = {
    p.name: p
    for p in (
        Profile(
            name="alpine",
            libc=Libc.MUSL,
            package_manager=PackageManager.APK,
            releases=_python_images(
                "alpine", (1, 2), "Alpine Linux 3.22"
            ),  # Alpine 3.22: musl 1.2.5
            default_python="3.12",
        ),
        Profile(
            name="debian-slim",
            libc=Libc.GLIBC,
            package_manager=PackageManager.APT,
            releases=_python_images(
                "slim", (2, 41), "Debian 13 (trixie)"
            ),  # Debian 13 trixie: glibc 2.41
            default_python="3.12",
        ),
        Profile(
            name="ubuntu",
            libc=Libc.GLIBC,
            package_manager=PackageManager.APT,
            releases=(
                Release(
                    image="ubuntu:22.04",
                    python=Version("3.10.12"),
                    libc_version=(2, 35),
                    distribution="Ubuntu 22.04",
                ),
                Release(
                    image="ubuntu:24.04",
                    python=Version("3.12.3"),
                    libc_version=(2, 39),
                    distribution="Ubuntu 24.04",
                ),
                Release(
                    image="ubuntu:25.04",
                    python=Version("3.13.3"),
                    libc_version=(2, 41),
                    distribution="Ubuntu 25.04",
                ),
            ),
            default_python="3.12",
        ),
    )
}


def profile(name: str) -> Profile:
    try:
        return PROFILES[name]
    except KeyError:
        known = ", ".join(PROFILES)
        raise UsageError(
            f"unknown base {name!r}: choose one of {known}, or give any image with --image"
        ) from None


def platform_tags(libc: Libc, version: tuple[int, int], machine: str) -> Iterator[str]:
    """The platform part of the tags in the order packaging reports them (the plain
    ``linux`` tag first: no index carries it, so it never outranks a real wheel)."""
    major, newest = version
    yield f"linux_{machine}"
    if libc is Libc.GLIBC:
        for minor in range(newest, 4, -1):
            yield f"manylinux_{major}_{minor}_{machine}"
            legacy = _LEGACY_MANYLINUX.get((major, minor))
            if legacy:
                yield f"{legacy}_{machine}"
    else:
        for minor in range(newest, -1, -1):
            yield f"musllinux_{major}_{minor}_{machine}"


def cpython_tags_for(
    python: Version, libc: Libc, libc_version: tuple[int, int], machine: str
) -> tuple[Tag, ...]:
    """What ``packaging.tags.sys_tags()`` reports on such a CPython."""
    version = (python.major, python.minor)
    interpreter = f"cp{python.major}{python.minor}"
    platforms = list(platform_tags(libc, libc_version, machine))
    return (
        *cpython_tags(version, [interpreter], platforms),
        *compatible_tags(version, interpreter, platforms),
    )


def target_from_profile(name: str, *, python: str | None = None, machine: str = "x86_64") -> Target:
    prof = profile(name)
    release = prof.release(python)
    return Target(
        name=prof.name,
        image=release.image,
        python_version=release.python,
        libc=prof.libc,
        libc_version=release.libc_version,
        machine=machine,
        tags=cpython_tags_for(release.python, prof.libc, release.libc_version, machine),
        package_manager=prof.package_manager,
    )


HOST = "host"  # the local backend's target: this machine's own interpreter
DEFAULT_BASE = "debian-slim"  # what a command given neither --base nor --image runs on


def host_distribution() -> str:
    """What this machine's ``/etc/os-release`` calls its distribution."""
    import platform

    try:
        release = platform.freedesktop_os_release()
    except OSError:
        return "an unknown distribution"
    return release.get("PRETTY_NAME") or release.get("NAME") or "an unknown distribution"


def host_target() -> Target:
    """This machine's own interpreter, for the local backend."""
    import platform
    import sys

    from packaging.tags import sys_tags

    libc_name, libc_version = platform.libc_ver()
    libc = Libc.GLIBC if libc_name == "glibc" else Libc.MUSL
    parts = [int(x) for x in (libc_version or "0.0").split(".")[:2]]
    return Target(
        name=HOST,
        image=f"host ({platform.node() or 'this machine'})",
        python_version=Version(platform.python_version()),
        implementation=sys.implementation.name,
        libc=libc,
        libc_version=(parts[0], parts[1] if len(parts) > 1 else 0),
        machine=platform.machine(),
        tags=tuple(sys_tags()),
        probed=True,
    )
