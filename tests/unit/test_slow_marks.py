"""A unit test that starts the smoke or deep runner as a process carries the ``slow``
mark (itself, or its module through ``pytestmark``), so ``pytest -m "not slow"``
stays a quick loop. Read from the source: a call in the test's own body counts."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

UNIT = Path(__file__).parent

# helpers that start a runner process: tests/helpers/smoke.py's, and the deep
# runner's in test_deep_runner.py
STARTS_A_RUNNER = frozenset({"run_runner"})


def _is_slow_mark(node: ast.expr) -> bool:
    return ast.unparse(node) == "pytest.mark.slow"


def _module_is_slow(tree: ast.Module) -> bool:
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(
            isinstance(t, ast.Name) and t.id == "pytestmark" for t in node.targets
        ):
            value = node.value
            marks = value.elts if isinstance(value, ast.List | ast.Tuple) else [value]
            return any(_is_slow_mark(mark) for mark in marks)
    return False


def _calls(function: ast.FunctionDef) -> set[str]:
    return {
        node.func.id
        for node in ast.walk(function)
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
    }


def unmarked_runner_tests(source: str) -> Iterator[str]:
    """The tests in ``source`` that call a runner helper without the ``slow`` mark."""
    tree = ast.parse(source)
    if _module_is_slow(tree):
        return
    for node in tree.body:
        if not (isinstance(node, ast.FunctionDef) and node.name.startswith("test")):
            continue
        if _calls(node) & STARTS_A_RUNNER and not any(
            _is_slow_mark(d) for d in node.decorator_list
        ):
            yield node.name


def test_every_test_that_starts_a_runner_is_marked_slow() -> None:
    unmarked = [
        f"{path.name}::{name}"
        for path in sorted(UNIT.rglob("test_*.py"))
        for name in unmarked_runner_tests(path.read_text(encoding="utf-8"))
    ]
    assert unmarked == [], "mark these @pytest.mark.slow"


@pytest.mark.parametrize(
    ("source", "unmarked"),
    [
        ("def test_a():\n    run_runner('--only', 'none')\n", ["test_a"]),
        ("@pytest.mark.slow\ndef test_a():\n    run_runner()\n", []),
        (
            "@pytest.mark.slow\n@pytest.mark.parametrize('x', [1])\ndef test_a(x):\n"
            "    run_runner()\n\ndef test_b():\n    [run_runner() for _ in range(2)]\n",
            ["test_b"],
        ),
        ("pytestmark = pytest.mark.slow\ndef test_a():\n    run_runner()\n", []),
        ("pytestmark = [pytest.mark.slow]\ndef test_a():\n    run_runner()\n", []),
        ("pytestmark = pytest.mark.integration\ndef test_a():\n    run_runner()\n", ["test_a"]),
        ("def test_a():\n    make_dist()\n", []),
    ],
)
def test_the_check_finds_an_unmarked_test_that_starts_a_runner(
    source: str, unmarked: list[str]
) -> None:
    assert list(unmarked_runner_tests(source)) == unmarked
