"""Bisecting a failure, as values: delta debugging (Zeller's ddmin) over the
packages whose versions differ between a passing and a failing combination, and
what counts as the same failure when a probe mixes them. The workflow that runs the
probes is ``compat.workflows.bisect``."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from packaging.utils import NormalizedName

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


__all__ = ["ddmin", "differences", "same_failure"]
