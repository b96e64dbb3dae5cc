"""What a failure implicates: a pair of packages, one package alone, or the
environment. Pure: a heatmap cell turns red only for the pair a failure names.

A failure implicates the smallest cause it shows:
- a check's subject (its first need) and the partner among its other needs whose
  code the failing traceback reaches innermost (``lightgbm+scipy+scikit-learn:...``
  failing inside scikit-learn names lightgbm x scikit-learn), else its primary pair,
  the first two needs (``lightgbm+scikit-learn:sklearn-api`` names lightgbm x
  scikit-learn and nothing else);
- the packages of a known incompatibility that bisection recorded and that this
  combination holds;
- a package whose import failed and the partner its failing module names (numpy
  for a failure of numpy's binary interface); when another distribution's module
  raised it (a pyarrow built for NumPy 1.x, imported by scikit-learn), that
  distribution and the partner named, or the package with that distribution;
- a dependent and the partner its deep-tier regression names as changed;
- a package alone when its own import or a single-package check failed;
- the environment when a shared library was missing, a source build failed or no
  wheel fitted: never a pair, listed apart with its fix.
"""

from __future__ import annotations

import enum
import itertools
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from packaging.specifiers import SpecifierSet
from packaging.utils import NormalizedName, canonicalize_name
from packaging.version import Version

from compat.model import CheckKind, Verdict, range_label
from compat.smoke.dists import import_names
from compat.smoke.modules import NUMPY_ABI

Pair = frozenset[NormalizedName]

# Verdicts that say something about the image, the index or the machine, not about
# versions meeting each other. A timeout is one: undecided, it timed out again with
# twice the time.
ENVIRONMENT_VERDICTS = frozenset(
    {Verdict.NO_WHEEL, Verdict.BUILD_FAILED, Verdict.INSTALL_FAILED, Verdict.TIMEOUT}
)

# What the whole-package import names as the partner of a module that failed:
# "(at panelmod.py:17; partner: pandas 2.2.3)" (compat.smoke.modules)
_PARTNER = re.compile(r"[(;] ?partner: ([A-Za-z0-9][A-Za-z0-9._-]*) ")

# A deep regression's error ends "(at <frame>; changed: <most likely>[; also changed:
# <others>])" (compat.deep.report); brackets in older results.
_CHANGED = re.compile(r"; changed: ([^;()\[\]]*)(?:; also changed: [^()\[\]]*)?[)\]]\s*$")

# A traceback's frame line, a sweep's section header (compat.smoke.modules) and the
# folders that hold installed distributions.
_FRAME = re.compile(r'^\s*File "([^"]+)", line \d+')
_SECTION = re.compile(r"^--- .* ---$")
_TRACEBACK = "Traceback (most recent call last):"
_SITE_DIRS = ("site-packages", "dist-packages")


class Blame(enum.StrEnum):
    PAIR = "pair"  # one or more pairs of packages
    PACKAGE = "package"  # one or more packages alone
    ENVIRONMENT = "environment"  # the image or the index: a fix exists
    UNATTRIBUTED = "unattributed"  # a failure that names nothing (a user check, exec)
    NONE = "none"  # it passed


@dataclass(frozen=True, kw_only=True, slots=True)
class FailedCheck:
    """One failing check of a result: its name, kind and first error line."""

    name: str
    error: str | None = None
    kind: CheckKind = CheckKind.SMOKE
    # the top-level modules of the installed code its failing traceback ran through,
    # innermost last (``library_frames``)
    frames: tuple[str, ...] = ()

    @property
    def needs(self) -> tuple[NormalizedName, ...]:
        """The distributions a built-in check names (``a+b:name``); an import check
        names its package, a deep one its dependent; user checks, exec, builds and
        the machinery name none."""
        head, sep, rest = self.name.partition(":")
        if not sep or self.kind in (CheckKind.USER, CheckKind.BUILD, CheckKind.RUNNER):
            return ()
        if self.kind is CheckKind.IMPORT:
            return (canonicalize_name(rest),)
        if self.kind is CheckKind.DEEP:  # deep:<dependent>:<test id>: the partner is in the error
            return (canonicalize_name(rest.split(":", 1)[0]),)
        return tuple(canonicalize_name(n) for n in head.split("+") if n)

    @property
    def changed_partners(self) -> tuple[NormalizedName, ...]:
        """The partner a deep-tier regression names as the most likely changed one
        from its baseline: its error ends ``(at <frame>; changed: matplotlib 3.6.3 ->
        3.10.9; also changed: pillow 9.5.0 -> 11.0.0, ...)``; the others are not
        blamed in pairs."""
        found = _CHANGED.search(self.error or "")
        if not found:
            return ()
        return tuple(canonicalize_name(c.split()[0]) for c in found[1].split(",") if c.strip())


