"""The known-good ranking, as a pure function over candidates."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet

from compat.errors import UsageError
from compat.lock.select import rank_known_good
from compat.model import Depth, Incompatibility, Verdict
from compat.store import KnownGood
from tests.helpers.results import MUSL_ID, make_combo, make_target

T0 = datetime(2026, 11, 1, tzinfo=UTC)


def good(versions: dict[str, str], *, hours: int = 0, depth: Depth = Depth.SMOKE) -> KnownGood:
    target = make_target()
    return KnownGood(
        combo=make_combo(target, versions),
        result_id=hours,
        base=target.name,
        image=target.image,
        image_id=MUSL_ID,
        tested=T0 + timedelta(hours=hours),
        depth=depth,
    )


def labels(ranked: tuple[KnownGood, ...]) -> list[str]:
    return [g.combo.label() for g in ranked]


def test_newest_compares_package_by_package_in_the_order_first_tested() -> None:
    a = good({"numpy": "2.0.2", "pandas": "2.1.4"}, hours=1)
    b = good({"numpy": "1.26.4", "pandas": "2.2.3"}, hours=2)
    c = good({"numpy": "2.0.2", "pandas": "2.2.3"}, hours=3)
    ranking = rank_known_good([b, a, c])
    # numpy was requested first by the first tested: it decides before pandas
    assert labels(ranking.ranked) == [c.combo.label(), a.combo.label(), b.combo.label()]
    assert ranking.best == c
    assert ranking.avoided == 0
    oldest = rank_known_good([b, a, c], prefer="oldest")
    assert labels(oldest.ranked) == [b.combo.label(), a.combo.label(), c.combo.label()]
    # the constraints' packages come first
    by_pandas = rank_known_good([a, b, c], constraints=[Requirement("pandas")])
    assert labels(by_pandas.ranked) == [c.combo.label(), b.combo.label(), a.combo.label()]


def test_a_combination_lacking_a_package_loses_and_ties_go_to_the_latest_tested() -> None:
    full = good({"numpy": "2.0.2", "scipy": "1.14.1"}, hours=1)
    partial = good({"numpy": "2.0.2"}, hours=5)
    assert rank_known_good([partial, full]).best == full
    again = good({"numpy": "2.0.2", "scipy": "1.14.1"}, hours=9)
    assert again.combo.id == full.combo.id
    assert rank_known_good([full, again]).best == again


def test_constraints_must_be_met() -> None:
    old = good({"numpy": "1.26.4"}, hours=1)
    new = good({"numpy": "2.1.3"}, hours=2)
    assert rank_known_good([old, new], constraints=[Requirement("numpy<2")]).ranked == (old,)
    assert rank_known_good([old, new], constraints=[Requirement("scipy")]).best is None
    assert rank_known_good([]).best is None


def test_combinations_holding_a_known_incompatibility_are_avoided() -> None:
    held = good({"numpy": "2.0.2", "pandas": "2.1.1"}, hours=2)
    clean = good({"numpy": "1.26.4", "pandas": "2.1.1"}, hours=1)
    known = Incompatibility(
        id=1,
        base="alpine",
        image_id=MUSL_ID,
        packages={"numpy": "2.0.2", "pandas": "2.1.1"},
        verdict=Verdict.IMPORT_ERROR,
        explanation="numpy.dtype size changed",
        evidence=(1,),
        created=T0,
    )
    assert rank_known_good([held, clean]).best == held
    ranking = rank_known_good([held, clean], avoid=[known])
    assert (ranking.ranked, ranking.avoided) == ((clean,), 1)


def test_a_range_is_applied_but_a_deep_pass_inside_it_outweighs_it() -> None:
    known = Incompatibility(
        id=1,
        base="alpine",
        image_id=MUSL_ID,
        packages={"numpy": "2.0.2", "pandas": "2.1.1"},
        # bisection tried numpy 2.0.1 and 2.1.0 (both failed), not 2.0.3
        ranges={"numpy": SpecifierSet(">=2.0.1,<=2.1.0")},
        verdict=Verdict.IMPORT_ERROR,
        explanation="numpy.dtype size changed",
        evidence=(1,),
        created=T0,
    )
    failing = good({"numpy": "2.0.2", "pandas": "2.1.1"}, hours=1, depth=Depth.DEEP)
    inside = good({"numpy": "2.0.3", "pandas": "2.1.1"}, hours=2)
    inside_deep = good({"numpy": "2.0.3", "pandas": "2.1.1"}, hours=3, depth=Depth.DEEP)
    outside = good({"numpy": "1.26.4", "pandas": "2.1.1"}, hours=4)
    # a smoke pass inside the range is taken to fail as the range says
    ranking = rank_known_good([failing, inside, outside], avoid=[known])
    assert (ranking.ranked, ranking.avoided) == ((outside,), 2)
    # one the deep tier passed is evidence against the range's guess; the versions
    # that failed stay avoided however deep their pass
    ranking = rank_known_good([failing, inside_deep, outside], avoid=[known])
    assert ranking.ranked == (inside_deep, outside)


def test_an_unknown_preference_is_a_usage_error() -> None:
    with pytest.raises(UsageError, match="newest"):
        rank_known_good([], prefer="latest")
