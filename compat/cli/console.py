"""What the commands show: plans, progress, summaries, results. Output goes to
stdout (``out``); notices and progress go to stderr (``err``), so JSON stays clean.
``ConsoleReporter`` is the ``Reporter`` the workflows report through."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence

import click
from rich.console import Console
from rich.markup import escape as escape_markup
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.status import Status
from rich.table import Table

from compat.model import CheckKind, CheckResult, CheckVerdict, Combo, ComboResult, FileKind
from compat.report.summary import Row
from compat.report.view import format_bytes
from compat.reporter import Reporter
from compat.resolve.planner import Plan
from compat.smoke.engine import NOT_IN_COMBINATION
from compat.targets.fallback import StandIn
from compat.targets.profiles import HOST, PROFILES
from compat.text import inert
from compat.workflows.scan import ScanOutcome

out = Console(soft_wrap=True)
err = Console(stderr=True, soft_wrap=True)


def escape(text: str) -> str:
    """Text from packages made inert and its rich markup escaped, for a line of markup."""
    return escape_markup(inert(text))


def piped_rows(header: Sequence[str], rows: Iterable[Sequence[str]]) -> None:
    """A table as a pipe wants it: a header line, then one tab-separated line per row,
    never wrapped (for grep, cut and sort); tabs and newlines in a cell are spaces."""

    def line(cells: Sequence[str]) -> str:
        return "\t".join(" ".join(inert(cell).split()) for cell in cells)

    for cells in (header, *rows):  # past rich, which would expand the tabs
        click.echo(line(cells))


def show_plan(plan: Plan, known: dict[str, str]) -> None:
    target = plan.target
    out.print(f"[bold]{plan.matrix}[/] on {target.describe()}; strategy {plan.strategy}")
    names = list(plan.versions)

    def cell(combo: Combo, name: str) -> str:
        pin = combo.pin(name)  # a star marks a version built from its sdist
        return f"{pin.version}*" if pin.kind is FileKind.SDIST else str(pin.version)

    if not out.is_terminal:
        piped_rows(
            ["id", *names, "known incompatible"],
            ([c.id, *(cell(c, n) for n in names), known.get(c.id, "")] for c in plan.combos),
        )
    else:
        _plan_table(plan, names, cell, known)
    chosen = sum(len(v) for v in plan.versions.values())
    out.print(f"{len(plan.combos)} combinations of {chosen} versions of {len(names)} packages")
    if plan.check_runs:
        out.print(
            f"about {sum(plan.check_runs.values())} check runs to execute, "
            f"{plan.reused_runs} reused (from earlier combinations or the results database)"
        )
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


class ConsoleReporter(Reporter):
    """The reporter the commands hand to workflows: notices, a spinner while
    planning, progress bars while running, a line per result as it lands."""

    def __init__(self, console: Console = err) -> None:
        self.console = console
        self._status: Status | None = None
        self._progress: Progress | None = None
        self._tasks: dict[str, TaskID] = {}
        self._done: dict[str, int] = {}  # each stage's last count
        self._total = self._finished = 0  # the run's combinations, and those that landed
        self._since = time.monotonic()
        self._step_since = self._since  # when the current task's first step started

    def notice(self, message: str) -> None:
        self.console.print(escape(message), highlight=False)

    def warning(self, message: str) -> None:
        self.console.print(escape(message), style="yellow")

    def plan_started(self, matrix: str, target: str) -> None:
        self._spin(f"planning {matrix} for {target}…")

    def plan_finished(self) -> None:
        self._stop_spinning()

    def image_build_started(self, tag: str) -> None:
        self._spin(f"building {tag} and running the smoke suite in it…")

    def image_build_finished(self) -> None:
        self._stop_spinning()

    def _spin(self, text: str) -> None:
        self._stop_spinning()
        self._status = self.console.status(text)
        self._status.start()

    def _stop_spinning(self) -> None:
        if self._status is not None:
            self._status.stop()
            self._status = None

    def step_started(self, what: str, number: int, total: int) -> None:
        now = time.monotonic()
        if number <= 1:
            self._step_since = now
        self.console.print(
            f"{escape(_counted(number, total, now - self._step_since))}{escape(what)}",
            highlight=False,
        )

    def run_started(self, total: int) -> None:
        self._progress = Progress(
            SpinnerColumn(),
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            console=self.console,
            transient=True,
        )
        self._tasks, self._done = {}, {}
        self._total, self._finished, self._since = total, 0, time.monotonic()
        self._progress.start()

    def stage_progress(self, stage: str, done: int, total: int) -> None:
        if self._progress is None:
            return
        if stage not in self._tasks:
            if not total:  # nothing to do in this stage: no line, no timer
                return
            self._tasks[stage] = self._progress.add_task(stage, total=total)
        # a stage reported again (a retry's compile) starts over: its timer too
        task = self._tasks[stage]
        if done < self._done.get(stage, 0):
            self._progress.reset(task, total=total, completed=done)
        self._done[stage] = done
        self._progress.update(task, completed=min(done, total), total=total, visible=total > 0)

    def combo_finished(self, result: ComboResult) -> None:
        style = "green" if result.ok else "red"
        # a combination that failed before any check ran (a build) has no check to name
        why = ": ".join(part for part in (result.failed_check, result.error) if part)
        extra = f"  {escape(why)}" if why and not result.ok else ""
        self._finished += 1
        self.console.print(
            f"{escape(self._count())}[{style}]{result.verdict.value:>17}[/] "
            f"{escape(result.combo.label())}{extra}",
            highlight=False,
        )

    def _count(self) -> str:
        """``[k/N, ~T left] `` before a result line of a run of several combinations
        (read in a CI log, where no progress bar is drawn)."""
        if self._total <= 1:
            return ""
        done = min(self._finished, self._total)
        return _counted(done, self._total, time.monotonic() - self._since, finished=done)

    def run_finished(self) -> None:
        if self._progress is not None:
            self._progress.stop()
            self._progress = None


def _counted(number: int, total: int, elapsed: float, *, finished: int | None = None) -> str:
    """``[k/N, ~T left] ``: ``elapsed`` over the steps ``finished`` (those before step
    ``number``, unless given) says how long the rest takes. An estimate that ran
    short (``number`` past ``total``) counts the step itself as the last."""
    total = max(total, number)
    done = number - 1 if finished is None else finished
    left = ""
    if 0 < done < total:
        left = f", ~{_about(elapsed / done * (total - done))} left"
    return f"[{number}/{total}{left}] "


def _about(seconds: float) -> str:
    """A rough duration: ``40 s``, ``12 min``, ``2 h 5 min``."""
    if seconds < 90:
        return f"{seconds:.0f} s"
    minutes = round(seconds / 60)
    return f"{minutes} min" if minutes < 90 else f"{minutes // 60} h {minutes % 60} min"


def _plan_table(
    plan: Plan, names: Sequence[str], cell: Callable[[Combo, str], str], known: dict[str, str]
) -> None:
    table = Table()
    table.add_column("id", style="dim", no_wrap=True)
    for name in names:  # versions are never cut; long package names wrap instead
        width = max((len(cell(c, name)) for c in plan.combos), default=1)
        table.add_column(name, no_wrap=True, min_width=width, overflow="fold")
    for combo in plan.combos:
        table.add_row(combo.id, *(cell(combo, n) for n in names))
        if combo.id in known:  # recorded by compat bisect
            table.add_row("", f"[red]known incompatible: {known[combo.id]}[/]", end_section=True)
    out.print(table)


def show_summary(rows: list[Row], *, title: str) -> None:
    if not out.is_terminal:
        out.print(title, highlight=False)
        piped_rows(
            ["combination", "verdict", "failing check", "first error line"],
            (
                [row.label, row.verdict_text, row.failed_check or "", (row.error or "")[:200]]
                for row in rows
            ),
        )
    else:
        _summary_table(rows, title=title)
    _after_summary(rows)


def _summary_table(rows: list[Row], *, title: str) -> None:
    table = Table(title=title, title_justify="left")
    table.add_column("combination", overflow="fold")
    table.add_column("verdict", no_wrap=True)
    table.add_column("failing check", overflow="fold")
    table.add_column("first error line", overflow="fold")
    for row in rows:
        style = "green" if row.verdict.ok else "red"
        table.add_row(
            escape(row.label),
            f"[{style}]{row.verdict_text}[/]",
            escape(row.failed_check or ""),
            escape((row.error or "")[:200]),
        )
    out.print(table)


def _after_summary(rows: list[Row]) -> None:
    counts: dict[str, int] = {}
    for row in rows:
        counts[row.verdict.value] = counts.get(row.verdict.value, 0) + 1
    out.print(", ".join(f"{n} {v}" for v, n in sorted(counts.items())) or "nothing ran")
    flagged = [(row.label, error) for row in rows for error in row.check_errors]
    if flagged:
        out.print(
            f"[yellow bold]{len(flagged)} check errors[/] (checks calling an API the installed "
            "release lacks: defects of the checks, not counted in any verdict):",
            highlight=False,
        )
        for label, error in flagged:
            out.print(f"  [yellow]check-error[/] {escape(f'{label}: {error}')}", highlight=False)


def show_result(result: ComboResult) -> None:
    style = "green" if result.ok else "red"
    out.print(
        f"[{style} bold]{result.verdict.value}[/] {escape(result.combo.label())}", highlight=False
    )
    out.print("pins: " + ", ".join(str(p) for p in result.combo.pins), highlight=False)
    # checks failing the same way are said once
    failing: dict[tuple[CheckVerdict, str | None], list[CheckResult]] = {}
    for check_result in result.checks:
        if check_result.verdict not in (CheckVerdict.PASS, CheckVerdict.SKIPPED):
            failing.setdefault((check_result.verdict, check_result.error), []).append(check_result)
    for (verdict, error), same in failing.items():
        colour = "yellow" if verdict is CheckVerdict.CHECK_ERROR else "red"
        if len(same) > 1:
            names = ", ".join(c.name for c in same[:3]) + (", …" if len(same) > 3 else "")
            what = escape(f"{len(same)} checks ({names}): {error}")
            out.print(f"  [{colour}]{verdict.value}[/] {what}", highlight=False)
            continue
        (check_result,) = same
        what = escape(f"{check_result.name}: {error}")
        out.print(f"  [{colour}]{verdict.value}[/] {what}", highlight=False)
        if check_result.inputs:
            loaded = ", ".join(f"{n} {v}" for n, v in check_result.inputs)
            out.print(f"    [dim]imported {escape(loaded)}[/]", highlight=False)
    if result.check_errors:
        out.print(
            "[yellow]check errors are defects of the checks (an API the installed release "
            "lacks), not counted in the verdict[/]",
            highlight=False,
        )
    absent = 0
    for check_result in result.skipped_checks:
        if (check_result.error or "").endswith(NOT_IN_COMBINATION):
            absent += 1
            continue
        what = escape(f"{check_result.name}: {check_result.error}")
        out.print(f"  [dim]skipped {what}[/]", highlight=False)
    if absent:
        out.print(
            f"  [dim]skipped {absent} checks of packages {NOT_IN_COMBINATION}[/]", highlight=False
        )
    if result.system_deps:
        out.print(
            f"missing system packages: {', '.join(result.system_deps)} "
            "(installed for the run unless --no-system-deps)"
        )
    if result.added_system_deps:
        out.print(f"needs {', '.join(result.added_system_deps)} (installed for the run)")
    for check_result in result.checks:
        if check_result.kind is CheckKind.BUILD:
            name = check_result.name.removeprefix("build:")
            out.print(f"built {name} from source in {check_result.duration:.0f} s", highlight=False)
    for note in result.notes:
        out.print(f"[yellow]note:[/] {escape(note)}", highlight=False)
    counts: dict[str, int] = {}
    for check_result in result.checks:
        counts[check_result.verdict.value] = counts.get(check_result.verdict.value, 0) + 1
    listed = ", ".join(f"{n} {v}" for v, n in sorted(counts.items()))
    reused = len(result.reused_checks)
    also = f"; {reused} reused from earlier runs with the same inputs" if reused else ""
    if result.checks:
        out.print(f"{len(result.checks)} checks ({listed}) in {result.duration:.1f} s{also}")
    else:  # nothing ran: a build or an install stopped it first
        out.print(f"no check ran ({result.verdict.value} after {result.duration:.1f} s)")


def show_scan(outcome: ScanOutcome, stand_in: StandIn | None = None) -> None:
    """The summary table, the base's known-good image size, where the results went;
    with ``stand_in``, whose answer this is, what differs and how to reach a lock."""
    show_summary(list(outcome.rows), title=outcome.title)
    target = outcome.target
    size = outcome.image_size
    if stand_in is not None:
        out.print(stand_in.line(), highlight=False)
        if any(row.verdict.ok for row in outcome.rows):
            out.print(stand_in.to_lock(), highlight=False)
    elif size is not None:
        out.print(
            f"known-good image of {outcome.plan.matrix} on {target.name}: "
            f"{format_bytes(size.total_size)}, the stack adds {format_bytes(size.added_size)} "
            f"({size.image})",
            highlight=False,
        )
    elif target.name == HOST:  # --backend local: nothing here can be locked or built
        out.print(
            "results of this machine (base host) are never locked or built into an image: "
            "scan an image (--base NAME or --image REF) for that",
            highlight=False,
        )
    elif any(row.verdict.ok for row in outcome.rows):
        # only a passing combination can be locked and built (compat image refuses otherwise)
        matrix = f" --matrix {outcome.matrix_path}" if outcome.matrix_path else ""
        out.print(
            f"no known-good image of {outcome.plan.matrix} measured on {target.name} yet: "
            f"run compat image {scope_option(target.name)}{matrix}",
            highlight=False,
        )
    err.print(f"results: {outcome.store_url} (run {outcome.run_id})", highlight=False)


def scope_option(name: str) -> str:
    """The option that names a base or an image on the command line."""
    return f"--base {name}" if name in PROFILES else f"--image {name}"
