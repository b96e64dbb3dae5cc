"""What others produce and ``compat db import`` reads is untrusted: whatever an
export's records hold, an import adds what is well formed or stops with a clear
error, never a traceback."""

from __future__ import annotations

import copy
import io
import json
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from compat.errors import StoreError
from compat.store import Store, export_json, import_json, sqlite_url
from tests.unit.store.test_store import _populate

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True),
    st.text(max_size=20),
    st.sampled_from(["2026-12-06T23:00:00+00:00", "pass", "crash", "sdist", "glibc"]),
)
values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner),
    max_leaves=8,
)


class Target:
    """The database every example imports into, and a real export's lines (targets,
    runs, results with checks and pins, images) that each example mutates."""

    def __init__(self, store: Store, lines: tuple[str, ...]) -> None:
        self.store = store
        self.lines = lines

    def __repr__(self) -> str:  # what a failing example prints
        return f"Target({self.store.url})"


@pytest.fixture(scope="module")
def into(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Target]:
    tmp = tmp_path_factory.mktemp("hostile")
    with Store.open(sqlite_url(tmp / "source.db")) as source:
        _populate(source, versions=("1.26.4", "2.0.2"))
        out = io.StringIO()
        export_json(source, out)
    with Store.open(sqlite_url(tmp / "r.db")) as store:
        yield Target(store, tuple(out.getvalue().splitlines()))


def _paths(value: Any, at: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    """Every place in a JSON value, the value itself first."""
    yield at
    if isinstance(value, dict):
        for key, inner in value.items():
            yield from _paths(inner, (*at, key))
    elif isinstance(value, list):
        for index, inner in enumerate(value):
            yield from _paths(inner, (*at, index))


def _replaced(value: Any, at: tuple[Any, ...], new: Any) -> Any:
    if not at:
        return new
    value = copy.deepcopy(value)
    parent = value
    for step in at[:-1]:
        parent = parent[step]
    parent[at[-1]] = new
    return value


@pytest.mark.slow
@settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(st.integers(0, 10**6), st.integers(0, 10**6), values)
def test_any_import_adds_what_is_well_formed_or_says_what_is_not(
    into: Target, which: int, where: int, new: Any
) -> None:
    header, *records = [json.loads(line) for line in into.lines]
    # one field of one record (or the record itself) replaced by anything
    index = which % len(records)
    paths = list(_paths(records[index]))
    records[index] = _replaced(records[index], paths[where % len(paths)], new)
    text = "\n".join(json.dumps(line) for line in [header, *records])
    try:
        import_json(into.store, io.StringIO(text))
    except StoreError as exc:
        said = str(exc)
    else:
        said = "imported"
    assert said
    export_json(into.store, io.StringIO())  # what was added is read back whole
