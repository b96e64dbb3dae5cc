"""The ``compat`` command group: global options read once into ``Settings``, one
module per command group, and ``main`` turning our errors into exit codes."""

from __future__ import annotations

import functools
import logging
import os
import signal
import sys
from pathlib import Path
from typing import NoReturn

import click
import platformdirs

from compat import __version__
from compat.cli.bisect import bisect
from compat.cli.cache import cache
from compat.cli.console import err
from compat.cli.db import db as db_group
from compat.cli.lock import image, lock
from compat.cli.nightly import nightly
from compat.cli.options import Settings
from compat.cli.plan import plan
from compat.cli.report import report
from compat.cli.results import results, show
from compat.cli.scan import check, scan
from compat.errors import CompatError, DiskFull, ExitCode, out_of_space
from compat.report.view import format_bytes
from compat.settings import NetworkSettings
from compat.store import default_db_url
from compat.workflows.cache import DEFAULT_LIMIT, over_limit, parse_size


class Group(click.Group):
    """Global options are taken after the subcommand too (``compat results --db X``),
    as pip and uv users expect: they are moved in front of it before parsing."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        return super().parse_args(ctx, hoist_globals(self, args))


def hoist_globals(group: click.Group, args: list[str]) -> list[str]:
    """``args`` with the group's own options (and their values) moved to the front,
    wherever they stand; help stays (``compat scan -h`` is the subcommand's help) and
    nothing after a ``--`` moves."""
    takes_value = {
        opt: not param.is_flag
        for param in group.params
        if isinstance(param, click.Option) and param.expose_value
        for opt in (*param.opts, *param.secondary_opts)
    }
    moved: list[str] = []
    rest: list[str] = []
    i = 0
    while i < len(args):
        arg = args[i]
        if arg == "--":
            rest += args[i:]
            break
        name, has_value, _ = arg.partition("=")
        if name not in takes_value:
            rest.append(arg)
        elif takes_value[name] and not has_value:
            moved += args[i : i + 2]
            i += 1
        else:
            moved.append(arg)
        i += 1
    return moved + rest


@click.group(cls=Group, context_settings={"help_option_names": ["-h", "--help"]})
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
@click.option(
    "--db",
    metavar="URL",
    help="Results database (default: COMPAT_DB, else SQLite in the user data directory).",
)
@click.option("-v", "--verbose", is_flag=True, help="Log what happens; show tracebacks.")
@click.option("-q", "--quiet", is_flag=True, help="No progress or notices; errors only.")
@click.pass_context
def cli(
    ctx: click.Context,
    index_url: str | None,
    cert: str | None,
    offline: bool,
    snapshot: Path | None,
    cache_dir: Path | None,
    db: str | None,
    verbose: bool,
    quiet: bool,
) -> None:
    """Which versions of your Python packages really work together on a base image."""
    err.quiet = quiet
    logging.basicConfig(level=logging.INFO if verbose else logging.WARNING, format="%(message)s")
    data_dir = Path(os.environ.get("COMPAT_DATA_DIR") or platformdirs.user_data_dir("compat"))
    ctx.obj = settings = Settings(
        network=NetworkSettings.from_env(os.environ, index_url=index_url, cert=cert),
        cache_dir=cache_dir or Path(platformdirs.user_cache_dir("compat")),
        offline=offline,
        snapshot=snapshot,
        db_url=default_db_url(os.environ, data_dir, explicit=db),
        verbose=verbose,
    )
    if ctx.invoked_subcommand in FILLS_CACHE:
        limit = os.environ.get("COMPAT_CACHE_LIMIT")
        ctx.call_on_close(
            functools.partial(
                warn_if_full, settings.cache_dir, parse_size(limit) if limit else None
            )
        )


# the commands that download, unpack and build into the cache
FILLS_CACHE = frozenset({"scan", "check", "lock", "image", "bisect", "nightly"})


def warn_if_full(cache_dir: Path, limit: int | None) -> None:
    """Say so when the cache holds more than ``limit`` bytes (COMPAT_CACHE_LIMIT),
    and what pruning would free."""
    over = over_limit(cache_dir, DEFAULT_LIMIT if limit is None else limit)
    if over is not None:
        err.print(
            f"the cache holds {format_bytes(over.total)} in {cache_dir}, over its limit of "
            f"{format_bytes(over.limit)} (COMPAT_CACHE_LIMIT): `compat cache prune` frees "
            f"{format_bytes(over.prunable)} (unpacked installs, made again when needed), "
            "`compat cache prune --everything` all of it",
            highlight=False,
        )


for command in (
    plan,
    scan,
    check,
    results,
    show,
    report,
    lock,
    image,
    bisect,
    nightly,
    db_group,
    cache,
):
    cli.add_command(command)


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt(signal.Signals(signum).name)


def main() -> None:
    """The entry point: a bad command line is click's to explain; our errors print one
    line (a traceback with --verbose) and exit with their code; Ctrl-C exits 130."""
    # a CI cancel or `timeout` sends SIGTERM, a closed terminal SIGHUP: both take the
    # Ctrl-C path, which removes every container and keeps every result committed
    for signum in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, _interrupt)
    try:
        cli.main(standalone_mode=False)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except (click.exceptions.Abort, KeyboardInterrupt):
        err.print("interrupted")
        sys.exit(ExitCode.INTERRUPTED)
    except CompatError as exc:
        _fail(exc)
    except OSError as exc:
        if not out_of_space(exc):
            raise
        _fail(DiskFull(Path(exc.filename or "."), exc))  # a write outside any run


def _fail(exc: CompatError) -> NoReturn:
    err.quiet = False  # --quiet keeps errors
    if "--verbose" in sys.argv or "-v" in sys.argv:
        err.print_exception()
    err.print(f"[red]error:[/] {exc}", highlight=False)
    sys.exit(exc.exit_code)
