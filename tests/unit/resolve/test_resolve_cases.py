"""Recorded resolution cases: one TOML file per case in tests/data/cases, each run
against the recorded index snapshot."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

from compat.index.snapshot import SnapshotIndex
from compat.matrix import BuildPolicy
from compat.model import Combo
from compat.resolve import CandidateSource, Conflict, Dependency, Preferences, Resolver
from compat.targets.profiles import target_from_profile

DATA = Path(__file__).parents[2] / "data"
CASES = sorted((DATA / "cases").glob("*.toml"))


@pytest.fixture(scope="module")
def index() -> SnapshotIndex:
    return SnapshotIndex(DATA / "index")


def _request(text: str) -> Dependency:
    req = Requirement(text)
    return Dependency(
        name=canonicalize_name(req.name),
        extras=frozenset(canonicalize_name(e) for e in req.extras),
        specifier=req.specifier,
    )


@pytest.mark.parametrize("case", CASES, ids=[c.stem for c in CASES])
def test_case(case: Path, index: SnapshotIndex) -> None:
    spec = tomllib.loads(case.read_text())
    target = target_from_profile(spec["base"], python=spec.get("python"))
    build = BuildPolicy(allow_all=spec.get("build", "missing") != "none")
    resolver = Resolver(CandidateSource(index, target, build))
    forced = {d.name: next(iter(d.specifier)).version for d in map(_request, spec.get("force", []))}
    outcome = resolver.resolve(
        [_request(r) for r in spec["requests"]],
        prefs=Preferences(forced={n: Version(v) for n, v in forced.items()}),
    )
    expect = spec["expect"]
    if "conflict" in expect:
        assert isinstance(outcome, Conflict), f"expected a conflict, got {outcome}"
        for fragment in expect["conflict"]:
            assert fragment in outcome.explanation
        return
    assert isinstance(outcome, Combo), getattr(outcome, "explanation", outcome)
    pinned = {str(p) for p in outcome.pins} | {p.name for p in outcome.pins}
    for wanted in expect["pins"]:
        assert wanted in pinned, f"{wanted} not in {sorted(pinned)}"
    built = sorted(p.name for p in outcome.source_builds)
    assert built == sorted(expect.get("source_builds", []))
