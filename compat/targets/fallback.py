"""When this machine's own Python may answer for a base whose image cannot run here.

``--backend auto`` falls back to the host only where the host can answer the question
asked: a base of the host's own libc family (a glibc host for debian-slim or ubuntu, a
musl host for alpine), saying what differs. Where it cannot (alpine on a glibc host),
it stops with what to do instead: a musl question never gets a glibc answer.
"""

from __future__ import annotations

from dataclasses import dataclass

from compat.errors import ImageUnavailable
from compat.targets.profiles import profile
from compat.targets.target import Target


@dataclass(frozen=True, kw_only=True, slots=True)
class StandIn:
    """This machine answering for ``base``, whose image could not run here."""

    base: str
    image: str  # the base's default image, the one that could not run
    why: str  # the first line of why it could not
    differs: tuple[str, ...]  # what differs, e.g. "Python 3.11 here, 3.12 in python:3.12-slim"

    def line(self) -> str:
        """One line: whose answer this is and how it differs from the base's."""
        differs = "; ".join(self.differs) if self.differs else "no difference known"
        return (
            f"answered by this machine's own Python for {self.base} (stored as base host): "
            f"{differs}"
        )

    def to_lock(self) -> str:
        """What leads from these results to a lock of the base."""
        return (
            f"results of this machine are never locked; to lock {self.base}, pull "
            f"{self.image} and run `compat scan --base {self.base}`, or build an image of "
            f"{self.base}'s kind with python3 and run `compat scan --image REF`, then "
            "`compat lock` the same way"
        )


def stand_in(
    base: str, *, python: str | None, why: str, host: Target, host_distribution: str
) -> StandIn:
    """The host standing in for ``base`` (whose image could not run: ``why``), or
    ImageUnavailable (exit 9) when the host's libc family is not the base's."""
    prof = profile(base)
    release = prof.release(python)
    if host.libc is not prof.libc:
        raise ImageUnavailable(
            f"{why.rstrip('.')}; this machine's Python is built for {host.libc.value}, "
            f"{base} for {prof.libc.value}, so it cannot answer for {base}.\n"
            f"Pull or build an image of {base} (e.g. {release.image}) and pass "
            f"--image REF, or ask about this machine itself with --backend local."
        )
    differs = []
    if host.python != f"{release.python.major}.{release.python.minor}":
        differs.append(
            f"Python {host.python} here, {release.python.major}.{release.python.minor} "
            f"in {release.image}"
        )
    if host_distribution != release.distribution:
        differs.append(f"{host_distribution} here, {release.distribution} in {release.image}")
    if host.libc_version != release.libc_version:
        ours, theirs = host.libc_version, release.libc_version
        differs.append(
            f"{host.libc.value} {ours[0]}.{ours[1]} here, "
            f"{theirs[0]}.{theirs[1]} in {release.image}"
        )
    return StandIn(base=base, image=release.image, why=why, differs=tuple(differs))
