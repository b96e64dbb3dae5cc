"""What the cache directory holds, and pruning what compat can rebuild.

The cache keeps the index's answers (``index``), downloaded wheels and sdists
(``files``), wheels unpacked and byte-compiled once per image (``installs``), image
probes and built toolchains. Unpacked installs are by far the largest and are rebuilt
from the wheels on demand, so they are what ``prune`` removes by default.
"""

from __future__ import annotations

import os
import re
import shutil
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from compat.errors import UsageError
from compat.harness.installs import COMPLETE

DAY = 86_400.0
DEFAULT_LIMIT = 20 * 1000**3  # bytes the cache may hold before compat says so
_UNITS = {"": 1, "k": 1000, "m": 1000**2, "g": 1000**3, "t": 1000**4}
_SIZE = re.compile(r"(\d+(?:\.\d+)?)\s*([kmgt]?)b?", re.IGNORECASE)


@dataclass(frozen=True, kw_only=True, slots=True)
class Usage:
    name: str  # a folder of the cache
    size: int  # bytes
    files: int


def _files(path: Path) -> Iterator[Path]:
    for root, _dirs, names in os.walk(path):
        for name in names:
            yield Path(root, name)


def _size(path: Path) -> tuple[int, int]:
    size = count = 0
    for file in _files(path):
        try:
            size += file.lstat().st_size
        except OSError:  # removed meanwhile
            continue
        count += 1
    return size, count


def usage(cache_dir: Path) -> list[Usage]:
    """Each folder of the cache with its size, largest first."""
    if not cache_dir.is_dir():
        return []
    found = []
    for entry in sorted(cache_dir.iterdir()):
        size, count = _size(entry) if entry.is_dir() else (entry.stat().st_size, 1)
        found.append(Usage(name=entry.name, size=size, files=count))
    return sorted(found, key=lambda u: (-u.size, u.name))


def prune(
    cache_dir: Path,
    *,
    older_than_days: float = 0.0,
    everything: bool = False,
    now: float | None = None,
) -> int:
    """Remove unpacked installs made more than ``older_than_days`` ago (every folder
    of the cache with ``everything``); returns the bytes freed. Run it when no scan
    is running: a scan uses the installs it composes."""
    if older_than_days < 0:
        raise UsageError("--older-than takes a number of days >= 0")
    if not cache_dir.is_dir():
        return 0
    if everything:
        freed = sum(u.size for u in usage(cache_dir))
        shutil.rmtree(cache_dir)
        return freed
    installs = cache_dir / "installs"
    if not installs.is_dir():
        return 0
    cutoff = (time.time() if now is None else now) - older_than_days * DAY
    freed = 0
    for entry in installs.iterdir():
        if entry.lstat().st_mtime <= cutoff:
            freed += _size(entry)[0] if entry.is_dir() else entry.lstat().st_size
            if entry.is_dir() and not entry.is_symlink():
                (entry / COMPLETE).unlink(missing_ok=True)  # cut short, it is not believed
                shutil.rmtree(entry)
            else:
                entry.unlink()
    return freed


def parse_size(text: str) -> int:
    """Bytes from ``20g``, ``500MB``, ``1.5t`` or a plain number (decimal units)."""
    match = _SIZE.fullmatch(text.strip())
    if match is None:
        raise UsageError(f"COMPAT_CACHE_LIMIT={text}: give a size such as 20g or 500m")
    return int(float(match[1]) * _UNITS[match[2].lower()])


@dataclass(frozen=True, kw_only=True, slots=True)
class OverLimit:
    """A cache past its limit: what it holds, and what ``prune`` would free."""

    total: int
    limit: int
    prunable: int  # the unpacked installs


def over_limit(cache_dir: Path, limit: int) -> OverLimit | None:
    """What the cache holds, when that is more than ``limit`` bytes."""
    found = usage(cache_dir)
    total = sum(u.size for u in found)
    if total <= limit:
        return None
    prunable = sum(u.size for u in found if u.name == "installs")
    return OverLimit(total=total, limit=limit, prunable=prunable)
