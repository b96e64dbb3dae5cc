"""Sample pins and lock inputs: files as PyPI names them, for the lockfile,
Dockerfile and image tests."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from packaging.utils import canonicalize_name
from packaging.version import Version

from compat.harness.builds import BuildRecord, build_record_path
from compat.lock import LockInput
from compat.model import Combo, FileKind, Pin
from compat.targets.profiles import target_from_profile
from compat.targets.target import PackageManager


def make_pin(name: str, version: str, filename: str) -> Pin:
    sha = hashlib.sha256(filename.encode()).hexdigest()
    kind = FileKind.WHEEL if filename.endswith(".whl") else FileKind.SDIST
    return Pin(
        name=canonicalize_name(name),
        version=Version(version),
        filename=filename,
        url=f"https://files.pythonhosted.org/packages/{sha[:2]}/{sha[2:4]}/{sha[4:]}/{filename}",
        sha256=sha,
        kind=kind,
    )


def glibc_pins(*, lightgbm_sdist: bool) -> tuple[Pin, ...]:
    """Files a Python 3.11 glibc target takes, as PyPI names them."""
    lightgbm = (
        make_pin("lightgbm", "4.6.0", "lightgbm-4.6.0.tar.gz")
        if lightgbm_sdist
        else make_pin("lightgbm", "4.6.0", "lightgbm-4.6.0-py3-none-manylinux_2_28_x86_64.whl")
    )
    return (
        lightgbm,
        make_pin(
            "numpy",
            "2.3.1",
            "numpy-2.3.1-cp311-cp311-manylinux_2_27_x86_64.manylinux_2_28_x86_64.whl",
        ),
        make_pin(
            "pandas",
            "2.3.0",
            "pandas-2.3.0-cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64.whl",
        ),
        make_pin(
            "python-dateutil", "2.9.0.post0", "python_dateutil-2.9.0.post0-py2.py3-none-any.whl"
        ),
        make_pin("six", "1.17.0", "six-1.17.0-py2.py3-none-any.whl"),
    )


def musl_pins() -> tuple[Pin, ...]:
    """Python 3.12 on musl: numpy has a musllinux wheel, scikit-learn only an sdist."""
    return (
        make_pin("numpy", "2.3.1", "numpy-2.3.1-cp312-cp312-musllinux_1_2_x86_64.whl"),
        make_pin("scikit-learn", "1.7.0", "scikit_learn-1.7.0.tar.gz"),
    )


def make_lock(
    *,
    profile: str = "debian-slim",
    sdist: bool = True,
    system: tuple[str, ...] = ("libgomp1",),
    manager: PackageManager | None = PackageManager.APT,
    pins: tuple[Pin, ...] | None = None,
) -> LockInput:
    if profile == "alpine":
        target = target_from_profile("alpine", python="3.12")
        chosen = musl_pins() if pins is None else pins
    else:
        target = target_from_profile(profile, python="3.11")
        chosen = glibc_pins(lightgbm_sdist=sdist) if pins is None else pins
    combo = Combo(
        target=target.key,
        pins=chosen,
        requested=tuple(p.name for p in chosen if p.name in ("numpy", "pandas", "lightgbm")),
    )
    return LockInput(target=target, combo=combo, system_packages=system, package_manager=manager)


ALL_PINS = (
    *glibc_pins(lightgbm_sdist=False),
    make_pin("lightgbm", "4.5.0", "lightgbm-4.5.0.tar.gz"),
    make_pin("scipy", "1.16.0", "scipy-1.16.0.tar.gz"),
)


def record_build(
    cache: Path, *, sdist_sha256: str, image_id: str, wheel: Path, toolchain: str = "pypi-abc"
) -> Path:
    """What a scan leaves after building an sdist on an image into ``wheel`` (a file of
    the wheelhouse in ``cache``): the build record beside the sdist's hash."""
    sha = hashlib.sha256(wheel.read_bytes()).hexdigest()
    record = BuildRecord(ok=True, duration=3.0, wheel_sha256=sha, wheel_filename=wheel.name)
    path = build_record_path(cache, sdist_sha256, image_id, toolchain)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(record.to_json()))
    return path
