"""Imports run one way: each package of ``compat`` imports only from its own layer's
bottom and the layers below it, so a reader can follow a command down to its effects
without being sent back up. Read from the source (every import, lazy ones too)."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).parent.parent.parent / "compat"

# lowest first; a package may import from any lower layer
LAYERS: tuple[frozenset[str], ...] = (
    # values, errors, settings, the run configuration, the reporter: everyone's
    # vocabulary. The in-environment smoke suite is a leaf that others may name (its
    # files are copied into images); sweep reads what its whole-package import logged.
    frozenset(
        {"compat", "model", "errors", "settings", "config", "matrix", "reporter", "smoke", "sweep"}
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
    }
)


def _layer(package: str) -> int:
    for level, members in enumerate(LAYERS):
        if package in members:
            return level
    raise AssertionError(f"compat.{package} is in no layer: add it to LAYERS in {__file__}")


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _package(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "compat"


def _imports(source: str, module: str, *, package: bool = False) -> Iterator[str]:
    """Every ``compat`` module the source of ``module`` imports (inside functions too),
    relative imports made absolute."""
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
            if name.split(".")[0] == "compat":
                yield name


def _edges() -> Iterator[tuple[str, str]]:
    for path in sorted(ROOT.rglob("*.py")):
        module = _module_name(path)
        source = path.read_text(encoding="utf-8")
        for imported in _imports(source, module, package=path.name == "__init__.py"):
            yield module, imported


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
