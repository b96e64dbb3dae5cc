"""``compat bisect``: the smallest set of package changes that explains a failure."""

from __future__ import annotations

import click

from compat.cli.console import ConsoleReporter, out
from compat.cli.options import (
    Settings,
    names,
    no_binary_option,
    open_pipeline,
    open_session,
    run_options,
)
from compat.cli.shapes import bisect_shape, emit
from compat.config import RunConfig
from compat.errors import EngineUnavailable
from compat.matrix import BuildPolicy
from compat.model import Depth
from compat.workflows.bisect import PROBES_IN_THE_IMAGE, WIDEN
from compat.workflows.bisect import bisect as find_culprits


def in_the_image(why: str) -> str:
    """Never this machine: a probe answers only beside the two ends, in their image."""
    raise EngineUnavailable(f"{why}\n{PROBES_IN_THE_IMAGE}")


@click.command("bisect")
@click.argument("failing")
@click.option("--good", help="A passing result or combination id (default: the closest one).")
@click.option(
    "--depth",
    type=click.Choice([d.value for d in Depth]),
    default=Depth.SMOKE.value,
    show_default=True,
    help="How deep each probe is tested: deep for a failure the deep tier found.",
)
@click.option(
    "--widen",
    type=click.IntRange(min=0),
    default=WIDEN,
    show_default=True,
    help="Probes per package of the failing pair and direction, widening it to the "
    "neighbouring releases that fail too (0: record the pair alone).",
)
@click.option("--json", "as_json", is_flag=True, help="Print the bisection as JSON.")
@run_options
@no_binary_option
@click.pass_obj
def bisect(
    settings: Settings,
    /,
    failing: str,
    good: str | None,
    widen: int,
    as_json: bool,
    no_binary: tuple[str, ...],
    config: RunConfig,
) -> None:
    """Find the smallest set of package changes that explains a failure, and record it
    as a known incompatibility (FAILING: a result id or a combination id)."""
    reporter = ConsoleReporter()
    with (
        open_pipeline(settings, reporter, config, fallback=in_the_image) as pipeline,
        open_session(settings, reporter, config, pipeline=pipeline) as session,
    ):
        found = find_culprits(
            session,
            failing,
            good,
            build=BuildPolicy().with_no_binary(names(no_binary)),
            widen=widen,
        )
    if as_json:
        emit(bisect_shape(found))
        return
    for line in found.lines():
        out.print(line, highlight=False)
