"""Where compat must write: checked before long work starts, so an unwritable path
fails at once with what to do, not after a whole scan with a traceback."""

from __future__ import annotations

import tempfile
from pathlib import Path

from compat.errors import UsageError


def check_writable_dir(directory: Path, *, what: str, option: str) -> None:
    """Create ``directory`` if need be and prove a file can be written in it (as root,
    permission bits say nothing: only trying tells a read-only mount apart)."""
    try:
        directory.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=directory):
            pass
    except OSError as exc:
        reason = exc.strerror or str(exc)
        raise UsageError(
            f"cannot write the {what} in {directory}: {reason}; choose another {option}"
        ) from None


def check_writable_file(path: Path, *, what: str, option: str) -> None:
    """``path`` can be written once the work is done: its folder takes files and it
    is not a folder itself."""
    if path.is_dir():
        raise UsageError(f"the {what} {path} is a directory; give a file path to {option}")
    check_writable_dir(path.parent, what=what, option=option)
