"""``compat db``: move results between databases."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from compat.cli.console import err
from compat.cli.options import Settings
from compat.store import Imported, export_json, import_json, merge, sqlite_url


@click.group()
def db() -> None:
    """Move results between databases."""


@db.command("export")
@click.argument("output", type=click.File("w"), default="-")
@click.pass_obj
def db_export(settings: Settings, /, output: Any) -> None:
    """Write every run and result as JSON lines (to OUTPUT, default stdout)."""
    with settings.reader() as store:
        count = export_json(store, output)
    err.print(f"exported {count} records from {store.url}")


@db.command("import")
@click.argument("source", type=click.File("r"), default="-")
@click.pass_obj
def db_import(settings: Settings, /, source: Any) -> None:
    """Read results exported by `compat db export`; what is already there is skipped."""
    with settings.store() as store:
        added = import_json(store, source)
    err.print(_said("imported", added))


@db.command("merge")
@click.argument("other")
@click.pass_obj
def db_merge(settings: Settings, /, other: str) -> None:
    """Copy another database's runs and results (a URL or SQLite path) into this one."""
    with settings.store() as store:
        added = merge(store, other if "://" in other else sqlite_url(Path(other)))
    err.print(_said("merged", added))


def _said(done: str, added: Imported) -> str:
    contradicted = (
        f", {added.disagreements} reuse keys a rerun contradicted" if added.disagreements else ""
    )
    return (
        f"{done} {added.results} results, {added.runs} runs{contradicted} "
        f"({added.skipped} already there)"
    )
