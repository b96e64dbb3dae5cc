"""A base's nightly timeline from its recorded results: what each night saw new,
which combinations went from pass to fail, whether the known-good lock moved.
Pure: the caller hands in the results, the first-seen dates and the lock's choice."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import datetime

from packaging.utils import NormalizedName
from packaging.version import Version

from compat.model import version_changes
from compat.report.data import Night, ResultEntry, RunKind, standing_entry
from compat.report.view import label

# Picks the combination ``compat lock`` would lock among passing results (None: nothing).
ChooseLock = Callable[[Sequence[ResultEntry]], ResultEntry | None]


def nights(
    entries: Sequence[ResultEntry],
    *,
    first_seen: Mapping[tuple[NormalizedName, Version], datetime],
    choose_lock: ChooseLock,
) -> tuple[Night, ...]:
    """One ``Night`` per nightly run among ``entries`` (a base's results, each with
    its run and time), oldest first."""
    timed = sorted((e for e in entries if e.created and e.run_id), key=_when)
    starts: dict[str, datetime] = {}
    for entry in timed:
        if entry.kind is RunKind.NIGHTLY and entry.run_id is not None:
            starts.setdefault(entry.run_id, _when(entry))
    order = sorted(starts, key=starts.__getitem__)
    out = []
    for i, run_id in enumerate(order):
        start = starts[run_id]
        until = starts[order[i + 1]] if i + 1 < len(order) else None
        before = [e for e in timed if _when(e) < start]
        tonight = [e for e in timed if e.run_id == run_id]
        after = before + tonight
        latest_before = _latest(before)
        regressions = tuple(
            label(e)
            for e in _latest(tonight).values()
            if not e.verdict.ok
            and not e.verdict.undecided
            and (prior := latest_before.get(e.combo_id)) is not None
            and prior.verdict.ok
        )
        new = sorted(
            (name, version)
            for (name, version), seen in first_seen.items()
            if seen >= start and (until is None or seen < until)
        )
        out.append(
            Night(
                started=start,
                results=len(tonight),
                new_versions=tuple(f"{n} {v}" for n, v in new),
                regressions=regressions,
                lock_change=_lock_change(choose_lock(passing(before)), choose_lock(passing(after))),
            )
        )
    return tuple(out)


def _when(entry: ResultEntry) -> datetime:
    assert entry.created is not None
    return entry.created


def _latest(entries: Sequence[ResultEntry]) -> dict[str, ResultEntry]:
    """The standing result of each combination (``entries`` oldest first): its
    latest, except that a deep failure outranks a later, shallower pass."""
    by_combo: dict[str, list[ResultEntry]] = {}
    for entry in entries:
        by_combo.setdefault(entry.combo_id, []).append(entry)
    held = {combo: standing_entry(history) for combo, history in by_combo.items()}
    return {combo: entry for combo, entry in held.items() if entry is not None}


def passing(entries: Sequence[ResultEntry]) -> list[ResultEntry]:
    """The combinations whose standing result among ``entries`` (oldest first) passed."""
    return [e for e in _latest(entries).values() if e.verdict.ok]


def _lock_change(old: ResultEntry | None, new: ResultEntry | None) -> str | None:
    if new is None or (old is not None and old.combo_id == new.combo_id):
        return None
    if old is None:
        return f"first lock: {label(new)}"
    return ", ".join(map(str, version_changes(old.versions, new.versions))) or label(new)
