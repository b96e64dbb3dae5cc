"""The installs: each wheel unpacked once into its own directory, which is
then a site directory that any combination can compose with others.

``<root>/installs/<sha256>/`` holds the wheel's purelib and platlib content (so
``site.addsitedir`` on it works); scripts, headers and data go to underscored
subdirectories that no import can reach by accident. Bytecode is compiled once per
(directory, interpreter); a stamp file records it.

A wheel is unpacked beside its place and renamed into it, with a completion marker
written last: a directory without the marker (an older compat's, or one that an
interrupted removal left half there) is never believed, it is unpacked again.
"""

from __future__ import annotations

import contextlib
import logging
import re
import secrets
import shutil
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import BinaryIO

from installer import install
from installer.destinations import SchemeDictionaryDestination
from installer.sources import WheelFile

from compat.effects.locks import file_lock
from compat.errors import DiskFull, UnpackFailed, out_of_space

log = logging.getLogger("compat.harness")

COMPLETE = ".compat-unpacked"  # written last into an unpacked tree: the tree is whole


class _WheelFile(WheelFile):
    """Leaves out the stray ``__pycache__`` files some wheels ship: installer would skip
    them with a warning; here they are skipped quietly (and thread-safely)."""

    def get_contents(self) -> Iterator[tuple[tuple[str, str, str], BinaryIO, bool]]:
        for elements, stream, executable in super().get_contents():
            if "__pycache__" in elements[0].split("/")[:-1]:
                continue
            yield elements, stream, executable


class Installs:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.installs_dir = root / "installs"
        self._stamps = self.installs_dir / ".compiled"

    def dir_for(self, sha256: str) -> Path:
        return self.installs_dir / sha256

    def has(self, sha256: str) -> bool:
        """Whether the wheel is unpacked, whole."""
        return (self.dir_for(sha256) / COMPLETE).is_file()

    def unpack(self, wheel: Path, sha256: str) -> Path:
        """Unpack ``wheel`` (whose content hash is ``sha256``) unless already done."""
        target = self.dir_for(sha256)
        if self.has(sha256):
            return target
        # one process unpacks, another that shares the cache waits and takes its tree
        with file_lock(self.root / "locks" / f"unpack-{sha256}"):
            if self.has(sha256):
                return target
            self.installs_dir.mkdir(parents=True, exist_ok=True)
            # what a killed unpack (or removal) of this wheel left: no one works on it now
            for left in self.installs_dir.glob(f".*-{sha256}-*"):
                shutil.rmtree(left, ignore_errors=True)
            if target.exists():
                # an older compat's tree, or one an unpack or removal cut short left: as
                # every tree after an upgrade would say so, a notice for --verbose only
                log.info("%s has no completion marker: it is unpacked again", target)
                self._discard(sha256)
            try:
                self._unpack_into(target, wheel, sha256)
            except OSError as exc:
                if out_of_space(exc):
                    raise DiskFull(self.installs_dir, exc) from exc
                raise
            # a new tree has no bytecode, whatever a stamp left by an old one says
            for stamp in self._stamps.glob(f"{sha256}.*"):
                stamp.unlink(missing_ok=True)
        log.info("unpacked %s into %s", wheel.name, target)
        return target

    def _unpack_into(self, target: Path, wheel: Path, sha256: str) -> None:
        # unpack beside the final place, then rename: a crash never leaves half a tree
        tmp = Path(tempfile.mkdtemp(dir=self.installs_dir, prefix=f".unpack-{sha256}-"))
        try:
            scheme = {
                "purelib": str(tmp),
                "platlib": str(tmp),
                "headers": str(tmp / "_headers"),
                "scripts": str(tmp / "_bin"),
                "data": str(tmp / "_data"),
            }
            destination = SchemeDictionaryDestination(
                scheme,
                interpreter="/usr/bin/env python3",
                script_kind="posix",
                bytecode_optimization_levels=(),  # compiled later by the target's own Python
            )
            try:
                with _WheelFile.open(wheel) as source:
                    install(source, destination, additional_metadata={})
            except Exception as exc:
                if out_of_space(exc):  # the host's fault, not the wheel's
                    raise DiskFull(self.installs_dir, exc) from exc
                raise UnpackFailed(wheel, f"{type(exc).__name__}: {exc}") from exc
            # group/world readable: the runner reads them as an unprivileged user
            for path in [tmp, *tmp.rglob("*")]:
                if not path.is_symlink():
                    path.chmod(path.stat().st_mode | 0o444 | (0o111 if path.is_dir() else 0))
            (tmp / COMPLETE).write_text(f"{sha256}\n")
            (tmp / COMPLETE).chmod(0o644)
            try:
                tmp.rename(target)
            except OSError:
                if not self.has(sha256):
                    raise
                # another process unpacked the same wheel meanwhile: keep theirs
                shutil.rmtree(tmp, ignore_errors=True)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise

    def _discard(self, sha256: str) -> None:
        """Take an incomplete tree out of its place (a rename, so that a reader never
        sees it half removed) and remove it."""
        aside = self.installs_dir / f".discard-{sha256}-{secrets.token_hex(4)}"
        with contextlib.suppress(FileNotFoundError):  # removed meanwhile by hand
            self.dir_for(sha256).rename(aside)
        shutil.rmtree(aside, ignore_errors=True)

    # ---- bytecode stamps ------------------------------------------------------

    def _stamp(self, sha256: str, interpreter: str) -> Path:
        safe = re.sub(r"[^\w.-]", "_", interpreter)
        return self._stamps / f"{sha256}.{safe}"

    def is_compiled(self, sha256: str, interpreter: str) -> bool:
        return self._stamp(sha256, interpreter).exists()

    def mark_compiled(self, sha256s: Iterable[str], interpreter: str) -> None:
        self._stamps.mkdir(parents=True, exist_ok=True)
        for sha in sha256s:
            self._stamp(sha, interpreter).touch()

    def needing_compile(self, sha256s: Iterable[str], interpreter: str) -> list[str]:
        return [s for s in dict.fromkeys(sha256s) if not self.is_compiled(s, interpreter)]
