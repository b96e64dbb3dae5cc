"""Contemporaneous stacks: a release with its partners as they stood on its release day."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest
from packaging.version import Version

from compat.errors import UsageError
from compat.index.asof import AsOfIndex
from compat.index.snapshot import SnapshotIndex
from compat.model import Combo
from compat.resolve.history import contemporaneous_stack
from compat.targets.profiles import target_from_profile

INDEX = SnapshotIndex(Path(__file__).parents[2] / "data" / "index")
SIX = ("numpy", "scipy", "scikit-learn", "pandas", "matplotlib", "lightgbm")
PY312 = target_from_profile("debian-slim", python="3.12")
PY313 = target_from_profile("debian-slim", python="3.13")


def versions(combo: Combo | None) -> dict[str, str]:
    assert combo is not None
    return {p.name: str(p.version) for p in combo.pins}


def test_partners_are_the_newest_on_the_release_day() -> None:
    stack = contemporaneous_stack(INDEX, PY312, "pandas", Version("2.2.0"), SIX)
    assert stack.released == date(2024, 1, 20)
    assert stack.as_of == stack.released
    assert stack.clipped == ()
    pins = versions(stack.combo)
    assert {n: pins[n] for n in SIX} == {
        "pandas": "2.2.0",
        "numpy": "1.26.3",
        "scipy": "1.12.0",
        "scikit-learn": "1.4.0",
        "matplotlib": "3.8.2",
        "lightgbm": "4.2.0",
    }
    # dependencies too are as of that day: nothing in the stack is newer
    then = AsOfIndex.on(INDEX, stack.released)
    assert stack.combo is not None
    assert then.has_all(stack.combo)
    assert stack.combo.requested[0] == "pandas"


def test_a_release_day_before_any_partner_installs_is_clipped() -> None:
    # lightgbm 4.1.0 (pure Python wheel, 2023-09-12) on Python 3.13: no partner had a
    # cp313 wheel then; the stack is taken on the first day every one of them had one
    stack = contemporaneous_stack(INDEX, PY313, "lightgbm", Version("4.1.0"), SIX)
    assert stack.released == date(2023, 9, 12)
    assert stack.as_of > date(2024, 9, 1)
    assert set(stack.clipped) == {"numpy", "scipy", "scikit-learn", "pandas", "matplotlib"}
    pins = versions(stack.combo)
    assert pins["lightgbm"] == "4.1.0"
    assert Version(pins["numpy"]) >= Version("2.1")
    assert stack.combo is not None
    assert AsOfIndex.on(INDEX, stack.as_of).has_all(stack.combo)
    assert stack.to_json()["release"] == "lightgbm==4.1.0"


def test_a_partner_late_to_install_moves_the_day_only_as_far_as_needed() -> None:
    # on 3.12 lightgbm 4.1.0 predates the first cp312 wheels of numpy (1.26.0,
    # 2023-09-16) and of others: the day is the last of those first days (scikit-learn
    # 1.3.1, 2023-10-03)
    stack = contemporaneous_stack(INDEX, PY312, "lightgbm", Version("4.1.0"), SIX)
    assert "numpy" in stack.clipped
    assert "scipy" not in stack.clipped  # scipy 1.11.2 had cp312 wheels by then
    assert stack.as_of == date(2023, 10, 3)
    assert versions(stack.combo)["numpy"] == "1.26.0"


def test_a_release_that_does_not_install_has_no_stack() -> None:
    with pytest.raises(UsageError, match=r"numpy 2\.0\.0 has no file that installs"):
        contemporaneous_stack(INDEX, PY313, "numpy", Version("2.0.0"), SIX)
