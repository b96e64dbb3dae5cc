"""``compat results`` and ``compat show``: what the results database holds."""

from __future__ import annotations

import json

import click
from rich.table import Table

from compat.cli.console import err, escape, out, piped_rows, show_result
from compat.cli.options import Settings
from compat.cli.shapes import emit, stored_shape
from compat.errors import UsageError
from compat.model import CheckVerdict, Verdict
from compat.text import inert


@click.command()
@click.option("--base", help="Only this base (name, image reference or image ID).")
@click.option("--verdict", type=click.Choice([v.value for v in Verdict]), help="Only this verdict.")
@click.option("--limit", type=click.IntRange(min=1), default=100, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print the results as JSON.")
@click.pass_obj
def results(
    settings: Settings, /, base: str | None, verdict: str | None, limit: int, as_json: bool
) -> None:
    """List results from the results database, newest first."""
    with settings.reader() as store:
        rows = store.results(
            base=base, verdict=Verdict(verdict) if verdict else None, limit=limit + 1
        )
    if len(rows) > limit:  # said apart from the listing, which stays parseable
        rows = rows[:limit]
        err.print(f"showing the newest {limit} results; --limit N shows more", highlight=False)
    if as_json:
        click.echo(
            json.dumps(
                [
                    {
                        "id": r.id,
                        "combination": r.combination_id,
                        "label": r.label,
                        "base": r.base,
                        "image": r.image,
                        "verdict": r.verdict.value,
                        "standing": r.standing_verdict.value,
                        "shown": r.verdict_text,
                        "depth": r.depth,
                        "origin": r.origin,
                        "failed_check": r.failed_check,
                        "error": r.error,
                        "created": r.created.isoformat(),
                    }
                    for r in rows
                ],
                indent=2,
            )
        )
        return
    if not rows:
        filtered = base is not None or verdict is not None
        out.print("no results match" if filtered else "no results yet: run compat scan")
        return
    columns = ("id", "when", "base", "combination", "verdict", "depth", "origin", "error")
    if not out.is_terminal:
        # a pipe: a header, then one tab-separated line per result, for grep and cut
        piped_rows(
            columns,
            (
                (
                    str(r.id),
                    f"{r.created:%Y-%m-%d %H:%M}",
                    r.base,
                    r.label,
                    r.verdict_text,
                    r.depth,
                    r.origin,
                    (r.error or "").splitlines()[0] if r.error else "",
                )
                for r in rows
            ),
        )
        return
    table = Table()
    for column in columns:
        table.add_column(column, overflow="fold")
    for r in rows:
        style = "green" if r.standing_verdict.ok else "red"
        table.add_row(
            str(r.id),
            r.created.strftime("%Y-%m-%d %H:%M"),
            escape(r.base),
            escape(r.label),
            f"[{style}]{escape(r.verdict_text)}[/]",
            r.depth,
            r.origin,
            escape((r.error or "").splitlines()[0] if r.error else ""),
        )
    out.print(table)


@click.command()
@click.argument("result")
@click.option("--json", "as_json", is_flag=True, help="Print the result, checks and logs as JSON.")
@click.pass_obj
def show(settings: Settings, /, result: str, as_json: bool) -> None:
    """Show one result with its checks and full logs. RESULT is a result id from
    `compat results`, or a combination id (its newest result)."""
    with settings.reader() as store:
        if result.isdigit():
            stored = store.get(int(result))
        else:
            newest = store.results(combination=result, limit=1)
            stored = store.get(newest[0].id) if newest else None
        origins = [c.reused_from for c in stored.result.checks if c.reused_from] if stored else []
        result_ids = store.result_ids(origins)
    if stored is None:
        raise UsageError(f"no result or combination {result!r}: `compat results` lists them")
    if as_json:
        emit(stored_shape(stored, result_ids))
        return
    out.print(
        f"result {stored.id} on {stored.base} ({stored.image}), {stored.created:%Y-%m-%d %H:%M}"
    )
    show_result(stored.result)
    if origins:
        found = sorted({str(result_ids.get(uid, uid)) for uid in origins})
        out.print(
            f"{len(origins)} checks reused from result {', '.join(found)}: they imported the "
            "same versions there, on the same image (--no-reuse runs them again)",
            highlight=False,
        )
    if stored.result.error and not stored.result.checks:
        out.print(f"[red]{escape(stored.result.error)}[/]", highlight=False)
    for check in stored.result.checks:
        if check.log and check.verdict not in (CheckVerdict.PASS, CheckVerdict.SKIPPED):
            out.print(f"[bold]log of {escape(check.name)}[/]", highlight=False)
            out.print(inert(check.log), markup=False, highlight=False)
    if stored.result.log:
        out.print("[bold]log[/]")
        out.print(inert(stored.result.log), markup=False, highlight=False)
