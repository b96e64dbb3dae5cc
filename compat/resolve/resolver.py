"""Resolve one set of requested packages to a full pin set for a target.

resolvelib owns the algorithm; the provider below owns all knowledge of the index,
through a ``CandidateSource``. A resolution that fails becomes a ``Conflict`` value
with a readable explanation, never an exception.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from packaging.utils import NormalizedName
from packaging.version import Version
from resolvelib import AbstractProvider, BaseReporter, ResolutionImpossible, ResolutionTooDeep
from resolvelib import Resolver as _ResolvelibResolver
from resolvelib.structs import RequirementInformation

from compat.model import Combo, Pin
from compat.resolve.candidates import PYTHON, CandidateSource, Dependency, Release


@dataclass(frozen=True, kw_only=True, slots=True)
class Candidate:
    name: NormalizedName
    version: Version
    extras: frozenset[NormalizedName]
    release: Release | None  # None for the interpreter itself

    @property
    def key(self) -> str:
        if not self.extras:
            return self.name
        return f"{self.name}[{','.join(sorted(self.extras))}]"


@dataclass(frozen=True, kw_only=True, slots=True)
class Conflict:
    """A set of requests that cannot be installed together on the target."""

    target: str
    requested: tuple[str, ...]  # the requests as given, e.g. "numpy==2.0.2"
    explanation: str

    def to_json(self) -> dict[str, Any]:
        return {
            "target": self.target,
            "requested": list(self.requested),
            "explanation": self.explanation,
        }


# the order in which candidates of a project are tried: "newest" or "oldest" for
# requested packages, or an explicit preference list from the planner
@dataclass(frozen=True, kw_only=True, slots=True)
class Preferences:
    oldest: frozenset[NormalizedName] = frozenset()
    ranked: Mapping[NormalizedName, Sequence[Version]] = field(default_factory=dict)
    # overrides: these versions are used whatever any package declares about them
    # (``compat check --force``, to test whether a declared bound is justified)
    forced: Mapping[NormalizedName, Version] = field(default_factory=dict)


class _Provider(AbstractProvider[Dependency, Candidate, str]):
    def __init__(
        self, source: CandidateSource, prefs: Preferences, requested: frozenset[NormalizedName]
    ) -> None:
        self.source = source
        self.prefs = prefs
        self.requested = requested

    def identify(self, requirement_or_candidate: Dependency | Candidate) -> str:
        return requirement_or_candidate.key

    def get_preference(
        self,
        identifier: str,
        resolutions: Mapping[str, Candidate],
        candidates: Mapping[str, Iterator[Candidate]],
        information: Mapping[str, Iterator[RequirementInformation[Dependency, Candidate]]],
        backtrack_causes: Sequence[RequirementInformation[Dependency, Candidate]],
    ) -> Any:
        infos = list(information[identifier])
        pinned = any(i.requirement.only is not None or _is_pin(i.requirement) for i in infos)
        in_conflict = any(c.requirement.key == identifier for c in backtrack_causes)
        # the interpreter first (it cannot change), then conflicts, pins and user requests
        return (
            identifier != PYTHON,
            not in_conflict,
            not pinned,
            not any(i.parent is None for i in infos),
            identifier,
        )

    def find_matches(
        self,
        identifier: str,
        requirements: Mapping[str, Iterator[Dependency]],
        incompatibilities: Mapping[str, Iterator[Candidate]],
    ) -> Iterable[Candidate]:
        needs = list(requirements[identifier])
        bad = {c.version for c in incompatibilities[identifier]}
        name = needs[0].name
        if name == PYTHON:
            version = self.source.target.python_version
            if version in bad or not all(n.allows(version) for n in needs):
                return []
            return [Candidate(name=PYTHON, version=version, extras=frozenset(), release=None)]
        extras = frozenset().union(*(n.extras for n in needs))
        forced = self.prefs.forced.get(name)
        if forced is not None:
            return [
                Candidate(name=name, version=r.version, extras=extras, release=r)
                for r in self.source.releases(name)
                if r.version == forced and r.file is not None
            ]
        matches = [
            Candidate(name=name, version=r.version, extras=extras, release=r)
            for r in self.source.releases(name)
            if r.file is not None
            and r.version not in bad
            and all(n.allows(r.version) for n in needs)
            and (not r.yanked or any(n.pins(r.version) for n in needs))
            and (not r.version.is_prerelease or any(n.specifier.prereleases for n in needs))
        ]
        return self._order(name, matches)

    def _order(self, name: NormalizedName, matches: list[Candidate]) -> list[Candidate]:
        ranked = self.prefs.ranked.get(name)
        if ranked is not None:
            position = {v: i for i, v in enumerate(ranked)}
            return sorted(matches, key=lambda c: position.get(c.version, len(position)))
        if name in self.prefs.oldest:
            return matches[::-1]
        if name in self.requested:
            return matches
        # dependencies prefer a release with a wheel to a newer one needing a build
        return sorted(matches, key=lambda c: c.release is not None and c.release.built_from_source)

    def is_satisfied_by(self, requirement: Dependency, candidate: Candidate) -> bool:
        if candidate.name in self.prefs.forced:
            return True
        return requirement.allows(candidate.version)

    def get_dependencies(self, candidate: Candidate) -> Iterable[Dependency]:
        if candidate.name == PYTHON:
            return []
        deps = list(self.source.dependencies(candidate.name, candidate.version, candidate.extras))
        if candidate.extras:  # an extra's candidate also needs its project at the same version
            deps.append(
                Dependency(
                    name=candidate.name,
                    extras=frozenset(),
                    specifier=_exact(candidate.version),
                )
            )
        return deps


def _is_pin(dep: Dependency) -> bool:
    return any(s.operator in ("==", "===") and "*" not in s.version for s in dep.specifier)


def _exact(version: Version) -> Any:
    from packaging.specifiers import SpecifierSet

    return SpecifierSet(f"=={version}")


class Resolver:
    """Resolves request sets for one target, reusing everything it has learnt."""

    def __init__(self, source: CandidateSource, *, max_rounds: int = 2000) -> None:
        self.source = source
        self.max_rounds = max_rounds

    def resolve(
        self,
        requests: Sequence[Dependency],
        *,
        order: Sequence[NormalizedName] | None = None,
        prefs: Preferences = Preferences(),
    ) -> Combo | Conflict:
        names = (
            tuple(order) if order is not None else tuple(dict.fromkeys(r.name for r in requests))
        )
        provider = _Provider(self.source, prefs, frozenset(names))
        resolver: _ResolvelibResolver[Dependency, Candidate, str] = _ResolvelibResolver(
            provider, BaseReporter()
        )
        try:
            result = resolver.resolve(requests, max_rounds=self.max_rounds)
        except ResolutionImpossible as exc:
            return self._conflict(requests, self._explain(list(exc.causes)))
        except ResolutionTooDeep:
            return self._conflict(
                requests, f"gave up after {self.max_rounds} rounds of backtracking"
            )
        pins = []
        for candidate in result.mapping.values():
            if candidate.extras or candidate.release is None or candidate.release.file is None:
                continue
            pins.append(Pin.of(candidate.release.file))
        pins.sort(key=lambda p: p.name)
        return Combo(target=self.source.target.key, pins=tuple(pins), requested=names)

    def _conflict(self, requests: Sequence[Dependency], explanation: str) -> Conflict:
        return Conflict(
            target=self.source.target.key,
            requested=tuple(str(r) for r in requests),
            explanation=explanation,
        )

    def _explain(self, causes: Sequence[RequirementInformation[Dependency, Candidate]]) -> str:
        lines: list[str] = []
        by_project: dict[NormalizedName, list[str]] = {}
        for cause in causes:
            dep, parent = cause.requirement, cause.parent
            who = "requested" if parent is None else f"{parent.name} {parent.version} requires"
            what = f"Python{dep.specifier}" if dep.name == PYTHON else str(dep)
            by_project.setdefault(dep.name, []).append(f"{who} {what}")
        for name, reasons in by_project.items():
            if name == PYTHON:
                lines.append(
                    f"{'; '.join(dict.fromkeys(reasons))}, "
                    f"but the target has Python {self.source.target.python_version}"
                )
                continue
            lines.append(f"{'; '.join(dict.fromkeys(reasons))}{self._unavailable(name, causes)}")
        return "\n".join(dict.fromkeys(lines))

    def _unavailable(
        self, name: NormalizedName, causes: Sequence[RequirementInformation[Dependency, Candidate]]
    ) -> str:
        """Say why nothing satisfies the requests of one project, when no other project
        is to blame: e.g. the only matching version has no wheel for this target."""
        needs = [c.requirement for c in causes if c.requirement.name == name]
        every = self.source.releases(name)
        releases = [r for r in every if all(n.allows(r.version) for n in needs)]
        if not releases:
            if len(needs) > 1 or not every:
                return ""  # the requests contradict each other: they say it all
            span = f"{every[-1].version} to {every[0].version}"
            return f": no release of {name} matches (the index has {span})"
        unusable = [r for r in releases if r.file is None]
        if len(unusable) == len(releases):
            first = unusable[0]
            more = f" (and {len(unusable) - 1} more versions)" if len(unusable) > 1 else ""
            return f": {name} {first.version}: {first.why_not}{more}"
        return ""
