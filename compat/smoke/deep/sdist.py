"""A dependent's tests from its source distribution, for a wheel that ships none
(seaborn, many pure-Python packages): only the test trees are taken out of the
archive, never the package's own source, so the tests import the installed
wheel, as they do everything else under test.

Runs inside the environment under test: standard library only, Python 3.9+.
"""

from __future__ import annotations

import shutil
import tarfile
import zipfile
from pathlib import Path, PurePosixPath
from typing import IO

# the top-level folders of an sdist that hold its tests
TEST_TREES = ("tests", "test", "testing")
_MAX_FILE = 16 << 20  # a test data file larger than this is left out
_MAX_TOTAL = 256 << 20


def _kept(name: str) -> PurePosixPath | None:
    """The path below the archive's top folder of a member that belongs to a test
    tree, or None (anything else, and anything that would leave the folder)."""
    parts = PurePosixPath(name).parts
    if len(parts) < 3 or parts[1] not in TEST_TREES:  # <name>-<version>/tests/...
        return None
    rest = PurePosixPath(*parts[1:])
    if rest.is_absolute() or ".." in rest.parts or "__pycache__" in rest.parts:
        return None
    return rest


def extract_tests(archive: Path, into: Path) -> list[str]:
    """Extract the test trees of ``archive`` (.tar.gz, .tar.bz2, .zip) into
    ``into``; the trees found, e.g. ``["tests"]`` (empty: the sdist has none).
    Regular files only; links, devices and oversized files are left out."""
    into.mkdir(parents=True, exist_ok=True)
    total = 0
    trees: set[str] = set()

    def write(rest: PurePosixPath, size: int, source: IO[bytes]) -> None:
        nonlocal total
        if size > _MAX_FILE or total + size > _MAX_TOTAL:
            return
        total += size
        dest = into.joinpath(*rest.parts)
        dest.parent.mkdir(parents=True, exist_ok=True)
        with open(dest, "wb") as out:
            shutil.copyfileobj(source, out)
        trees.add(rest.parts[0])

    if archive.name.endswith(".zip"):
        with zipfile.ZipFile(archive) as zipped:
            for info in zipped.infolist():
                rest = _kept(info.filename)
                if rest is not None and not info.is_dir():
                    with zipped.open(info) as member_file:
                        write(rest, info.file_size, member_file)
    else:
        with tarfile.open(archive) as tarred:
            for member in tarred:
                rest = _kept(member.name)
                if rest is None or not member.isfile():
                    continue
                extracted = tarred.extractfile(member)
                if extracted is not None:
                    with extracted:
                        write(rest, member.size, extracted)
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
