"""Whether a committed lock moved: the combination a lock directory was written
from, against the one ``compat lock`` would write now."""

from __future__ import annotations

from pathlib import Path

from packaging.version import Version

from compat.errors import LockError
from compat.lock.write import RECORD, read_lock
from compat.model import Combo


def locked_combo(lock_dir: Path) -> Combo | None:
    """The combination a committed lock directory was written from; None without one
    (or when it is unreadable: writing it again is the fix)."""
    if not (lock_dir / RECORD).is_file():
        return None
    try:
        return read_lock(lock_dir)[0].combo
    except LockError:
        return None


def _pin_set(combo: Combo) -> frozenset[tuple[str, Version, str]]:
    return frozenset((p.name, p.version, p.sha256) for p in combo.pins)


def lock_changed(old_lock_dir: Path, new_known_good: Combo | None) -> bool:
    """Whether ``compat lock`` would now write another combination than the one
    committed in ``old_lock_dir`` (compat-lock.json): pins and files compared, so a
    re-probed image with the same files is no change. Without a known-good
    combination there is nothing to write, so no change (a regression says why)."""
    if new_known_good is None:
        return False
    old = locked_combo(old_lock_dir)
    return old is None or _pin_set(old) != _pin_set(new_known_good)


__all__ = ["lock_changed", "locked_combo"]
