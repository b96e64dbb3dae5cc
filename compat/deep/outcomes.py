"""What a deep run reports, as values: the in-environment runner's JSON-lines
events (see :mod:`compat.smoke.deep`) parsed into per-test outcomes."""

from __future__ import annotations

import enum
import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from packaging.utils import NormalizedName, canonicalize_name
from packaging.version import InvalidVersion, Version


class Outcome(enum.StrEnum):
    """What pytest made of one test (or of a module that failed to collect)."""

    PASSED = "passed"
    FAILED = "failed"
    ERROR = "error"  # setup, teardown or collection
    TIMEOUT = "timeout"
    CRASH = "crash"  # the process died by a signal while the test ran
    SKIPPED = "skipped"
    XFAILED = "xfailed"
    XPASSED = "xpassed"
    NOT_RUN = "not-run"  # asked for on a rerun, never reported

    @property
    def failing(self) -> bool:
        return self in _FAILING

    @property
    def passing(self) -> bool:
        return self in (Outcome.PASSED, Outcome.XPASSED)


_FAILING = frozenset({Outcome.FAILED, Outcome.ERROR, Outcome.TIMEOUT, Outcome.CRASH})


class Root(enum.StrEnum):
    """Where a frame's file lives."""

    SITE = "site"  # the environment under test
    TOOLING = "tooling"  # the test layer: pytest, hypothesis...
    STDLIB = "stdlib"
    OTHER = "other"


@dataclass(frozen=True, kw_only=True, slots=True)
class Frame:
    path: str  # relative to its sys.path entry, e.g. pandas/plotting/_matplotlib/core.py
    line: int
    function: str
    root: Root

    @property
    def top(self) -> str:
        """The top-level import name the file belongs to."""
        first = self.path.split("/", 1)[0]
        return first.removesuffix(".py")

    def __str__(self) -> str:
        return f"{self.path}:{self.line} in {self.function}"

    def to_json(self) -> dict[str, Any]:
        return {"path": self.path, "line": self.line, "function": self.function, "root": self.root}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Frame:
        try:
            root = Root(data.get("root", "other"))
        except ValueError:
            root = Root.OTHER
        return cls(
            path=str(data["path"]),
            line=int(data.get("line") or 0),
            function=str(data.get("function") or ""),
            root=root,
        )


