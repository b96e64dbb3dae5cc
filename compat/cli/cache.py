"""``compat cache info`` and ``compat cache prune``: what the cache holds, and
removing what compat rebuilds on demand."""

from __future__ import annotations

import click

from compat.cli.console import err, out
from compat.cli.options import Settings
from compat.report.view import format_bytes
from compat.workflows.cache import prune as prune_cache
from compat.workflows.cache import usage


@click.group()
def cache() -> None:
    """Inspect or prune the cache directory."""


@cache.command()
@click.pass_obj
def info(settings: Settings, /) -> None:
    """Each folder of the cache with its size, largest first."""
    found = usage(settings.cache_dir)
    out.print(f"cache: {settings.cache_dir}", highlight=False)
    for item in found:
        out.print(f"  {item.name:<10} {format_bytes(item.size):>9}  {item.files} files")
    out.print(f"  {'total':<10} {format_bytes(sum(i.size for i in found)):>9}")


@cache.command()
@click.option(
    "--older-than",
    "days",
    type=float,
    default=0.0,
    show_default=True,
    metavar="DAYS",
    help="Only unpacked installs made more than DAYS days ago.",
)
@click.option("--everything", is_flag=True, help="Remove the whole cache directory.")
@click.pass_obj
def prune(settings: Settings, /, days: float, everything: bool) -> None:
    """Remove unpacked installs (rebuilt from the wheels on demand); with
    --everything, the whole cache. Run it when no scan is running."""
    freed = prune_cache(settings.cache_dir, older_than_days=days, everything=everything)
    err.print(f"freed {format_bytes(freed)} in {settings.cache_dir}", highlight=False)
