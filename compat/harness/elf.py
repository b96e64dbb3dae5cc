"""The shared libraries a set of installed wheels asks the system for: the
``DT_NEEDED`` entries of their compiled modules and vendored libraries, read from the
ELF files themselves (no tool of the image needed). A combination "needs" a system
package only when one of its files names a library that package provides: numpy and
pandas never load ``libgomp.so.1``, lightgbm does."""

from __future__ import annotations

import functools
import logging
import os
import struct
from collections.abc import Iterable
from pathlib import Path
from typing import BinaryIO

log = logging.getLogger("compat.harness")

_MAGIC = b"\x7fELF"
_SHT_DYNAMIC = 6
_DT_NULL = 0
_DT_NEEDED = 1


def _is_shared_object(name: str) -> bool:
    return name.endswith(".so") or ".so." in name


def needed_sonames(dirs: Iterable[Path]) -> frozenset[str]:
    """Every library named by a ``DT_NEEDED`` entry of an ELF file under ``dirs``
    (each directory read once per process: installs never change)."""
    found: set[str] = set()
    for directory in dirs:
        found |= _needed_in(str(directory))
    return frozenset(found)


@functools.lru_cache(maxsize=4096)
def _needed_in(directory: str) -> frozenset[str]:
    found: set[str] = set()
    for folder, _, files in os.walk(directory):
        for name in files:
            if _is_shared_object(name):
                path = Path(folder) / name
                try:
                    with path.open("rb") as f:
                        found.update(read_needed(f))
                except (OSError, ValueError, struct.error) as exc:  # not ours to judge
                    log.debug("cannot read the libraries %s needs: %s", path, exc)
    return frozenset(found)


def read_needed(f: BinaryIO) -> list[str]:
    """The ``DT_NEEDED`` names of one ELF file (none for anything else)."""
    ident = f.read(16)
    if len(ident) < 16 or ident[:4] != _MAGIC:
        return []
    wide = ident[4] == 2  # ELFCLASS64
    order = "<" if ident[5] == 1 else ">"
    word, half = ("Q", "H") if wide else ("I", "H")
    # e_shoff, then e_shentsize and e_shnum
    f.seek(0x28 if wide else 0x20)
    (shoff,) = struct.unpack(order + word, f.read(8 if wide else 4))
    f.seek(0x3A if wide else 0x2E)
    shentsize, shnum = struct.unpack(order + half + half, f.read(4))
    sections = []
    layout = order + ("IIQQQQIIQQ" if wide else "IIIIIIIIII")
    for i in range(shnum):
        f.seek(shoff + i * shentsize)
        fields = struct.unpack(layout, f.read(struct.calcsize(layout)))
        # sh_type, sh_offset, sh_size, sh_link
        sections.append((fields[1], fields[4], fields[5], fields[6]))
    names: list[str] = []
    entry = order + ("qQ" if wide else "iI")
    size = struct.calcsize(entry)
    for kind, offset, length, link in sections:
        if kind != _SHT_DYNAMIC or link >= len(sections):
            continue
        strings_at = sections[link][1]
        f.seek(offset)
        table = f.read(length)
        for at in range(0, len(table) - size + 1, size):
            tag, value = struct.unpack_from(entry, table, at)
            if tag == _DT_NULL:
                break
            if tag == _DT_NEEDED:
                names.append(_string(f, strings_at + value))
    return names


def _string(f: BinaryIO, at: int) -> str:
    f.seek(at)
    raw = f.read(256)
    return raw.split(b"\0", 1)[0].decode("utf-8", "replace")
