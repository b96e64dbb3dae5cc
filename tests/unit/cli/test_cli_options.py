"""Every command takes exactly the options it declares; for commands that run
combinations, the run options are resolved once into one ``RunConfig``."""

from __future__ import annotations

import inspect
from datetime import date
from pathlib import Path
from typing import Any

import click
import pytest

from compat.cli import cli
from compat.cli.options import DEFAULT_MATRIX, MATRIX_DIRS, load, run_config, run_options
from compat.config import RunConfig, Timeouts, ToolchainChoice
from compat.errors import MatrixError
from compat.matrix import parse_matrix
from compat.model import Depth


def _commands(group: click.Group, prefix: str = "") -> list[tuple[str, click.Command]]:
    found = []
    for name, command in sorted(group.commands.items()):
        if isinstance(command, click.Group):
            found += _commands(command, f"{prefix}{name} ")
        else:
            found.append((prefix + name, command))
    return found


@pytest.mark.parametrize(("name", "command"), _commands(cli))
def test_a_command_receives_exactly_its_options(name: str, command: click.Command) -> None:
    """Every option fills a parameter; those of a run are resolved into one
    ``config`` first (with the loaded ``matrix`` beside ``--matrix``)."""
    assert command.callback is not None
    signature = inspect.signature(inspect.unwrap(command.callback))
    assert not any(p.kind is p.VAR_KEYWORD for p in signature.parameters.values()), name
    named = {p.name for p in signature.parameters.values() if p.name not in ("settings", "ctx")}
    params = dict(command.make_context(name, [], resilient_parsing=True).params)
    if "config" in named:
        run_config(params)  # takes out what it resolves
        params["config"] = None
        if "matrix_path" in params:
            params["matrix"] = None
    assert named == set(params), f"compat {name}: {named ^ set(params)}"


def test_every_run_option_reaches_the_configuration() -> None:
    @run_options
    def probe(config: RunConfig) -> None: ...

    command = click.command()(probe)
    params = dict(command.make_context("probe", [], resilient_parsing=True).params)
    assert run_config(params) == RunConfig()  # the options' defaults are the configuration's
    assert params == {}


def test_the_command_line_sets_each_run_setting() -> None:
    params: dict[str, Any] = {
        "backend": "local",
        "jobs": 3,
        "timeout": 300.0,
        "check_timeout": 900.0,
        "build_timeout": 60.0,
        "compile_timeout": 600.0,
        "deep_test_timeout": 7.0,
        "deep_module_timeout": 70.0,
        "deep_timeout": 90.0,
        "smoke_timeout": 30.0,
        "memory": "",
        "exec_cmd": "pytest -x 'my tests'",
        "retest": True,
        "reuse": True,
        "depth": "deep",
        "deep_modules": ("*/plotting/*",),
        "deep_keyword": "legend",
        "toolchain": "pypi",
    }
    config = run_config(params)
    assert params == {}
    assert config.backend == "local"
    assert config.jobs == 3
    assert config.timeouts == Timeouts(
        combination=300.0,
        check=300.0,
        build=60.0,
        compile=600.0,
        deep_test=7.0,
        deep_module=70.0,
        deep_run=90.0,
        image_smoke=30.0,
    )
    assert config.timeouts.check == 300.0  # a check never outlasts its combination
    assert config.memory is None  # --memory "": no limit
    assert config.exec_cmd == ("pytest", "-x", "my tests")
    assert (config.retest, config.reuse) == (True, False)  # --retest runs every check
    assert config.depth is Depth.DEEP
    assert (config.deep.modules, config.deep.keyword) == (("*/plotting/*",), "legend")
    assert config.toolchain is ToolchainChoice.PYPI


def test_as_of_from_the_command_line_wins_over_the_matrix() -> None:
    matrix = parse_matrix({"packages": {"numpy": ">=1"}, "as-of": "2024-01-31"}, path="m.toml")
    assert run_config({"as_of": None}, matrix).as_of == date(2024, 1, 31)
    assert run_config({"as_of": date(2023, 6, 1)}, matrix).as_of == date(2023, 6, 1)
    # a command without --as-of reads the index as it stands now
    assert run_config({}, matrix).as_of is None


def test_the_default_matrix_is_found_outside_a_checkout(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # an editable install run from elsewhere: the checkout's matrix/ beside the package
    monkeypatch.chdir(tmp_path)
    assert load(DEFAULT_MATRIX).name == "ml-stack"
    # a wheel: the copy it ships inside the package is found first
    shipped = tmp_path / "matrices"
    shipped.mkdir()
    text = (MATRIX_DIRS[1] / "ml-stack.toml").read_text()
    (shipped / "ml-stack.toml").write_text(text.replace('name = "ml-stack"', 'name = "shipped"'))
    monkeypatch.setattr("compat.cli.options.MATRIX_DIRS", (shipped, MATRIX_DIRS[1]))
    assert load(DEFAULT_MATRIX).name == "shipped"
    # a path that is not matrix/NAME is read as given
    with pytest.raises(MatrixError):
        load(Path("elsewhere/ml-stack.toml"))
