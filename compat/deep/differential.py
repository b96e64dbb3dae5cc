"""Differential comparison and attribution: which failing tests are regressions
of this combination, and which partner's change they point at.

A failing test is a regression only when all of these hold (crater's pass→fail,
autopkgtest's "ignore what always failed"):

1. it fails here (failed, error, timeout or crash);
2. it passed on the baseline: the same dependent release with other partners;
3. it failed again on its one rerun (otherwise: *flaky*); a timeout must be a
   hang, not a slow machine: the baseline passed it in under a quarter of the time;
4. its innermost failing frame in the combination's code is library code of the
   dependent or a partner, not a test module or a test helper;
5. some pin changed between the baseline and here (every changed pin is named,
   the most likely culprit first: see :func:`attribute`).

Anything else that fails is counted and listed as *not attributed*, never as a
failure: a false "incompatible" is worse than a miss.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from packaging.utils import NormalizedName
from packaging.version import Version

from compat.deep.outcomes import DeepRun, Frame, Outcome, Root, TestOutcome
from compat.model import PinChange, version_changes

_TEST_PARTS = frozenset({"tests", "test", "testing", "_testing", "conftest.py", "conftest"})


class Finding(enum.StrEnum):
    """What one failing test here turned out to be."""

    REGRESSION = "regression"
    FLAKY = "flaky"  # passed on its rerun (or was not rerun)
    FAILS_ON_BASELINE = "fails-on-baseline"
    NOT_ON_BASELINE = "not-on-baseline"  # skipped there, or not run at all
    TEST_CODE = "test-code"  # the innermost frame is a test or a test helper
    # a deprecation (or other) warning the dependent's test configuration turns into
    # an error: the code runs, it only warns (pyparsing 3.3 under matplotlib 3.6)
    WARNING = "warning"
    NO_LIBRARY_FRAME = "no-library-frame"  # no frame in the dependent or a partner
    NO_CHANGE = "no-change"  # no pin differs from the baseline
    # timed out here, but took more than a quarter of that time on the baseline: a
    # busy machine, not a hang (a hang passed quickly there)
    SLOW = "slow"

    @property
    def attributed(self) -> bool:
        return self is Finding.REGRESSION


@dataclass(frozen=True, kw_only=True, slots=True)
class Failure:
    """One failing test here, classified."""

    test: TestOutcome
    finding: Finding
    baseline: Outcome | None = None  # the same test's outcome on the baseline
    frame: Frame | None = None  # the deciding frame (library or test code)
    owner: NormalizedName | None = None  # the distribution that frame belongs to
    changed: tuple[PinChange, ...] = ()  # every pin change, the most likely culprit first


def is_test_path(path: str) -> bool:
    """A test module or test helper, by its path: a ``tests``/``testing``
    directory, ``conftest.py``, a ``test_*`` or ``_test*`` file."""
    parts = path.split("/")
    return any(
        part in _TEST_PARTS or part.startswith(("test_", "_test")) for part in parts
    ) or parts[-1].endswith("_test.py")


def deciding_frame(
    frames: Sequence[Frame], owners: Mapping[str, NormalizedName], members: Iterable[str]
) -> tuple[Frame | None, NormalizedName | None, bool]:
    """The innermost frame that decides where a failure lies, its owner, and
    whether it is test code. Frames outside the environment (the test layer,
    the standard library) and in distributions other than ``members`` (the
    dependent and its partners) are looked through: a failure inside
    ``inspect`` or pyparsing lies with whoever called it."""
    wanted = set(members)
    for frame in reversed(frames):
        if frame.root is not Root.SITE:
            continue
        owner = owners.get(frame.top)
        if owner is None or owner not in wanted:
            continue
        return frame, owner, is_test_path(frame.path)
    return None, None, False


def culprit_owner(
    frames: Sequence[Frame], owners: Mapping[str, NormalizedName], changed: Iterable[str]
) -> NormalizedName | None:
    """The distribution of the innermost frame that lies in a changed
    distribution (a partner or a transitive dependency), if any frame does."""
    moved = set(changed)
    for frame in reversed(frames):
        owner = owners.get(frame.top) if frame.root is Root.SITE else None
        if owner is not None and owner in moved:
            return owner
    return None


def named_by(
    test: TestOutcome, owners: Mapping[str, NormalizedName], changed: Iterable[NormalizedName]
) -> list[NormalizedName]:
    """The changed distributions a test's parameters or the words of its function's
    name name, by distribution or import name: ``test_ts_plot_with_tz['dateutil/
    US/Eastern']`` and ``test_date_range_timestamp_equiv_dateutil`` name
    python-dateutil. They say what a test exercises; a failing frame in compiled
    code (a Cython ``.pyx``) may not."""
    name, _, params = test.test.partition("[")
    words = set(re.findall(r"[A-Za-z_][A-Za-z0-9_-]*", params.lower()))
    words |= set(name.rsplit("::", 1)[-1].lower().split("_"))
    moved = set(changed)
    names = {n: n for n in moved} | {t.lower(): d for t, d in owners.items() if d in moved}
    return sorted({dist for word, dist in names.items() if word in words})


def attribute(
    *,
    owner: NormalizedName | None,
    named: Sequence[NormalizedName] = (),
    module_partners: Sequence[NormalizedName],
    foundations: Iterable[NormalizedName],
    changes: Mapping[NormalizedName, PinChange],
    partners: Iterable[NormalizedName] = (),
) -> tuple[PinChange, ...]:
    """Every pin change between the baseline and here, the most likely culprit first.

    The order: the changed distribution a failing frame lies in (``owner``); those
    the test's parameters name (``named``); the changed partners the test module
    exercises, the specific ones (not loaded by ``import dependent``, like
    matplotlib for pandas) before the foundations (numpy for pandas), which every
    test touches; the other changed ``partners``; then every other changed pin
    (transitive dependencies such as python-dateutil), by name. None is dropped:
    a regression where two pins moved must not be blamed on one alone."""
    base = set(foundations)
    groups: list[list[NormalizedName]] = [
        [owner] if owner is not None else [],
        list(named),
        [p for p in module_partners if p not in base],
        [p for p in module_partners if p in base],
        sorted(set(partners)),
        sorted(changes),
    ]
    order = [n for group in groups for n in group if n in changes]
    return tuple(changes[n] for n in dict.fromkeys(order))


def pin_changes(
    here: Mapping[NormalizedName, Version],
    baseline: Mapping[NormalizedName, Version],
    *,
    besides: str,
) -> dict[NormalizedName, PinChange]:
    """Every pin whose version differs between ``baseline`` and ``here`` (added
    or removed ones included), ``besides`` the dependent itself."""
    return {c.name: c for c in version_changes(baseline, here) if c.name != besides}


def needs_baseline(run: DeepRun, dependent: NormalizedName) -> tuple[TestOutcome, ...]:
    """The failing tests of ``dependent`` that only a baseline can still rule
    out: failed on their rerun too, with a library frame. The others are flaky
    or not attributed whatever the baseline says, and cost no baseline run."""
    plan = run.plans.get(dependent)
    partners = tuple(plan.partners) if plan else ()
    owners = run.owners()
    found = []
    for test in run.of(dependent):
        if test.warning or not (
            test.outcome.failing and test.rerun is not None and test.rerun.failing
        ):
            continue
        frame, _owner, in_tests = deciding_frame(test.frames, owners, (dependent, *partners))
        if frame is not None and not in_tests:
            found.append(test)
    return tuple(found)


def compare(
    here: DeepRun,
    baseline: DeepRun,
    dependent: NormalizedName,
    *,
    here_versions: Mapping[NormalizedName, Version],
    baseline_versions: Mapping[NormalizedName, Version],
) -> tuple[Failure, ...]:
    """Every failing test of ``dependent`` here, classified against ``baseline``.

    Raises ValueError when the baseline is not of the same dependent release:
    the comparison would then say nothing about the partners."""
    if here_versions.get(dependent) != baseline_versions.get(dependent):
        raise ValueError(
            f"baseline has {dependent} {baseline_versions.get(dependent)}, "
            f"here {here_versions.get(dependent)}: not the same release"
        )
    plan = here.plans.get(dependent)
    partners = tuple(plan.partners) if plan else tuple(n for n in here_versions if n != dependent)
    foundations = tuple(plan.foundations) if plan else ()
    changes = pin_changes(here_versions, baseline_versions, besides=dependent)
    owners = here.owners()
    before = {o.key: o for o in baseline.of(dependent)}
    found: list[Failure] = []
    for test in here.of(dependent):
        if not test.outcome.failing:
            continue
        old = before.get(test.key)
        old_outcome = old.outcome if old else None
        frame, owner, in_tests = deciding_frame(test.frames, owners, (dependent, *partners))

        changed: tuple[PinChange, ...] = ()
        if test.rerun is None or not test.rerun.failing:
            finding = Finding.FLAKY
        elif test.warning:
            finding = Finding.WARNING
        elif frame is None:
            finding = Finding.NO_LIBRARY_FRAME
        elif in_tests:
            finding = Finding.TEST_CODE
        elif old_outcome is None or not (old_outcome.passing or old_outcome.failing):
            finding = Finding.NOT_ON_BASELINE
        elif old_outcome.failing:
            finding = Finding.FAILS_ON_BASELINE
        elif (
            test.outcome is Outcome.TIMEOUT and old is not None and old.duration * 4 > test.duration
        ):
            finding = Finding.SLOW
        elif not changes:
            finding = Finding.NO_CHANGE
        else:
            finding = Finding.REGRESSION
            changed = attribute(
                owner=culprit_owner(test.frames, owners, changes) or owner,
                named=named_by(test, owners, changes),
                module_partners=plan.modules.get(test.module, partners) if plan else partners,
                foundations=foundations,
                changes=changes,
                partners=partners,
            )
        found.append(
            Failure(
                test=test,
                finding=finding,
                baseline=old_outcome,
                frame=frame,
                owner=owner,
                changed=changed,
            )
        )
    return tuple(found)
