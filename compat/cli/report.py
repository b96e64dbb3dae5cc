"""``compat report``: one self-contained HTML page of every base tested."""

from __future__ import annotations

from pathlib import Path

import click

from compat.cli.console import err
from compat.cli.options import Settings
from compat.errors import UsageError
from compat.report import BaseReport, ReportData, findings_of, write_report


@click.command()
@click.option(
    "-o",
    "--output",
    type=click.Path(path_type=Path, dir_okay=False),
    default=Path("compat-report.html"),
    show_default=True,
)
@click.option("--title", default="compat report", show_default=True)
@click.pass_obj
def report(settings: Settings, /, output: Path, title: str) -> None:
    """Write a self-contained HTML report of every base in the results database."""
    with settings.reader() as store:
        tested = store.latest_by_target()
        sizes = {s.base: s for s in reversed(store.image_sizes())}  # newest wins
        incompatible = store.incompatibilities()
    if not tested:
        raise UsageError(f"no results in {settings.db_url}: run compat scan first")
    bases = []
    for target, results in tested:
        size = sizes.get(target.name)
        bases.append(
            BaseReport.from_results(
                target,
                results,
                image_size=size.total_size if size else None,
                added_size=size.added_size if size else None,
                findings=findings_of(incompatible, base=target.name),
            )
        )
    path = write_report(ReportData(bases=tuple(bases), title=title), output)
    err.print(f"report: {path} ({sum(len(b.results) for b in bases)} results, {len(bases)} bases)")
