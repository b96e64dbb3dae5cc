"""The one family of errors compat raises. Each kind has its own exit code and a
message that says what to do next; ``main()`` prints it without a traceback."""

from __future__ import annotations


class CompatError(Exception):
    """Root of every error compat reports to the user."""

    exit_code = 1


class UsageError(CompatError):
    """The command line or an input file is wrong."""

    exit_code = 2


class MatrixError(UsageError):
    """A matrix file is invalid: names the file, the key and the problem."""

    def __init__(self, path: object, key: str, problem: str) -> None:
        self.path = str(path)
        self.key = key
        self.problem = problem
        where = f"{self.path}: {key}" if key else self.path
        super().__init__(f"{where}: {problem}")


class IndexUnavailable(CompatError):
    """The package index could not be reached, or the offline cache lacks data."""

    exit_code = 3


class ProjectNotFound(IndexUnavailable):
    """The index has no project of that name."""

    def __init__(self, name: str, index_url: str) -> None:
        self.name = name
        super().__init__(f"{name!r} is not on {index_url}: check the spelling or --index-url")


class OfflineCacheMiss(IndexUnavailable):
    """``--offline`` was given and the cache lacks what is needed."""

    def __init__(self, missing: list[str]) -> None:
        self.missing = missing
        listed = "\n  ".join(missing)
        super().__init__(
            f"--offline: the cache lacks {len(missing)} item(s):\n  {listed}\n"
            "Run the same command once without --offline to fill the cache."
        )


class EngineUnavailable(CompatError):
    """No container engine answers."""

    exit_code = 4


class ImageUnavailable(CompatError):
    """An image could not be found or pulled."""

    exit_code = 4


class PlanTooLarge(UsageError):
    """The exhaustive strategy would exceed its cap."""


class HarnessError(CompatError):
    """Running combinations failed for a reason outside any one combination."""

    exit_code = 5


class IncompatibleFound(CompatError):
    """``--fail-on-incompatible``: some combination did not pass."""

    exit_code = 6


class NothingKnownGood(CompatError):
    """No passing combination is recorded for what was asked."""

    exit_code = 8
