"""``compat lock`` and ``compat image``: lockfiles for the best known-good
combination of a base, and the image built from them (smoke-tested, measured)."""

from __future__ import annotations

import contextlib
import functools
import json
from collections.abc import Callable
from datetime import date
from pathlib import Path

import click

from compat.cli.console import ConsoleReporter, out
from compat.cli.options import (
    Settings,
    checked_image,
    image_options,
    lock_as_of_option,
    open_index,
    open_pipeline,
    open_session,
    parse_pins,
    run_options,
    scope,
)
from compat.cli.shapes import emit, lock_shape
from compat.config import RunConfig
from compat.errors import EngineUnavailable, UsageError
from compat.harness import Pipeline
from compat.image.startup import describe as describe_startup
from compat.index.asof import AsOfIndex
from compat.index.base import Index
from compat.lock import Prune
from compat.lock.requirements import lock_notes
from compat.lock.select import Stack
from compat.matrix import Matrix
from compat.model import Depth
from compat.store import Reader, Store
from compat.workflows.lock import (
    Verify,
    build_locked_image,
    capped_retry,
    lock_dir_for,
    lock_known_good,
    refuse_host,
)
from compat.workflows.session import Session, verifier


def stack_of(matrix: Matrix | None, matrix_path: Path | None) -> Stack | None:
    """The stack a ``--matrix`` file names: its name and its packages."""
    return None if matrix is None else Stack.of(matrix, str(matrix_path))


_bytecode_option = click.option(
    "--bytecode/--no-bytecode",
    default=True,
    show_default=True,
    help="Compile the venv's bytecode in the builder stage (the image starts faster); "
    "--no-bytecode strips it (a smaller image).",
)


@click.command()
@click.option("--base", help="A base name as scanned (e.g. alpine).")
@click.option(
    "--image", metavar="REF", callback=checked_image, help="An image reference or ID as scanned."
)
@click.option(
    "-o",
    "--output",
    type=click.Path(path_type=Path, file_okay=False),
    help="Default: lock/<base>, or lock/<matrix>/<base> with --matrix.",
)
@click.option(
    "--prefer", type=click.Choice(["newest", "oldest"]), default="newest", show_default=True
)
@click.option(
    "--constraint", "constraints", multiple=True, metavar="REQ", help="E.g. 'numpy<2' (repeatable)."
)
@click.option(
    "--prune/--no-prune",
    default=True,
    show_default=True,
    help="Drop test folders, sources and installers from the image's venv.",
)
@_bytecode_option
@lock_as_of_option
@click.option("--json", "as_json", is_flag=True, help="Print the pick and the files as JSON.")
@click.option(
    "--depth",
    type=click.Choice([Depth.SMOKE.value, Depth.DEEP.value]),
    default=Depth.DEEP.value,
    show_default=True,
    help="deep: run the pick's dependents' shipped tests first (minutes; a regression "
    "moves the lock to the next candidate); smoke: trust the recorded smoke verdict.",
)
@click.option(
    "--matrix",
    "matrix_path",
    type=click.Path(path_type=Path, dir_okay=False),
    help="Lock this matrix's stack (needed where the base holds several).",
)
@click.option(
    "--retry-capped/--no-retry-capped",
    default=True,
    show_default=True,
    help="Where newer requested pins failed by a dependency nobody requested, run them "
    "again with it capped (at --depth) before locking older ones; the cap goes into the lock.",
)
@run_options
@click.pass_obj
def lock(
    settings: Settings,
    /,
    base: str | None,
    image: str | None,
    output: Path | None,
    prefer: str,
    constraints: tuple[str, ...],
    prune: bool,
    bytecode: bool,
    pinned_by: date | None,
    as_json: bool,
    matrix: Matrix | None,
    matrix_path: Path | None,
    retry_capped: bool,
    config: RunConfig,
) -> None:
    """Write requirements.txt (hashed), pylock.toml and a Dockerfile for the best
    known-good combination of a base, confirmed first by the deep tier (the
    dependents' shipped tests, run in the base image) unless --depth smoke."""
    where = scope(base, image)
    refuse_host(where)  # before a deep verification starts containers
    reqs = parse_pins(constraints) if constraints else []
    with contextlib.ExitStack() as stack:
        eligible = None
        then = None
        if pinned_by is not None:
            then = stack.enter_context(open_index(settings, pinned_by))
            assert isinstance(then, AsOfIndex)
            eligible = then.has_all
        reporter = ConsoleReporter()

        def in_the_image(why: str) -> str:
            # the pick is confirmed (and a capped retry run) in the image it is locked
            # for: this machine's Python would answer for another platform
            raise EngineUnavailable(
                f"{why}\nlock confirms its pick in {where} itself: start the engine, or lock "
                "with --depth smoke --no-retry-capped to go by the recorded verdicts alone."
            )

        @functools.cache
        def pipeline() -> Pipeline:  # the engine only when something has to run
            return stack.enter_context(
                open_pipeline(settings, reporter, config, fallback=in_the_image)
            )

        writable: Store | None = None  # a retry opens it when it runs (depth smoke)

        def session(index: Index) -> Callable[[], Session]:
            @functools.cache
            def opened() -> Session:
                return stack.enter_context(
                    open_session(
                        settings, reporter, config, pipeline=pipeline(), index=index, store=writable
                    )
                )

            return opened

        verify: Verify | None = None
        store: Reader
        index = stack.enter_context(open_index(settings))
        if config.depth is Depth.DEEP:
            # the deep verdict is recorded: a regression ends the pick's known-good status
            store = writable = stack.enter_context(settings.store())
            verify = verifier(session(index))
        else:
            store = stack.enter_context(settings.reader())  # a read-only database will do
        retry = (
            capped_retry(
                open_session=session(then or index),  # resolved as of --as-of too
                index=then or index,
                reporter=reporter,
            )
            if retry_capped
            else None
        )
        locked, result, paths = lock_known_good(
            store,
            where,
            output or lock_dir_for(where, matrix=matrix.name if matrix is not None else None),
            prefer=prefer,
            constraints=reqs,
            prune=Prune.chosen(prune=prune, bytecode=bytecode),
            eligible=eligible,
            verify=verify,
            retry=retry,
            stack=stack_of(matrix, matrix_path),
            reporter=reporter,
        )
    if as_json:
        emit(lock_shape(locked, result, paths))
        return
    out.print(
        f"[green]known-good[/] on {locked.target.describe()}: {result.combo.label()}",
        highlight=False,
    )
    if result.added_system_deps:
        out.print(f"system packages: {', '.join(result.added_system_deps)}")
    for cap in locked.caps:
        out.print(f"[yellow]capped:[/] {cap} ({cap.reason})", highlight=False)
    for note in lock_notes(locked):
        out.print(f"[yellow]note:[/] {note}", highlight=False)
    for path in paths:
        out.print(f"  wrote {path}", highlight=False)
    if paths:
        # one Dockerfile: what compat image tests is what docker builds from the directory
        where_to = paths[0].parent
        out.print(
            f"build and smoke-test it: compat image --lock-dir {where_to} "
            f"(or: docker build -t IMAGE {where_to})",
            highlight=False,
        )


