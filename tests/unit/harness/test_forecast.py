"""The check runs a plan will execute: which checks apply to a combination, which
an earlier one or the results database already has with the same inputs, the
exhaustive cap counting them, and the order combinations run in."""

from __future__ import annotations

import itertools
from collections.abc import Iterable
from pathlib import Path

import pytest
from packaging.utils import NormalizedName, canonicalize_name
from packaging.version import Version

from compat.errors import PlanTooLarge
from compat.harness.forecast import forecast, spread
from compat.harness.reuse import Keys
from compat.index.snapshot import SnapshotIndex
from compat.matrix import parse_matrix
from compat.model import CheckResult, CheckVerdict, Combo, ComboResult, Verdict, sorted_inputs
from compat.resolve.candidates import PYTHON, CandidateSource
from compat.resolve.planner import Plan
from compat.smoke.checks import Check, builtin_checks
from compat.store import Store, sqlite_url
from compat.targets.profiles import target_from_profile
from compat.workflows.steps import make_plan
from tests.helpers.reporter import RecordingReporter
from tests.helpers.results import make_combo

INDEX = SnapshotIndex(Path(__file__).parents[2] / "data" / "index")
TARGET = target_from_profile("debian-slim", python="3.12")
PACKAGES = {"numpy": ">=2.1,<2.3", "pandas": ">=2.2,<2.4"}
SOURCE = CandidateSource(INDEX, TARGET, parse_matrix({"packages": PACKAGES}, path="m.toml").build)


def _noop() -> None:
    pass


CHECKS = [
    Check(name="numpy:alone", needs=("numpy",), func=_noop),
    Check(name="pandas+numpy:together", needs=("pandas", "numpy"), func=_noop),
    Check(name="scipy:absent", needs=("scipy",), func=_noop),
    Check(name="numpy:new-only", needs=("numpy",), func=_noop, valid=(("numpy", ">=2.2"),)),
]


def requires(name: NormalizedName, version: Version) -> Iterable[NormalizedName]:
    return [d.name for d in SOURCE.dependencies(name, version, frozenset()) if d.name != PYTHON]


def planned(*, kept: Store | None = None, top: dict[str, object] | None = None) -> Plan:
    """The exhaustive plan of PACKAGES, two minors each (``top``: more matrix keys)."""
    matrix = parse_matrix(
        {"packages": PACKAGES, "strategy": "exhaustive", "last-minors": 2, **(top or {})},
        path="m.toml",
    )
    return make_plan(
        SOURCE, matrix, strategy=None, last_minors=None, cap=None,
        reporter=RecordingReporter(), kept=kept,
    )  # fmt: skip


def combos(**top: object) -> tuple[Combo, ...]:
    return planned(top=top).combos


def test_a_check_runs_once_per_set_of_versions_it_imports() -> None:
    four = combos()
    assert len(four) == 4
    installed = {frozenset(c.versions) for c in four}
    assert len(installed) == 1  # the same distributions in each: one key per check
    # each import check imports its own distribution only
    alone = {f"import:{name}": frozenset({name}) for name in next(iter(installed))}
    result = forecast(four, requires=requires, learned=alone, checks=CHECKS)
    releases = {(p.name, p.version) for c in four for p in c.pins}
    # numpy's checks run once per numpy (numpy:new-only only where numpy >= 2.2),
    # pandas+numpy's once per pair (it imports what pandas requires: numpy), and
    # scipy's never
    assert result.total == len(releases) + 2 + 1 + 4
    assert result.total + result.reused == sum(
        len(c.pins) + 2 + (c.version_of("numpy") >= Version("2.2")) for c in four
    )
    assert result.runs[four[0].id] == len(four[0].pins) + 2 + (
        four[0].version_of("numpy") >= Version("2.2")
    )


