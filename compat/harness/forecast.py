"""How many check runs a plan will execute, before anything runs.

A combination's import checks (one per installed distribution) and the built-in
checks that apply to it (their needs installed, valid for its versions, as the
runner decides) run unless their outcome can be reused: an earlier combination
of the plan ran the check with the same inputs, or the results database keeps
one (``compat.harness.reuse``). A check's inputs are the distributions it
imported when it last ran on this target; one that never ran is taken to import
what it needs and what those require. Checks the plan cannot see (user checks,
``exec``, plugins) are not counted.

The combinations are run in an order that spreads the versions: the ones run at
the same time share few inputs, so that neither runs what the other is running.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass

from packaging.utils import NormalizedName
from packaging.version import Version

from compat.harness.reuse import IMPORT
from compat.model import Combo
from compat.smoke.checks import Check, builtin_checks

Requires = Callable[[NormalizedName, Version], Iterable[NormalizedName]]
"""The distributions a release requires (its extras left out)."""

Kept = Callable[[Combo], frozenset[str]]
"""The checks of a combination whose outcome the results database keeps."""


@dataclass(frozen=True, kw_only=True, slots=True)
class Forecast:
    """The check runs each combination (by id) will execute, and those reused."""

    runs: Mapping[str, int]
    reused: int

    @property
    def total(self) -> int:
        return sum(self.runs.values())


def spread(combos: Sequence[Combo], *, apart: int = 2) -> tuple[Combo, ...]:
    """``combos`` in an order where each differs in as many requested packages as it
    can from every one of the ``apart`` before it (then from the one just before;
    the first stays first, ties keep the order).

    Combinations that run at the same time share the fewest check inputs, so two
    of them rarely both run a check for the same inputs before either has kept
    its outcome. With two at a time, the one still running when the next starts
    is as often two places back as one: differing from the one before alone would
    put a neighbour of it there (every combination of the six-package matrix was
    one package away from the one two places back)."""
    if not combos:
        return ()
    names = sorted({n for combo in combos for n in combo.requested})
    left = [(combo, [combo.versions.get(n) for n in names]) for combo in combos]
    order = [left.pop(0)]

    def apart_from(i: int) -> tuple[int, int, int]:
        differ = [
            sum(a != b for a, b in zip(left[i][1], versions, strict=True))
            for _, versions in order[-apart:]
        ]
        return min(differ), differ[-1], -i

    while left:
        order.append(left.pop(max(range(len(left)), key=apart_from)))
    return tuple(combo for combo, _ in order)


class _Closure:
    """What a set of distributions requires, transitively, in one combination
    (the releases' requirements asked once)."""

    def __init__(self, requires: Requires) -> None:
        self._requires = requires
        self._known: dict[tuple[NormalizedName, Version], frozenset[NormalizedName]] = {}

    def __call__(self, names: Iterable[str], versions: Mapping[str, Version]) -> frozenset[str]:
        found: set[str] = set()
        todo = [NormalizedName(n) for n in names if n in versions]
        while todo:
            name = todo.pop()
            if name in found:
                continue
            found.add(name)
            release = (name, versions[name])
            if release not in self._known:
                self._known[release] = frozenset(self._requires(*release))
            todo += [n for n in self._known[release] if n in versions]
        return frozenset(found)


def forecast(
    combos: Sequence[Combo],
    *,
    requires: Requires,
    learned: Mapping[str, frozenset[str]],
    kept: Kept | None = None,
    checks: Sequence[Check] | None = None,
) -> Forecast:
    """The check runs of ``combos`` run in that order. ``learned``: the input names
    each check had when it ran on this target (by check name)."""
    catalogue = builtin_checks() if checks is None else checks
    closure = _Closure(requires)
    seen: set[tuple[str, frozenset[str], tuple[tuple[str, Version], ...]]] = set()
    runs: dict[str, int] = {}
    reused = 0
    for combo in combos:
        versions = {str(name): version for name, version in combo.versions.items()}
        have = {name: str(version) for name, version in versions.items()}
        installed = frozenset(versions)
        taken = kept(combo) if kept else frozenset()
        applying: list[tuple[str, Iterable[str]]] = [
            (f"{IMPORT}{name}", (name,)) for name in sorted(versions)
        ] + [
            (check.name, check.needs)
            for check in catalogue
            if all(n in versions for n in check.needs) and check.invalid_for(have) is None
        ]
        count = 0
        for name, needs in applying:
            inputs = learned.get(name) or closure(needs, versions)
            step = (name, installed, tuple(sorted((n, versions[n]) for n in inputs if n in have)))
            if step in seen or name in taken:
                reused += 1
            else:
                count += 1
                seen.add(step)
        runs[combo.id] = count
    return Forecast(runs=runs, reused=reused)
