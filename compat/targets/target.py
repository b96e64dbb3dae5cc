"""A target: what one base image offers a Python package."""

from __future__ import annotations

import enum
import platform
from dataclasses import dataclass, field
from typing import Any

from packaging.tags import Tag, parse_tag
from packaging.version import Version

from compat.model import DistFile, FileKind


class Libc(enum.StrEnum):
    GLIBC = "glibc"
    MUSL = "musl"


class PackageManager(enum.StrEnum):
    """How a base image installs system packages (toolchains, shared libraries)."""

    APT = "apt"  # Debian, Ubuntu
    APK = "apk"  # Alpine
    DNF = "dnf"  # Fedora, RHEL and their kin (microdnf and yum answer to the same names)


@dataclass(frozen=True, kw_only=True, slots=True)
class Target:
    """A base image as the resolver sees it.

    ``tags`` are in the image's own order of preference, most specific first, exactly
    as ``packaging.tags.sys_tags()`` reports them inside the image.
    """

    name: str  # profile name ("alpine") or the image reference
    image: str  # image reference, e.g. "python:3.12-alpine"
    python_version: Version  # full version, e.g. 3.12.7
    implementation: str = "cpython"
    libc: Libc
    libc_version: tuple[int, int]
    machine: str = "x86_64"
    tags: tuple[Tag, ...]
    image_id: str | None = None  # set when the image was probed
    probed: bool = False  # tags come from the image itself, not from the profile
    package_manager: PackageManager | None = None  # None: the image has none (or unknown)
    _rank: dict[Tag, int] = field(default_factory=dict, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        self._rank.update((tag, i) for i, tag in enumerate(self.tags))

    @property
    def key(self) -> str:
        """Identifies what the resolver saw: same key, same plan."""
        return f"{self.image}|{self.image_id or 'profile'}|py{self.python_version}"

    @property
    def python(self) -> str:
        """``X.Y``."""
        return f"{self.python_version.major}.{self.python_version.minor}"

    def tag_rank(self, file: DistFile) -> int | None:
        """Rank of the file's best tag for this target (0 is best), None if unusable.
        Sdists have no tags and get None: building is a separate decision."""
        if file.kind is not FileKind.WHEEL:
            return None
        ranks = [self._rank[t] for t in file.tags if t in self._rank]
        return min(ranks) if ranks else None

    def accepts_python(self, file: DistFile) -> bool:
        spec = file.requires_python
        return spec is None or spec.contains(self.python_version, prereleases=True)

    def marker_environment(self) -> dict[str, str]:
        """PEP 508 marker variables for this target."""
        impl_name = self.implementation
        return {
            "implementation_name": impl_name,
            "implementation_version": str(self.python_version),
            "os_name": "posix",
            "platform_machine": self.machine,
            "platform_python_implementation": {"cpython": "CPython", "pypy": "PyPy"}.get(
                impl_name, impl_name
            ),
            "platform_release": "",
            "platform_system": "Linux",
            "platform_version": "",
            "python_full_version": str(self.python_version),
            "python_version": self.python,
            "sys_platform": "linux",
        }

    def describe(self) -> str:
        libc = f"{self.libc.value} {self.libc_version[0]}.{self.libc_version[1]}"
        how = "probed" if self.probed else "from profile"
        return f"{self.name} ({self.image}): Python {self.python_version}, {libc}, {how}"

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "image": self.image,
            "image_id": self.image_id,
            "python_version": str(self.python_version),
            "implementation": self.implementation,
            "libc": self.libc.value,
            "libc_version": list(self.libc_version),
            "machine": self.machine,
            "tags": [str(t) for t in self.tags],
            "probed": self.probed,
            "package_manager": self.package_manager.value if self.package_manager else None,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Target:
        return cls(
            name=data["name"],
            image=data["image"],
            image_id=data.get("image_id"),
            python_version=Version(data["python_version"]),
            implementation=data.get("implementation", "cpython"),
            libc=Libc(data["libc"]),
            libc_version=(int(data["libc_version"][0]), int(data["libc_version"][1])),
            machine=data.get("machine", platform.machine()),
            tags=tuple(t for s in data["tags"] for t in sorted(parse_tag(s), key=str)),
            probed=bool(data.get("probed", False)),
            package_manager=PackageManager(pm) if (pm := data.get("package_manager")) else None,
        )
