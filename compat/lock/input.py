"""What a lock is made from: one known-good combination on one target, the system
packages it needs there, and how the base installs them. Plain values only, so that
whoever knows a combination passed (a scan, the results database) can lock it."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from packaging.utils import InvalidName, canonicalize_name

from compat.effects.container import check_reference
from compat.errors import LockError, UsageError
from compat.model import Cap, Combo, ComboResult, FileKind, Pin
from compat.targets.profiles import HOST
from compat.targets.target import PackageManager, Target


@dataclass(frozen=True, kw_only=True, slots=True)
class Prune:
    """What is left out of the final virtualenv. Each saves space. Bytecode is kept
    by default (compiled in the builder stage, as pip does by default): without it
    the venv, read-only to the image's user, makes Python compile every module it
    imports, in every process (``--no-bytecode`` strips it, for size)."""

    tests: bool = True  # the packages' own `tests` directories
    bytecode: bool = False  # __pycache__: stripped instead of compiled
    sources: bool = True  # *.pyx, *.pxd, *.c shipped next to compiled modules
    installers: bool = True  # pip and setuptools, unless the combination pins them

    @classmethod
    def of(cls, value: bool | Prune) -> Prune:
        if isinstance(value, Prune):
            return value
        return cls() if value else cls(tests=False, bytecode=False, sources=False, installers=False)

    @classmethod
    def chosen(cls, *, prune: bool, bytecode: bool) -> Prune:
        """As ``--prune/--no-prune`` and ``--bytecode/--no-bytecode`` say."""
        return dataclasses.replace(cls.of(prune), bytecode=not bytecode)

    @property
    def anything(self) -> bool:
        return self.tests or self.bytecode or self.sources or self.installers

    def to_json(self) -> dict[str, bool]:
        return {
            "tests": self.tests,
            "bytecode": self.bytecode,
            "sources": self.sources,
            "installers": self.installers,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Prune:
        return cls(**{k: bool(data[k]) for k in ("tests", "bytecode", "sources", "installers")})


# What may stand in a line of a Dockerfile or requirements file outside a comment.
# The values come from results databases others may have written (``db import``).
_SYSTEM_PACKAGE = re.compile(r"[A-Za-z0-9][A-Za-z0-9+._:-]*")  # apt, apk, dnf names
_SHA256 = re.compile(r"[0-9a-f]{64}")
_NO_SPACE = re.compile(r"[^\s\x00-\x1f\x7f]+")


def _refuse_malformed(target: Target, pins: Sequence[Pin], system: Sequence[str]) -> None:
    """A ``LockError`` naming the first value that is not what its field holds."""
    bad: list[str] = []
    try:
        if target.name != HOST:  # this machine's Python has no image reference
            check_reference(target.image)
    except UsageError:
        bad.append(f"image reference {target.image!r}")
    bad += [f"system package {s!r}" for s in system if not _SYSTEM_PACKAGE.fullmatch(s)]
    for pin in pins:
        try:
            canonical = canonicalize_name(pin.name, validate=True)
        except InvalidName:
            canonical = None
        if canonical != pin.name:
            bad.append(f"package name {pin.name!r}")
        if not _SHA256.fullmatch(pin.sha256):
            bad.append(f"sha256 {pin.sha256!r} of {pin.name}")
        if not _NO_SPACE.fullmatch(pin.filename) or "/" in pin.filename:
            bad.append(f"file name {pin.filename!r} of {pin.name}")
        if not _NO_SPACE.fullmatch(pin.url):
            bad.append(f"URL {pin.url!r} of {pin.name}")
    if bad:
        raise LockError(f"cannot lock a malformed {bad[0]}: is the results database intact?")


@dataclass(frozen=True, kw_only=True, slots=True)
class LockInput:
    """A known-good combination for a target, ready to be written as lock files.

    ``source_builds`` are the combination's sdist pins (built from source on the
    target); left empty, they are taken from the combination. ``package_manager``
    is how the base installs ``system_packages`` (None: the base has none, so it
    cannot need any). ``caps`` hold unrequested dependencies below releases the
    requested pins failed with."""

    target: Target
    combo: Combo
    system_packages: tuple[str, ...] = ()
    package_manager: PackageManager | None = None
    source_builds: tuple[Pin, ...] = ()
    caps: tuple[Cap, ...] = ()
    matrix: str | None = None  # the matrix whose stack it is, where one was named

    def __post_init__(self) -> None:
        _refuse_malformed(self.target, self.combo.pins, self.system_packages)
        if self.system_packages and self.package_manager is None:
            raise LockError(
                f"{self.target.image} needs the system packages "
                f"{', '.join(self.system_packages)} but has no package manager to install "
                "them: add them to the base image, or lock for a base that has apt, apk or dnf"
            )
        if not self.combo.pins:
            raise LockError(f"combination {self.combo.id} has no pins: nothing to lock")
        sdists = self.combo.source_builds
        if not self.source_builds:
            object.__setattr__(self, "source_builds", sdists)
        elif set(self.source_builds) != set(sdists):
            given = ", ".join(sorted(str(p) for p in self.source_builds))
            wanted = ", ".join(sorted(str(p) for p in sdists)) or "none"
            raise LockError(
                f"source builds ({given}) must be the combination's sdist pins ({wanted})"
            )
        for cap in self.caps:
            held = self.combo.versions.get(cap.name)
            if cap.name in self.combo.requested or held is None or held >= cap.below:
                raise LockError(
                    f"combination {self.combo.id} does not hold an unrequested {cap}: "
                    "that cap cannot be written into its lock"
                )
        # deduplicated, in a stable order: the same input gives the same files
        object.__setattr__(
            self, "system_packages", tuple(sorted(dict.fromkeys(self.system_packages)))
        )

    @classmethod
    def from_result(
        cls,
        target: Target,
        result: ComboResult,
        *,
        package_manager: PackageManager | None,
        known: Sequence[str] = (),
        caps: Sequence[Cap] = (),
        matrix: str | None = None,
    ) -> LockInput:
        """The lock input for a combination that passed; the system packages are those
        the harness had to add to the base for it to pass, and ``known``: those the
        image is known to need (learnt by any run on it, see ``Store.system_packages``)."""
        if not result.ok:
            raise LockError(
                f"combination {result.combo.id} ({result.combo.label()}) did not pass "
                f"({result.verdict.value}): only known-good combinations are locked"
            )
        return cls(
            target=target,
            combo=result.combo,
            system_packages=(*result.added_system_deps, *known),
            package_manager=package_manager,
            caps=tuple(caps),
            matrix=matrix,
        )

    @property
    def wheels(self) -> tuple[Pin, ...]:
        return tuple(p for p in self.combo.pins if p.kind is FileKind.WHEEL)

    def to_json(self) -> dict[str, Any]:
        return {
            "target": self.target.to_json(),
            "combo": self.combo.to_json(),
            "system_packages": list(self.system_packages),
            "package_manager": self.package_manager.value if self.package_manager else None,
            "source_builds": [p.to_json() for p in self.source_builds],
            "caps": [c.to_json() for c in self.caps],
            "matrix": self.matrix,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> LockInput:
        manager = data.get("package_manager")
        try:
            package_manager = PackageManager(manager) if manager is not None else None
        except ValueError:
            raise LockError(f"unknown package manager {manager!r}") from None
        return cls(
            target=Target.from_json(data["target"]),
            combo=Combo.from_json(data["combo"]),
            system_packages=tuple(data.get("system_packages", ())),
            package_manager=package_manager,
            source_builds=tuple(Pin.from_json(p) for p in data.get("source_builds", ())),
            caps=tuple(Cap.from_json(c) for c in data.get("caps", ())),
            matrix=data.get("matrix"),
        )