def test_what_a_check_imported_before_decides_and_kept_outcomes_are_not_run() -> None:
    four = combos()
    pandas_alone = {"pandas+numpy:together": frozenset({canonicalize_name("pandas")})}
    learned = forecast(four, requires=requires, learned=pandas_alone, checks=CHECKS)
    unlearned = forecast(four, requires=requires, learned={}, checks=CHECKS)
    # importing pandas only, it runs once per pandas version: two runs fewer
    assert unlearned.total - learned.total == 2

    kept = forecast(
        four,
        requires=requires,
        learned={},
        checks=CHECKS,
        kept=lambda combo: frozenset({"numpy:alone", "numpy:new-only"}),
    )
    assert unlearned.total - kept.total == 3


def test_the_exhaustive_cap_counts_check_runs() -> None:
    with pytest.raises(PlanTooLarge, match=r"would run about \d+ checks in 4 combinations"):
        combos(cap=4)
    plan_runs = sum(forecast(combos(), requires=requires, learned={}).runs.values())
    assert len(combos(cap=plan_runs)) == 4  # a cap of exactly that many lets it run


def test_combinations_run_in_an_order_where_neighbours_differ_most() -> None:
    product = sorted(combos(), key=lambda c: (c.version_of("numpy"), c.version_of("pandas")))
    ordered = spread(product)
    assert ordered[0] == product[0]
    assert sorted(c.id for c in ordered) == sorted(c.id for c in product)
    differ = [
        sum(a.version_of(n) != b.version_of(n) for n in ("numpy", "pandas"))
        for a, b in itertools.pairwise(ordered)
    ]
    assert differ == [2, 1, 2]  # in product order: 1, 2, 1


def test_combinations_run_two_at_a_time_differ_from_both_before_them() -> None:
    """With two at a time, the combination still running when the next starts is as
    often two places back as one: the next should differ from it too, or both run
    the same checks for the same inputs."""
    names = ("numpy", "scipy", "pandas", "matplotlib")
    product = [
        make_combo(TARGET, dict(zip(names, versions, strict=True)))
        for versions in itertools.product(("1.0", "2.0"), repeat=len(names))
    ]
    ordered = spread(product)
    assert sorted(c.id for c in ordered) == sorted(c.id for c in product)

    def differ(a: Combo, b: Combo) -> int:
        return sum(a.version_of(n) != b.version_of(n) for n in names)

    one_back = [differ(a, b) for a, b in itertools.pairwise(ordered)]
    two_back = [differ(a, b) for a, b in zip(ordered, ordered[2:], strict=False)]
    assert min(one_back) >= 2
    # differing from the one before alone: each is one package from the one two back
    assert sum(d == 1 for d in two_back) <= 1, two_back


def test_what_the_results_database_keeps_on_the_image_is_not_counted(tmp_path: Path) -> None:
    four = combos()
    first = four[0]
    numpy_only = [c.name for c in builtin_checks() if c.needs == ("numpy",)]  # valid for 2.x
    assert numpy_only
    image_id = "sha256:" + "d" * 64
    keys = Keys(checks_dir=None)(image_id=image_id, installed=first.versions)
    numpy = {"numpy": str(first.version_of("numpy"))}
    ran = tuple(
        CheckResult(
            name=name,
            verdict=CheckVerdict.PASS,
            duration=1.0,
            inputs=sorted_inputs(numpy),
            key=keys[name],
        )
        for name in numpy_only
    )
    with Store.open(sqlite_url(tmp_path / "r.db")) as store:
        empty = planned(kept=store)
        run_id = store.start_run(TARGET, backend="docker")
        result = ComboResult(
            combo=first, verdict=Verdict.PASS, checks=ran, backend="docker", image_id=image_id
        )
        store.record(run_id, TARGET, result)
        kept = planned(kept=store)
    # numpy's own checks ran with the first combination's numpy: only the other
    # numpy runs them
    assert sum(empty.check_runs.values()) - sum(kept.check_runs.values()) == len(numpy_only)
    assert kept.check_runs[first.id] == empty.check_runs[first.id] - len(numpy_only)
