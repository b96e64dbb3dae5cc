"""``compat report``: one self-contained HTML page of every base tested."""

from __future__ import annotations

from pathlib import Path

import click

from compat.cli.console import err
from compat.cli.options import Settings
from compat.cli.shapes import emit, report_shape
from compat.errors import UsageError
from compat.report import write_report
from compat.report.collect import collect


@click.command()
@click.option(
    "-o",
    "--output",
    type=click.Path(path_type=Path, dir_okay=False),
    default=Path("compat-report.html"),
    show_default=True,
)
@click.option("--title", default="compat report", show_default=True)
@click.option(
    "--matrix",
    "matrices",
    multiple=True,
    metavar="NAME",
    help="Only results of runs of this matrix (repeatable); default: every run.",
)
@click.option(
    "--json", "as_json", is_flag=True, help="Also print each base's lock and verdicts as JSON."
)
@click.pass_obj
def report(
    settings: Settings, /, output: Path, title: str, matrices: tuple[str, ...], as_json: bool
) -> None:
    """Write a self-contained HTML report of every base in the results database."""
    with settings.reader() as store:
        data = collect(store, title=title, matrices=matrices)
    if not data.bases:
        what = f"of matrix {', '.join(matrices)} " if matrices else ""
        raise UsageError(f"no results {what}in {settings.db_url}: run compat scan first")
    path = write_report(data, output)
    if as_json:
        emit(report_shape(data, path))
    count = sum(len(b.results) for b in data.bases)
    err.print(f"report: {path} ({count} results, {len(data.bases)} bases)")
