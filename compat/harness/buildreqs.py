"""Build requirements for builds that have no network.

An sdist's build runs its own code (``setup.py``, meson and cmake scripts): the
builder container that runs it has no network. pip in it installs build
requirements from one directory only (``--no-index --find-links``), and compat
fills that directory on the host, with its own index client, resolver and
hash-checked wheelhouse: first the sdist's static ``[build-system] requires``
(read from the archive, nothing run), then what pip says it could not find (a
backend's dynamic requirements, the build requirements of a requirement built
from source), and the build is tried again, a bounded number of rounds.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import tarfile
import tempfile
import tomllib
import zipfile
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from packaging.requirements import Requirement

from compat.errors import (
    BuildFailed,
    CompatError,
    FetchFailed,
    IndexUnavailable,
    ProjectNotFound,
)
from compat.harness.toolchain import BUILD_LOG
from compat.harness.wheelhouse import FileRef, Wheelhouse
from compat.index.base import Index
from compat.index.parse import parse_requirement
from compat.model import Pin
from compat.resolve.candidates import CandidateSource, Dependency
from compat.resolve.resolver import Conflict, Resolver
from compat.targets.target import Target

log = logging.getLogger("compat.harness")

MAX_ROUNDS = 8  # each round a build, then what it could not find fetched
# what pip builds a project with when the sdist declares no build system (PEP 518)
LEGACY_REQUIRES = ("setuptools>=40.8.0", "wheel")
_MAX_PYPROJECT_BYTES = 1 << 20
_TOP_PYPROJECT = re.compile(r"(?:\./)?[^/]+/pyproject\.toml")
# pip's words for a requirement it found nothing for, offline; the trailing
# "(from versions: none)" and "(from hatchling)" are not part of it
_NOT_FOUND = re.compile(
    r"(?:Could not find a version that satisfies the requirement|"
    r"No matching distribution found for) (?P<requirement>.+)$",
    re.MULTILINE,
)
_FROM = re.compile(r"\s*\(from [^()]*\)\s*$")


# ---- what a build needs ------------------------------------------------------------


def static_requires(sdist: Path) -> tuple[Requirement, ...]:
    """The ``[build-system] requires`` of ``sdist``'s top-level pyproject.toml, read
    from the archive; setuptools' legacy default where it declares no build system.
    Nothing where the file cannot be read: pip's own build says what is wrong."""
    text = _pyproject(sdist)
    if text is None:
        return _parsed(LEGACY_REQUIRES)
    try:
        system = tomllib.loads(text).get("build-system")
    except tomllib.TOMLDecodeError:
        return ()
    if not isinstance(system, dict):
        return _parsed(LEGACY_REQUIRES)
    requires = system.get("requires")
    if not isinstance(requires, list):
        return ()
    return _parsed(r for r in requires if isinstance(r, str))


def _parsed(texts: Sequence[str] | Iterator[str]) -> tuple[Requirement, ...]:
    return tuple(r for r in map(parse_requirement, texts) if r is not None)


def _pyproject(sdist: Path) -> str | None:
    """The text of the sdist's top-level pyproject.toml; None without one."""
    try:
        if sdist.name.endswith(".zip"):
            with zipfile.ZipFile(sdist) as archive:
                name = next((n for n in archive.namelist() if _TOP_PYPROJECT.fullmatch(n)), None)
                if name is None:
                    return None
                with archive.open(name) as member:
                    data = member.read(_MAX_PYPROJECT_BYTES + 1)
        else:
            with tarfile.open(sdist, "r:*") as tar:
                found = next(
                    (m for m in tar if m.isfile() and _TOP_PYPROJECT.fullmatch(m.name)), None
                )
                file = tar.extractfile(found) if found is not None else None
                if file is None:
                    return None
                data = file.read(_MAX_PYPROJECT_BYTES + 1)
    except (OSError, tarfile.TarError, zipfile.BadZipFile, EOFError) as exc:
        log.debug("cannot read pyproject.toml of %s: %s", sdist.name, exc)
        return None
    if len(data) > _MAX_PYPROJECT_BYTES:
        return None
    return data.decode("utf-8", "replace")


