"""``compat plan``: the combinations of a matrix for one base, nothing run."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import click

from compat.cli.console import ConsoleReporter, show_plan
from compat.cli.options import (
    Settings,
    as_of_option,
    load,
    names,
    open_index,
    plan_options,
    target_options,
)
from compat.config import as_of_for
from compat.resolve.candidates import CandidateSource
from compat.resolve.planner import mark_known
from compat.workflows.steps import choose_target, make_plan


@click.command()
@target_options
@click.option(
    "--probe/--no-probe",
    default=False,
    help="Probe the base's image with Docker rather than derive its tags.",
)
@plan_options
@as_of_option
@click.option("--json", "as_json", is_flag=True, help="Print the plan as JSON.")
@click.pass_obj
def plan(
    settings: Settings,
    /,
    base: str | None,
    image: str | None,
    python: str | None,
    probe: bool,
    matrix_path: Path,
    strategy: str | None,
    last_minors: int | None,
    cap: int | None,
    no_binary: tuple[str, ...],
    as_of: date | None,
    as_json: bool,
) -> None:
    """Plan the combinations of a matrix for one base image."""
    reporter = ConsoleReporter()
    matrix = load(matrix_path)
    target = choose_target(
        base=base,
        image=image,
        python=python,
        probe=probe,
        cache_dir=settings.cache_dir,
        reporter=reporter,
    )
    # planning alone never creates a database
    with open_index(settings, as_of_for(as_of, matrix)) as index, settings.reader() as store:
        source = CandidateSource(index, target, matrix.build.with_no_binary(names(no_binary)))
        result = make_plan(
            source,
            matrix,
            strategy=strategy,
            last_minors=last_minors,
            cap=cap,
            reporter=reporter,
            kept=store,
        )
        known = mark_known(result, store.incompatibilities(target.name))
    if as_json:
        data = result.to_json()
        for combo in data["combinations"]:
            if combo["id"] in known:
                combo["known_incompatible"] = known[combo["id"]]
        click.echo(json.dumps(data, indent=2))
        return
    show_plan(result, known)
