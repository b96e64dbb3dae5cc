from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from packaging.utils import canonicalize_name
from packaging.version import Version

from compat.errors import UsageError
from compat.model import Combo, ComboResult, FileKind, Pin, Verdict
from compat.report.junit import write_junit
from compat.report.summary import Row
from compat.workflows.scan import Shard


def combo(numpy: str, pandas: str) -> Combo:
    pins = tuple(
        Pin(
            name=canonicalize_name(n),
            version=Version(v),
            filename=f"{n}-{v}.whl",
            url=f"https://files.example/{n}-{v}.whl",
            sha256=f"{n}{v}".encode().hex().ljust(64, "0"),
            kind=FileKind.WHEEL,
        )
        for n, v in (("numpy", numpy), ("pandas", pandas))
    )
    return Combo(target="t", pins=pins, requested=(pins[0].name, pins[1].name))


COMBOS = [combo(f"2.{a}.0", f"2.{b}.0") for a in range(5) for b in range(4)]


def test_shards_are_disjoint_cover_the_plan_and_stable() -> None:
    slices = [Shard(k=k, n=3).select(COMBOS) for k in (1, 2, 3)]
    ids = [c.id for s in slices for c in s]
    assert sorted(ids) == sorted(c.id for c in COMBOS)
    assert len(set(ids)) == len(ids)
    # a combination keeps its shard when others leave the plan
    assert {c.id for c in Shard(k=2, n=3).select(COMBOS[::2])} <= {c.id for c in slices[1]}


@pytest.mark.parametrize("bad", ["3", "0/2", "3/2", "a/b"])
def test_bad_shard_spec(bad: str) -> None:
    with pytest.raises(UsageError, match="--shard"):
        Shard.parse(bad)


def test_junit_has_one_case_per_combination_with_failures(tmp_path: Path) -> None:
    good = ComboResult(combo=COMBOS[0], verdict=Verdict.PASS, duration=1.5)
    bad = ComboResult(
        combo=COMBOS[1],
        verdict=Verdict.IMPORT_ERROR,
        failed_check="import:pandas",
        error="ValueError: numpy.dtype size changed",
        log="Traceback ...",
        duration=0.5,
    )
    rows = [Row(label="scikit-learn", verdict=Verdict.NO_WHEEL, error="no musllinux wheel")]
    rows += [Row.of(good), Row.of(bad)]
    path = write_junit(tmp_path / "j.xml", suite="compat.ml.alpine", rows=rows, results=[good, bad])
    suite = ET.parse(path).getroot().find("testsuite")
    assert suite is not None
    assert suite.get("tests") == "3"
    assert suite.get("failures") == "2"
    cases = suite.findall("testcase")
    assert [c.get("name") for c in cases] == [r.label for r in rows]
    failure = cases[2].find("failure")
    assert failure is not None
    assert failure.get("type") == "import-error"
    assert "import:pandas: ValueError" in (failure.get("message") or "")
    assert failure.text == "Traceback ..."
    assert cases[1].find("failure") is None
