"""Combinations and deep-runner events for the deep tier's tests."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from packaging.utils import canonicalize_name
from packaging.version import Version

from compat.model import Combo, FileKind, Pin

CORE = "pandas/plotting/_matplotlib/core.py"
FRAME = "pandas/tests/plotting/frame/test_frame.py"
LEGEND = "AttributeError: 'Legend' object has no attribute 'legendHandles'"


def combo_of_versions(versions: Mapping[str, str], *, target: str = "bookworm") -> Combo:
    pins = tuple(
        Pin(
            name=canonicalize_name(n),
            version=Version(v),
            filename=f"{n}-{v}-py3-none-any.whl",
            url=f"https://files.example/{n}-{v}.whl",
            sha256=f"{n}{v}".encode().hex().ljust(64, "0")[:64],
            kind=FileKind.WHEEL,
        )
        for n, v in sorted(versions.items())
    )
    return Combo(target=target, pins=pins, requested=tuple(canonicalize_name(n) for n in versions))


def stack_frame(path: str, root: str = "site", line: int = 10) -> dict[str, Any]:
    return {"path": path, "line": line, "function": "f", "root": root}


LIBRARY_FRAMES = [
    stack_frame("_pytest/python.py", "tooling"),
    stack_frame(FRAME),
    stack_frame(CORE, line=700),
    stack_frame("functools.py", "stdlib"),
]


def deep_test_event(
    test: str,
    outcome: str,
    *,
    frames: Any = (),
    rerun: str | None = None,
    error: str | None = None,
    module: str = FRAME,
    warning: bool = False,
) -> dict[str, Any]:
    return {
        "event": "test",
        "dependent": "pandas",
        "module": module,
        "test": f"{module}::{test}",
        "outcome": outcome,
        "duration": 0.5,
        "error": error,
        "frames": list(frames),
        "log": f"log of {test}",
        **({"rerun": rerun} if rerun else {}),
        **({"warning": True} if warning else {}),
    }


def run_lines(
    versions: Mapping[str, str], *tests: dict[str, Any], owners: Mapping[str, str] | None = None
) -> list[str]:
    """The runner's stdout for pandas with matplotlib and numpy as partners;
    ``owners``: the environment's other top-level names and their distributions."""
    events: list[dict[str, Any]] = [
        {
            "event": "environment",
            "python": "3.11.7",
            "distributions": {
                "pandas": {"version": versions["pandas"], "top_level": ["pandas"]},
                "matplotlib": {
                    "version": versions["matplotlib"],
                    "top_level": ["matplotlib", "pylab"],
                },
                "numpy": {"version": versions["numpy"], "top_level": ["numpy"]},
            },
            **({"owners": dict(owners)} if owners else {}),
        },
        {
            "event": "dependent",
            "dependent": "pandas",
            "version": versions["pandas"],
            "partners": ["matplotlib", "numpy"],
            "foundations": ["numpy"],
            "selected": 1,
            "modules": 1,
        },
        {
            "event": "selected",
            "dependent": "pandas",
            "module": FRAME,
            "partners": ["matplotlib", "numpy"],
        },
        *tests,
        {"event": "done", "counts": {}, "duration": 12.5},
    ]
    return [json.dumps(e) for e in events]