def missing_requirements(output: str) -> tuple[Requirement, ...]:
    """The requirements pip says it could not find, in the order it said them."""
    found: list[Requirement] = []
    for match in _NOT_FOUND.finditer(output):
        text = match.group("requirement").strip()
        while cut := _FROM.search(text):
            text = text[: cut.start()]
        requirement = parse_requirement(text)
        if requirement is not None and requirement not in found:
            found.append(requirement)
    return tuple(found)


# ---- fetching it -------------------------------------------------------------------


class Unavailable(CompatError):
    """A build requirement cannot be put where the build reads it. ``transient``:
    the index or a download failed (it says nothing about the package)."""

    def __init__(self, reason: str, *, transient: bool) -> None:
        self.reason = reason
        self.transient = transient
        super().__init__(reason)


class BuildRequirements:
    """Puts build requirements, with their dependencies, for one image into a
    directory: each the newest release that matches, as a wheel for the image's
    tags (or a pure-Python one), else its sdist (pip builds it offline from the same
    directory); every file downloaded once into the wheelhouse and checked."""

    def __init__(self, index: Index, target: Target, wheelhouse: Wheelhouse) -> None:
        self._resolver = Resolver(CandidateSource(index, target))
        self._environment = {**target.marker_environment(), "extra": ""}
        self._wheelhouse = wheelhouse

    def supply(self, requirements: Sequence[Requirement], into: Path) -> tuple[str, ...]:
        """Put ``requirements`` (those whose markers hold for the image) and what they
        depend on into ``into``; the file names put there. Raises Unavailable."""
        environment = self._environment
        wanted = [r for r in requirements if r.marker is None or r.marker.evaluate(environment)]
        if not wanted:
            return ()
        pins = self._resolve(wanted)
        for pin in pins:
            ref = FileRef(filename=pin.filename, url=pin.url, sha256=pin.sha256)
            try:
                stored = self._wheelhouse.fetch_one(ref)
            except FetchFailed as exc:  # a full disk is no build's failure: it stops the run
                why = f"{pin.filename} could not be fetched: {exc}"
                raise Unavailable(why, transient=True) from exc
            _place(stored, into / pin.filename)
        return tuple(p.filename for p in pins)

    def _resolve(self, wanted: Sequence[Requirement]) -> tuple[Pin, ...]:
        what = ", ".join(str(r) for r in wanted)
        try:
            got = self._resolver.resolve([Dependency.of(r) for r in wanted])
        except ProjectNotFound as exc:
            raise Unavailable(f"{what}: {exc}", transient=False) from exc
        except IndexUnavailable as exc:
            raise Unavailable(f"{what}: {exc}", transient=True) from exc
        if isinstance(got, Conflict):
            explanation = "; ".join(got.explanation.splitlines())
            raise Unavailable(f"{what}: nothing on the index fits: {explanation}", transient=False)
        return got.pins


def _place(stored: Path, dest: Path) -> None:
    """``stored`` at ``dest``: a hard link into the wheelhouse, else a copy."""
    if dest.exists():
        return
    try:
        os.link(stored, dest)
    except OSError:
        shutil.copyfile(stored, dest)
        dest.chmod(0o644)


# ---- the build, round by round -----------------------------------------------------

Build = Callable[[Path], Path]  # a build reading its requirements from a directory


@contextmanager
def requirements_dir(parent: Path) -> Iterator[Path]:
    """A fresh directory for one build's requirements (under the cache, where the
    wheelhouse is: its files are linked, not copied), removed afterwards; readable
    by the builder's unprivileged user."""
    parent.mkdir(parents=True, exist_ok=True)
    directory = Path(tempfile.mkdtemp(prefix="build-", dir=parent))
    try:
        directory.chmod(0o755)
        yield directory
    finally:
        shutil.rmtree(directory, ignore_errors=True)


