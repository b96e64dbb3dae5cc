"""What building and testing an image found."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from compat.image.layers import Layer
from compat.image.startup import Startup
from compat.model import CheckResult, CheckVerdict, Verdict


@dataclass(frozen=True, kw_only=True, slots=True)
class ImageReport:
    tag: str
    image_id: str
    base_image: str
    base_image_id: str
    combination: str  # the combination's id
    size: int  # bytes, base included
    base_size: int
    added_size: int  # the layers the stack adds over the base
    layers: tuple[Layer, ...]  # those layers, oldest first
    verdict: Verdict | None  # of the smoke suite in the image; None when not run
    counts: dict[str, int] = field(default_factory=dict)  # checks per check verdict
    checks: tuple[CheckResult, ...] = ()
    error: str | None = None  # first line of the first failure
    failed_check: str | None = None
    build_seconds: float = 0.0
    smoke_seconds: float = 0.0
    dockerfile: str = ""  # what was built
    startup: Startup | None = None  # import time with and without bytecode, when measured

    @property
    def ok(self) -> bool:
        """The smoke suite ran and passed."""
        return self.verdict is Verdict.PASS

    def to_json(self) -> dict[str, Any]:
        return {
            "tag": self.tag,
            "image_id": self.image_id,
            "base_image": self.base_image,
            "base_image_id": self.base_image_id,
            "combination": self.combination,
            "size": self.size,
            "base_size": self.base_size,
            "added_size": self.added_size,
            "layers": [layer.to_json() for layer in self.layers],
            "verdict": self.verdict.value if self.verdict else None,
            "counts": dict(self.counts),
            "checks": [c.to_json() for c in self.checks],
            "error": self.error,
            "failed_check": self.failed_check,
            "build_seconds": self.build_seconds,
            "smoke_seconds": self.smoke_seconds,
            "dockerfile": self.dockerfile,
            "startup": self.startup.to_json() if self.startup is not None else None,
        }


def count_checks(checks: tuple[CheckResult, ...]) -> dict[str, int]:
    """Checks per verdict, every verdict present (zero included)."""
    counts = dict.fromkeys((v.value for v in CheckVerdict), 0)
    for check in checks:
        counts[check.verdict.value] += 1
    return counts
