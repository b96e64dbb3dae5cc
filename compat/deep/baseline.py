"""The baseline of a dependent release: the same release with other partners,
against which its tests' failures here are compared.

Two sources, in this order: its contemporaneous stack (the partners as the
index stood on the day the release came out, resolved ``--as-of``), or the
newest known-good combination holding it on the same image. Either must hold
the same dependent release and the same partners, and differ from here in at
least one partner's version, or it could not tell anything.
"""

from __future__ import annotations

import enum
import hashlib
import logging
from collections.abc import Sequence
from dataclasses import dataclass

from packaging.utils import NormalizedName, canonicalize_name
from packaging.version import Version

from compat.errors import CompatError
from compat.index.asof import DatedIndex
from compat.index.base import Index
from compat.model import Combo
from compat.resolve.history import contemporaneous_stack
from compat.store import Reader
from compat.targets.target import Target

log = logging.getLogger("compat.deep")


class BaselineSource(enum.StrEnum):
    AS_OF = "as-of"  # the release's contemporaneous partners
    KNOWN_GOOD = "known-good"  # the newest known-good combination holding it


@dataclass(frozen=True, kw_only=True, slots=True)
class Baseline:
    dependent: NormalizedName
    version: Version
    combo: Combo
    source: BaselineSource

    def cache_key(self, image_id: str, tooling: Combo | None = None) -> str:
        """What a cached baseline outcome is stored under: the dependent
        release, the baseline's pins (file hashes included), the image, and the
        test layer that ran it (another pytest may decide other outcomes)."""
        layer = tooling.id if tooling is not None else ""
        digest = hashlib.sha256(f"{self.dependent}=={self.version}\n{image_id}\n{layer}".encode())
        for pin in self.combo.pins:
            digest.update(f"\n{pin.name}=={pin.version} {pin.sha256}".encode())
        return digest.hexdigest()[:24]


def partners_of(combo: Combo, dependent: NormalizedName) -> tuple[NormalizedName, ...]:
    """The combination's requested packages other than the dependent."""
    return tuple(n for n in combo.requested if n != dependent)


def usable(here: Combo, candidate: Combo, dependent: NormalizedName) -> bool:
    """``candidate`` holds the same dependent release and every partner of
    ``here``, and at least one of those partners at another version."""
    theirs = candidate.versions
    mine = here.versions
    if theirs.get(dependent) != mine.get(dependent):
        return False
    partners = partners_of(here, dependent)
    if any(p not in theirs for p in partners):
        return False
    return any(theirs[p] != mine.get(p) for p in partners)


def choose_baseline(
    here: Combo,
    dependent: str,
    *,
    contemporaneous: Combo | None = None,
    known_good: Sequence[Combo] = (),
) -> Baseline | None:
    """The baseline for ``dependent`` of ``here``, or None when there is none:
    the contemporaneous stack if usable, else the known-good combination
    (same image) with the newest partners."""
    name = canonicalize_name(dependent)
    version = here.versions.get(name)
    if version is None:
        return None
    if contemporaneous is not None and usable(here, contemporaneous, name):
        return Baseline(
            dependent=name, version=version, combo=contemporaneous, source=BaselineSource.AS_OF
        )
    partners = partners_of(here, name)
    candidates = [c for c in known_good if usable(here, c, name)]
    if not candidates:
        return None
    newest = max(candidates, key=lambda c: tuple(c.versions[p] for p in partners))
    return Baseline(dependent=name, version=version, combo=newest, source=BaselineSource.KNOWN_GOOD)


def baseline_for(
    here: Combo, dependent: NormalizedName, *, index: Index, target: Target, store: Reader
) -> Baseline | None:
    """The dependent release's contemporaneous stack when the index knows upload
    times, else the newest known-good combination holding it on this image."""
    contemporaneous = contemporaneous_for(here, dependent, index=index, target=target)
    known_good = [g.combo for g in store.known_good(target)]
    return choose_baseline(here, dependent, contemporaneous=contemporaneous, known_good=known_good)


def contemporaneous_for(
    here: Combo, dependent: NormalizedName, *, index: Index, target: Target
) -> Combo | None:
    """The dependent release with ``here``'s requested partners as they stood on
    its release day, when the index knows upload times."""
    version = here.versions.get(dependent)
    if version is None or not isinstance(index, DatedIndex):
        return None
    try:
        stack = contemporaneous_stack(
            index, target, dependent, version, partners_of(here, dependent)
        )
    except CompatError as exc:
        log.info("%s %s: no contemporaneous stack: %s", dependent, version, exc)
        return None
    return stack.outcome if isinstance(stack.outcome, Combo) else None
