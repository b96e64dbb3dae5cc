"""The one family of errors compat raises, and the one table of exit codes.

Each kind has its own exit code and a message that says what to do next; ``main()``
prints it without a traceback. Every code means one thing: a caller's script can
branch on it (retry on 3, install an engine on 4, fix the command line on 2).
"""

from __future__ import annotations

import difflib
import enum
import errno
import shlex
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TypeGuard, TypeVar

from compat.model import Pin

E = TypeVar("E", bound=BaseException)


class ExitCode(enum.IntEnum):
    """The process exit status, one meaning per code (listed in the README)."""

    OK = 0
    ERROR = 1  # anything not listed below
    USAGE = 2  # the command line, a matrix or lock file, or a package name is wrong
    INDEX_UNAVAILABLE = 3  # the package index cannot be reached, or the offline cache lacks data
    NO_ENGINE = 4  # no container engine answers
    HARNESS = 5  # running combinations failed for a reason outside any one combination
    INCOMPATIBLE = 6  # --fail-on-incompatible: some combination (or a built image) failed
    STORE = 7  # the results database cannot be opened, read or written
    NOTHING_KNOWN_GOOD = 8  # no passing combination is recorded for what was asked
    IMAGE_UNAVAILABLE = 9  # the image is not there and cannot be pulled
    LOCK_CHANGED = 10  # nightly: a base's best known-good combination differs from its lock
    REGRESSION = 11  # nightly: a combination that passed before fails now
    INTERRUPTED = 130  # Ctrl-C, as a shell reports SIGINT


class CompatError(Exception):
    """Root of every error compat reports to the user."""

    exit_code: ExitCode = ExitCode.ERROR


# -- the user asked for something that cannot be -----------------------------------------


class UsageError(CompatError):
    """The command line or an input file is wrong."""

    exit_code = ExitCode.USAGE


class MatrixError(UsageError):
    """A matrix file is invalid: names the file, the key and the problem."""

    def __init__(self, path: object, key: str, problem: str) -> None:
        self.path = str(path)
        self.key = key
        self.problem = problem
        where = f"{self.path}: {key}" if key else self.path
        super().__init__(f"{where}: {problem}")


class PlanTooLarge(UsageError):
    """The exhaustive strategy would exceed its cap."""


class LockError(UsageError):
    """The combination cannot be locked as asked (or a lock directory is unreadable)."""


class ProjectNotFound(UsageError):
    """The index has no project of that name: a misspelling, not an outage.
    ``known``: project names to suggest the closest of."""

    def __init__(self, name: str, index_url: str, known: Iterable[str] = ()) -> None:
        self.name = name
        close = difflib.get_close_matches(name, sorted(set(known)), n=1, cutoff=0.75)
        hint = f"did you mean {close[0]!r}? Else check" if close else "check"
        super().__init__(f"{name!r} is not on {index_url}: {hint} the spelling or --index-url")


# -- the package index -------------------------------------------------------------------


class IndexUnavailable(CompatError):
    """The package index could not be reached, or the offline cache lacks data."""

    exit_code = ExitCode.INDEX_UNAVAILABLE


class OfflineCacheMiss(IndexUnavailable):
    """``--offline`` was given and the cache lacks what is needed."""

    def __init__(self, missing: list[str]) -> None:
        self.missing = missing
        listed = "\n  ".join(missing)
        super().__init__(
            f"--offline: the cache lacks {len(missing)} item(s):\n  {listed}\n"
            "Run the same command once without --offline to fill the cache."
        )


class MetadataUnavailable(IndexUnavailable):
    """One file's core metadata could not be read: its hash does not match, the
    archive is broken, or it holds no METADATA/PKG-INFO."""

    def __init__(self, filename: str, problem: str) -> None:
        self.filename = filename
        self.problem = problem
        super().__init__(f"metadata of {filename}: {problem}")


class MetadataNotRecorded(IndexUnavailable):
    """A snapshot index has the file but no metadata for its release."""

    def __init__(self, name: str, version: str, directory: str) -> None:
        self.name = name
        self.version = version
        super().__init__(
            f"the snapshot in {directory} has no metadata recorded for {name} {version}: "
            "re-record it (tests/data/record_index.py) or use a version it has"
        )


class FilesUnavailable(IndexUnavailable):
    """What combinations install could not be fetched (the network, the index's file
    host, content that does not match its hash, an sdist's build requirements): the
    combinations needing it did not run, and nothing is recorded for them, as a
    fetch says nothing of whether packages work together. ``problems``: one line
    each."""

    def __init__(self, problems: Sequence[str], *, not_run: int) -> None:
        self.problems = list(problems)
        self.not_run = not_run
        listed = "\n  ".join(self.problems)
        super().__init__(
            f"{not_run} combination(s) did not run and nothing is recorded for them: "
            f"what they install could not be fetched:\n  {listed}\n"
            "Run the same command again to test them."
        )


# -- containers and the harness ----------------------------------------------------------


class EngineUnavailable(CompatError):
    """No container engine answers."""

    exit_code = ExitCode.NO_ENGINE


class ImageUnavailable(CompatError):
    """An image could not be found or pulled."""

    exit_code = ExitCode.IMAGE_UNAVAILABLE


class HarnessError(CompatError):
    """Running combinations failed for a reason outside any one combination."""

    exit_code = ExitCode.HARNESS


