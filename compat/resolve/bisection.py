"""Bisecting a failure, as values: delta debugging (Zeller's ddmin) over the
packages whose versions differ between a passing and a failing combination, and
what counts as the same failure when a probe mixes them. The workflow that runs the
probes is ``compat.workflows.bisect``."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

from packaging.specifiers import SpecifierSet
from packaging.utils import NormalizedName
from packaging.version import Version

from compat.model import Combo, PinChange, Verdict, changes_between

# Failures that show up while running the stack (not while preparing it) are one
# class: a numpy ABI break may surface as an import error or a crash depending on
# which check touches it first.
_RUNTIME = frozenset({Verdict.IMPORT_ERROR, Verdict.RUNTIME_ERROR, Verdict.CRASH})


def same_failure(
    verdict: Verdict,
    reference: Verdict,
    check: str | None = None,
    reference_check: str | None = None,
) -> bool:
    """Whether a probe's verdict reproduces the reference failure: the same kind, and
    in the same check where both are known (a probe that fails elsewhere, say on a
    missing library, shows another problem, not this one)."""
    if verdict.ok:
        return False
    if check and reference_check and check != reference_check:
        return False
    return verdict is reference or (verdict in _RUNTIME and reference in _RUNTIME)


def differences(good: Combo, failing: Combo) -> tuple[PinChange, ...]:
    """The packages that differ: ``old`` is the good version, ``new`` the failing one."""
    return changes_between(good, failing)


# -- delta debugging ---------------------------------------------------------------


def ddmin(
    changes: Sequence[NormalizedName],
    fails: Callable[[frozenset[NormalizedName]], bool],
) -> tuple[NormalizedName, ...]:
    """A 1-minimal subset of ``changes`` for which ``fails`` holds, assuming it holds
    for all of them and not for none. ``fails`` should cache: subsets repeat."""
    current = list(changes)
    n = 2
    while len(current) >= 2:
        size = len(current)
        chunks = [current[i * size // n : (i + 1) * size // n] for i in range(n)]
        chunks = [c for c in chunks if c]
        for chunk in chunks:
            if fails(frozenset(chunk)):
                current, n = chunk, 2
                break
        else:
            for chunk in chunks:
                rest = [c for c in current if c not in chunk]
                if len(chunks) > 2 and fails(frozenset(rest)):
                    current, n = rest, max(n - 1, 2)
                    break
            else:
                if n >= len(current):
                    break
                n = min(len(current), 2 * n)
    return tuple(current)


def ddmin_probes(changes: int) -> int:
    """About how many subsets ``ddmin`` tries among ``changes`` for a pair of causes,
    the usual incompatibility (fitted on every pair among 2 to 16 changes: within one
    probe of the mean), for a progress estimate."""
    return 0 if changes < 2 else max(1, round(5.7 * math.log2(changes) - 4))


# -- widening a culprit to the releases around it that fail too ------------------


def failing_edge(available: int, fails: Callable[[int], bool], budget: int) -> tuple[int, bool]:
    """How far a failure reaches in one direction from a failing release (offset 0)
    over ``available`` more releases, in at most ``budget`` probes: galloping out
    (offsets 1, 3, 7, ...) to the first pass, then halving between the last failing
    and that first passing offset. Returns the farthest offset known to fail (what
    fails is taken to be contiguous, as a break and its fix are) and whether the
    release after it is known to pass: an exact edge."""
    last_fail, first_pass, step = 0, None, 1
    while budget > 0 and first_pass is None and last_fail < available:
        at = min(last_fail + step, available)
        budget -= 1
        if fails(at):
            last_fail, step = at, step * 2
        else:
            first_pass = at
    while first_pass is not None and first_pass - last_fail > 1 and budget > 0:
        middle = (last_fail + first_pass) // 2
        budget -= 1
        if fails(middle):
            last_fail = middle
        else:
            first_pass = middle
    return last_fail, first_pass == last_fail + 1


def failing_range(
    releases: Sequence[Version], at: int, down: int, up: tuple[int, bool]
) -> SpecifierSet | None:
    """The releases (ascending) from ``down`` below ``at`` to ``up`` above it, as a
    specifier: ``<`` the next release where it is known to pass, else ``<=`` the last
    one known to fail (a release nobody tried is not claimed). None when the failure
    reaches no neighbour: the one version says it all."""
    reach, exact = up
    if down == 0 and reach == 0:
        return None
    upper = f"<{releases[at + reach + 1]}" if exact else f"<={releases[at + reach]}"
    return SpecifierSet(f">={releases[at - down]},{upper}")


__all__ = [
    "ddmin",
    "ddmin_probes",
    "differences",
    "failing_edge",
    "failing_range",
    "same_failure",
]
