"""Values that travel between the pipeline's steps: files, pins, combinations,
verdicts and results. All frozen and keyword-only; they serialise themselves.

Results live here, not in the harness that produces them, so the results database,
the report and the lockfile writers never depend on the code that starts containers.
"""

from __future__ import annotations

import enum
import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.tags import Tag
from packaging.utils import NormalizedName, canonicalize_name
from packaging.version import Version


class FileKind(enum.StrEnum):
    WHEEL = "wheel"
    SDIST = "sdist"


@dataclass(frozen=True, kw_only=True, slots=True)
class DistFile:
    """One file of one release on the index."""

    name: NormalizedName
    version: Version
    filename: str
    url: str
    sha256: str
    kind: FileKind
    tags: frozenset[Tag] = frozenset()  # empty for sdists
    requires_python: SpecifierSet | None = None
    yanked: bool = False
    has_metadata: bool = False  # PEP 658/714: a .metadata file sits beside it
    size: int | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "filename": self.filename,
            "url": self.url,
            "sha256": self.sha256,
            "requires_python": str(self.requires_python) if self.requires_python else None,
            "yanked": self.yanked,
            "has_metadata": self.has_metadata,
            "size": self.size,
        }


@dataclass(frozen=True, kw_only=True, slots=True)
class CoreMetadata:
    """The parts of a distribution's METADATA that resolution needs."""

    name: NormalizedName
    version: Version
    requires_dist: tuple[Requirement, ...] = ()
    requires_python: SpecifierSet | None = None
    provides_extra: frozenset[NormalizedName] = frozenset()


