"""A reporter that remembers what it was told, for asserting on progress and notices."""

from __future__ import annotations

from compat.model import ComboResult
from compat.reporter import Reporter


class RecordingReporter(Reporter):
    def __init__(self) -> None:
        self.lines: list[str] = []  # notices and warnings, in order
        self.finished: list[ComboResult] = []
        self.stages: list[tuple[str, int, int]] = []
        self.steps: list[tuple[str, int, int]] = []  # (what, number, total)
        self.events: list[str] = []  # the hooks called, in order

    def notice(self, message: str) -> None:
        self.lines.append(message)

    def warning(self, message: str) -> None:
        self.lines.append(message)

    def plan_started(self, matrix: str, target: str) -> None:
        self.events.append("plan_started")

    def plan_finished(self) -> None:
        self.events.append("plan_finished")

    def image_build_started(self, tag: str) -> None:
        self.events.append("image_build_started")

    def image_build_finished(self) -> None:
        self.events.append("image_build_finished")

    def step_started(self, what: str, number: int, total: int) -> None:
        self.steps.append((what, number, total))

    def run_started(self, total: int) -> None:
        self.events.append(f"run_started {total}")

    def stage_progress(self, stage: str, done: int, total: int) -> None:
        self.stages.append((stage, done, total))

    def combo_finished(self, result: ComboResult) -> None:
        self.finished.append(result)

    def run_finished(self) -> None:
        self.events.append("run_finished")
