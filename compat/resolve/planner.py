"""Plan, then execute: a matrix and a target become frozen combinations.

Pure given an index: the same inputs give the same plan. Strategies choose the
versions of the matrix packages; the resolver completes each choice into a full
pin set (transitive dependencies included) or a ``Conflict`` that says why not.
"""

from __future__ import annotations

import itertools
import math
import random
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from packaging.specifiers import SpecifierSet
from packaging.utils import NormalizedName
from packaging.version import Version

from compat.errors import (
    MatrixError,
    OfflineCacheMiss,
    PlanTooLarge,
    ProjectNotFound,
    UsageError,
)
from compat.matrix import STRATEGIES, Matrix, MatrixPackage
from compat.model import Combo, Incompatibility
from compat.resolve.candidates import CandidateSource, Dependency
from compat.resolve.resolver import Conflict, Preferences, Resolver
from compat.targets.target import Target

# The exhaustive strategy resolves every combination before its check runs are
# counted against the matrix's cap: beyond this many, it refuses to.
MAX_COMBINATIONS = 5000

Value = tuple[NormalizedName, Version]
Pair = tuple[Value, Value]


@dataclass(frozen=True, kw_only=True, slots=True)
class InfeasiblePair:
    pair: Pair
    explanation: str

    def to_json(self) -> dict[str, Any]:
        (p, a), (q, b) = self.pair
        return {"pair": [f"{p}=={a}", f"{q}=={b}"], "explanation": self.explanation}


@dataclass(frozen=True, kw_only=True, slots=True)
class Plan:
    matrix: str
    target: Target
    strategy: str
    versions: dict[NormalizedName, tuple[Version, ...]]  # chosen per matrix package
    combos: tuple[Combo, ...]
    conflicts: tuple[Conflict, ...] = ()
    infeasible_pairs: tuple[InfeasiblePair, ...] = ()
    unavailable: dict[NormalizedName, str] = field(default_factory=dict)  # no-wheel, and why
    # the check runs each combination (by id) is expected to execute, and those reused
    # (``compat.harness.forecast``); empty when not forecast
    check_runs: Mapping[str, int] = field(default_factory=dict)
    reused_runs: int = 0

    @property
    def source_builds(self) -> dict[NormalizedName, tuple[Version, ...]]:
        """Packages (and versions) that some combination must build from an sdist."""
        found: dict[NormalizedName, set[Version]] = {}
        for combo in self.combos:
            for pin in combo.source_builds:
                found.setdefault(pin.name, set()).add(pin.version)
        return {n: tuple(sorted(v, reverse=True)) for n, v in sorted(found.items())}

    def to_json(self) -> dict[str, Any]:
        combos = [c.to_json() for c in self.combos]
        forecast = {}
        if self.check_runs:
            for data in combos:
                data["check_runs"] = self.check_runs[data["id"]]
            forecast = {
                "check_runs": {"to_run": sum(self.check_runs.values()), "reused": self.reused_runs}
            }
        return {
            "matrix": self.matrix,
            "strategy": self.strategy,
            "target": {k: v for k, v in self.target.to_json().items() if k != "tags"},
            "versions": {n: [str(v) for v in vs] for n, vs in self.versions.items()},
            **forecast,
            "combinations": combos,
            "conflicts": [c.to_json() for c in self.conflicts],
            "infeasible_pairs": [p.to_json() for p in self.infeasible_pairs],
            "source_builds": {n: [str(v) for v in vs] for n, vs in self.source_builds.items()},
            "no_wheel": dict(self.unavailable),
        }


def choose_versions(
    source: CandidateSource, package: MatrixPackage, *, last_minors: int | None, every_minor: bool
) -> tuple[Version, ...]:
    """The usable versions inside the package's range: newest first, one per minor
    (its newest patch) when ``every_minor``, the newest ``last_minors`` minors."""
    spec = package.versions
    usable = [
        r.version
        for r in source.releases(package.name)
        if r.file is not None
        and not r.yanked
        and spec.contains(r.version, prereleases=bool(spec.prereleases))
        and (not r.version.is_prerelease or bool(spec.prereleases))
    ]
    if not every_minor:
        return tuple(usable)
    newest_per_minor: dict[tuple[int, int], Version] = {}
    for version in usable:  # newest first, so the first seen is the newest patch
        newest_per_minor.setdefault((version.major, version.minor), version)
    chosen = tuple(newest_per_minor.values())
    return chosen[:last_minors] if last_minors else chosen


