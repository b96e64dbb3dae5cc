"""Which known-good combination to lock: one pure ranking over what the results
database says passed. The store finds the candidates; this decides among them."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from functools import cmp_to_key

from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.utils import NormalizedName, canonicalize_name
from packaging.version import Version

from compat.errors import UsageError
from compat.matrix import Matrix
from compat.model import Combo, Depth, Incompatibility
from compat.store.records import KnownGood

PREFERENCES = ("newest", "oldest")


@dataclass(frozen=True, kw_only=True, slots=True)
class Ranking:
    """Candidates that meet the constraints, best first, and how many more were left
    out for holding a known incompatibility."""

    ranked: tuple[KnownGood, ...]
    avoided: int = 0

    @property
    def best(self) -> KnownGood | None:
        return self.ranked[0] if self.ranked else None


@dataclass(frozen=True, kw_only=True, slots=True)
class Stack:
    """What a lock is of: a matrix's name and the packages it requests. A lock holds
    only combinations requesting exactly these packages."""

    name: str
    packages: frozenset[NormalizedName]
    path: str | None = None  # the matrix file, for the commands a message suggests

    @classmethod
    def of(cls, matrix: Matrix, path: str | None = None) -> Stack:
        return cls(name=matrix.name, packages=frozenset(matrix.names), path=path)

    @property
    def option(self) -> str:
        return f" --matrix {self.path}" if self.path else ""

    def holds(self, combo: Combo) -> bool:
        return frozenset(combo.requested) == self.packages


def of_stack(candidates: Sequence[KnownGood], stack: Stack | None, scope: str) -> list[KnownGood]:
    """The candidates of ``stack``. Without one: those of the one stack a matrix
    scanned on the scope (ad-hoc checks of other packages left out), all of them
    where no matrix ran, and a usage error naming the stacks where several did: a
    lock never picks among matrices."""
    if stack is not None:
        return [g for g in candidates if stack.holds(g.combo)]
    scanned: dict[frozenset[NormalizedName], set[str]] = {}
    for good in candidates:
        if good.matrix is not None:
            scanned.setdefault(frozenset(good.combo.requested), set()).add(good.matrix)
    if len(scanned) > 1:
        listed = "; ".join(
            sorted(
                f"{' or '.join(sorted(names))} ({len(s)} packages)" for s, names in scanned.items()
            )
        )
        raise UsageError(
            f"{scope} holds known-good combinations of {len(scanned)} matrices: {listed}. "
            "Say which to lock with --matrix FILE"
        )
    if not scanned:
        return list(candidates)
    (only,) = scanned
    return [g for g in candidates if frozenset(g.combo.requested) == only]


def rank_known_good(
    candidates: Iterable[KnownGood],
    *,
    prefer: str = "newest",
    constraints: Sequence[Requirement] = (),
    avoid: Iterable[Incompatibility] = (),
) -> Ranking:
    """Rank known-good combinations, best first.

    Every constraint must be met by the combination's pins (markers and extras are
    not looked at); a combination holding one of the ``avoid`` incompatibilities is
    left out. ``newest`` ranks by the highest versions of the requested packages,
    compared package by package: first the packages the constraints name, in their
    order, then the combinations' requested packages (those tested first, first);
    a combination lacking a package loses to one that has it. ``oldest`` ranks the
    versions the other way. Ties go to the most recently tested.
    """
    if prefer not in PREFERENCES:
        raise UsageError(f"prefer must be 'newest' or 'oldest', not {prefer!r}")
    wanted = [(canonicalize_name(r.name), r.specifier) for r in constraints]
    meeting = [g for g in candidates if all(_meets(g.combo, n, s) for n, s in wanted)]
    known = list(avoid)
    kept = [g for g in meeting if not any(_holds(g, i) for i in known)]
    order = list(dict.fromkeys(name for name, _ in wanted))
    for entry in sorted(kept, key=lambda g: (g.tested, g.combo.id)):
        order += [n for n in entry.combo.requested if n not in order]
    compare = _comparison(order, newest=prefer == "newest")
    return Ranking(
        ranked=tuple(sorted(kept, key=cmp_to_key(compare))), avoided=len(meeting) - len(kept)
    )


def _holds(good: KnownGood, incompatibility: Incompatibility) -> bool:
    """Whether ``good`` holds ``incompatibility``: its very failing versions, or
    versions its ranges take to fail too. Bisection tried only some of a range's
    releases: a pass the deep tier judged is evidence that outweighs the range
    (at depth deep the smoke suite ran too), so such a combination is kept."""
    pins = _pins(good.combo)
    if not incompatibility.matches(pins):
        return False
    failing = all(pins.get(n) == v for n, v in incompatibility.packages.items())
    return failing or good.depth is not Depth.DEEP


def _pins(combo: Combo) -> dict[str, str]:
    return {p.name: str(p.version) for p in combo.pins}


def _version(combo: Combo, name: str) -> Version | None:
    try:
        return combo.version_of(name)
    except KeyError:
        return None


def _meets(combo: Combo, name: NormalizedName, specifier: SpecifierSet) -> bool:
    version = _version(combo, name)
    return version is not None and specifier.contains(version, prereleases=True)


def _comparison(order: Sequence[str], *, newest: bool) -> Callable[[KnownGood, KnownGood], int]:
    def compare(a: KnownGood, b: KnownGood) -> int:
        for name in order:
            va, vb = _version(a.combo, name), _version(b.combo, name)
            if va == vb:
                continue
            if va is None or vb is None:
                return 1 if va is None else -1
            return -1 if (va > vb) == newest else 1
        if a.tested != b.tested:
            return -1 if a.tested > b.tested else 1
        return -1 if a.combo.id < b.combo.id else int(a.combo.id > b.combo.id)

    return compare


__all__ = ["PREFERENCES", "Ranking", "Stack", "of_stack", "rank_known_good"]
