"""Record tests/data/index/ from the real index: the six-package ML stack and every
dependency it pulls in on CPython 3.11-3.13, Linux x86_64.

    python tests/data/record_index.py [--out tests/data/index] [--index-url URL] [--cert PATH]
    python tests/data/record_index.py --add-upload-times   # keep the files, add their times

Kept: the stack packages at the versions below; for dependencies, the releases
uploaded since 2022 plus the newest one before (so old stack releases still resolve).
Files: the sdist and the wheels a cp311/cp312/cp313 manylinux or musllinux x86_64
target could install (including pure-Python and abi3 wheels), each with its upload
time (what --as-of reads). ``--add-upload-times`` adds the times to a snapshot
recorded without them, changing nothing else.
"""

from __future__ import annotations

import argparse
import logging
import os
import re
import shutil
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

from packaging.markers import Marker
from packaging.specifiers import SpecifierSet
from packaging.utils import NormalizedName, canonicalize_name
from packaging.version import Version

from compat.index.pypi import PyPIIndex
from compat.index.snapshot import (
    SnapshotIndex,
    record_snapshot,
    upload_text,
    write_snapshot_project,
)
from compat.model import DistFile, FileKind
from compat.settings import NetworkSettings

STACK = {
    "numpy": ">=1.26",
    "scipy": ">=1.11",
    "scikit-learn": ">=1.3",
    "pandas": ">=2.1",
    "matplotlib": ">=3.8",
    "lightgbm": ">=4.1",
}
SINCE = datetime(2022, 1, 1, tzinfo=UTC)
PYTHONS = ("3.11", "3.12", "3.13")
INTERPRETERS = {"py3", "cp311", "cp312", "cp313", "py311", "py312", "py313"}
ABIS = {"none", "abi3", "cp311", "cp312", "cp313"}
LINUX_X86_64 = re.compile(r"(many|musl)linux\w*_x86_64")


def usable(file: DistFile) -> bool:
    if file.kind is FileKind.SDIST:
        return True
    for tag in file.tags:
        if tag.platform != "any" and not LINUX_X86_64.fullmatch(tag.platform):
            continue
        if tag.abi == "abi3" and re.fullmatch(r"cp3\d+", tag.interpreter):
            if int(tag.interpreter[3:]) <= 13:
                return True
        elif tag.interpreter in INTERPRETERS and tag.abi in ABIS:
            return True
    return False


def environments() -> list[dict[str, str]]:
    return [
        {
            "python_version": py,
            "python_full_version": f"{py}.0",
            "implementation_name": "cpython",
            "implementation_version": f"{py}.0",
            "platform_python_implementation": "CPython",
            "os_name": "posix",
            "sys_platform": "linux",
            "platform_system": "Linux",
            "platform_machine": "x86_64",
            "extra": "",
        }
        for py in PYTHONS
    ]


def needed(marker: Marker | None) -> bool:
    """A dependency without extras that some target needs."""
    if marker is None:
        return True
    if "extra" in str(marker):
        return False
    return any(marker.evaluate(env) for env in environments())


def add_upload_times(directory: Path, index: PyPIIndex) -> None:
    """Rewrite each project of ``directory`` with its files' upload times from ``index``."""
    snapshot = SnapshotIndex(directory)
    times = upload_text(index)
    live = {f.url: f for name in snapshot.projects() for f in index.files(name)}
    for name in snapshot.projects():
        files = snapshot.files(name)
        metadata = {v: snapshot.metadata(f) for v, f in {f.version: f for f in files}.items()}
        write_snapshot_project(
            directory,
            name,
            files,
            metadata,
            source=index.index_url,
            uploaded=lambda f: times(live[f.url]) if f.url in live else None,
        )
        logging.info("%s: upload times of %d files", name, sum(f.url in live for f in files))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "index")
    parser.add_argument("--index-url")
    parser.add_argument("--cert")
    parser.add_argument("--add-upload-times", action="store_true")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    for noisy in ("httpx", "httpcore"):
        logging.getLogger(noisy).setLevel(logging.WARNING)

    settings = NetworkSettings.from_env(os.environ, index_url=args.index_url, cert=args.cert)
    index = PyPIIndex(settings)
    if args.add_upload_times:
        add_upload_times(args.out, index)
        return 0
    roots = {canonicalize_name(n): SpecifierSet(s) for n, s in STACK.items()}

    def released(name: NormalizedName) -> dict[Version, datetime]:
        first: dict[Version, datetime] = {}
        for record in index.records(name):
            when = record.uploaded
            if when is not None and (
                record.file.version not in first or when < first[record.file.version]
            ):
                first[record.file.version] = when
        return first

    dates: dict[NormalizedName, dict[Version, datetime]] = {}

    def keep_version(name: NormalizedName, version: Version) -> bool:
        if name in roots:
            return roots[name].contains(version, prereleases=True)
        if name not in dates:
            dates[name] = released(name)
        when = dates[name].get(version)
        if when is None:
            return False
        if when >= SINCE:
            return True
        before = [v for v, d in dates[name].items() if d < SINCE and not v.is_prerelease]
        return bool(before) and version == max(before)

    start = time.perf_counter()
    if args.out.exists():
        shutil.rmtree(args.out)
    todo: list[NormalizedName] = list(roots)
    done: set[NormalizedName] = set()
    while todo:
        batch = [n for n in dict.fromkeys(todo) if n not in done]
        todo = []
        recorded = record_snapshot(
            index,
            batch,
            args.out,
            keep_version=keep_version,
            keep_file=usable,
            source=index.index_url,
        )
        done.update(batch)
        for name, metas in recorded.items():
            deps = {
                canonicalize_name(r.name)
                for meta in metas.values()
                for r in meta.requires_dist
                if needed(r.marker)
            }
            logging.info("%s: %d releases, needs %s", name, len(metas), ", ".join(sorted(deps)))
            todo.extend(d for d in deps if d not in done)
    size = sum(p.stat().st_size for p in args.out.iterdir())
    logging.info(
        "recorded %d projects, %.1f kB, in %.1f s (%d requests)",
        len(done),
        size / 1024,
        time.perf_counter() - start,
        index.requests,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
