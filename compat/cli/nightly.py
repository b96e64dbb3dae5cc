"""``compat nightly``: test only what the index published since the last run."""

from __future__ import annotations

import json
from pathlib import Path

import click

from compat.cli.console import ConsoleReporter, out
from compat.cli.options import (
    Settings,
    names,
    open_pipeline,
    open_session,
    plan_options,
    run_options,
)
from compat.config import RunConfig
from compat.matrix import Matrix
from compat.model import Depth
from compat.workflows.nightly import NightlyRequest
from compat.workflows.nightly import nightly as run_nightly


@click.command()
@plan_options
@run_options
@click.option(
    "--base", "bases", multiple=True, help="Only these bases (default: the matrix's bases)."
)
@click.option(
    "--lock-root",
    type=click.Path(path_type=Path, file_okay=False),
    default=Path("lock"),
    show_default=True,
    help="Where each base's lockfiles live (lock/<base>).",
)
@click.option(
    "--depth",
    type=click.Choice([Depth.SMOKE.value, Depth.DEEP.value]),
    default=Depth.DEEP.value,
    show_default=True,
    help="deep: new combinations and the new lock candidate also run the dependents' "
    "shipped tests against a baseline (minutes each); smoke: the built-in checks only.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the outcome as JSON.")
@click.pass_obj
def nightly(
    settings: Settings,
    /,
    matrix: Matrix,
    matrix_path: Path,
    strategy: str | None,
    last_minors: int | None,
    cap: int | None,
    no_binary: tuple[str, ...],
    bases: tuple[str, ...],
    lock_root: Path,
    as_json: bool,
    config: RunConfig,
) -> None:
    """Test only what PyPI published since the last run (plus each base's known-good
    lock as a control), update the lockfiles, and fail on regressions or lock changes."""
    request = NightlyRequest(
        matrix=matrix,
        matrix_path=str(matrix_path),
        bases=bases,
        strategy=strategy,
        last_minors=last_minors,
        cap=cap,
        no_binary=names(no_binary),
        lock_root=lock_root,
    )
    reporter = ConsoleReporter()
    with (
        open_pipeline(settings, reporter, config) as pipeline,
        open_session(settings, reporter, config, pipeline=pipeline) as session,
    ):
        summary = run_nightly(request, session, cache_dir=settings.cache_dir)
    if as_json:
        click.echo(json.dumps(summary.to_json(), indent=2))
    else:
        for line in summary.lines():
            out.print(line, highlight=False)
    summary.raise_for_status()
