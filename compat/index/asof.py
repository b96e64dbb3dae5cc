"""The index as it stood on a given day, as uv's ``--exclude-newer`` sees it.

Every file carries its upload time (PEP 700 ``upload-time`` in the PEP 691 JSON
simple API). A file uploaded after the end of the day (UTC) is invisible, so a
version whose files all came later does not exist, and a wheel added to an old
release later on is not there yet either.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from datetime import UTC, date, datetime, time, timedelta
from typing import Protocol, runtime_checkable

from packaging.utils import NormalizedName, canonicalize_name

from compat.errors import UsageError
from compat.index.base import Index
from compat.model import Combo, CoreMetadata, DistFile, Pin

_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


@runtime_checkable
class DatedIndex(Index, Protocol):
    """An index that knows when each of its files was uploaded."""

    def uploaded(self, file: DistFile) -> datetime | None:
        """The file's upload time (timezone-aware), or None when the index gave none."""
        ...


def parse_as_of(text: str) -> date:
    """``YYYY-MM-DD`` as a date; anything else is a usage error saying what is wanted."""
    value = text.strip()
    if not _DATE.fullmatch(value):
        raise UsageError(f"--as-of takes a date as YYYY-MM-DD, e.g. 2023-06-01, not {text!r}")
    try:
        return date.fromisoformat(value)
    except ValueError as exc:
        raise UsageError(f"--as-of {text}: not a calendar date ({exc})") from None


def end_of_day(day: date) -> datetime:
    """The first instant after ``day`` (UTC): files uploaded before it are visible."""
    return datetime.combine(day + timedelta(days=1), time(), tzinfo=UTC)


def release_time(index: DatedIndex, files: Iterable[DistFile]) -> datetime | None:
    """When a release appeared: the earliest upload among its files."""
    times = [t for t in (index.uploaded(f) for f in files) if t is not None]
    return min(times) if times else None


class AsOfIndex:
    """``Index`` over another one, hiding every file uploaded at or after ``cutoff``."""

    def __init__(self, inner: DatedIndex, cutoff: datetime) -> None:
        if cutoff.tzinfo is None:
            raise ValueError("the cutoff must be timezone-aware")
        self.inner = inner
        self.cutoff = cutoff
        self._files: dict[NormalizedName, tuple[DistFile, ...]] = {}

    @classmethod
    def on(cls, inner: Index, day: date) -> AsOfIndex:
        """The index as it stood at the end of ``day``."""
        if not isinstance(inner, DatedIndex):
            raise UsageError(f"--as-of needs upload times, which {inner!r} does not record")
        return cls(inner, end_of_day(day))

    @property
    def day(self) -> date:
        return (self.cutoff - timedelta(microseconds=1)).date()

    def files(self, name: NormalizedName) -> Sequence[DistFile]:
        project = canonicalize_name(name)
        cached = self._files.get(project)
        if cached is not None:
            return cached
        every = self.inner.files(project)
        times = [(f, self.inner.uploaded(f)) for f in every]
        if every and all(t is None for _, t in times):
            # Silently hiding every file would read as "no such release"; say why.
            raise UsageError(
                f"the index gives no upload times for {project} (PEP 700 upload-time): "
                "--as-of needs an index that does, such as PyPI's JSON simple API"
            )
        kept = tuple(f for f, t in times if t is not None and t < self.cutoff)
        self._files[project] = kept
        return kept

    def uploaded(self, file: DistFile) -> datetime | None:
        return self.inner.uploaded(file)

    def has(self, pin: Pin) -> bool:
        """Whether ``pin``'s file was on the index by then."""
        return any(f.sha256 == pin.sha256 for f in self.files(pin.name))

    def has_all(self, combo: Combo) -> bool:
        """Whether every file ``combo`` pins was on the index by then."""
        return all(self.has(p) for p in combo.pins)

    def metadata(self, file: DistFile) -> CoreMetadata:
        return self.inner.metadata(file)

    def prefetch(self, files: Iterable[DistFile]) -> None:
        self.inner.prefetch(files)

    def __repr__(self) -> str:
        return f"AsOfIndex({self.inner!r}, {self.day.isoformat()})"
