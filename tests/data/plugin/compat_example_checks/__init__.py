"""An example of a plugin: checks a package (or a team's own plugin package)
contributes to every environment it is installed in.

Its distribution names this module in the ``compat.checks`` entry point group::

    [project.entry-points."compat.checks"]
    example = "compat_example_checks"

compat's smoke runner loads it inside the environment under test, after the
packages imported, and runs each check it registers like a built-in one: in a
forked child, skipped (with the reason) when a distribution it ``needs`` is
missing or outside the releases it is ``valid`` for. Import the packages under
test inside the check functions, never at module level.
"""

from __future__ import annotations

from compat_smoke.checks import Skip, check, mod


@check("example-lib", valid={"example-lib": ">=1.0"})
def check_answer() -> None:
    """example-lib answers 42."""
    assert mod("example_lib").ANSWER == 42


@check("example-lib", name="example-lib:divides")
def check_division() -> None:
    """Dividing by example-lib's zero raises."""
    mod("example_lib").divide(1)


@check("example-lib", valid={"example-lib": ">=2.0"})
def check_new_api() -> None:
    """What example-lib 2 added."""
    raise AssertionError("never run on example-lib 1")


@check("example-lib")
def check_not_here() -> None:
    """A check that finds its feature missing."""
    raise Skip("no GPU in this environment")
