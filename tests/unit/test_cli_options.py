"""Every command takes exactly the options it declares: those it names, plus, for
commands that run combinations, exactly the run options (handed on to the backend)."""

from __future__ import annotations

import inspect
from pathlib import Path

import click
import pytest

from compat.cli import cli
from compat.cli.options import DEFAULT_MATRIX, MATRIX_DIRS, load, run_options
from compat.errors import MatrixError


def _commands(group: click.Group, prefix: str = "") -> list[tuple[str, click.Command]]:
    found = []
    for name, command in sorted(group.commands.items()):
        if isinstance(command, click.Group):
            found += _commands(command, f"{prefix}{name} ")
        else:
            found.append((prefix + name, command))
    return found


def _run_option_names() -> set[str]:
    @run_options
    def probe() -> None: ...

    return {p.name for p in click.command()(probe).params if p.name}


@pytest.mark.parametrize(("name", "command"), _commands(cli))
def test_a_command_receives_exactly_its_options(name: str, command: click.Command) -> None:
    assert command.callback is not None
    signature = inspect.signature(inspect.unwrap(command.callback))
    named = {
        p.name
        for p in signature.parameters.values()
        if p.kind is not p.VAR_KEYWORD and p.name not in ("settings", "ctx")
    }
    given = {p.name for p in command.params if p.name}
    rest = given - named
    takes_rest = any(p.kind is p.VAR_KEYWORD for p in signature.parameters.values())
    assert named <= given, f"compat {name}: parameters no option fills: {named - given}"
    if takes_rest:  # handed to open_pipeline(**run)
        assert rest == _run_option_names(), f"compat {name}: {rest ^ _run_option_names()}"
    else:
        assert not rest, f"compat {name}: options without a parameter: {rest}"


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
