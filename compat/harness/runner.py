"""What the layers above need of the harness to run combinations: the ``Runner``
protocol (``compat.harness.Pipeline``, or a scripted fake in tests)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Protocol

from compat.harness.reuse import KeptChecks
from compat.model import Combo, ComboResult
from compat.reporter import Reporter
from compat.targets.target import Target


class Runner(Protocol):
    """Runs combinations' smoke suites on a target (``compat.harness.Pipeline``)."""

    @property
    def kind(self) -> str: ...

    def run(
        self,
        target: Target,
        combos: Sequence[Combo],
        *,
        on_result: Callable[[ComboResult], None],
        reporter: Reporter,
        system_packages: Sequence[str] = (),
        kept: KeptChecks | None = None,
    ) -> list[ComboResult]: ...


__all__ = ["Runner"]