@dataclass(frozen=True, kw_only=True, slots=True)
class Pin:
    """One package of a combination, pinned to one file."""

    name: NormalizedName
    version: Version
    filename: str
    url: str
    sha256: str
    kind: FileKind

    @classmethod
    def of(cls, file: DistFile) -> Pin:
        return cls(
            name=file.name,
            version=file.version,
            filename=file.filename,
            url=file.url,
            sha256=file.sha256,
            kind=file.kind,
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "version": str(self.version),
            "filename": self.filename,
            "url": self.url,
            "sha256": self.sha256,
            "kind": self.kind.value,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Pin:
        return cls(
            name=canonicalize_name(data["name"]),
            version=Version(data["version"]),
            filename=data["filename"],
            url=data["url"],
            sha256=data["sha256"],
            kind=FileKind(data["kind"]),
        )

    def __str__(self) -> str:
        return f"{self.name}=={self.version}"


@dataclass(frozen=True, kw_only=True, slots=True)
class Combo:
    """A fully pinned set of packages for one target: the unit that is tested."""

    target: str  # Target.key: what the pins were resolved for
    pins: tuple[Pin, ...]  # sorted by name, transitive dependencies included
    requested: tuple[NormalizedName, ...]  # the matrix packages, in matrix order
    id: str = field(default="", compare=False)

    def __post_init__(self) -> None:
        if not self.id:
            digest = hashlib.sha256(self.target.encode())
            for pin in self.pins:
                digest.update(f"\n{pin.name}=={pin.version} {pin.sha256}".encode())
            object.__setattr__(self, "id", digest.hexdigest()[:12])

    def pin(self, name: str) -> Pin:
        wanted = canonicalize_name(name)
        for pin in self.pins:
            if pin.name == wanted:
                return pin
        raise KeyError(name)

    def version_of(self, name: str) -> Version:
        return self.pin(name).version

    @property
    def versions(self) -> dict[NormalizedName, Version]:
        return {p.name: p.version for p in self.pins}

    @property
    def source_builds(self) -> tuple[Pin, ...]:
        return tuple(p for p in self.pins if p.kind is FileKind.SDIST)

    def label(self) -> str:
        """The requested packages with their versions, e.g. ``numpy 2.0.2, pandas 2.2.3``."""
        return ", ".join(f"{n} {self.version_of(n)}" for n in self.requested)

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "target": self.target,
            "requested": list(self.requested),
            "pins": [p.to_json() for p in self.pins],
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Combo:
        return cls(
            id=data["id"],
            target=data["target"],
            requested=tuple(canonicalize_name(n) for n in data["requested"]),
            pins=tuple(Pin.from_json(p) for p in data["pins"]),
        )


@dataclass(frozen=True, kw_only=True, slots=True)
class PinChange:
    """One package whose version differs between two combinations; ``None`` where a
    side does not install it."""

    name: NormalizedName
    old: Version | None
    new: Version | None

    def __str__(self) -> str:
        return f"{self.name} {self.old or '(absent)'} -> {self.new or '(absent)'}"


def changes_between(old: Combo, new: Combo) -> tuple[PinChange, ...]:
    """The packages whose versions differ from ``old`` to ``new``, by name."""
    return version_changes(old.versions, new.versions)


def version_changes(
    a: Mapping[NormalizedName, Version], b: Mapping[NormalizedName, Version]
) -> tuple[PinChange, ...]:
    """The names whose versions differ from ``a`` to ``b``, sorted."""
    return tuple(
        PinChange(name=n, old=a.get(n), new=b.get(n))
        for n in sorted(a.keys() | b.keys())
        if a.get(n) != b.get(n)
    )


class Verdict(enum.StrEnum):
    """The outcome of one combination (or one check), worst last."""

    PASS = "pass"
    METADATA_CONFLICT = "metadata-conflict"
    NO_WHEEL = "no-wheel"
    BUILD_FAILED = "build-failed"
    INSTALL_FAILED = "install-failed"
    IMPORT_ERROR = "import-error"
    RUNTIME_ERROR = "runtime-error"
    CRASH = "crash"
    TIMEOUT = "timeout"

    @property
    def ok(self) -> bool:
        return self is Verdict.PASS

    @property
    def undecided(self) -> bool:
        """A timeout, after its rerun with twice the time: the machine may have been too
        slow. Neither a pass nor an incompatibility: lock, nightly and bisect never
        read it as one."""
        return self is Verdict.TIMEOUT

    @property
    def severity(self) -> int:
        """Rank by the declaration order: a higher number is a worse outcome."""
        return _SEVERITY[self]


_SEVERITY = {v: i for i, v in enumerate(Verdict)}


class CheckVerdict(enum.StrEnum):
    """What the smoke runner says about one check."""

    PASS = "pass"
    IMPORT_ERROR = "import-error"
    RUNTIME_ERROR = "runtime-error"
    CRASH = "crash"
    TIMEOUT = "timeout"
    SKIPPED = "skipped"
    # The check itself called an API the installed release never had: a defect
    # of the check, shown loudly but never an incompatibility of the packages.
    CHECK_ERROR = "check-error"

    def as_verdict(self) -> Verdict | None:
        """The combination verdict this check implies; None for a skipped check
        and for a check-error, which say nothing about the combination."""
        if self in (CheckVerdict.SKIPPED, CheckVerdict.CHECK_ERROR):
            return None
        return Verdict(self.value)


def worst(verdicts: Iterable[Verdict]) -> Verdict:
    """The worst of ``verdicts`` (PASS for none)."""
    return max(verdicts, key=lambda v: v.severity, default=Verdict.PASS)


Inputs = tuple[tuple[str, str], ...]  # the distributions a check imported: (name, version)


class CheckKind(enum.StrEnum):
    """What a check is, set by the code that names it; never read from its name."""

    IMPORT = "import"  # the import of one distribution (``import:<dist>``)
    SMOKE = "smoke"  # a built-in or plugin check
    USER = "user"  # a user's check script (``user:<file>``), or ``exec``
    BUILD = "build"  # a wheel built from its sdist (``build:<name>``)
    DEEP = "deep"  # the deep tier's judgment of a dependent, and its regressions
    # the machinery itself: the runner died (``smoke-runner``), a ``reuse`` the
    # harness never offered, a deep tier that did not finish (``deep``)
    RUNNER = "runner"

    @classmethod
    def of_legacy_name(cls, name: str) -> CheckKind:
        """The kind of a check recorded before kinds were (an export of an older
        version, a database before schema v9), from the prefix of its name."""
        whole = {"smoke-runner": cls.RUNNER, "deep": cls.RUNNER, "exec": cls.USER}
        head, sep, _ = name.partition(":")
        prefixes = {"import": cls.IMPORT, "user": cls.USER, "build": cls.BUILD, "deep": cls.DEEP}
        return whole.get(name) or (prefixes.get(head, cls.SMOKE) if sep else cls.SMOKE)


@dataclass(frozen=True, kw_only=True, slots=True)
class CheckResult:
    name: str
    verdict: CheckVerdict
    duration: float
    error: str | None = None  # first line of the failure
    log: str = ""
    inputs: Inputs | None = None  # sorted by name; None when not known
    key: str | None = None  # what its outcome may be reused under (compat.harness.reuse)
    reused_from: str | None = None  # the uid of the result that ran it, when reused
    # the producers of every other kind set theirs; smoke keeps test values short
    kind: CheckKind = CheckKind.SMOKE

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "kind": self.kind.value,
            "verdict": self.verdict.value,
            "duration": self.duration,
            "error": self.error,
            "log": self.log,
            "inputs": None if self.inputs is None else dict(self.inputs),
            "key": self.key,
            "reused_from": self.reused_from,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> CheckResult:
        inputs = data.get("inputs")
        kind = data.get("kind")
        return cls(
            name=data["name"],
            kind=CheckKind.of_legacy_name(data["name"]) if kind is None else CheckKind(kind),
            verdict=CheckVerdict(data["verdict"]),
            duration=float(data["duration"]),
            error=data.get("error"),
            log=data.get("log", ""),
            inputs=None if inputs is None else sorted_inputs(inputs),
            key=data.get("key"),
            reused_from=data.get("reused_from"),
        )


def sorted_inputs(inputs: Mapping[str, str]) -> Inputs:
    """A check's inputs as ``CheckResult.inputs`` holds them."""
    return tuple(sorted((canonicalize_name(str(n)), str(v)) for n, v in inputs.items()))


@dataclass(frozen=True, kw_only=True, slots=True)
class ComboResult:
    combo: Combo
    verdict: Verdict
    checks: tuple[CheckResult, ...] = ()
    error: str | None = None  # first line of the first failure
    failed_check: str | None = None
    duration: float = 0.0  # wall time of the run (or of the failed preparation step)
    system_deps: tuple[str, ...] = ()  # distro packages a missing shared library points to
    added_system_deps: tuple[str, ...] = ()  # packages installed into a derived image for it
    backend: str = ""
    image_id: str | None = None
    log: str = ""
    # what the verdict holds under: e.g. "lightgbm built without OpenMP: single-threaded
    # training" when a wheel was built with a toolchain that has no OpenMP
    notes: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        return self.verdict.ok

    @property
    def check_errors(self) -> tuple[CheckResult, ...]:
        """Checks that failed by their own defect (not counted in the verdict)."""
        return tuple(c for c in self.checks if c.verdict is CheckVerdict.CHECK_ERROR)

    @property
    def skipped_checks(self) -> tuple[CheckResult, ...]:
        """Checks that did not apply (a package missing or out of their range)."""
        return tuple(c for c in self.checks if c.verdict is CheckVerdict.SKIPPED)

    @property
    def reused_checks(self) -> tuple[CheckResult, ...]:
        """Checks taken from earlier results with the same inputs, not run."""
        return tuple(c for c in self.checks if c.reused_from is not None)

    @property
    def check_runs(self) -> int:
        """How many checks ran: neither reused nor skipped before running."""
        return sum(
            1
            for c in self.checks
            if c.reused_from is None
            and (c.verdict is not CheckVerdict.SKIPPED or c.inputs is not None)
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "combo": self.combo.to_json(),
            "verdict": self.verdict.value,
            "checks": [c.to_json() for c in self.checks],
            "error": self.error,
            "failed_check": self.failed_check,
            "duration": self.duration,
            "system_deps": list(self.system_deps),
            "added_system_deps": list(self.added_system_deps),
            "backend": self.backend,
            "image_id": self.image_id,
            "log": self.log,
            "notes": list(self.notes),
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ComboResult:
        return cls(
            combo=Combo.from_json(data["combo"]),
            verdict=Verdict(data["verdict"]),
            checks=tuple(CheckResult.from_json(c) for c in data.get("checks", ())),
            error=data.get("error"),
            failed_check=data.get("failed_check"),
            duration=float(data.get("duration", 0.0)),
            system_deps=tuple(data.get("system_deps", ())),
            added_system_deps=tuple(data.get("added_system_deps", ())),
            backend=data.get("backend", ""),
            image_id=data.get("image_id"),
            log=data.get("log", ""),
            notes=tuple(data.get("notes", ())),
        )


class Depth(enum.StrEnum):
    """How deep a combination is tested, shallowest first."""

    IMPORT = "import"
    SMOKE = "smoke"
    DEEP = "deep"

    @property
    def rank(self) -> int:
        return list(Depth).index(self)


def depth_of(result: ComboResult) -> Depth:
    """How deep ``result`` was tested, from the kinds of its checks: ``deep`` when
    the deep tier judged it, ``import`` when every check is an import, else
    ``smoke`` (a smoke run lists every built-in check, run or skipped). A deep run
    that did not finish (a ``runner`` check) answers for ``smoke`` only."""
    kinds = [c.kind for c in result.checks]
    if CheckKind.DEEP in kinds:
        return Depth.DEEP
    if kinds and all(k is CheckKind.IMPORT for k in kinds):
        return Depth.IMPORT
    return Depth.SMOKE


def judged(result: ComboResult, depth: Depth) -> bool:
    """Whether a stored ``result`` answers for ``depth``: one that failed does at
    any depth; a pass only when tested at least that deep (an imports-only pass
    says nothing of the smoke suite, a smoke pass nothing of the shipped tests)."""
    return not result.ok or depth_of(result).rank >= depth.rank


def overall(checks: Iterable[CheckResult]) -> tuple[Verdict, CheckResult | None]:
    """The worst verdict among ``checks`` and the first check that has it. A timeout
    is undecided: any failure a check did decide comes before it."""
    found: Verdict = Verdict.PASS
    culprit: CheckResult | None = None
    for check in checks:
        v = check.verdict.as_verdict()
        if v is None or v is Verdict.PASS:
            continue
        if culprit is None or _decided_first(v) > _decided_first(found):
            found, culprit = v, check
    return found, culprit


def _decided_first(verdict: Verdict) -> int:
    return -1 if verdict.undecided else verdict.severity


def unrequested_culprits(
    combo: Combo, checks: Iterable[CheckResult]
) -> dict[NormalizedName, CheckResult]:
    """The distributions nobody requested that a failing check names
    (``pandas+python-dateutil:dateutil-time-zones``, ``import:python-dateutil``), each
    with the first check naming it: the resolver chose them, and a cap below their
    version tests the requested pins apart from them."""
    found: dict[NormalizedName, CheckResult] = {}
    for check in checks:
        head, sep, rest = check.name.partition(":")
        verdict = check.verdict.as_verdict()
        if verdict is None or verdict.ok or verdict.undecided or not sep:
            continue  # a timeout is undecided: it suggests no cap
        names = [rest] if check.kind is CheckKind.IMPORT else head.split("+")
        for name in (canonicalize_name(n) for n in names if n):
            if name in combo.versions and name not in combo.requested:
                found.setdefault(name, check)
    return found


@dataclass(frozen=True, kw_only=True, slots=True)
class Cap:
    """An upper bound on a distribution nobody requested, and why: the requested pins
    failed with that release of it (``python-dateutil<4.0.0``)."""

    name: NormalizedName
    below: Version
    reason: str

    def __str__(self) -> str:
        return f"{self.name}<{self.below}"

    def to_json(self) -> dict[str, str]:
        return {"name": self.name, "below": str(self.below), "reason": self.reason}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Cap:
        return cls(
            name=canonicalize_name(data["name"]),
            below=Version(data["below"]),
            reason=data["reason"],
        )

    @classmethod
    def blamed(cls, failed: ComboResult, result_id: int | None = None) -> tuple[Cap, ...]:
        """A cap below each unrequested distribution a failing check of ``failed`` names."""
        where = f" (result {result_id})" if result_id is not None else ""
        return tuple(
            cls(
                name=name,
                below=failed.combo.version_of(name),
                reason=f"{check.name} failed with {name} {failed.combo.version_of(name)} "
                f"under {failed.combo.label()}{where}"
                + (f": {check.error}" if check.error else ""),
            )
            for name, check in unrequested_culprits(failed.combo, failed.checks).items()
        )


@dataclass(frozen=True, kw_only=True, slots=True)
class Incompatibility:
    """Versions of packages that fail together on a base, found by bisection: the
    results database keeps them, the planner marks and the report lists them.
    ``packages`` is the pair bisection found; ``ranges``, where bisection widened
    it, the releases around it that fail the same way (``pandas >=2.0,<2.2``)."""

    id: int
    base: str
    image_id: str | None
    packages: dict[str, str]  # normalized name -> version
    verdict: Verdict
    explanation: str
    evidence: tuple[int, ...]  # result ids
    created: datetime
    ranges: Mapping[str, SpecifierSet] = field(default_factory=dict)

    @property
    def specifiers(self) -> dict[str, SpecifierSet]:
        """Each package's failing releases: its range, or its one version."""
        return specifiers_of(self.packages, self.ranges)

    def matches(self, pins: Mapping[str, str | Version]) -> bool:
        """Whether a combination (name -> version) holds a failing release of every
        package named here."""
        return all(
            name in pins and spec.contains(pins[name], prereleases=True)
            for name, spec in self.specifiers.items()
        )

    def label(self) -> str:
        return range_label(self.packages, self.ranges)


def specifiers_of(
    packages: Mapping[str, str], ranges: Mapping[str, SpecifierSet]
) -> dict[str, SpecifierSet]:
    """Each package's range where one is known, else its exact version."""
    return {n: ranges.get(n) or SpecifierSet(f"=={v}") for n, v in sorted(packages.items())}


def range_label(packages: Mapping[str, str], ranges: Mapping[str, SpecifierSet]) -> str:
    """``numpy 2.0.2 x pandas 2.1.1``; a widened side as its range, ``numpy>=2.0.0``."""
    return " x ".join(
        f"{n}{spec_text(ranges[n])}" if str(ranges.get(n, "")) not in ("", f"=={v}") else f"{n} {v}"
        for n, v in sorted(packages.items())
    )


def spec_text(spec: SpecifierSet) -> str:
    """A range as people write it, lower bound first: ``>=2.0.0,<2.2.0``."""
    order = {">": 0, ">=": 0, "==": 1, "===": 1, "~=": 1, "!=": 2, "<=": 3, "<": 3}
    return ",".join(str(s) for s in sorted(spec, key=lambda s: (order[s.operator], str(s))))