class Planner:
    def __init__(self, source: CandidateSource, matrix: Matrix) -> None:
        self.source = source
        self.matrix = matrix
        self.resolver = Resolver(source)

    # -- versions ----------------------------------------------------------------
    def versions(
        self, *, last_minors: int | None
    ) -> tuple[dict[NormalizedName, tuple[Version, ...]], dict[NormalizedName, str]]:
        chosen: dict[NormalizedName, tuple[Version, ...]] = {}
        unavailable: dict[NormalizedName, str] = {}
        missing: list[str] = []  # offline: name everything missing at once, not the first
        for package in self.matrix.packages:
            try:
                self.source.releases(package.name)
            except OfflineCacheMiss as exc:
                missing += exc.missing
            except ProjectNotFound as exc:
                raise MatrixError(self.matrix.path, f"packages.{package.name}", str(exc)) from None
        if missing:
            raise OfflineCacheMiss(missing)
        for package in self.matrix.packages:
            key = f"packages.{package.name}"
            releases = self.source.releases(package.name)
            in_range = [r for r in releases if package.versions.contains(r.version)]
            if not in_range:
                latest = next(
                    (str(r.version) for r in releases if not r.version.is_prerelease), "none"
                )
                raise MatrixError(
                    self.matrix.path,
                    key,
                    f"no release of {package.name} matches {str(package.versions) or '*'} "
                    f"(newest is {latest})",
                )
            versions = choose_versions(
                self.source, package, last_minors=last_minors, every_minor=True
            )
            if versions:
                chosen[package.name] = versions
            else:
                newest = in_range[0]
                unavailable[package.name] = f"{newest.version}: {newest.why_not}"
        return chosen, unavailable

    # -- requests ----------------------------------------------------------------
    def _requests(
        self,
        chosen: dict[NormalizedName, tuple[Version, ...]],
        fixed: dict[NormalizedName, Version],
    ) -> list[Dependency]:
        requests = []
        for package in self.matrix.packages:
            if package.name not in chosen:
                continue
            if package.name in fixed:
                spec = SpecifierSet(f"=={fixed[package.name]}")
                only = None
            else:
                spec, only = package.versions, frozenset(chosen[package.name])
            requests.append(
                Dependency(name=package.name, extras=package.extras, specifier=spec, only=only)
            )
        for constraint in self.matrix.constraints:
            requests.append(
                Dependency(
                    name=constraint.name, extras=constraint.extras, specifier=constraint.versions
                )
            )
        return requests

    def _resolve(
        self,
        chosen: dict[NormalizedName, tuple[Version, ...]],
        fixed: dict[NormalizedName, Version],
        prefs: Preferences = Preferences(),
    ) -> Combo | Conflict:
        order = [n for n in self.matrix.names if n in chosen]
        return self.resolver.resolve(self._requests(chosen, fixed), order=order, prefs=prefs)

    # -- strategies --------------------------------------------------------------
    def plan(
        self,
        target: Target,
        strategy: str | None = None,
        *,
        last_minors: int | None = None,
    ) -> Plan:
        strategy = strategy or self.matrix.strategy
        if strategy not in STRATEGIES:
            raise UsageError(
                f"unknown strategy {strategy!r}: choose one of {', '.join(STRATEGIES)}"
            )
        chosen, unavailable = self.versions(last_minors=last_minors or self.matrix.last_minors)
        self.source.prefetch((n, v) for n, versions in chosen.items() for v in versions)
        combos: list[Combo] = []
        conflicts: list[Conflict] = []
        infeasible: list[InfeasiblePair] = []

        def keep(outcome: Combo | Conflict) -> Combo | None:
            if isinstance(outcome, Conflict):
                conflicts.append(outcome)
                return None
            if outcome not in combos:
                combos.append(outcome)
            return outcome

        if not chosen:
            pass
        elif strategy in ("latest", "oldest"):
            names = frozenset(chosen) if strategy == "oldest" else frozenset()
            full = {n: self._all_in_range(n) for n in chosen}
            keep(self._resolve(full, {}, Preferences(oldest=names)))
        elif strategy == "minor":
            self._cover(
                chosen, [((n, v),) for n in chosen for v in chosen[n]], keep, lambda *_: None
            )
        elif strategy == "pairwise":
            pairs = [
                ((p, a), (q, b))
                for p, q in itertools.combinations(chosen, 2)
                for a in chosen[p]
                for b in chosen[q]
            ]
            self._cover(
                chosen,
                pairs,
                keep,
                lambda pair, why: infeasible.append(InfeasiblePair(pair=pair, explanation=why)),
            )
        else:  # exhaustive
            total = math.prod(len(v) for v in chosen.values())
            if total > MAX_COMBINATIONS:
                raise PlanTooLarge(
                    f"the exhaustive strategy would plan {total} combinations; at most "
                    f"{MAX_COMBINATIONS} are planned: narrow the ranges in {self.matrix.path}, "
                    "use --last-minors, or use --strategy pairwise"
                )
            for values in itertools.product(*chosen.values()):
                keep(self._resolve(chosen, dict(zip(chosen, values, strict=True))))

        return Plan(
            matrix=self.matrix.name,
            target=target,
            strategy=strategy,
            versions=chosen,
            combos=tuple(combos),
            conflicts=tuple(conflicts),
            infeasible_pairs=tuple(infeasible),
            unavailable=unavailable,
        )

    def _all_in_range(self, name: NormalizedName) -> tuple[Version, ...]:
        package = next(p for p in self.matrix.packages if p.name == name)
        return choose_versions(self.source, package, last_minors=None, every_minor=False)

    def _cover(
        self,
        chosen: dict[NormalizedName, tuple[Version, ...]],
        goals: Sequence[tuple[Value, ...]],
        keep: Callable[[Combo | Conflict], Combo | None],
        infeasible: Callable[[Any, str], None],
    ) -> None:
        """Greedy covering: seed each combination with the first uncovered goal (a value
        or a pair of values), let the resolver complete it while trying first the
        versions that cover most of what is still uncovered. A seed that cannot be
        resolved is infeasible, with the resolver's explanation."""
        arity = len(goals[0]) if goals else 1
        uncovered = dict.fromkeys(goals)
        rng = random.Random(0)  # deterministic: the same inputs give the same plan
        while uncovered:
            seed = next(iter(uncovered))
            fixed = dict(seed)
            outcome: Combo | Conflict = self._resolve(
                chosen, _greedy(chosen, seed, uncovered, rng, arity)
            )
            if isinstance(outcome, Conflict):  # let the resolver find a feasible completion
                ranking = self._ranking(chosen, fixed, uncovered)
                outcome = self._resolve(chosen, fixed, Preferences(ranked=ranking))
            if isinstance(outcome, Conflict):
                del uncovered[seed]
                if arity == 2:
                    infeasible(seed, outcome.explanation)
                else:
                    keep(outcome)
                continue
            keep(outcome)
            values = [(n, outcome.version_of(n)) for n in chosen]
            for goal in _goals_of(values, arity):
                uncovered.pop(goal, None)
            uncovered.pop(seed, None)

    @staticmethod
    def _ranking(
        chosen: dict[NormalizedName, tuple[Version, ...]],
        fixed: dict[NormalizedName, Version],
        uncovered: dict[Any, None],
    ) -> dict[NormalizedName, list[Version]]:
        gain_with_seed: dict[Value, int] = {}
        gain: dict[Value, int] = {}
        seed_values = set(fixed.items())
        for goal in uncovered:
            for value in goal:
                gain[value] = gain.get(value, 0) + 1
                if seed_values.intersection(goal) and value not in seed_values:
                    gain_with_seed[value] = gain_with_seed.get(value, 0) + 1
        ranking = {}
        for name, versions in chosen.items():
            if name in fixed:
                continue
            ranking[name] = sorted(
                versions,
                key=lambda v: (
                    -gain_with_seed.get((name, v), 0),
                    -gain.get((name, v), 0),
                    versions.index(v),
                ),
            )
        return ranking


