"""``compat scan`` and ``compat check``: run combinations and show their verdicts.
The workflows (``compat.workflows.scan``, ``.check``) do the work and return a
value; these commands open the collaborators, call them and present the value."""

from __future__ import annotations

import contextlib
from pathlib import Path

import click

from compat.cli.console import ConsoleReporter, out, show_result, show_scan
from compat.cli.options import (
    Settings,
    as_of_option,
    names,
    no_binary_option,
    open_index,
    open_session,
    open_target,
    parse_pins,
    plan_options,
    run_options,
    target_options,
)
from compat.cli.shapes import emit, result_shape, scan_shape
from compat.config import RunConfig
from compat.effects.paths import check_writable_file
from compat.errors import IncompatibleFound
from compat.matrix import BuildPolicy, Matrix
from compat.model import Depth, Verdict
from compat.resolve.resolver import Conflict
from compat.targets.fallback import StandIn
from compat.workflows.check import check as check_pins
from compat.workflows.scan import ScanRequest, Shard
from compat.workflows.scan import scan as run_scan
from compat.workflows.session import Session

_depth_option = click.option(
    "--depth",
    type=click.Choice([d.value for d in Depth]),
    default=Depth.SMOKE.value,
    show_default=True,
    help="import: imports only; smoke: the built-in checks; deep: also the dependents' own "
    "shipped tests that touch a partner, compared with a baseline (minutes per combination).",
)


_fail_option = click.option(
    "--fail-on-incompatible",
    is_flag=True,
    help="Exit 6 when a combination does not pass (for CI and scripts).",
)


@click.command()
@target_options
@plan_options
@as_of_option
@run_options
@_fail_option
@click.option(
    "--shard", "shard_spec", metavar="K/N", help="Run only the K-th of N disjoint slices."
)
@click.option("--retest", is_flag=True, help="Run combinations already tested on this image.")
@_depth_option
@click.option(
    "--junit",
    type=click.Path(path_type=Path, dir_okay=False),
    help="Write JUnit XML, one test case per combination.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
@click.pass_obj
def scan(
    settings: Settings,
    /,
    base: str | None,
    image: str | None,
    python: str | None,
    matrix: Matrix,
    matrix_path: Path,
    strategy: str | None,
    last_minors: int | None,
    cap: int | None,
    no_binary: tuple[str, ...],
    fail_on_incompatible: bool,
    shard_spec: str | None,
    junit: Path | None,
    as_json: bool,
    config: RunConfig,
) -> None:
    """Plan a matrix for a base image, run every combination, summarise the verdicts."""
    if junit is not None:
        check_writable_file(junit, what="JUnit report", option="--junit")
    request = ScanRequest(
        matrix=matrix,
        matrix_path=str(matrix_path),
        strategy=strategy,
        last_minors=last_minors,
        cap=cap,
        no_binary=names(no_binary),
        shard=Shard.parse(shard_spec) if shard_spec else None,
        junit=junit,
    )
    reporter = ConsoleReporter()
    stood: list[StandIn] = []  # the host answering for the base, when it does
    with (
        open_target(
            settings,
            reporter,
            config,
            base=base,
            image=image,
            python=python,
            on_stand_in=stood.append,
        ) as (pipeline, target),
        open_session(settings, reporter, config, pipeline=pipeline, target=target) as session,
    ):
        outcome = run_scan(request, session)
    stand_in = stood[0] if stood else None
    if as_json:
        emit(scan_shape(outcome, stand_in))
    else:
        show_scan(outcome, stand_in)
    outcome.raise_for_status(fail_on_incompatible=fail_on_incompatible)


@click.command()
@click.argument("pins", nargs=-1)
@target_options
@run_options
@no_binary_option
@as_of_option
@click.option(
    "--force", is_flag=True, help="Install the pins as given even where metadata forbids."
)
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@_fail_option
@_depth_option
@click.option(
    "--deep-module",
    "deep_modules",
    multiple=True,
    metavar="GLOB",
    help="--depth deep: run only the selected test modules whose path matches GLOB.",
)
@click.option(
    "--deep-keyword", metavar="EXPR", help="--depth deep: only the tests pytest -k EXPR keeps."
)
@click.pass_obj
def check(
    settings: Settings,
    /,
    pins: tuple[str, ...],
    base: str | None,
    image: str | None,
    python: str | None,
    no_binary: tuple[str, ...],
    force: bool,
    as_json: bool,
    fail_on_incompatible: bool,
    config: RunConfig,
) -> None:
    """Run one explicit set of pins (the rest resolved) and print the verdict."""
    reqs = parse_pins(pins)
    reporter = ConsoleReporter()
    stood: list[StandIn] = []  # the host answering for the base, when it does
    with contextlib.ExitStack() as stack:
        pipeline, target = stack.enter_context(
            open_target(
                settings,
                reporter,
                config,
                base=base,
                image=image,
                python=python,
                on_stand_in=stood.append,
            )
        )
        index = stack.enter_context(open_index(settings, config.as_of))

        def session() -> Session:  # the results database only when the pins run
            return stack.enter_context(
                open_session(settings, reporter, config, pipeline=pipeline, index=index)
            )

        outcome = check_pins(
            reqs,
            target=target,
            index=index,
            open_session=session,
            build=BuildPolicy().with_no_binary(names(no_binary)),
            force=force,
        )
    if isinstance(outcome, Conflict):
        if as_json:
            verdict = {
                "verdict": Verdict.METADATA_CONFLICT.value,
                "failed_checks": [],
                "error": outcome.explanation,
                "requested": list(pins),
            }
            emit(verdict)
        else:
            out.print(f"[red]metadata-conflict[/]: {outcome.explanation}", highlight=False)
            out.print("Use --force to install the pins anyway and see if they really fail.")
        if fail_on_incompatible:
            raise IncompatibleFound("the pins conflict in their declared metadata")
        return
    if as_json:
        emit(result_shape(outcome))
    else:
        show_result(outcome)
        for stand_in in stood:  # whose answer this is: said last, where it is read
            out.print(stand_in.line(), highlight=False)
    if fail_on_incompatible and not outcome.ok:
        raise IncompatibleFound(f"{outcome.verdict.value}: {outcome.combo.label()}")
