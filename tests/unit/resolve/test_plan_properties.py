"""Properties of plans over the recorded index: every combination is installable as
declared on its target, pairwise plans cover every feasible pair, planning is
deterministic."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from packaging.utils import canonicalize_name

from compat.index.snapshot import SnapshotIndex
from compat.matrix import BuildPolicy, Matrix, MatrixPackage
from compat.model import Combo, FileKind
from compat.resolve.candidates import CandidateSource
from compat.resolve.planner import Plan, Planner
from compat.targets.profiles import target_from_profile
from compat.targets.target import Target

INDEX = SnapshotIndex(Path(__file__).parents[2] / "data" / "index")
STACK = ("numpy", "scipy", "scikit-learn", "pandas", "matplotlib", "lightgbm")
RANGES = {
    "numpy": (">=1.26", ">=2", "<2.3", ""),
    "scipy": (">=1.11", ">=1.14", ""),
    "scikit-learn": (">=1.3", ">=1.6", ""),
    "pandas": (">=2.1", "<3", ">=2.2", ""),
    "matplotlib": (">=3.8", ">=3.10", ""),
    "lightgbm": (">=4.1", ">=4.5", ""),
}
BASES = (
    ("alpine", "3.11"),
    ("alpine", "3.12"),
    ("debian-slim", "3.12"),
    ("debian-slim", "3.13"),
    ("ubuntu", "3.12"),
)


@st.composite
def matrices(draw: st.DrawFn) -> Matrix:
    names = draw(st.lists(st.sampled_from(STACK), min_size=2, max_size=4, unique=True))
    packages = tuple(
        MatrixPackage(name=canonicalize_name(n), versions=_spec(draw(st.sampled_from(RANGES[n]))))
        for n in names
    )
    return Matrix(
        name="prop",
        path="<test>",
        packages=packages,
        last_minors=draw(st.integers(min_value=1, max_value=3)),
        build=BuildPolicy(allow_all=draw(st.booleans())),
    )


def _spec(text: str):  # type: ignore[no-untyped-def]
    from packaging.specifiers import SpecifierSet

    return SpecifierSet(text)


def _plan(matrix: Matrix, base: tuple[str, str], strategy: str) -> Plan:
    target = target_from_profile(base[0], python=base[1])
    source = CandidateSource(INDEX, target, matrix.build)
    return Planner(source, matrix).plan(target, strategy)


def assert_installable(combo: Combo, target: Target, matrix: Matrix) -> None:
    """Every requirement of every package in the combination holds for the target."""
    env = target.marker_environment()
    pins = {p.name: p for p in combo.pins}
    assert len(pins) == len(combo.pins), "a package pinned twice"
    for pin in combo.pins:
        file = next(f for f in INDEX.files(pin.name) if f.sha256 == pin.sha256)
        assert file.version == pin.version
        assert target.accepts_python(file), f"{pin} requires Python {file.requires_python}"
        if file.kind is FileKind.WHEEL:
            assert target.tag_rank(file) is not None, f"{file.filename} does not fit {target.name}"
        else:
            assert matrix.build.may_build(pin.name), f"{pin} is an sdist but building is off"
        meta = INDEX.metadata(file)
        if meta.requires_python is not None:
            assert meta.requires_python.contains(target.python_version, prereleases=True)
        for req in meta.requires_dist:
            if req.marker is not None and not req.marker.evaluate({**env, "extra": ""}):
                continue
            dep = canonicalize_name(req.name)
            assert dep in pins, f"{pin} requires {req}, not pinned"
            assert req.specifier.contains(pins[dep].version, prereleases=True), (
                f"{pin} requires {req}, pinned {pins[dep].version}"
            )
    for package in matrix.packages:
        if package.name in pins:
            assert package.versions.contains(pins[package.name].version, prereleases=True)


SETTINGS = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@SETTINGS
@given(
    matrices(), st.sampled_from(BASES), st.sampled_from(("latest", "minor", "pairwise", "oldest"))
)
def test_every_planned_combination_is_installable(
    matrix: Matrix, base: tuple[str, str], strategy: str
) -> None:
    plan = _plan(matrix, base, strategy)
    for combo in plan.combos:
        assert_installable(combo, plan.target, matrix)
        assert set(combo.requested) == set(plan.versions)


@SETTINGS
@given(matrices(), st.sampled_from(BASES))
def test_pairwise_covers_every_feasible_pair(matrix: Matrix, base: tuple[str, str]) -> None:
    plan = _plan(matrix, base, "pairwise")
    covered: set[tuple[object, object]] = set()
    for combo in plan.combos:
        values = [(n, combo.version_of(n)) for n in plan.versions]
        covered.update(itertools.combinations(values, 2))
    infeasible = {p.pair for p in plan.infeasible_pairs}
    for p, q in itertools.combinations(plan.versions, 2):
        for a in plan.versions[p]:
            for b in plan.versions[q]:
                pair = ((p, a), (q, b))
                assert pair in covered or pair in infeasible, (
                    f"pair {pair} neither covered nor infeasible"
                )
                assert not (pair in covered and pair in infeasible)
    for infeasible_pair in plan.infeasible_pairs:
        assert infeasible_pair.explanation


@pytest.mark.slow
@SETTINGS
@given(matrices(), st.sampled_from(BASES), st.sampled_from(("minor", "pairwise", "exhaustive")))
def test_same_inputs_same_plan(matrix: Matrix, base: tuple[str, str], strategy: str) -> None:
    first = _plan(matrix, base, strategy).to_json()
    # a fresh index and source: nothing memoised may change the outcome
    target = target_from_profile(base[0], python=base[1])
    source = CandidateSource(SnapshotIndex(INDEX.directory), target, matrix.build)
    second = Planner(source, matrix).plan(target, strategy).to_json()
    assert first == second


@SETTINGS
@given(matrices(), st.sampled_from(BASES))
def test_minor_covers_every_chosen_version(matrix: Matrix, base: tuple[str, str]) -> None:
    plan = _plan(matrix, base, "minor")
    seen = {(n, c.version_of(n)) for c in plan.combos for n in plan.versions}
    refused = {r for c in plan.conflicts for r in c.requested}
    for name, versions in plan.versions.items():
        for version in versions:
            assert (name, version) in seen or f"{name}=={version}" in refused
