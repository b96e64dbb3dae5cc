"""What a target can install: per project, the versions with a usable file.

Memoised for the life of one planning session so that hundreds of resolutions
read each listing and each release's metadata once.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass

from packaging.markers import Marker
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.utils import NormalizedName, canonicalize_name
from packaging.version import Version

from compat.index.base import Index
from compat.matrix import BuildPolicy
from compat.model import CoreMetadata, DistFile, FileKind
from compat.targets.target import Target

PYTHON = NormalizedName("<python>")  # the virtual project standing for the interpreter


@dataclass(frozen=True, kw_only=True, slots=True)
class Release:
    """One version of a project as the target sees it."""

    name: NormalizedName
    version: Version
    file: DistFile | None  # the best usable file: a matching wheel, else an allowed sdist
    yanked: bool
    why_not: str = ""  # when file is None: why nothing fits

    @property
    def built_from_source(self) -> bool:
        return self.file is not None and self.file.kind is FileKind.SDIST


@dataclass(frozen=True, kw_only=True, slots=True)
class Dependency:
    """A dependency after markers: what resolvelib is asked to satisfy."""

    name: NormalizedName
    extras: frozenset[NormalizedName]
    specifier: SpecifierSet
    only: frozenset[Version] | None = None  # planner's restriction to chosen versions

    @classmethod
    def of(cls, requirement: Requirement) -> Dependency:
        """What ``requirement`` asks for (its marker is the caller's to judge)."""
        return cls(
            name=canonicalize_name(requirement.name),
            extras=frozenset(canonicalize_name(e) for e in requirement.extras),
            specifier=requirement.specifier,
        )

    @property
    def key(self) -> str:
        if not self.extras:
            return self.name
        return f"{self.name}[{','.join(sorted(self.extras))}]"

    def allows(self, version: Version) -> bool:
        if self.only is not None and version not in self.only:
            return False
        return self.specifier.contains(version, prereleases=True)

    def pins(self, version: Version) -> bool:
        """An exact ``==`` pin on this version: the one case a yanked file may be used."""
        return any(
            s.operator in ("==", "===") and "*" not in s.version and s.contains(version, True)
            for s in self.specifier
        )

    def __str__(self) -> str:
        text = f"{self.key}{self.specifier}"
        if self.only is not None:
            text += f" (one of {', '.join(str(v) for v in sorted(self.only))})"
        return text


def requested(name: str, specifier: SpecifierSet | str = "", **kw: object) -> Dependency:
    spec = specifier if isinstance(specifier, SpecifierSet) else SpecifierSet(specifier)
    return Dependency(name=canonicalize_name(name), extras=frozenset(), specifier=spec, **kw)  # type: ignore[arg-type]


class CandidateSource:
    """Releases and dependencies of projects for one target, build policy and index."""

    def __init__(self, index: Index, target: Target, build: BuildPolicy | None = None) -> None:
        self.index = index
        self.target = target
        self.build = build or BuildPolicy()
        self._env = target.marker_environment()
        self._releases: dict[NormalizedName, tuple[Release, ...]] = {}
        self._deps: dict[
            tuple[NormalizedName, Version, frozenset[NormalizedName]], tuple[Dependency, ...]
        ] = {}
        self._meta: dict[tuple[NormalizedName, Version], CoreMetadata] = {}
        self._marker_cache: dict[tuple[Marker, str], bool] = {}

    def releases(self, name: NormalizedName) -> tuple[Release, ...]:
        """Every non-prerelease and prerelease version, newest first."""
        cached = self._releases.get(name)
        if cached is None:
            cached = self._releases[name] = self._load(name)
        return cached

    def _load(self, name: NormalizedName) -> tuple[Release, ...]:
        by_version: dict[Version, list[DistFile]] = defaultdict(list)
        for file in self.index.files(name):
            by_version[file.version].append(file)
        return tuple(
            self._release(name, version, by_version[version])
            for version in sorted(by_version, reverse=True)
        )

    def _release(self, name: NormalizedName, version: Version, files: list[DistFile]) -> Release:
        target = self.target
        usable = [f for f in files if target.accepts_python(f)]
        yanked = bool(files) and all(f.yanked for f in files)
        if not yanked:  # a yanked file beside unyanked ones is never wanted
            usable = [f for f in usable if not f.yanked]
        wheels: list[tuple[int, DistFile]] = []
        for f in usable:
            rank = target.tag_rank(f)
            if rank is not None:
                wheels.append((rank, f))
        sdists = [f for f in usable if f.kind is FileKind.SDIST]
        if name in self.build.no_binary:
            if sdists:
                return Release(name=name, version=version, file=sdists[0], yanked=yanked)
            return Release(
                name=name,
                version=version,
                file=None,
                yanked=yanked,
                why_not="no sdist to build (no-binary was asked for)",
            )
        if wheels:
            best = min(wheels, key=lambda rf: (rf[0], rf[1].filename))[1]
            return Release(name=name, version=version, file=best, yanked=yanked)
        if sdists and self.build.may_build(name):
            return Release(name=name, version=version, file=sdists[0], yanked=yanked)
        return Release(
            name=name,
            version=version,
            file=None,
            yanked=yanked,
            why_not=self._why_not(usable, files, sdists),
        )

    def _why_not(
        self, usable: list[DistFile], files: list[DistFile], sdists: list[DistFile]
    ) -> str:
        target = self.target
        if not files:
            return "no files"
        if not usable:
            specs = sorted({str(f.requires_python) for f in files if f.requires_python})
            return (
                f"requires Python {' or '.join(specs) or '?'}, target has {target.python_version}"
            )
        platform = "musllinux" if target.libc.value == "musl" else "manylinux"
        if sdists:
            return (
                f"no {platform} wheel for Python {target.python}; building from source is disabled"
            )
        return f"no {platform} wheel for Python {target.python} and no sdist"

    def metadata(self, name: NormalizedName, version: Version) -> CoreMetadata:
        key = (name, version)
        meta = self._meta.get(key)
        if meta is None:
            meta = self._meta[key] = self.index.metadata(self._metadata_file(name, version))
        return meta

    def prefetch(self, releases: Iterable[tuple[NormalizedName, Version]]) -> None:
        """Fetch the metadata of many releases at once (the index does it in parallel)."""
        wanted = [(n, v) for n, v in releases if (n, v) not in self._meta]
        self.index.prefetch(self._metadata_file(n, v) for n, v in wanted)

    def _metadata_file(self, name: NormalizedName, version: Version) -> DistFile:
        """Metadata is per release, so any file of it will do: the chosen file when the
        index serves its metadata (PEP 658), else any file that has it, else a wheel
        (its METADATA is static, an sdist's may not be), the chosen one first."""
        release = next(r for r in self.releases(name) if r.version == version)
        assert release.file is not None
        chosen = release.file
        siblings = [f for f in self.index.files(name) if f.version == version]
        return min(
            siblings,
            key=lambda f: (
                not f.has_metadata,
                f.kind is not FileKind.WHEEL,
                f is not chosen and f != chosen,
                f.filename,
            ),
        )

    def dependencies(
        self, name: NormalizedName, version: Version, extras: frozenset[NormalizedName]
    ) -> tuple[Dependency, ...]:
        key = (name, version, extras)
        cached = self._deps.get(key)
        if cached is None:
            cached = self._deps[key] = self._dependencies(name, version, extras)
        return cached

    def _dependencies(
        self, name: NormalizedName, version: Version, extras: frozenset[NormalizedName]
    ) -> tuple[Dependency, ...]:
        meta = self.metadata(name, version)
        deps: list[Dependency] = []
        if meta.requires_python and not meta.requires_python.contains(
            self.target.python_version, prereleases=True
        ):
            deps.append(Dependency(name=PYTHON, extras=frozenset(), specifier=meta.requires_python))
        active = ("", *sorted(extras))
        for req in meta.requires_dist:
            if any(self._applies(req, extra) for extra in active):
                deps.append(
                    Dependency(
                        name=canonicalize_name(req.name),
                        extras=frozenset(canonicalize_name(e) for e in req.extras),
                        specifier=req.specifier,
                    )
                )
        return tuple(deps)

    def _applies(self, req: Requirement, extra: str) -> bool:
        if req.marker is None:
            return extra == ""
        key = (req.marker, extra)
        hit = self._marker_cache.get(key)
        if hit is None:
            env = {**self._env, "extra": extra}
            hit = self._marker_cache[key] = req.marker.evaluate(env)
        return hit
