"""Writing a lock directory, and reading back what it was made from."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

from compat.errors import LockError
from compat.lock.dockerfile import render_dockerfile
from compat.lock.input import LockInput, Prune
from compat.lock.pep751 import render_pylock
from compat.lock.requirements import render_requirements

REQUIREMENTS = "requirements.txt"
PYLOCK = "pylock.toml"
DOCKERFILE = "Dockerfile"
RECORD = "compat-lock.json"  # the input itself: `compat image` renders from it
RECORD_FORMAT = 1


def _write(path: Path, text: str) -> None:
    # whole files or nothing: an interrupted write never leaves half a lock
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(text)
        Path(tmp).chmod(0o644)
        Path(tmp).replace(path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_lock(lock: LockInput, directory: Path, *, prune: bool | Prune = True) -> list[Path]:
    """Write requirements.txt, pylock.toml, the Dockerfile and compat's record of the
    input into ``directory`` (created if needed); returns the paths written."""
    how = Prune.of(prune)
    files = {
        REQUIREMENTS: render_requirements(lock),
        PYLOCK: render_pylock(lock),
        DOCKERFILE: render_dockerfile(lock, prune=how),
        RECORD: json.dumps(
            {"format": RECORD_FORMAT, "input": lock.to_json(), "prune": how.to_json()},
            indent=1,
        )
        + "\n",
    }
    try:
        directory.mkdir(parents=True, exist_ok=True)
        written = []
        for name, text in files.items():
            _write(directory / name, text)
            written.append(directory / name)
    except OSError as exc:
        raise LockError(f"cannot write the lock files into {directory}: {exc}") from exc
    return written


def read_lock(directory: Path) -> tuple[LockInput, Prune]:
    """The input and pruning a lock directory was written with."""
    path = directory / RECORD
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise LockError(
            f"{directory} holds no {RECORD}: write it with `compat lock` first"
        ) from None
    except (OSError, ValueError) as exc:
        raise LockError(f"cannot read {path}: {exc}") from exc
    if not isinstance(data, dict) or data.get("format") != RECORD_FORMAT:
        raise LockError(f"{path} is not a lock record compat can read: write the lock again")
    try:
        return LockInput.from_json(data["input"]), Prune.from_json(data["prune"])
    except (AttributeError, KeyError, TypeError, ValueError) as exc:
        raise LockError(f"{path} is damaged ({exc!r}): write the lock again") from exc
