"""``compat nightly``: test only what the index published since the last run."""

from __future__ import annotations

import json
from pathlib import Path

import click

from compat.cli.console import ConsoleReporter, out
from compat.cli.options import (
    Settings,
    host_answers,
    names,
    open_pipeline,
    open_session,
    plan_options,
    run_options,
)
from compat.cli.shapes import stand_in_shape
from compat.config import RunConfig
from compat.errors import EngineUnavailable
from compat.matrix import Matrix
from compat.model import Depth
from compat.targets.fallback import StandIn
from compat.targets.profiles import PROFILES
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
    stood: list[StandIn] = []  # this machine answering for the bases, when it does

    def stand(why: str) -> str:
        images = [b for b in request.every_base if b not in PROFILES]
        if images:
            raise EngineUnavailable(
                f"{why}\n{', '.join(images)} named by image: never replaced by this machine. "
                "Start the engine, or ask about this machine itself with --backend local."
            )
        stood.extend(host_answers(why, request.every_base, python=matrix.python))
        return f"{why} -> " + "; ".join(s.line() for s in stood)

    fallback = stand if config.backend == "auto" else None
    with (
        open_pipeline(settings, reporter, config, fallback=fallback) as pipeline,
        open_session(settings, reporter, config, pipeline=pipeline) as session,
    ):
        summary = run_nightly(request, session, cache_dir=settings.cache_dir)
    if as_json:
        data = summary.to_json() | {"stand_in": [stand_in_shape(s) for s in stood]}
        click.echo(json.dumps(data, indent=2))
    else:
        for line in summary.lines():
            out.print(line, highlight=False)
        for stand_in in stood:  # whose answer this is: said last, where it is read
            out.print(stand_in.line(), highlight=False)
    summary.raise_for_status()
