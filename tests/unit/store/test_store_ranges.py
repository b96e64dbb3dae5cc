"""Known incompatibilities widened to version ranges: kept, read back, applied to
every release inside them, and a database from before ranges migrated forward.
tests/integration/test_store_postgres.py runs these against PostgreSQL too."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import sqlalchemy as sa
from packaging.specifiers import SpecifierSet

from compat.store import SCHEMA_VERSION, Store
from tests.helpers.results import known_pair
from tests.unit.store.test_store import MakeUrl, db_url, make_db_url  # noqa: F401  (fixtures)

PAIR = {"numpy": "2.0.2", "pandas": "2.1.1"}
RANGES = {"numpy": SpecifierSet(">=2.0.0"), "pandas": SpecifierSet(">=2.1.0,<2.2.0")}


@pytest.fixture
def known(request: pytest.FixtureRequest) -> Iterator[Store]:
    """A fresh results database (SQLite here, PostgreSQL where imported with its url)."""
    with Store.open(request.getfixturevalue("db_url")) as opened:
        yield opened


def test_a_widened_incompatibility_holds_every_release_in_its_ranges(known: Store) -> None:
    store = known
    first = known_pair(store, PAIR, ranges=RANGES)
    (found,) = store.incompatibilities("alpine")
    assert found.id == first
    assert found.packages == PAIR  # the pair bisection found stays the evidence
    assert found.ranges == RANGES
    assert found.label() == "numpy>=2.0.0 x pandas>=2.1.0,<2.2.0"
    assert found.matches({"numpy": "2.4.6", "pandas": "2.1.4", "six": "1.17.0"})
    assert found.matches(PAIR)
    assert not found.matches({"numpy": "1.26.4", "pandas": "2.1.1"})
    assert not found.matches({"numpy": "2.0.2", "pandas": "2.2.0"})
    assert not found.matches({"numpy": "2.0.2"})  # pandas absent: nothing to meet
    # the same ranges found again from another pair inside them: stored once
    again = known_pair(store, {"numpy": "2.1.3", "pandas": "2.1.4"}, evidence=(7,), ranges=RANGES)
    assert again == first
    (latest,) = store.incompatibilities("alpine")
    assert (latest.packages, latest.evidence) == ({"numpy": "2.1.3", "pandas": "2.1.4"}, (7,))


def test_a_pair_bisected_again_with_ranges_gains_them(known: Store) -> None:
    store = known
    first = known_pair(store, PAIR)
    (exact,) = store.incompatibilities("alpine")
    assert exact.ranges == {}
    assert not exact.matches({"numpy": "2.1.3", "pandas": "2.1.1"})
    assert known_pair(store, PAIR, ranges=RANGES) == first
    (widened,) = store.incompatibilities("alpine")
    assert widened.matches({"numpy": "2.1.3", "pandas": "2.1.1"})
    # bisected again without widening: the range found before stands
    assert known_pair(store, PAIR, evidence=(9,)) == first
    (kept,) = store.incompatibilities("alpine")
    assert (kept.ranges, kept.evidence) == (RANGES, (9,))


def test_a_database_from_before_ranges_keeps_its_pairs_exact(
    request: pytest.FixtureRequest,
) -> None:
    fresh: MakeUrl = request.getfixturevalue("make_db_url")
    url = fresh()
    with Store.open(url) as store:
        known_pair(store, PAIR)
    engine = sa.create_engine(url)
    with engine.begin() as conn:  # as a v11 database holds it
        conn.execute(sa.text("ALTER TABLE incompatibilities DROP COLUMN ranges"))
        conn.execute(sa.text("DELETE FROM schema_version WHERE version >= 12"))
    engine.dispose()
    with Store.open(url) as store:
        assert store.schema_version == SCHEMA_VERSION == 12
        (old,) = store.incompatibilities("alpine")
        assert (old.packages, old.ranges) == (PAIR, {})
        assert old.label() == "numpy 2.0.2 x pandas 2.1.1"
        known_pair(store, PAIR, ranges=RANGES)  # and it can widen now
        (widened,) = store.incompatibilities("alpine")
        assert widened.ranges == RANGES