def build_offline(
    pin: Pin,
    sdist: Path,
    out_dir: Path,
    *,
    build: Build,
    supplier: BuildRequirements,
    directory: Path,
    toolchain: Sequence[Requirement] = (),
    rounds: int = MAX_ROUNDS,
) -> Path:
    """Build ``pin``'s ``sdist`` into ``out_dir`` with ``build``, its requirements in
    ``directory``: ``toolchain`` and the static requirements first (each resolved on
    its own: they are installed apart), then, round by round, what pip could not
    find. The whole story (each round's log, what was fetched) stays in the build
    log; BuildFailed says which requirement could not be had."""
    story = _Story(out_dir)
    wanted: list[Sequence[Requirement]] = [toolchain, static_requires(sdist)]
    tried: list[Requirement] = []
    for round_ in range(1, rounds + 1):
        for group in wanted:
            _supply(pin, supplier, group, directory, story)
            tried.extend(group)
        try:
            wheel = build(directory)
        except BuildFailed as exc:
            output = story.close_round(exc.log)
            missing = missing_requirements(output)
            new = [r for r in missing if r not in tried]
            if not missing:
                raise story.failed(exc) from exc
            if not new:
                reason = f"the build requirement {missing[0]} was fetched, but pip could not use it"
                raise story.failed(exc, reason) from exc
            story.clear()
            story.say(f"round {round_}: pip found no {', '.join(map(str, new))}; fetching")
            wanted = [new]
            continue
        story.close_round("")
        story.write()
        return wheel
    reason = f"build requirements still missing after {rounds} rounds"
    story.say(reason)
    story.write()
    raise BuildFailed(pin, reason, log=story.tail())


def _supply(
    pin: Pin,
    supplier: BuildRequirements,
    group: Sequence[Requirement],
    directory: Path,
    story: _Story,
) -> None:
    try:
        placed = supplier.supply(group, directory)
    except Unavailable as exc:
        reason = f"a build requirement could not be fetched: {exc.reason}"
        story.say(reason)
        story.write()
        raise BuildFailed(pin, reason, log=story.tail(), unreachable=exc.transient) from exc
    if placed:
        story.say(f"build requirements fetched: {' '.join(placed)}")


class _Story:
    """The build log over every round: each round's own log, and compat's lines."""

    def __init__(self, out_dir: Path) -> None:
        self._log = out_dir / BUILD_LOG
        self._parts: list[str] = []

    def say(self, line: str) -> None:
        self._parts.append(f"compat: {line}\n")

    def close_round(self, fallback: str) -> str:
        """This round's log (the backend's whole log, else ``fallback``), kept."""
        output = self._log.read_text(errors="replace") if self._log.is_file() else fallback
        self._parts.append(output if output.endswith("\n") or not output else output + "\n")
        return output

    def clear(self) -> None:
        """Empty the out dir of a failed round for the next one."""
        for leftover in self._log.parent.iterdir():
            if leftover.is_file():
                leftover.unlink()

    def write(self) -> None:
        self._log.write_text("".join(self._parts))

    def tail(self, lines: int = 40) -> str:
        return "\n".join("".join(self._parts).strip().splitlines()[-lines:])

    def failed(self, exc: BuildFailed, reason: str | None = None) -> BuildFailed:
        self.write()
        return BuildFailed(
            exc.pin,
            reason or exc.reason,
            log=exc.log,
            duration=exc.duration,
            timed_out=exc.timed_out,
            unreachable=exc.unreachable,
        )


__all__ = [
    "LEGACY_REQUIRES",
    "MAX_ROUNDS",
    "BuildRequirements",
    "Unavailable",
    "build_offline",
    "missing_requirements",
    "requirements_dir",
    "static_requires",
]
