"""Every command takes exactly the options it declares: those it names, plus, for
commands that run combinations, exactly the run options (handed on to the backend)."""

from __future__ import annotations

import inspect

import click
import pytest

from compat.cli import cli
from compat.cli.options import run_options


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
