"""The smoke suite's own version/specifier evaluator (the runner has no
``packaging``), checked against the cases that matter for validity ranges and
against packaging itself where the two agree by design."""

from __future__ import annotations

import pytest
from packaging.specifiers import SpecifierSet
from packaging.version import Version as PackagingVersion

from compat.smoke.versions import InvalidSpecifier, InvalidVersion, Version, satisfies

CASES = [
    ("2.3.1", ">=3.0", False),
    ("3.0.0", ">=3.0", True),
    ("3.0", ">=3.0.0", True),
    ("3.3.5", ">=3.0,<4", True),
    ("4.0.0", ">=3.0,<4", False),
    ("1.26.4", "<2", True),
    ("2.0.0", "<2", False),
    ("1.5.2", ">1.5", True),
    ("1.5", ">1.5", False),
    ("1.5", "<=1.5.0", True),
    ("1.5.2", "==1.5.2", True),
    ("1.5.2", "==1.5", False),
    ("1.5.2", "==1.5.*", True),
    ("1.50.0", "==1.5.*", False),
    ("1.5", "==1.5.*", True),
    ("1.5.2", "!=1.5.2", False),
    ("1.5.3", "!=1.5.*", False),
    ("1.6.0", "!=1.5.*", True),
    ("1.4.9", "~=1.4.2", True),
    ("1.4.1", "~=1.4.2", False),
    ("1.5.0", "~=1.4.2", False),
    ("2.9", "~=2.2", True),
    ("3.0", "~=2.2", False),
    ("1!1.0", ">=2.0", True),  # an epoch outranks any release
    ("1.0.post1", ">=1.0", True),
    ("1.0.post1", "<=1.0", False),
    ("", "", True),
]

# Where this evaluator departs from packaging on purpose (see the module docstring).
PREVIEWS = [
    ("2.0.0rc1", ">=2.0", True),  # numpy 2.0.0rc1 has numpy 2's API
    ("2.0.0rc1", "<2", False),
    ("2.0.0rc1", ">=2.0.0rc2", False),  # a specifier naming a pre-release compares exactly
    ("2.0.0rc3", ">=2.0.0rc2", True),
    ("2.0.0b1", "<2.0.0rc1", True),
    ("2.1.0.dev0+git20240101", ">=2.1", True),
    ("2.1.0.dev0", "<2.1", False),
    ("1.0a1", "==1.0a1", True),
]

LOCALS = [
    ("1.5.2+cu121", "==1.5.2", True),
    ("1.5.2+cu121", ">=1.5.2", True),
    ("1.5.2", "==1.5.2+cu121", False),
    ("1.5.2+CU121", "==1.5.2+cu121", True),
]


@pytest.mark.parametrize(("version", "specifier", "expected"), CASES)
def test_specifiers(version: str, specifier: str, expected: bool) -> None:
    if not version:
        assert satisfies("1.0", specifier) is expected
        return
    assert satisfies(version, specifier) is expected
    # The same answer as packaging gives, for final releases.
    assert SpecifierSet(specifier).contains(version, prereleases=True) is expected


@pytest.mark.parametrize(("version", "specifier", "expected"), PREVIEWS + LOCALS)
def test_pre_releases_count_as_what_they_preview_and_local_labels_do_not_matter(
    version: str, specifier: str, expected: bool
) -> None:
    assert satisfies(version, specifier) is expected


@pytest.mark.parametrize(
    "text",
    [
        "1.0",
        "1.0.0",
        "2.0.0rc1",
        "2.0.0b2",
        "1.0a1",
        "1.0.dev3",
        "1.0rc1.dev2",
        "1.0.post2",
        "1.0-1",
        "1!0.5",
        "1.26.0.dev0+git20230101.abc",
    ],
)
def test_order_agrees_with_packaging(text: str) -> None:
    others = ["0.9", "1.0", "1.0.post1", "1.0rc1", "1.0a2", "1.0.dev1", "1.1", "2.0.0", "1!0.1"]
    for other in others:
        mine = Version.parse(text).key(width=4) < Version.parse(other).key(width=4)
        theirs = PackagingVersion(text) < PackagingVersion(other)
        assert mine is theirs, (text, other)


def test_spellings_normalise() -> None:
    assert Version.parse("1.0-rc.1").pre == ("rc", 1)
    assert Version.parse("1.0alpha2").pre == ("a", 2)
    assert Version.parse("1.0c1").pre == ("rc", 1)
    assert Version.parse("v1.0.post").post == 0
    assert Version.parse("1.0+Ubuntu-1").local == "ubuntu.1"


@pytest.mark.parametrize("bad", ["3.0", "=>3.0", ">=", "~=2", ">=2.*", "==x"])
def test_malformed_specifiers_raise(bad: str) -> None:
    with pytest.raises((InvalidSpecifier, InvalidVersion)):
        satisfies("1.0", bad)


def test_malformed_versions_raise() -> None:
    with pytest.raises(InvalidVersion):
        Version.parse("not-a-version")
