"""Imports run one way: each package of ``compat`` imports only from its own layer's
bottom and the layers below it, so a reader can follow a command down to its effects
without being sent back up. Read from the source (every import, lazy ones too)."""

from __future__ import annotations

import ast
from collections.abc import Iterable, Iterator
from pathlib import Path

ROOT = Path(__file__).parent.parent.parent / "compat"

# lowest first; a package may import from any lower layer
LAYERS: tuple[frozenset[str], ...] = (
    # values, errors, settings, the run configuration, the reporter: everyone's
    # vocabulary. The in-environment smoke suite is a leaf that others may name (its
    # files are copied into images); sweep reads what its whole-package import logged.
    frozenset(
        {
            "compat",
            "model",
            "errors",
            "settings",
            "config",
            "matrix",
            "reporter",
            "smoke",
            "sweep",
            "text",
        }
    ),
    frozenset({"effects"}),  # one door per effect: containers, commands, HTTP
    frozenset({"targets", "index"}),
    frozenset({"harness", "resolve", "store"}),
    frozenset({"lock", "report", "image", "deep"}),
    frozenset({"workflows"}),
    frozenset({"cli"}),
    frozenset({"__main__"}),  # python -m compat
)

# imports between two packages of one layer that are part of the design (only the
# bottom layer imports freely within itself)
SIDEWAYS = frozenset(
    {
        ("image", "lock"),  # an image is built from a lock directory
        ("report", "lock"),  # the report shows the combination the lock ranking picks
        ("harness", "resolve"),  # an offline build's requirements are resolved for its image
    }
)


def _layer(package: str) -> int:
    for level, members in enumerate(LAYERS):
        if package in members:
            return level
    raise AssertionError(f"compat.{package} is in no layer: add it to LAYERS in {__file__}")