def _greedy(
    chosen: dict[NormalizedName, tuple[Version, ...]],
    seed: tuple[Value, ...],
    uncovered: dict[Any, None],
    rng: random.Random,
    arity: int,
    tries: int = 16,
) -> dict[NormalizedName, Version]:
    """AETG-style: complete the seed value by value, each time taking the version that
    covers most uncovered goals with what is already chosen; of several orders of the
    packages keep the assignment covering most."""
    best: dict[NormalizedName, Version] = dict(seed)
    best_score = -1
    rest = [n for n in chosen if n not in best]
    for attempt in range(tries):
        order = rest[:] if attempt == 0 else rng.sample(rest, len(rest))
        assignment = dict(seed)
        for name in order:
            assignment[name] = max(
                chosen[name],
                key=lambda v: (_gain((name, v), assignment, uncovered), -chosen[name].index(v)),
            )
        values = [(n, assignment[n]) for n in chosen]
        score = sum(goal in uncovered for goal in _goals_of(values, arity))
        if score > best_score:
            best, best_score = assignment, score
    return best


def _gain(
    value: Value, assignment: dict[NormalizedName, Version], uncovered: dict[Any, None]
) -> int:
    """How many uncovered goals (single values or pairs) ``value`` completes."""
    gain = int((value,) in uncovered)
    for other in assignment.items():
        gain += ((value, other) in uncovered) + ((other, value) in uncovered)
    return gain


def _goals_of(values: Iterable[Value], arity: int) -> Iterable[tuple[Value, ...]]:
    return itertools.combinations(values, arity)


def mark_known(
    plan: Plan | Iterable[Combo], incompatibilities: Iterable[Incompatibility]
) -> dict[str, str]:
    """Combination id -> the label of the first known incompatibility it holds
    (e.g. ``numpy 2.0.2 x pandas 2.1.1``), for combinations that hold one."""
    known = list(incompatibilities)
    combos = plan.combos if isinstance(plan, Plan) else plan
    marked: dict[str, str] = {}
    for combo in combos:
        pins: dict[str, str] = {p.name: str(p.version) for p in combo.pins}
        hit = next((i for i in known if i.matches(pins)), None)
        if hit is not None:
            marked[combo.id] = hit.label()
    return marked
