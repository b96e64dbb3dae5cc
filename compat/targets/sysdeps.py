"""Distro packages: the one providing a missing shared library (named by the
loader), and the toolchain that builds an sdist."""

from __future__ import annotations

import re
from collections.abc import Iterable

from compat.targets.target import PackageManager

# What a builder adds to compile an sdist, per package manager: the harness's builder
# containers and the Dockerfiles compat writes install the same set.
TOOLCHAIN: dict[PackageManager, tuple[str, ...]] = {
    PackageManager.APT: (
        "build-essential",
        "cmake",
        "ninja-build",
        "pkg-config",
        "gfortran",
        "libopenblas-dev",
    ),
    PackageManager.APK: (
        "build-base",
        "cmake",
        "samurai",
        "pkgconf",
        "gfortran",
        "openblas-dev",
        "linux-headers",
    ),
    PackageManager.DNF: (
        "gcc",
        "gcc-c++",
        "gcc-gfortran",
        "make",
        "cmake",
        "ninja-build",
        "openblas-devel",
    ),
}
PYTHON_HEADERS = {
    PackageManager.APT: "python3-dev",
    PackageManager.APK: "python3-dev",
    PackageManager.DNF: "python3-devel",
}

# glibc: "libgomp.so.1: cannot open shared object file: No such file or directory"
# musl:  "Error loading shared library libgomp.so.1: No such file or directory"
_MISSING = (
    re.compile(r"([\w.+-]+\.so(?:\.[\w]+)*): cannot open shared object file"),
    re.compile(r"Error loading shared library ([\w.+-]+\.so(?:\.[\w]+)*)"),
)

# soname -> package per package manager (apt: Debian/Ubuntu, apk: Alpine, dnf: Fedora/RHEL).
# The sonames are the ones manylinux/musllinux wheels are allowed to expect from the system
# or commonly do anyway.
_PACKAGES: dict[str, dict[str, str]] = {
    "libgomp.so.1": {"apt": "libgomp1", "apk": "libgomp", "dnf": "libgomp"},
    "libstdc++.so.6": {"apt": "libstdc++6", "apk": "libstdc++", "dnf": "libstdc++"},
    "libgcc_s.so.1": {"apt": "libgcc-s1", "apk": "libgcc", "dnf": "libgcc"},
    "libgfortran.so.5": {"apt": "libgfortran5", "apk": "libgfortran", "dnf": "libgfortran"},
    "libquadmath.so.0": {"apt": "libquadmath0", "apk": "libquadmath", "dnf": "libquadmath"},
    "libatomic.so.1": {"apt": "libatomic1", "apk": "libatomic", "dnf": "libatomic"},
    "libz.so.1": {"apt": "zlib1g", "apk": "zlib", "dnf": "zlib"},
    "libbz2.so.1.0": {"apt": "libbz2-1.0", "apk": "libbz2", "dnf": "bzip2-libs"},
    "liblzma.so.5": {"apt": "liblzma5", "apk": "xz-libs", "dnf": "xz-libs"},
    "libffi.so.8": {"apt": "libffi8", "apk": "libffi", "dnf": "libffi"},
    "libexpat.so.1": {"apt": "libexpat1", "apk": "libexpat", "dnf": "expat"},
    "libssl.so.3": {"apt": "libssl3", "apk": "libssl3", "dnf": "openssl-libs"},
    "libcrypto.so.3": {"apt": "libssl3", "apk": "libcrypto3", "dnf": "openssl-libs"},
    "libopenblas.so.0": {"apt": "libopenblas0", "apk": "openblas", "dnf": "openblas"},
    "libblas.so.3": {"apt": "libblas3", "apk": "blas", "dnf": "blas"},
    "liblapack.so.3": {"apt": "liblapack3", "apk": "lapack", "dnf": "lapack"},
    "libfreetype.so.6": {"apt": "libfreetype6", "apk": "freetype", "dnf": "freetype"},
    "libpng16.so.16": {"apt": "libpng16-16", "apk": "libpng", "dnf": "libpng"},
    "libjpeg.so.62": {"apt": "libjpeg62-turbo", "apk": "libjpeg-turbo", "dnf": "libjpeg-turbo"},
    "libgl.so.1": {"apt": "libgl1", "apk": "mesa-gl", "dnf": "mesa-libGL"},
    "libglib-2.0.so.0": {"apt": "libglib2.0-0", "apk": "glib", "dnf": "glib2"},
    "libgthread-2.0.so.0": {"apt": "libglib2.0-0", "apk": "glib", "dnf": "glib2"},
    "libx11.so.6": {"apt": "libx11-6", "apk": "libx11", "dnf": "libX11"},
    "libxext.so.6": {"apt": "libxext6", "apk": "libxext", "dnf": "libXext"},
    "libsm.so.6": {"apt": "libsm6", "apk": "libsm", "dnf": "libSM"},
    "libxrender.so.1": {"apt": "libxrender1", "apk": "libxrender", "dnf": "libXrender"},
    "libxml2.so.2": {"apt": "libxml2", "apk": "libxml2", "dnf": "libxml2"},
    "libsqlite3.so.0": {"apt": "libsqlite3-0", "apk": "sqlite-libs", "dnf": "sqlite-libs"},
    "libuuid.so.1": {"apt": "libuuid1", "apk": "libuuid", "dnf": "libuuid"},
    "libpq.so.5": {"apt": "libpq5", "apk": "libpq", "dnf": "libpq"},
    "libgeos_c.so.1": {"apt": "libgeos-c1v5", "apk": "geos", "dnf": "geos"},
    "libsndfile.so.1": {"apt": "libsndfile1", "apk": "libsndfile", "dnf": "libsndfile"},
}


def missing_libraries(text: str) -> tuple[str, ...]:
    """Sonames the dynamic loader could not find, in order of first mention."""
    found: dict[str, None] = {}
    for pattern in _MISSING:
        for match in pattern.finditer(text):
            found.setdefault(match.group(1), None)
    return tuple(found)


def package_for(soname: str, package_manager: PackageManager | None) -> str | None:
    """The distro package providing ``soname``, or None when unknown."""
    if package_manager is None:
        return None
    return _PACKAGES.get(soname.lower(), {}).get(package_manager)


def packages_for(sonames: Iterable[str], package_manager: PackageManager | None) -> tuple[str, ...]:
    """Packages for the known sonames, deduplicated, in order."""
    out: dict[str, None] = {}
    for soname in sonames:
        pkg = package_for(soname, package_manager)
        if pkg is not None:
            out.setdefault(pkg, None)
    return tuple(out)


def needed_of(
    installed: Iterable[str], sonames: Iterable[str], package_manager: PackageManager | None
) -> tuple[str, ...]:
    """Of the system packages ``installed`` for a run, those a combination needs: each
    providing a library its files name (``sonames``). A package no known library maps
    to is kept: compat cannot tell that it is not needed."""
    wanted = set(packages_for(sonames, package_manager))
    mapped = {libs[package_manager] for libs in _PACKAGES.values() if package_manager in libs}
    return tuple(p for p in installed if p in wanted or p not in mapped)


def install_command(package_manager: PackageManager, packages: Iterable[str]) -> str:
    """A shell line that installs ``packages`` and leaves no package cache behind."""
    names = " ".join(sorted(set(packages)))
    if package_manager == PackageManager.APT:
        return (
            "apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q "
            f"--no-install-recommends {names} && apt-get clean && rm -rf /var/lib/apt/lists/*"
        )
    if package_manager == PackageManager.APK:
        return f"apk add --no-cache {names}"
    return f"dnf install -y {names} && dnf clean all"
