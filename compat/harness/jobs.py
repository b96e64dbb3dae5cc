"""A run of another suite than the smoke suite (the deep tier's runner) where the
combinations run: what it is given and what it gives back (``Pipeline.run_each``)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from compat.effects.container import ExecResult, OnLine
from compat.harness.suite import Placed
from compat.model import Combo


@dataclass(frozen=True, kw_only=True, slots=True)
class Suite:
    """The suite a ``Pipeline.run_each`` runs, as far as the pipeline needs to know."""

    stage: str  # the progress stage its runs are counted in ("deep")
    beside_is: str  # what the combination installed behind each job's is, for errors
    at_once: int = 1  # how many of its runs go side by side


@dataclass(frozen=True, kw_only=True, slots=True)
class SuiteJob:
    """One run of a suite over one combination: its command line, once placed."""

    combo: Combo
    command: Callable[[Placed], Sequence[str]]
    on_line: OnLine | None = None  # given each line of its output as it comes


@dataclass(frozen=True, kw_only=True, slots=True)
class SuiteRun:
    """How one ``SuiteJob`` ended: the command's result, or why it did not run."""

    job: SuiteJob
    result: ExecResult | None = None
    error: str | None = None  # it did not run: its combination could not be prepared
    duration: float = 0.0


__all__ = ["Suite", "SuiteJob", "SuiteRun"]
