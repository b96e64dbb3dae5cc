"""The libraries a combination's files ask the system for, read from their ELF
headers, decide which of the image's system packages it needs."""

from __future__ import annotations

import io
from pathlib import Path

from compat.harness.elf import needed_sonames, read_needed
from compat.targets.sysdeps import needed_of
from compat.targets.target import PackageManager
from tests.helpers.harness import elf_needing


def test_the_needed_libraries_of_an_elf_file() -> None:
    elf = elf_needing("libgomp.so.1", "libstdc++.so.6", "libc.so.6")
    assert read_needed(io.BytesIO(elf)) == ["libgomp.so.1", "libstdc++.so.6", "libc.so.6"]
    assert read_needed(io.BytesIO(b"#!/bin/sh\n")) == []  # not ELF: nothing


def test_every_shared_object_under_the_installs_is_read_and_damage_is_no_error(
    tmp_path: Path,
) -> None:
    lightgbm, numpy = tmp_path / "lightgbm", tmp_path / "numpy"
    (lightgbm / "lightgbm" / "lib").mkdir(parents=True)
    (lightgbm / "lightgbm" / "lib" / "lib_lightgbm.so").write_bytes(elf_needing("libgomp.so.1"))
    (numpy / "numpy.libs").mkdir(parents=True)
    (numpy / "numpy.libs" / "libscipy_openblas64_-ff651d7f.so").write_bytes(
        elf_needing("libm.so.6")
    )
    (numpy / "numpy.libs" / "broken.so.1").write_bytes(elf_needing("libz.so.1")[:70])
    (numpy / "notes.txt").write_bytes(elf_needing("libx11.so.6"))  # not a shared object
    assert needed_sonames([numpy]) == {"libm.so.6"}
    assert needed_sonames([numpy, lightgbm]) == {"libm.so.6", "libgomp.so.1"}


def test_a_package_is_needed_where_a_library_it_provides_is() -> None:
    installed = ("libgomp1", "zlib1g", "some-tool")
    apt = PackageManager.APT
    assert needed_of(installed, {"libgomp.so.1", "libc.so.6"}, apt) == ("libgomp1", "some-tool")
    # a package compat maps to no library is kept: it cannot tell it is not needed
    assert needed_of(installed, set(), apt) == ("some-tool",)
    assert needed_of(("libgomp",), {"libgomp.so.1"}, PackageManager.APK) == ("libgomp",)
