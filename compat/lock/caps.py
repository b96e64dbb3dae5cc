"""Caps on dependencies nobody requested: which releases the requested pins failed
with, and what a lock holds back. Pure functions over stored results."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from compat.model import Cap, Combo
from compat.store.records import KnownGood, StoredResult


def _requested(combo: Combo) -> tuple[tuple[str, str], ...]:
    return tuple(sorted((n, str(combo.version_of(n))) for n in combo.requested))


def lowest(caps: Iterable[Cap]) -> tuple[Cap, ...]:
    """The lowest of the caps per distribution, by name."""
    found: dict[str, Cap] = {}
    for cap in caps:
        if cap.name not in found or cap.below < found[cap.name].below:
            found[cap.name] = cap
    return tuple(found[n] for n in sorted(found))


def merged_caps(failures: Iterable[StoredResult]) -> tuple[Cap, ...]:
    """The caps the failures blame, the lowest per distribution."""
    return lowest(cap for f in failures for cap in Cap.blamed(f.result, f.id))


def caps_for(combo: Combo, failures: Iterable[StoredResult]) -> tuple[Cap, ...]:
    """What a lock of ``combo`` holds back: each dependency nobody requested that
    failed the same requested pins at a release ``combo`` stays below."""
    same = [f for f in failures if _requested(f.result.combo) == _requested(combo)]
    return tuple(
        cap
        for cap in merged_caps(same)
        if cap.name not in combo.requested
        and (held := combo.versions.get(cap.name)) is not None
        and held < cap.below
    )


def blamed(
    failures: Sequence[StoredResult], known_good: Iterable[KnownGood]
) -> list[tuple[KnownGood, tuple[Cap, ...]]]:
    """Requested pins whose latest result failed by a dependency nobody requested
    (and that no later run passed), as candidates to rank, with the caps all their
    failures blame."""
    groups: dict[tuple[tuple[str, str], ...], list[StoredResult]] = {}
    for failure in failures:
        groups.setdefault(_requested(failure.result.combo), []).append(failure)
    passed = {_requested(g.combo): g.tested for g in known_good}
    found = []
    for key, group in groups.items():
        newest = max(group, key=lambda f: (f.created, f.id))
        if key in passed and passed[key] > newest.created:
            continue  # already passed with a later resolution: a known-good candidate
        caps = merged_caps(group)
        if not Cap.blamed(newest.result) or not caps:
            continue  # its latest failure blames only what was requested
        candidate = KnownGood(
            combo=newest.result.combo,
            result_id=newest.id,
            base=newest.base,
            image=newest.image,
            image_id=newest.result.image_id,
            tested=newest.created,
        )
        found.append((candidate, caps))
    return found


__all__ = ["blamed", "caps_for", "lowest", "merged_caps"]