def library_frames(log: str, *, kind: CheckKind = CheckKind.SMOKE) -> tuple[str, ...]:
    """The top-level modules of installed code (under a site directory, or a Cython
    frame's path relative to one) in the traceback that failed a check, innermost
    last: the last traceback of a check's log (the exception that ended it, the last
    of a chain), the first one of an import check's log (the first failing module
    of its sweep, which its error line names)."""
    sections: list[list[str]] = [[]]
    for line in log.splitlines():
        if _SECTION.match(line):
            sections.append([])
        sections[-1].append(line)
    tracebacks = [s for s in sections if any(_FRAME.match(line) for line in s)]
    if not tracebacks:
        return ()
    lines = tracebacks[0] if kind is CheckKind.IMPORT else tracebacks[-1]
    starts = [i for i, line in enumerate(lines) if line.strip() == _TRACEBACK]
    tops = []
    for line in lines[starts[-1] if starts else 0 :]:
        if (frame := _FRAME.match(line)) and (top := _top(frame[1])):
            tops.append(top)
    return tuple(tops)


def _top(path: str) -> str | None:
    parts = path.replace("\\", "/").split("/")
    if path.startswith("/"):
        marks = [i for i, p in enumerate(parts[:-2]) if p in _SITE_DIRS]
        if not marks:
            return None
        parts = parts[marks[-1] + 1 :]
    top = parts[0].split(".")[0] if parts else ""
    return top if top.isidentifier() else None


def _owner(top: str, names: Iterable[NormalizedName]) -> NormalizedName | None:
    """Which of ``names`` provides the top-level module ``top``."""
    for name in names:
        if top in {n.split(".")[0] for n in import_names(name)}:
            return name
    return None


@dataclass(frozen=True, kw_only=True, slots=True)
class Finding:
    """A known incompatibility recorded by bisection: these versions fail together,
    and so do the releases in its ``ranges`` where bisection widened it."""

    packages: tuple[tuple[NormalizedName, Version], ...]
    line: str  # how the report words it
    ranges: tuple[tuple[NormalizedName, SpecifierSet], ...] = ()

    def held_by(self, versions: Mapping[NormalizedName, Version]) -> bool:
        if not self.packages:
            return False
        widened = dict(self.ranges)
        return all(
            (found := versions.get(n)) is not None
            and (widened[n].contains(found, prereleases=True) if n in widened else found == v)
            for n, v in self.packages
        )

    @property
    def label(self) -> str:
        return range_label({n: str(v) for n, v in self.packages}, dict(self.ranges))


@dataclass(frozen=True, kw_only=True, slots=True)
class Attribution:
    blame: Blame
    pairs: frozenset[Pair] = frozenset()
    packages: frozenset[NormalizedName] = frozenset()
    reasons: tuple[str, ...] = ()  # what coloured it: a check, a bisect finding
    fix: str | None = None  # for the environment: what to install or run

    def implicates(self, a: NormalizedName, b: NormalizedName) -> bool:
        return frozenset((a, b)) in self.pairs


def _pairs(names: Iterable[NormalizedName]) -> set[Pair]:
    return {frozenset(p) for p in itertools.combinations(sorted(set(names)), 2)}