@click.command()
@click.option("--base", help="A base name as scanned (e.g. alpine).")
@click.option(
    "--image", metavar="REF", callback=checked_image, help="An image reference or ID as scanned."
)
@click.option(
    "--lock-dir",
    type=click.Path(path_type=Path, file_okay=False),
    help="Build this lock directory (default: lock the best known-good combination first).",
)
@click.option("-t", "--tag", help="Tag for the built image (default: compat/<base>:<combination>).")
@click.option(
    "--matrix",
    "matrix_path",
    type=click.Path(path_type=Path, dir_okay=False),
    help="Lock this matrix's stack first (needed where the base holds several).",
)
@click.option("--prune/--no-prune", default=True, show_default=True)
@_bytecode_option
@click.option("--json", "as_json", is_flag=True, help="Print the measurements as JSON.")
@image_options
@click.pass_obj
def image(
    settings: Settings,
    /,
    base: str | None,
    image: str | None,
    lock_dir: Path | None,
    tag: str | None,
    matrix: Matrix | None,
    matrix_path: Path | None,
    prune: bool,
    bytecode: bool,
    as_json: bool,
    config: RunConfig,
) -> None:
    """Build the known-good image for a base, run the smoke suite in it and record its
    size and the size of the layers the stack adds over the base."""
    if lock_dir is not None and not bytecode:
        raise UsageError(
            f"--no-bytecode is written into a lock: {lock_dir} is built as it was written; "
            "write it with `compat lock --no-bytecode`, or leave --lock-dir out"
        )
    if lock_dir is None:
        where = scope(base, image)
        lock_dir = lock_dir_for(where, matrix=matrix.name if matrix is not None else None)
        with settings.reader() as store:
            lock_known_good(
                store,
                where,
                lock_dir,
                prune=Prune.chosen(prune=prune, bytecode=bytecode),
                stack=stack_of(matrix, matrix_path),
            )
    outcome = build_locked_image(
        lock_dir,
        open_store=settings.store,
        name=base,
        tag=tag,
        cache_dir=settings.cache_dir,
        network=settings.network,
        reporter=ConsoleReporter(),
        config=config,
    )
    built, locked, tag = outcome.report, outcome.locked, outcome.tag
    if as_json:
        click.echo(json.dumps(built.to_json(), indent=2))
    else:
        style = "green" if built.ok else "red"
        verdict = built.verdict.value if built.verdict else "not run"
        out.print(f"[{style}]{verdict}[/] {tag}", highlight=False)
        out.print(
            f"image {built.size / 1e6:.1f} MB; the stack adds {built.added_size / 1e6:.1f} MB "
            f"over {locked.target.image} ({built.base_size / 1e6:.1f} MB)"
        )
        if built.startup is not None:
            for line in describe_startup(built.startup, built.size):
                out.print(line, highlight=False)
        for note in lock_notes(locked):
            out.print(f"[yellow]note:[/] {note}", highlight=False)
    outcome.raise_for_status()
