"""Progress and events of a workflow, as one object with named hooks.

Workflows and the harness call the hooks; the command line's console implements
them (``compat.cli.console.ConsoleReporter``); tests pass a recording subclass or
this class itself, whose hooks all do nothing (resolvelib's ``BaseReporter``).
Hooks only show: recording a result in the database is the workflow's job.
"""

from __future__ import annotations

from compat.model import ComboResult


class Reporter:
    """Every hook does nothing; subclass and override the ones you show."""

    def notice(self, message: str) -> None:
        """A line of information: what was skipped, where results went."""

    def warning(self, message: str) -> None:
        """Something the user should know: a fallback taken, an option ignored."""

    def plan_started(self, matrix: str, target: str) -> None:
        """Planning ``matrix`` for ``target`` begins (it may take a while)."""

    def plan_finished(self) -> None:
        """Planning ended, with a plan or an error."""

    def image_build_started(self, tag: str) -> None:
        """An image is being built and smoke-tested as ``tag`` (minutes, no progress)."""

    def image_build_finished(self) -> None:
        """The image build ended, with an image or an error."""

    def step_started(self, what: str, number: int, total: int) -> None:
        """Step ``number`` (from 1) of about ``total`` of a long task begins: a
        candidate a lock confirms, a bisection's probe, an image's build or suite.
        A task's steps are numbered from 1 again when the next task starts."""

    def run_started(self, total: int) -> None:
        """``total`` combinations are about to run."""

    def stage_progress(self, stage: str, done: int, total: int) -> None:
        """A preparation or run stage moved: fetch, build, unpack, compile, run."""

    def combo_finished(self, result: ComboResult) -> None:
        """One combination has its verdict (already recorded when a store is used)."""

    def run_finished(self) -> None:
        """The run ended, completely or not."""


__all__ = ["Reporter"]