@dataclass(frozen=True, kw_only=True, slots=True)
class TestOutcome:
    """One test of one dependent in one environment."""

    __test__ = False  # not a pytest test class, whatever its name

    dependent: NormalizedName
    module: str  # the test module's path, e.g. pandas/tests/plotting/test_misc.py
    test: str  # pytest node id, relative to the directory holding the dependent
    outcome: Outcome
    duration: float = 0.0
    error: str | None = None
    frames: tuple[Frame, ...] = ()  # innermost last
    log: str = ""
    rerun: Outcome | None = None  # the outcome of the one rerun of a failing test
    warning: bool = False  # raised by a warning (made an error), not by the code under test

    @property
    def key(self) -> tuple[NormalizedName, str]:
        return (self.dependent, self.test)

    def to_json(self) -> dict[str, Any]:
        return {
            "dependent": self.dependent,
            "module": self.module,
            "test": self.test,
            "outcome": self.outcome.value,
            "duration": self.duration,
            "error": self.error,
            "frames": [f.to_json() for f in self.frames],
            "log": self.log,
            "rerun": self.rerun.value if self.rerun else None,
            "warning": self.warning,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> TestOutcome:
        return cls(
            dependent=canonicalize_name(data["dependent"]),
            module=str(data.get("module") or ""),
            test=str(data["test"]),
            outcome=_outcome(data.get("outcome")),
            duration=float(data.get("duration") or 0.0),
            error=data.get("error") or None,
            frames=tuple(Frame.from_json(f) for f in data.get("frames") or ()),
            log=str(data.get("log") or ""),
            rerun=_outcome(data["rerun"]) if data.get("rerun") else None,
            warning=bool(data.get("warning")),
        )


def _outcome(value: object) -> Outcome:
    try:
        return Outcome(str(value))
    except ValueError:
        return Outcome.ERROR


@dataclass(frozen=True, kw_only=True, slots=True)
class Distribution:
    name: NormalizedName
    version: Version | None
    top_level: tuple[str, ...]


@dataclass(frozen=True, kw_only=True, slots=True)
class DependentPlan:
    """What the runner chose to run for one dependent."""

    dependent: NormalizedName
    partners: tuple[NormalizedName, ...] = ()
    foundations: tuple[NormalizedName, ...] = ()  # partners `import dependent` loads
    modules: dict[str, tuple[NormalizedName, ...]] = field(default_factory=dict)  # -> partners
    selected: int = 0  # before a module budget
    reason: str | None = None  # why nothing was selected


@dataclass(frozen=True, kw_only=True, slots=True)
class DeepRun:
    """Everything one run of the deep runner reported."""

    distributions: dict[NormalizedName, Distribution] = field(default_factory=dict)
    installed: dict[str, NormalizedName] = field(default_factory=dict)  # every top-level name
    plans: dict[NormalizedName, DependentPlan] = field(default_factory=dict)
    outcomes: tuple[TestOutcome, ...] = ()
    module_errors: dict[str, str] = field(default_factory=dict)  # module -> why it died
    module_logs: dict[str, str] = field(default_factory=dict)  # module -> output, when no test ran
    duration: float = 0.0
    complete: bool = False  # the runner reached its end

    def of(self, dependent: str) -> tuple[TestOutcome, ...]:
        wanted = canonicalize_name(dependent)
        return tuple(o for o in self.outcomes if o.dependent == wanted)

    def owners(self) -> dict[str, NormalizedName]:
        """Top-level import name -> the distribution that installs it: the named
        ones, and everything else the combination installs."""
        named = {top: d.name for d in self.distributions.values() for top in d.top_level}
        return {**self.installed, **named}

    def counts(self) -> dict[str, int]:
        found: dict[str, int] = {}
        for o in self.outcomes:
            found[o.outcome.value] = found.get(o.outcome.value, 0) + 1
        return found


def event_of(line: str) -> dict[str, Any] | None:
    """One line of the runner's stdout as an event; None for anything else (the
    runner writes nothing else to stdout, but a cut-off last line must not lose
    the rest)."""
    try:
        event = json.loads(line)
    except ValueError:
        return None
    return event if isinstance(event, dict) else None


class ModulesDone:
    """The runner's events read as they come: how many of the test modules each
    dependent runs have finished, told to ``progress`` (stage
    ``deep DEPENDENT``) each time one does."""

    def __init__(self, progress: Callable[[str, int, int], None]) -> None:
        self.progress = progress
        self.total: dict[str, int] = {}  # the modules each dependent runs
        self.done: dict[str, int] = {}

    def __call__(self, line: str) -> None:
        event = event_of(line)
        if event is None:
            return
        dependent = str(event.get("dependent"))
        if event.get("event") == "dependent" and event.get("modules"):
            self.total[dependent] = int(event["modules"])
            self.done[dependent] = 0
        elif event.get("event") == "module" and dependent in self.total:
            self.done[dependent] += 1
        else:
            return
        self.progress(f"deep {dependent}", self.done[dependent], self.total[dependent])


def parse_events(lines: Iterable[str]) -> DeepRun:
    """The runner's stdout as a :class:`DeepRun`. Lines that are not events are
    ignored (``event_of``)."""
    distributions: dict[NormalizedName, Distribution] = {}
    installed: dict[str, NormalizedName] = {}
    plans: dict[NormalizedName, Mapping[str, Any]] = {}
    modules: dict[NormalizedName, dict[str, tuple[NormalizedName, ...]]] = {}
    outcomes: list[TestOutcome] = []
    module_errors: dict[str, str] = {}
    module_logs: dict[str, str] = {}
    duration = 0.0
    complete = False
    for line in lines:
        event = event_of(line)
        if event is None:
            continue
        kind = event.get("event")
        if kind == "environment":
            for name, info in (event.get("distributions") or {}).items():
                dist = _distribution(name, info)
                distributions[dist.name] = dist
            for top, name in (event.get("owners") or {}).items():
                installed[str(top)] = canonicalize_name(str(name))
        elif kind == "dependent":
            plans[canonicalize_name(event["dependent"])] = event
        elif kind == "selected":
            dep = canonicalize_name(event["dependent"])
            modules.setdefault(dep, {})[str(event["module"])] = tuple(
                canonicalize_name(p) for p in event.get("partners") or ()
            )
        elif kind == "test":
            outcomes.append(TestOutcome.from_json(event))
        elif kind == "module":
            if event.get("error"):
                module_errors[str(event["module"])] = str(event["error"])
            if event.get("log"):
                module_logs[str(event["module"])] = str(event["log"])
        elif kind == "done":
            duration = float(event.get("duration") or 0.0)
            complete = True
    return DeepRun(
        distributions=distributions,
        installed=installed,
        plans={dep: _plan(dep, event, modules.get(dep, {})) for dep, event in plans.items()},
        outcomes=tuple(outcomes),
        module_errors=module_errors,
        module_logs=module_logs,
        duration=duration,
        complete=complete,
    )


def _distribution(name: str, info: Mapping[str, Any]) -> Distribution:
    try:
        version: Version | None = Version(str(info.get("version")))
    except InvalidVersion:
        version = None
    return Distribution(
        name=canonicalize_name(name),
        version=version,
        top_level=tuple(info.get("top_level") or ()),
    )


def _plan(
    dependent: NormalizedName,
    event: Mapping[str, Any],
    modules: dict[str, tuple[NormalizedName, ...]],
) -> DependentPlan:
    return DependentPlan(
        dependent=dependent,
        partners=tuple(canonicalize_name(p) for p in event.get("partners") or ()),
        foundations=tuple(canonicalize_name(p) for p in event.get("foundations") or ()),
        modules=modules,
        selected=int(event.get("selected") or 0),
        reason=event.get("reason"),
    )