def _module_name(path: Path, root: Path = ROOT) -> str:
    parts = path.relative_to(root.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _package(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "compat"


def _imports(
    source: str, module: str, *, package: bool = False, modules: frozenset[str] = frozenset()
) -> Iterator[str]:
    """Every ``compat`` module the source of ``module`` imports (inside functions and
    under ``TYPE_CHECKING`` too), relative imports made absolute; ``from pkg import
    name`` names the module ``pkg.name`` when ``modules`` holds it."""
    here = module if package else module.rpartition(".")[0]
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            yield from (a.name for a in node.names if a.name.split(".")[0] == "compat")
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = here.split(".")[: len(here.split(".")) - node.level + 1]
                name = ".".join([*base, node.module] if node.module else base)
            else:
                name = node.module or ""
            if name.split(".")[0] != "compat":
                continue
            submodules = [f"{name}.{a.name}" for a in node.names if f"{name}.{a.name}" in modules]
            if len(submodules) < len(node.names):  # something of the module itself
                yield name
            yield from submodules


def _edges(root: Path = ROOT) -> Iterator[tuple[str, str]]:
    paths = sorted(root.rglob("*.py"))
    modules = frozenset(_module_name(p, root) for p in paths)
    for path in paths:
        module = _module_name(path, root)
        source = path.read_text(encoding="utf-8")
        package = path.name == "__init__.py"
        for imported in _imports(source, module, package=package, modules=modules):
            yield module, imported


def _cycles(edges: Iterable[tuple[str, str]]) -> list[list[str]]:
    """The import cycles among the modules: each strongly connected set of two or
    more modules (or one importing itself), sorted."""
    graph: dict[str, set[str]] = {}
    for a, b in edges:
        graph.setdefault(a, set()).add(b)
        graph.setdefault(b, set())
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(node: str) -> None:  # Tarjan's algorithm
        index[node] = low[node] = len(index)
        stack.append(node)
        for nxt in sorted(graph[node]):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            members = []
            while True:
                member = stack.pop()
                members.append(member)
                if member == node:
                    break
            if len(members) > 1 or node in graph[node]:
                found.append(sorted(members))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return sorted(found)


def _allowed(importer: str, imported: str) -> bool:
    source, target = _package(importer), _package(imported)
    if source == target:
        return True
    if source == "smoke":  # runs on the target's own Python: the standard library only
        return False
    low, high = _layer(target), _layer(source)
    return low < high or (low == high and (low == 0 or (source, target) in SIDEWAYS))


def test_every_package_has_a_layer() -> None:
    packages = {_package(_module_name(p)) for p in ROOT.rglob("*.py")}
    for package in packages:
        _layer(package)


def test_imports_run_down_the_layers() -> None:
    against = sorted({(a, b) for a, b in _edges() if not _allowed(a, b)})
    assert not against, "imports against the layers (cli > workflows > lock/report/image > " + (
        "harness/resolve/store > targets/index > effects > model/errors/settings):\n"
        + "\n".join(f"  {a} imports {b}" for a, b in against)
    )


def test_the_smoke_suite_imports_nothing_else_from_compat() -> None:
    for importer, imported in _edges():
        if _package(importer) == "smoke":
            assert _package(imported) == "smoke", f"{importer} imports {imported}"


def test_the_check_sees_lazy_and_relative_imports() -> None:
    source = """
from . import sibling
from ..model import Combo
import compat.errors

def later():
    from compat.workflows.scan import scan
"""
    found = set(_imports(source, "compat.targets.probe"))
    assert found == {
        "compat.targets",
        "compat.model",
        "compat.errors",
        "compat.workflows.scan",
    }
    assert not _allowed("compat.targets.probe", "compat.workflows.scan")
    assert not _allowed("compat.store.queries", "compat.harness.pipeline")  # same layer
    assert not _allowed("compat.smoke.runner", "compat.model")
    assert _allowed("compat.cli.scan", "compat.workflows.scan")
    assert _allowed("compat.image.build", "compat.lock")


def test_no_module_takes_part_in_an_import_cycle() -> None:
    cycles = _cycles(_edges())
    assert not cycles, "import cycles (under TYPE_CHECKING and in functions too):\n" + "\n".join(
        "  " + " <-> ".join(c) for c in cycles
    )


def test_a_planted_cycle_within_a_package_is_found(tmp_path: Path) -> None:
    root = tmp_path / "compat"
    (root / "harness").mkdir(parents=True)
    (root / "__init__.py").write_text("")
    (root / "harness" / "__init__.py").write_text("from compat.harness.pipeline import Pipeline\n")
    (root / "harness" / "pipeline.py").write_text("from compat.harness import deep\n")
    (root / "harness" / "deep.py").write_text(
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from .pipeline import Pipeline\n"
    )
    (root / "harness" / "suite.py").write_text("def later():\n    from . import suite\n")
    edges = set(_edges(root))
    assert ("compat.harness.pipeline", "compat.harness.deep") in edges  # not the package
    assert _cycles(edges) == [
        ["compat.harness.deep", "compat.harness.pipeline"],
        ["compat.harness.suite"],  # a module importing itself, in a function
    ]
    (root / "harness" / "deep.py").write_text("")
    (root / "harness" / "suite.py").write_text("")
    assert _cycles(_edges(root)) == []


def _engine_imports(source: str) -> list[str]:
    """The docker SDK modules a source imports (inside functions too)."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [a.name for a in node.names if a.name.split(".")[0] == "docker"]
        elif (
            isinstance(node, ast.ImportFrom)
            and not node.level
            and (node.module or "").split(".")[0] == "docker"
        ):
            found.append(node.module or "")
    return found


def test_building_images_reaches_the_engine_only_through_effects() -> None:
    reached = {
        str(path.relative_to(ROOT.parent)): found
        for path in sorted((ROOT / "image").rglob("*.py"))
        if (found := _engine_imports(path.read_text(encoding="utf-8")))
    }
    assert reached == {}
    # the check sees what it looks for
    assert _engine_imports("def f():\n    from docker.errors import APIError\n") == [
        "docker.errors"
    ]
