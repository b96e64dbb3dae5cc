"""A release's contemporaneous stack: its partners as they stood on its release day.

The reference a check is calibrated against: a release worked with the partners
current when it came out (its authors tested that), so a check that fails such a
stack is suspect before the stack is. Pure given a dated index.

"Clipped to what installs": a target can only install a version that has a file
for it (a wheel for its Python and platform, or an sdist where building is
allowed). When the release itself or a partner had no such version yet on the
release day (scikit-learn 1.0 is from 2021, the first numpy wheel for Python 3.11
from August 2022), the stack is taken on the first later day on which every one of
them had one, and the projects that moved the day are named.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from packaging.specifiers import SpecifierSet
from packaging.utils import NormalizedName, canonicalize_name
from packaging.version import Version

from compat.errors import UsageError
from compat.index.asof import AsOfIndex, DatedIndex, end_of_day, release_time
from compat.matrix import BuildPolicy
from compat.model import Combo, DistFile, FileKind
from compat.resolve.candidates import CandidateSource, requested
from compat.resolve.resolver import Conflict, Resolver
from compat.targets.target import Target

# When the stack of the clipped day does not resolve (a dependency of a partner
# had no file for the target yet either), later days are tried, this far apart.
RETRY_STEP = timedelta(days=7)
RETRIES = 8
WHEELS_ONLY = BuildPolicy(allow_all=False)  # what a base without a compiler installs


@dataclass(frozen=True, kw_only=True, slots=True)
class Stack:
    """One release with its contemporaneous partners, resolved for one target."""

    name: NormalizedName
    version: Version
    released: date  # the release's first upload (UTC)
    as_of: date  # the day the partners were taken from: ``released`` unless clipped
    clipped: tuple[NormalizedName, ...]  # what had no installable version on ``released``
    outcome: Combo | Conflict

    @property
    def combo(self) -> Combo | None:
        return self.outcome if isinstance(self.outcome, Combo) else None

    def label(self) -> str:
        return f"{self.name} {self.version}"

    def to_json(self) -> dict[str, Any]:
        return {
            "release": f"{self.name}=={self.version}",
            "released": self.released.isoformat(),
            "as_of": self.as_of.isoformat(),
            "clipped": list(self.clipped),
            "outcome": self.outcome.to_json(),
        }


def installable_since(
    index: DatedIndex, target: Target, name: NormalizedName, build: BuildPolicy
) -> dict[Version, datetime]:
    """Per final release of ``name``: when its first file the target can install was
    uploaded (yanked releases left out)."""
    since: dict[Version, datetime] = {}
    for file in index.files(name):
        if file.yanked or file.version.is_prerelease or not _installs(file, target, name, build):
            continue
        when = index.uploaded(file)
        if when is not None and (file.version not in since or when < since[file.version]):
            since[file.version] = when
    return since


def _installs(file: DistFile, target: Target, name: NormalizedName, build: BuildPolicy) -> bool:
    if not target.accepts_python(file):
        return False
    if file.kind is FileKind.SDIST:
        return build.may_build(name)
    return name not in build.no_binary and target.tag_rank(file) is not None


def contemporaneous_stack(
    index: DatedIndex,
    target: Target,
    name: str,
    version: Version,
    partners: Sequence[str],
    *,
    build: BuildPolicy = WHEELS_ONLY,
) -> Stack:
    """``name==version`` with the newest of each partner as the index stood on its
    release day, clipped to what installs for ``target`` (see the module's
    docstring), with every dependency resolved as of that same day.

    The release must have a file the target installs; without one there is no
    stack to speak of, and that is a ``UsageError``."""
    project = canonicalize_name(name)
    own = [f for f in index.files(project) if f.version == version]
    released = release_time(index, own)
    if released is None:
        raise UsageError(f"{project} {version} is not on the index (or has no upload time)")
    mine = installable_since(index, target, project, build).get(version)
    if mine is None:
        raise UsageError(f"{project} {version} has no file that installs on {target.describe()}")
    others = [canonicalize_name(p) for p in partners if canonicalize_name(p) != project]
    starts: dict[NormalizedName, datetime] = {project: mine}
    for partner in others:
        since = installable_since(index, target, partner, build)
        if not since:
            raise UsageError(f"no release of {partner} installs on {target.describe()}")
        starts[partner] = min(since.values())
    day = max(released, *starts.values()).date()
    clipped = tuple(n for n, t in starts.items() if t.date() > released.date())
    requests = [requested(project, SpecifierSet(f"=={version}"))]
    requests += [requested(p) for p in others]
    outcome: Combo | Conflict
    for attempt in range(RETRIES + 1):
        as_of = day + attempt * RETRY_STEP
        source = CandidateSource(AsOfIndex(index, end_of_day(as_of)), target, build)
        outcome = Resolver(source).resolve(requests)
        if isinstance(outcome, Combo):
            break
    else:
        as_of = day  # report the conflict of the day the stack should have had
        source = CandidateSource(AsOfIndex(index, end_of_day(day)), target, build)
        outcome = Resolver(source).resolve(requests)
    return Stack(
        name=project,
        version=version,
        released=released.date(),
        as_of=as_of,
        clipped=clipped,
        outcome=outcome,
    )