class CommandFailed(HarnessError):
    """A command exited non-zero (or ran out of time) where success was required."""

    def __init__(self, argv: Sequence[str], *, returncode: int | None, output: str) -> None:
        self.argv = list(argv)
        self.returncode = returncode  # None: it ran out of time
        what = "timed out" if returncode is None else f"exited {returncode}"
        tail = "\n".join(output.splitlines()[-20:])
        super().__init__(f"{shlex.join(self.argv)} {what}\n{tail}".rstrip())


class FetchFailed(HarnessError):
    """A file could not be downloaded, or its content does not match its hash."""

    def __init__(self, filename: str, url: str, reason: str) -> None:
        self.filename = filename
        self.url = url
        self.reason = reason
        super().__init__(f"{filename} ({url}): {reason}")


class UnpackFailed(HarnessError):
    """A wheel could not be unpacked (corrupt archive, bad RECORD, ...)."""

    def __init__(self, wheel: Path, reason: str) -> None:
        self.wheel = wheel
        self.reason = reason
        super().__init__(f"cannot unpack {wheel.name}: {reason}")


class BuildFailed(HarnessError):
    """An sdist did not turn into a wheel. A result, not a crash of the scan."""

    def __init__(
        self,
        pin: Pin,
        reason: str,
        *,
        log: str = "",
        duration: float = 0.0,
        timed_out: bool = False,  # a loaded machine, maybe: undecided, like a timed-out check
        unreachable: bool = False,  # a build requirement out of reach: no verdict at all
    ) -> None:
        self.pin = pin
        self.reason = reason
        self.log = log
        self.duration = duration
        self.timed_out = timed_out
        self.unreachable = unreachable
        super().__init__(f"building {pin} from source failed: {reason}")

    @property
    def transient(self) -> bool:
        """It says nothing about the package: not cached."""
        return self.timed_out or self.unreachable


class DiskFull(HarnessError):
    """The host's disk (the cache) filled up: a fault of the machine, never a verdict
    on a combination. The run stops; what was recorded before is kept."""

    def __init__(self, path: Path, exc: OSError) -> None:
        self.path = path
        super().__init__(
            f"no space left writing {path} ({exc.strerror or exc}): free space there, or "
            "give the cache another place (--cache-dir), and run again. Combinations "
            "finished before are recorded; the ones not finished are not"
        )


def with_more(exc: E, text: str) -> E:
    """``exc`` again (its class, its data) with ``text`` on a line of its own after its
    message: what a workflow knows that the layer that raised it did not."""
    more = type(exc).__new__(type(exc))
    more.__dict__.update(exc.__dict__)
    more.args = (f"{exc}\n{text}",)
    return more


def out_of_space(exc: BaseException) -> TypeGuard[OSError]:
    """Whether ``exc`` is the disk (or the user's quota) filling up."""
    return isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT)


_LOG_TAIL = 40  # lines of a failed image build shown in the message


class ImageBuildFailed(HarnessError):
    """The engine could not build the image; carries the build log's tail."""

    def __init__(self, tag: str, reason: str, log_lines: list[str]) -> None:
        self.tag = tag
        self.reason = reason
        self.log = "\n".join(log_lines)
        tail = "\n".join(log_lines[-_LOG_TAIL:])
        super().__init__(f"building {tag} failed: {reason}\n{tail}".rstrip())


class WheelhouseIncomplete(HarnessError):
    """Files the lock pins are not in the wheelhouse."""

    def __init__(self, root: Path, missing: list[Pin]) -> None:
        self.missing = missing
        listed = "\n  ".join(f"{p} ({p.filename})" for p in missing)
        super().__init__(
            f"the wheelhouse {root} lacks {len(missing)} pinned file(s):\n  {listed}\n"
            "Scan this combination first (it fetches every file), or build without a "
            "wheelhouse to download from the index."
        )


# -- what was found ----------------------------------------------------------------------


class IncompatibleFound(CompatError):
    """``--fail-on-incompatible``: some combination did not pass."""

    exit_code = ExitCode.INCOMPATIBLE


class NothingKnownGood(CompatError):
    """No passing combination is recorded for what was asked."""

    exit_code = ExitCode.NOTHING_KNOWN_GOOD


class LockChanged(CompatError):
    """The best known-good combination of a base differs from its committed lock."""

    exit_code = ExitCode.LOCK_CHANGED


class RegressionFound(CompatError):
    """A combination that passed before (or the control) fails now."""

    exit_code = ExitCode.REGRESSION


# -- the results database and the outputs ------------------------------------------------


class StoreError(CompatError):
    """The results database cannot be opened, read or written."""

    exit_code = ExitCode.STORE


class SchemaTooNew(StoreError):
    """The database was written by a newer compat whose schema this one does not know."""

    def __init__(self, url: str, found: int, known: int) -> None:
        self.url = url
        self.found = found
        self.known = known
        super().__init__(
            f"the results database {url} has schema version {found}; this compat understands "
            f"versions up to {known}. Upgrade compat, or point --db (or COMPAT_DB) at another "
            "database."
        )


class ReportWriteError(CompatError):
    """The report could not be written."""

    def __init__(self, path: Path, reason: str) -> None:
        self.path = path
        super().__init__(f"cannot write the report to {path}: {reason}; choose another --output")