def attribute(
    *,
    verdict: Verdict,
    versions: Mapping[NormalizedName, Version],
    failed: Iterable[FailedCheck] = (),
    system_deps: Iterable[str] = (),
    findings: Iterable[Finding] = (),
) -> Attribution:
    """What one result implicates."""
    if verdict.ok:
        return Attribution(blame=Blame.NONE)
    deps = tuple(system_deps)
    if deps:
        return Attribution(
            blame=Blame.ENVIRONMENT,
            reasons=("missing shared library",),
            fix=f"install {', '.join(deps)} (compat does, unless --no-system-deps)",
        )
    if verdict in ENVIRONMENT_VERDICTS:
        return Attribution(blame=Blame.ENVIRONMENT, reasons=(verdict.value,), fix=_fix(verdict))
    pairs: set[Pair] = set()
    packages: set[NormalizedName] = set()
    reasons: list[str] = []
    for finding in findings:
        if finding.held_by(versions):
            names = [n for n, _ in finding.packages]
            if len(names) == 1:
                packages.update(names)
            pairs |= _pairs(names)
            reasons.append(f"bisect: {finding.label}")
    for check in failed:
        needs = _implicated(check, versions)
        if len(set(needs)) >= 2:
            pairs |= _pairs(needs)
        elif needs:
            packages.update(needs)
        else:
            continue
        reasons.append(f"check {check.name}")
    if pairs:
        return Attribution(
            blame=Blame.PAIR,
            pairs=frozenset(pairs),
            packages=frozenset(packages),
            reasons=tuple(dict.fromkeys(reasons)),
        )
    if packages:
        return Attribution(
            blame=Blame.PACKAGE, packages=frozenset(packages), reasons=tuple(dict.fromkeys(reasons))
        )
    return Attribution(blame=Blame.UNATTRIBUTED, reasons=tuple(f"check {c.name}" for c in failed))


def _implicated(
    check: FailedCheck, versions: Mapping[NormalizedName, Version]
) -> list[NormalizedName]:
    """The one or two distributions a failing check implicates (a deep regression:
    its dependent and the partner that changed)."""
    needs = [n for n in check.needs if n in versions]
    if not needs:
        return []
    if check.kind is CheckKind.DEEP:
        return needs + list(check.changed_partners)
    if check.kind is CheckKind.IMPORT:
        return _import_blame(check, needs[0], versions)
    if len(needs) <= 2:
        return needs
    subject, partners = needs[0], needs[1:]
    for top in reversed(check.frames):
        owner = _owner(top, partners)
        if owner is not None:
            return [subject, owner]
    return needs[:2]


def _import_blame(
    check: FailedCheck, dist: NormalizedName, versions: Mapping[NormalizedName, Version]
) -> list[NormalizedName]:
    """An import failure: the distribution whose module raised (that of the innermost
    frame of installed code, looking past the named partner's own frames: NumPy 2
    raises a NumPy 1.x build's failure from its own shim module) and the partner its
    error names."""
    error = check.error or ""
    partner: NormalizedName | None = None
    if named := _PARTNER.search(error):
        partner = canonicalize_name(named[1])
    elif NUMPY_ABI.search(error):
        partner = canonicalize_name("numpy")
    owners = [dist, *(n for n in versions if n not in (dist, partner))]
    raiser = next((o for top in reversed(check.frames) if (o := _owner(top, owners))), dist)
    if raiser != dist and partner is not None and partner != raiser:
        return [raiser, partner]
    if raiser != dist:
        return [dist, raiser]
    return [dist] if partner is None else [dist, partner]


def _fix(verdict: Verdict) -> str:
    if verdict is Verdict.NO_WHEEL:
        return 'no wheel fits this image: allow source builds (build = "missing")'
    if verdict is Verdict.BUILD_FAILED:
        return "the source build failed: see its log for the missing build dependency"
    if verdict.undecided:
        return (
            "undecided: it timed out again with twice the time; run it with a longer "
            "--check-timeout or on a less busy machine"
        )
    return "the installation failed: see its log"
