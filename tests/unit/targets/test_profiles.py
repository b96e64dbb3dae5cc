from __future__ import annotations

import pytest
from packaging.tags import Tag, sys_tags
from packaging.version import Version

from compat.errors import UsageError
from compat.targets.profiles import cpython_tags_for, target_from_profile
from compat.targets.target import Libc


def test_derived_tags_match_packaging_on_this_host() -> None:
    """The derivation must agree with packaging's own sys_tags() where we can check it:
    on this (glibc) host."""
    import platform
    import sys

    libc, version = platform.libc_ver()
    if libc != "glibc":
        pytest.skip("host is not glibc")
    major, minor = (int(x) for x in version.split(".")[:2])
    derived = cpython_tags_for(
        Version(platform.python_version()), Libc.GLIBC, (major, minor), platform.machine()
    )
    assert sys.implementation.name == "cpython"
    assert list(derived) == list(sys_tags())


def test_alpine_accepts_musllinux_not_manylinux() -> None:
    target = target_from_profile("alpine", python="3.12")
    assert target.libc is Libc.MUSL
    assert Tag("cp312", "cp312", "musllinux_1_2_x86_64") in target.tags
    assert Tag("cp312", "cp312", "musllinux_1_1_x86_64") in target.tags
    assert not any("manylinux" in t.platform for t in target.tags)
    assert target.tags.index(Tag("cp312", "abi3", "musllinux_1_2_x86_64")) > target.tags.index(
        Tag("cp312", "cp312", "musllinux_1_2_x86_64")
    )
    assert Tag("py3", "none", "any") in target.tags


def test_debian_slim_glibc_ceiling_and_legacy_aliases() -> None:
    target = target_from_profile("debian-slim", python="3.13")
    platforms = {t.platform for t in target.tags}
    assert "manylinux_2_41_x86_64" in platforms
    assert "manylinux_2_42_x86_64" not in platforms
    assert {"manylinux2014_x86_64", "manylinux1_x86_64"} <= platforms
    assert target.marker_environment()["python_version"] == "3.13"


def test_ubuntu_python_follows_release() -> None:
    assert target_from_profile("ubuntu").image == "ubuntu:24.04"
    assert target_from_profile("ubuntu", python="3.10").libc_version == (2, 35)


def test_unknown_base_and_python_are_usage_errors() -> None:
    with pytest.raises(UsageError, match="unknown base 'arch'"):
        target_from_profile("arch")
    with pytest.raises(UsageError, match=r"offers Python .* not 3\.9"):
        target_from_profile("ubuntu", python="3.9")
