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
from collections.abc import Sequence
from dataclasses import dataclass

from packaging.utils import NormalizedName, canonicalize_name
from packaging.version import Version

from compat.model import Combo


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
