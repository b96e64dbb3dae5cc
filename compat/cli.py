"""The command line: parses, then calls. No logic of its own beyond presentation."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import click
import platformdirs
from packaging.utils import canonicalize_name
from rich.console import Console
from rich.table import Table

from compat import __version__
from compat.errors import CompatError, UsageError
from compat.index.base import Index
from compat.index.pypi import PyPIIndex
from compat.index.snapshot import SnapshotIndex
from compat.matrix import STRATEGIES, Matrix, load_matrix
from compat.model import Combo, FileKind
from compat.resolve.candidates import CandidateSource
from compat.resolve.planner import Plan, Planner
from compat.settings import NetworkSettings
from compat.targets.profiles import PROFILES, target_from_profile
from compat.targets.target import Target

F = TypeVar("F", bound=Callable[..., Any])
DEFAULT_MATRIX = Path("matrix/ml-stack.toml")

out = Console(soft_wrap=True)
err = Console(stderr=True, soft_wrap=True)


@dataclass(frozen=True, kw_only=True, slots=True)
class Settings:
    """Everything taken from the environment, read once here and passed in."""

    network: NetworkSettings
    cache_dir: Path
    offline: bool
    snapshot: Path | None
    verbose: bool


def _target_options(func: F) -> F:
    for decorator in reversed(
        (
            click.option(
                "--base", type=click.Choice(sorted(PROFILES)), help="A named base image profile."
            ),
            click.option(
                "--image", metavar="REF", help="Any image reference (probed with Docker)."
            ),
            click.option("--python", "python", metavar="X.Y", help="Python version of the base."),
            click.option(
                "--probe/--no-probe",
                default=False,
                help="Probe the base's image with Docker rather than derive its tags.",
            ),
        )
    ):
        func = decorator(func)
    return func


def _plan_options(func: F) -> F:
    for decorator in reversed(
        (
            click.option(
                "--matrix",
                "matrix_path",
                type=click.Path(path_type=Path, dir_okay=False),
                default=DEFAULT_MATRIX,
                show_default=True,
                help="Matrix file.",
            ),
            click.option(
                "--strategy",
                type=click.Choice(STRATEGIES),
                help="Version strategy (default: the matrix's).",
            ),
            click.option(
                "--last-minors",
                type=click.IntRange(min=1),
                help="Only the newest N minors of each package.",
            ),
            click.option(
                "--cap",
                type=click.IntRange(min=1),
                help="Most combinations the exhaustive strategy may plan.",
            ),
            click.option(
                "--no-binary",
                multiple=True,
                metavar="PKG",
                help="Build PKG from its sdist (repeatable).",
            ),
        )
    ):
        func = decorator(func)
    return func


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="compat")
@click.option(
    "--index-url",
    envvar="COMPAT_INDEX_URL",
    help="Simple-API index (default: PIP_INDEX_URL or PyPI).",
)
@click.option(
    "--cert",
    metavar="PATH",
    help="CA bundle (default: SSL_CERT_FILE, PIP_CERT or REQUESTS_CA_BUNDLE).",
)
@click.option("--offline", is_flag=True, help="Use only the cache; name what is missing.")
@click.option(
    "--snapshot",
    type=click.Path(path_type=Path, file_okay=False, exists=True),
    envvar="COMPAT_SNAPSHOT",
    help="Read the index from a recorded snapshot directory (reproducible, no network).",
)
@click.option(
    "--cache-dir",
    type=click.Path(path_type=Path, file_okay=False),
    envvar="COMPAT_CACHE_DIR",
    help="Cache directory (default: the user cache directory).",
)
@click.option("-v", "--verbose", is_flag=True, help="Log what happens; show tracebacks.")
@click.pass_context
def cli(
    ctx: click.Context,
    index_url: str | None,
    cert: str | None,
    offline: bool,
    snapshot: Path | None,
    cache_dir: Path | None,
    verbose: bool,
) -> None:
    """Which versions of your Python packages really work together on a base image."""
    logging.basicConfig(level=logging.INFO if verbose else logging.WARNING, format="%(message)s")
    ctx.obj = Settings(
        network=NetworkSettings.from_env(os.environ, index_url=index_url, cert=cert),
        cache_dir=cache_dir or Path(platformdirs.user_cache_dir("compat")),
        offline=offline,
        snapshot=snapshot,
        verbose=verbose,
    )


@contextlib.contextmanager
def open_index(settings: Settings) -> Iterator[Index]:
    if settings.snapshot is not None:
        yield SnapshotIndex(settings.snapshot)
        return
    with PyPIIndex.from_settings(
        settings.network, cache_dir=settings.cache_dir / "index", offline=settings.offline
    ) as index:
        yield index


def resolve_target(
    settings: Settings, *, base: str | None, image: str | None, python: str | None, probe: bool
) -> Target:
    if base and image:
        raise UsageError("give --base or --image, not both")
    if image or probe:
        from compat.targets.probe import probe_image

        ref = image or target_from_profile(base or "debian-slim", python=python).image
        return probe_image(ref, name=base or ref, cache_dir=settings.cache_dir / "targets")
    return target_from_profile(base or "debian-slim", python=python)


def make_plan(
    settings: Settings,
    index: Index,
    target: Target,
    matrix: Matrix,
    *,
    strategy: str | None,
    last_minors: int | None,
    cap: int | None,
    no_binary: tuple[str, ...],
) -> Plan:
    build = matrix.build.with_no_binary(frozenset(canonicalize_name(n) for n in no_binary))
    source = CandidateSource(index, target, build)
    with err.status(f"planning {matrix.name} for {target.name}…"):
        return Planner(source, matrix).plan(target, strategy, last_minors=last_minors, cap=cap)


@cli.command()
@_target_options
@_plan_options
@click.option("--json", "as_json", is_flag=True, help="Print the plan as JSON.")
@click.pass_obj
def plan(
    settings: Settings,
    base: str | None,
    image: str | None,
    python: str | None,
    probe: bool,
    matrix_path: Path,
    strategy: str | None,
    last_minors: int | None,
    cap: int | None,
    no_binary: tuple[str, ...],
    as_json: bool,
) -> None:
    """Plan the combinations of a matrix for one base image."""
    matrix = load_matrix(matrix_path)
    target = resolve_target(settings, base=base, image=image, python=python, probe=probe)
    with open_index(settings) as index:
        result = make_plan(
            settings,
            index,
            target,
            matrix,
            strategy=strategy,
            last_minors=last_minors,
            cap=cap,
            no_binary=no_binary,
        )
    if as_json:
        click.echo(json.dumps(result.to_json(), indent=2))
        return
    show_plan(result)


def show_plan(plan: Plan) -> None:
    target = plan.target
    out.print(f"[bold]{plan.matrix}[/] on {target.describe()}; strategy {plan.strategy}")
    names = list(plan.versions)

    def cell(combo: Combo, name: str) -> str:
        pin = combo.pin(name)  # a star marks a version built from its sdist
        return f"{pin.version}*" if pin.kind is FileKind.SDIST else str(pin.version)

    table = Table()
    table.add_column("id", style="dim", no_wrap=True)
    for name in names:  # versions are never cut; long package names wrap instead
        width = max((len(cell(c, name)) for c in plan.combos), default=1)
        table.add_column(name, no_wrap=True, min_width=width, overflow="fold")
    for combo in plan.combos:
        table.add_row(combo.id, *(cell(combo, n) for n in names))
    out.print(table)
    chosen = sum(len(v) for v in plan.versions.values())
    out.print(f"{len(plan.combos)} combinations of {chosen} versions of {len(names)} packages")
    builds = plan.source_builds
    if builds:
        listed = "; ".join(f"{n} ({', '.join(map(str, vs))})" for n, vs in builds.items())
        platform = "musllinux" if target.libc.value == "musl" else "manylinux"
        out.print(
            f"[yellow]* needs a source build[/] (no {platform} wheel for Python {target.python}): "
            + listed
        )
    for name, why in plan.unavailable.items():
        out.print(f"[red]no-wheel[/] {name} {why}")
    for pair in plan.infeasible_pairs:
        (p, a), (q, b) = pair.pair
        out.print(f"[red]infeasible pair[/] {p}=={a} with {q}=={b}: {pair.explanation}")
    for conflict in plan.conflicts:
        out.print(
            f"[red]metadata-conflict[/] {', '.join(conflict.requested)}: {conflict.explanation}"
        )


def main() -> None:
    try:
        cli.main(standalone_mode=False)
    except click.exceptions.Abort:
        err.print("interrupted")
        sys.exit(130)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except CompatError as exc:
        if "--verbose" in sys.argv or "-v" in sys.argv:
            err.print_exception()
        err.print(f"[red]error:[/] {exc}", highlight=False)
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        err.print("interrupted")
        sys.exit(130)
