"""A check's kind is a value that travels with it; only a record from before
kinds existed has its kind read from its name."""

from __future__ import annotations

import dataclasses

import pytest

from compat.model import CheckKind, CheckResult, CheckVerdict, ComboResult, Depth, Verdict, depth_of
from tests.helpers.results import make_combo, make_target


def check(name: str, kind: CheckKind) -> CheckResult:
    return CheckResult(name=name, kind=kind, verdict=CheckVerdict.PASS, duration=0.5)


@pytest.mark.parametrize(
    ("name", "kind"),
    [
        ("import:numpy", CheckKind.IMPORT),
        ("pandas+numpy:groupby-agg", CheckKind.SMOKE),
        ("plugin:mine", CheckKind.SMOKE),
        ("user:mine.py", CheckKind.USER),
        ("exec", CheckKind.USER),
        ("build:lightgbm", CheckKind.BUILD),
        ("deep:pandas", CheckKind.DEEP),
        ("deep:pandas:pandas/tests/test_x.py::test_y", CheckKind.DEEP),
        ("deep", CheckKind.RUNNER),
        ("smoke-runner", CheckKind.RUNNER),
    ],
)
def test_a_check_exported_before_kinds_reads_with_the_kind_its_name_implied(
    name: str, kind: CheckKind
) -> None:
    data = check(name, kind).to_json()
    assert data["kind"] == kind.value
    del data["kind"]  # as an older compat wrote it
    assert CheckResult.from_json(data).kind is kind


def test_the_kind_survives_json_whatever_the_name_says() -> None:
    for kind in CheckKind:
        original = check("import:numpy", kind)
        assert CheckResult.from_json(original.to_json()) == original


def test_an_unknown_kind_is_refused() -> None:
    data = check("numpy:core", CheckKind.SMOKE).to_json()
    with pytest.raises(ValueError, match="gadget"):
        CheckResult.from_json({**data, "kind": "gadget"})


def test_depth_is_read_from_the_kinds_of_the_checks_not_their_names() -> None:
    target = make_target()
    result = ComboResult(combo=make_combo(target, {"numpy": "2.0.2"}), verdict=Verdict.PASS)

    def depth(*checks: CheckResult) -> Depth:
        return depth_of(dataclasses.replace(result, checks=checks))

    assert (
        depth(check("judged", CheckKind.DEEP), check("numpy:core", CheckKind.SMOKE)) is Depth.DEEP
    )
    assert depth(check("deep:pandas", CheckKind.SMOKE)) is Depth.SMOKE
    assert depth(check("numpy", CheckKind.IMPORT), check("scipy", CheckKind.IMPORT)) is Depth.IMPORT
    assert depth(check("import:numpy", CheckKind.IMPORT), check("x", CheckKind.USER)) is (
        Depth.SMOKE
    )
    # a deep tier that did not finish answers for smoke only
    assert depth(check("deep", CheckKind.RUNNER)) is Depth.SMOKE
    assert depth() is Depth.SMOKE
