"""A dependent's tests from its source distribution: for a wheel that ships none
(seaborn, many pure-Python packages), the sdist's test trees; for a wheel that
ships tests without the data they need (matplotlib's baseline images), the
sdist's copy of its test packages, data included. Only test trees are taken out
of the archive, never the package's own source, so the tests import the
installed wheel, as they do everything else under test.

Runs inside the environment under test: standard library only, Python 3.9+.
"""

from __future__ import annotations

import shutil
import tarfile
import zipfile
from collections.abc import Sequence
from pathlib import Path, PurePosixPath
from typing import IO

# the top-level folders of an sdist that hold its tests
TEST_TREES = ("tests", "test", "testing")
# what reading an archive that is not one (or is cut short) raises
UNREADABLE = (OSError, EOFError, tarfile.TarError, zipfile.BadZipFile)
_MAX_FILE = 16 << 20  # a test data file larger than this is left out
_MAX_TOTAL = 256 << 20


def _kept(
    name: str, folders: Sequence[PurePosixPath]
) -> tuple[PurePosixPath, PurePosixPath] | None:
    """The test folder a member belongs to and where it goes, relative to the
    extraction, or None (anything else, and anything that would leave the folder).
    A folder is sought at the top of the archive's own folder
    (``<name>-<version>/tests/...``); one of several parts also one folder below
    (``lib/matplotlib/tests/...``)."""
    parts = PurePosixPath(name).parts[1:]  # below <name>-<version>/
    if PurePosixPath(name).is_absolute() or ".." in parts or "__pycache__" in parts:
        return None
    for skip in (0, 1):
        below = parts[skip:]
        for folder in folders:
            if skip and len(folder.parts) < 2:
                continue
            if len(below) > len(folder.parts) and below[: len(folder.parts)] == folder.parts:
                return folder, PurePosixPath(*below)
    return None


def extract_tests(archive: Path, into: Path, folders: Sequence[str] = TEST_TREES) -> list[str]:
    """Extract the test ``folders`` of ``archive`` (.tar.gz, .tar.bz2, .zip) into
    ``into``, each at its path there: the sdist's own test trees by default, or a
    wheel's test packages (``matplotlib/tests``). The folders found, e.g.
    ``["tests"]`` (empty: the sdist has none). Regular files only; links, devices
    and oversized files are left out."""
    into.mkdir(parents=True, exist_ok=True)
    wanted = sorted((PurePosixPath(f) for f in folders), key=lambda f: -len(f.parts))
    total = 0
    trees: set[str] = set()

    def write(kept: tuple[PurePosixPath, PurePosixPath], size: int, source: IO[bytes]) -> None:
        nonlocal total
        if size > _MAX_FILE or total + size > _MAX_TOTAL:
            return
        total += size
        folder, rest = kept
        dest = into.joinpath(*rest.parts)
        dest.parent.mkdir(parents=True, exist_ok=True)
        with open(dest, "wb") as out:
            shutil.copyfileobj(source, out)
        trees.add(str(folder))

    if archive.name.endswith(".zip"):
        with zipfile.ZipFile(archive) as zipped:
            for info in zipped.infolist():
                kept = _kept(info.filename, wanted)
                if kept is not None and not info.is_dir():
                    with zipped.open(info) as member_file:
                        write(kept, info.file_size, member_file)
    else:
        with tarfile.open(archive) as tarred:
            for member in tarred:
                kept = _kept(member.name, wanted)
                if kept is None or not member.isfile():
                    continue
                extracted = tarred.extractfile(member)
                if extracted is not None:
                    with extracted:
                        write(kept, member.size, extracted)
    return sorted(trees)


def sdist_paths(values: list[str]) -> dict[str, Path]:
    """``--sdist NAME=PATH`` values by distribution name."""
    found: dict[str, Path] = {}
    for value in values:
        name, sep, path = value.partition("=")
        if not sep or not name or not path:
            raise ValueError(f"--sdist takes NAME=PATH, not {value!r}")
        found[name.strip().lower().replace("_", "-").replace(".", "-")] = Path(path)
    return found
