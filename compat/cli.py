"""The command line: parses, then calls. No logic of its own beyond presentation."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shlex
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import click
import platformdirs
from packaging.utils import canonicalize_name
from rich.table import Table

from compat import __version__
from compat.bisect import bisect
from compat.console import err, out, run_with_progress, show_plan, show_result, show_summary
from compat.errors import CompatError, IncompatibleFound, UsageError
from compat.harness import Backend, RunOptions, make_backend
from compat.image import build_image
from compat.index.base import Index
from compat.index.pypi import PyPIIndex
from compat.index.snapshot import SnapshotIndex
from compat.junit import write_junit
from compat.lock import read_lock
from compat.matrix import STRATEGIES, BuildPolicy, Matrix, load_matrix
from compat.model import Combo, ComboResult, Verdict
from compat.nightly import NightlyOutcome, nightly_base
from compat.report import BaseReport, ReportData, incompatibility_lines, write_report
from compat.report.view import format_bytes
from compat.resolve.candidates import CandidateSource
from compat.resolve.planner import Plan, Planner, mark_known
from compat.scan import (
    Conflict,
    Row,
    choose_target,
    lock_dir_for,
    lock_known_good,
    parse_pins,
    parse_shard,
    pre_run_rows,
    recorded_run,
    resolve_check,
    shard,
    split_done,
)
from compat.settings import NetworkSettings
from compat.store import Store, default_db_url, sqlite_url
from compat.targets.profiles import PROFILES
from compat.targets.target import Target

F = TypeVar("F", bound=Callable[..., Any])
DEFAULT_MATRIX = Path("matrix/ml-stack.toml")
SHIPPED_MATRICES = Path(__file__).parent / "matrices"  # the wheel carries matrix/ here


@dataclass(frozen=True, kw_only=True, slots=True)
class Settings:
    """Everything taken from the environment, read once here and passed in."""

    network: NetworkSettings
    cache_dir: Path
    offline: bool
    snapshot: Path | None
    verbose: bool
    data_dir: Path
    db_url: str

    def store(self) -> Store:
        return Store.open(self.db_url)

    def has_store(self) -> bool:
        """Whether the results database exists (a server's always may)."""
        if self.db_url.startswith("sqlite:///"):
            return Path(self.db_url.removeprefix("sqlite:///")).is_file()
        return True


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
@click.option(
    "--db",
    metavar="URL",
    help="Results database (default: COMPAT_DB, else SQLite in the user data directory).",
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
    db: str | None,
    verbose: bool,
) -> None:
    """Which versions of your Python packages really work together on a base image."""
    logging.basicConfig(level=logging.INFO if verbose else logging.WARNING, format="%(message)s")
    data_dir = Path(os.environ.get("COMPAT_DATA_DIR") or platformdirs.user_data_dir("compat"))
    ctx.obj = Settings(
        network=NetworkSettings.from_env(os.environ, index_url=index_url, cert=cert),
        cache_dir=cache_dir or Path(platformdirs.user_cache_dir("compat")),
        offline=offline,
        snapshot=snapshot,
        verbose=verbose,
        data_dir=data_dir,
        db_url=default_db_url(os.environ, data_dir, explicit=db),
    )


def _load_matrix(path: Path) -> Matrix:
    """A matrix file; ``matrix/NAME.toml`` outside a checkout is the shipped one."""
    shipped = SHIPPED_MATRICES / path.name
    if not path.exists() and path.parent == Path("matrix") and shipped.is_file():
        return load_matrix(shipped)
    return load_matrix(path)


@contextlib.contextmanager
def open_index(settings: Settings) -> Iterator[Index]:
    if settings.snapshot is not None:
        yield SnapshotIndex(settings.snapshot)
        return
    with PyPIIndex.from_settings(
        settings.network, cache_dir=settings.cache_dir / "index", offline=settings.offline
    ) as index:
        yield index


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
    matrix = _load_matrix(matrix_path)
    target = choose_target(
        base=base, image=image, python=python, probe=probe, cache_dir=settings.cache_dir
    )
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
    known: dict[str, str] = {}
    if settings.has_store():  # planning alone never creates a database
        with settings.store() as store:
            known = mark_known(result, store.incompatibilities(target.name))
    if as_json:
        data = result.to_json()
        for combo in data["combinations"]:
            if combo["id"] in known:
                combo["known_incompatible"] = known[combo["id"]]
        click.echo(json.dumps(data, indent=2))
        return
    show_plan(result, known)


def _run_options(func: F) -> F:
    for decorator in reversed(
        (
            click.option(
                "--backend",
                type=click.Choice(["auto", "docker", "local"]),
                default="auto",
                show_default=True,
                help="Where combinations run: containers, or this machine's Python.",
            ),
            click.option(
                "-j",
                "--jobs",
                type=click.IntRange(min=1),
                default=2,
                show_default=True,
                help="Combinations run at once.",
            ),
            click.option(
                "--timeout",
                type=click.FloatRange(min=1),
                default=300,
                show_default=True,
                help="Seconds one combination may run.",
            ),
            click.option("--cpus", type=click.FloatRange(min=0.1), help="CPUs per container."),
            click.option("--memory", default="4g", show_default=True, help="Memory per container."),
            click.option(
                "--add-system-deps",
                is_flag=True,
                help="Install the distro packages a missing shared library points to, and retry.",
            ),
            click.option(
                "--checks",
                "checks_dir",
                type=click.Path(path_type=Path, file_okay=False, exists=True),
                help="A directory of your own check scripts, run in each environment.",
            ),
            click.option(
                "--exec",
                "exec_cmd",
                metavar="CMD",
                help="A command (e.g. your pytest suite) run in each environment.",
            ),
        )
    ):
        func = decorator(func)
    return func


def _backend(
    settings: Settings,
    *,
    backend: str,
    jobs: int,
    timeout: float,
    cpus: float | None,
    memory: str,
    add_system_deps: bool,
    checks_dir: Path | None,
    exec_cmd: str | None,
) -> Backend:
    options = RunOptions(
        cache_dir=settings.cache_dir,
        jobs=jobs,
        combo_timeout=timeout,
        check_timeout=min(120.0, timeout),
        cpus=cpus,
        memory=memory or None,
        add_system_deps=add_system_deps,
        checks_dir=checks_dir,
        exec_cmd=tuple(shlex.split(exec_cmd)) if exec_cmd else (),
        network=settings.network,
    )
    return make_backend(backend, options=options, notify=lambda m: err.print(m, style="yellow"))


def _backend_target(
    settings: Settings, backend: Backend, *, base: str | None, image: str | None, python: str | None
) -> Target:
    """What the backend really runs on, said in one line."""
    target = choose_target(
        base=base,
        image=image,
        python=python,
        cache_dir=settings.cache_dir,
        local=backend.kind == "local",
        notify=lambda m: err.print(m, style="yellow"),
    )
    err.print(f"target: {target.describe()}; backend: {backend.kind}", highlight=False)
    return target


@cli.command()
@_target_options
@_plan_options
@_run_options
@click.option(
    "--fail-on-incompatible",
    is_flag=True,
    help="Exit non-zero when any combination does not pass (for CI).",
)
@click.option(
    "--shard", "shard_spec", metavar="K/N", help="Run only the K-th of N disjoint slices."
)
@click.option("--retest", is_flag=True, help="Run combinations already tested on this image.")
@click.option(
    "--junit",
    type=click.Path(path_type=Path, dir_okay=False),
    help="Write JUnit XML, one test case per combination.",
)
@click.pass_obj
def scan(
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
    fail_on_incompatible: bool,
    shard_spec: str | None,
    junit: Path | None,
    retest: bool,
    **run: Any,
) -> None:
    """Plan a matrix for a base image, run every combination, summarise the verdicts."""
    matrix = _load_matrix(matrix_path)
    k, n = parse_shard(shard_spec) if shard_spec else (1, 1)
    with _backend(settings, **run) as backend:
        target = _backend_target(settings, backend, base=base, image=image, python=python)
        with open_index(settings) as index:
            the_plan = make_plan(
                settings,
                index,
                target,
                matrix,
                strategy=strategy,
                last_minors=last_minors,
                cap=cap,
                no_binary=no_binary,
            )
        combos = shard(the_plan.combos, k, n)
        rows = pre_run_rows(the_plan) if k == 1 else []  # said once, by the first shard
        if n > 1:
            err.print(f"shard {k}/{n}: {len(combos)} of {len(the_plan.combos)} combinations")
        results: list[ComboResult] = []
        with settings.store() as store:
            todo, done = split_done(
                store, combos, target, retest=retest, add_system_deps=run["add_system_deps"]
            )
            if done:
                err.print(
                    f"{len(done)} combinations already tested on this image (--retest runs them)"
                )
            rows += [Row.of_stored(r) for r in done]
            info = {
                "backend": backend.kind,
                "matrix_name": matrix.name,
                "matrix_path": str(matrix_path),
                "strategy": the_plan.strategy,
                "shard": shard_spec,
            }
            with recorded_run(store, target, **info) as run_id:
                try:
                    results = run_with_progress(
                        backend, target, todo, lambda r: store.record(run_id, target, r)
                    )
                except KeyboardInterrupt:
                    err.print(f"interrupted: finished results are kept in {store.url}")
                    raise
            sizes = store.image_sizes(base=target.name)
    rows += [Row.of(r) for r in results]
    show_summary(rows, title=f"{matrix.name} on {target.name} ({backend.kind})")
    if sizes:
        newest = max(sizes, key=lambda s: s.measured)
        out.print(
            f"known-good image on {target.name}: {format_bytes(newest.total_size)}, "
            f"the stack adds {format_bytes(newest.added_size)} ({newest.image})",
            highlight=False,
        )
    else:
        out.print(f"no known-good image measured on {target.name} yet: run compat image")
    err.print(f"results: {store.url} (run {run_id})", highlight=False)
    if junit is not None:
        write_junit(junit, suite=f"compat.{matrix.name}.{target.name}", rows=rows, results=results)
    if fail_on_incompatible and any(not r.verdict.ok for r in rows):
        raise IncompatibleFound(
            f"{sum(not r.verdict.ok for r in rows)} of {len(rows)} combinations do not pass"
        )


@cli.command()
@click.argument("pins", nargs=-1)
@_target_options
@_run_options
@click.option("--no-binary", multiple=True, metavar="PKG", help="Build PKG from its sdist.")
@click.option(
    "--force", is_flag=True, help="Install the pins as given even where metadata forbids."
)
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@click.pass_obj
def check(
    settings: Settings,
    /,
    pins: tuple[str, ...],
    base: str | None,
    image: str | None,
    python: str | None,
    probe: bool,
    no_binary: tuple[str, ...],
    force: bool,
    as_json: bool,
    **run: Any,
) -> None:
    """Run one explicit set of pins (the rest resolved) and print the verdict."""
    reqs = parse_pins(pins)
    build = BuildPolicy().with_no_binary(frozenset(canonicalize_name(n) for n in no_binary))
    with _backend(settings, **run) as backend:
        target = _backend_target(settings, backend, base=base, image=image, python=python)
        with open_index(settings) as index:
            outcome = resolve_check(CandidateSource(index, target, build), reqs, force=force)
        if isinstance(outcome, Conflict):
            verdict = {
                "verdict": Verdict.METADATA_CONFLICT.value,
                "failed_checks": [],
                "error": outcome.explanation,
                "requested": list(pins),
            }
            if as_json:
                click.echo(json.dumps(verdict, indent=2))
            else:
                out.print(f"[red]metadata-conflict[/]: {outcome.explanation}", highlight=False)
                out.print("Use --force to install the pins anyway and see if they really fail.")
            return
        with (
            settings.store() as store,
            recorded_run(store, target, backend=backend.kind) as run_id,
        ):
            (result,) = run_with_progress(
                backend, target, [outcome], lambda r: store.record(run_id, target, r)
            )
    if as_json:
        data = result.to_json()
        data["failed_checks"] = [
            c.name for c in result.checks if c.verdict.as_verdict() not in (None, Verdict.PASS)
        ]
        click.echo(json.dumps(data, indent=2))
        return
    show_result(result)


@cli.command()
@click.option("--base", help="Only this base (name, image reference or image ID).")
@click.option("--verdict", type=click.Choice([v.value for v in Verdict]), help="Only this verdict.")
@click.option("--limit", type=click.IntRange(min=1), default=100, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print the results as JSON.")
@click.pass_obj
def results(
    settings: Settings, /, base: str | None, verdict: str | None, limit: int, as_json: bool
) -> None:
    """List results from the results database, newest first."""
    with settings.store() as store:
        rows = store.results(base=base, verdict=Verdict(verdict) if verdict else None, limit=limit)
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
    table = Table()
    for column in ("id", "when", "base", "combination", "verdict", "first error line"):
        table.add_column(column, overflow="fold")
    for r in rows:
        style = "green" if r.verdict.ok else "red"
        table.add_row(
            str(r.id),
            r.created.strftime("%Y-%m-%d %H:%M"),
            r.base,
            r.label,
            f"[{style}]{r.verdict.value}[/]",
            r.error or "",
        )
    out.print(table)
    if not rows:
        out.print("no results yet: run compat scan")


@cli.command()
@click.argument("result_id", type=int)
@click.pass_obj
def show(settings: Settings, /, result_id: int) -> None:
    """Show one result with its checks and full log."""
    with settings.store() as store:
        stored = store.get(result_id)
    if stored is None:
        raise UsageError(f"no result {result_id}: `compat results` lists them")
    out.print(
        f"result {stored.id} on {stored.base} ({stored.image}), {stored.created:%Y-%m-%d %H:%M}"
    )
    show_result(stored.result)
    if stored.result.log:
        out.print("[bold]log[/]")
        out.print(stored.result.log, markup=False, highlight=False)


@cli.command()
@click.option(
    "-o",
    "--output",
    type=click.Path(path_type=Path, dir_okay=False),
    default=Path("compat-report.html"),
    show_default=True,
)
@click.option("--title", default="compat report", show_default=True)
@click.pass_obj
def report(settings: Settings, /, output: Path, title: str) -> None:
    """Write a self-contained HTML report of every base in the results database."""
    with settings.store() as store:
        tested = store.latest_by_target()
        sizes = {s.base: s for s in reversed(store.image_sizes())}  # newest wins
        incompatible = store.incompatibilities()
    if not tested:
        raise UsageError(f"no results in {settings.db_url}: run compat scan first")
    bases = []
    for target, results in tested:
        size = sizes.get(target.name)
        bases.append(
            BaseReport.from_results(
                target,
                results,
                image_size=size.total_size if size else None,
                added_size=size.added_size if size else None,
                known_incompatibilities=incompatibility_lines(incompatible, base=target.name),
            )
        )
    path = write_report(ReportData(bases=tuple(bases), title=title), output)
    err.print(f"report: {path} ({sum(len(b.results) for b in bases)} results, {len(bases)} bases)")


def _scope(base: str | None, image: str | None) -> str:
    if bool(base) == bool(image):
        raise UsageError("give --base NAME or --image REF (one of them)")
    return str(base or image)


@cli.command()
@click.option("--base", help="A base name as scanned (e.g. alpine).")
@click.option("--image", metavar="REF", help="An image reference or ID as scanned.")
@click.option(
    "-o", "--output", type=click.Path(path_type=Path, file_okay=False), help="Default: lock/<base>."
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
    help="Drop test folders, bytecode, sources and installers from the image's venv.",
)
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
) -> None:
    """Write requirements.txt (hashed), pylock.toml and a Dockerfile for the best
    known-good combination of a base."""
    scope = _scope(base, image)
    reqs = parse_pins(constraints) if constraints else []
    with settings.store() as store:
        locked, result, paths = lock_known_good(
            store,
            scope,
            output or lock_dir_for(scope),
            cache_dir=settings.cache_dir,
            prefer=prefer,
            constraints=reqs,
            prune=prune,
        )
    out.print(
        f"[green]known-good[/] on {locked.target.describe()}: {result.combo.label()}",
        highlight=False,
    )
    if result.added_system_deps:
        out.print(f"system packages: {', '.join(result.added_system_deps)}")
    for path in paths:
        out.print(f"  wrote {path}", highlight=False)


@cli.command()
@click.option("--base", help="A base name as scanned (e.g. alpine).")
@click.option("--image", metavar="REF", help="An image reference or ID as scanned.")
@click.option(
    "--lock-dir",
    type=click.Path(path_type=Path, file_okay=False),
    help="Build this lock directory (default: lock the best known-good combination first).",
)
@click.option("-t", "--tag", help="Tag for the built image (default: compat/<base>:<combination>).")
@click.option("--prune/--no-prune", default=True, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print the measurements as JSON.")
@click.pass_obj
def image(
    settings: Settings,
    /,
    base: str | None,
    image: str | None,
    lock_dir: Path | None,
    tag: str | None,
    prune: bool,
    as_json: bool,
) -> None:
    """Build the known-good image for a base, run the smoke suite in it and record its
    size and the size of the layers the stack adds over the base."""
    if lock_dir is None:
        scope = _scope(base, image)
        lock_dir = lock_dir_for(scope)
        with settings.store() as store:
            lock_known_good(store, scope, lock_dir, cache_dir=settings.cache_dir, prune=prune)
    locked, _ = read_lock(lock_dir)
    name = (base or locked.target.name).replace("/", "-").replace(":", "-")
    tag = tag or f"compat/{name}:{locked.combo.id}"
    with err.status(f"building {tag} and running the smoke suite in it…"):
        built = build_image(
            lock_dir, tag=tag, wheelhouse=settings.cache_dir, network=settings.network
        )
    with settings.store() as store:
        store.record_image(
            base=locked.target.name,
            image=tag,
            image_id=built.image_id,
            total_size=built.size,
            added_size=built.added_size,
            lock_hash=locked.combo.id,
        )
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
    if not built.ok:
        raise IncompatibleFound(f"the smoke suite failed in {tag}: {built.error}")


@cli.command("bisect")
@click.argument("failing")
@click.option("--good", help="A passing result or combination id (default: the closest one).")
@_run_options
@click.option("--no-binary", multiple=True, metavar="PKG", help="Build PKG from its sdist.")
@click.pass_obj
def bisect_command(
    settings: Settings, /, failing: str, good: str | None, no_binary: tuple[str, ...], **run: Any
) -> None:
    """Find the smallest set of package changes that explains a failure, and record it
    as a known incompatibility (FAILING: a result id or a combination id)."""
    build = BuildPolicy().with_no_binary(frozenset(canonicalize_name(n) for n in no_binary))
    # probes get the system packages the known-good run had, so that a missing library
    # is never mistaken for the failure under study
    run["add_system_deps"] = True
    with (
        _backend(settings, **run) as backend,
        settings.store() as store,
        open_index(settings) as index,
    ):
        found = bisect(
            store,
            backend,
            index,
            failing,
            good,
            build=build,
            notify=lambda m: err.print(m, style="yellow"),
        )
    for line in found.lines():
        out.print(line, highlight=False)


@cli.command()
@_plan_options
@_run_options
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
@click.option("--json", "as_json", is_flag=True, help="Print the outcome as JSON.")
@click.pass_obj
def nightly(
    settings: Settings,
    /,
    matrix_path: Path,
    strategy: str | None,
    last_minors: int | None,
    cap: int | None,
    no_binary: tuple[str, ...],
    bases: tuple[str, ...],
    lock_root: Path,
    as_json: bool,
    **run: Any,
) -> None:
    """Test only what PyPI published since the last run (plus each base's known-good
    lock as a control), update the lockfiles, and fail on regressions or lock changes."""
    matrix = _load_matrix(matrix_path)
    build = matrix.build.with_no_binary(frozenset(canonicalize_name(n) for n in no_binary))
    outcomes = []
    with (
        _backend(settings, **run) as backend,
        settings.store() as store,
        open_index(settings) as index,
    ):
        for base in bases or matrix.bases or ("debian-slim",):
            named = base in PROFILES  # a matrix's bases are profile names or image references
            target = _backend_target(
                settings,
                backend,
                base=base if named else None,
                image=None if named else base,
                python=matrix.python,
            )
            source = CandidateSource(index, target, build)

            def run_combos(combos: list[Combo], target: Target = target) -> list[ComboResult]:
                with recorded_run(
                    store,
                    target,
                    backend=backend.kind,
                    matrix_name=matrix.name,
                    matrix_path=str(matrix_path),
                    strategy="nightly",
                ) as run_id:
                    return run_with_progress(
                        backend, target, combos, lambda r: store.record(run_id, target, r)
                    )

            def make(source: CandidateSource = source, target: Target = target) -> Plan:
                return Planner(source, matrix).plan(
                    target, strategy, last_minors=last_minors, cap=cap
                )

            lock_dir = lock_dir_for(target.name, lock_root)
            outcome = nightly_base(
                scope=target.name,
                source=source,
                matrix=matrix,
                plan=make,
                store=store,
                lock_dir=lock_dir,
                run=run_combos,
                last_minors=last_minors,
            )
            if outcome.lock_changed:
                lock_known_good(store, target.name, lock_dir, cache_dir=settings.cache_dir)
            outcomes.append(outcome)
    summary = NightlyOutcome(bases=tuple(outcomes))
    if as_json:
        click.echo(json.dumps(summary.to_json(), indent=2))
    else:
        for outcome in outcomes:
            for line in outcome.lines():
                out.print(line, highlight=False)
    summary.raise_for_status()


@cli.group()
def db() -> None:
    """Move results between databases."""


@db.command("export")
@click.argument("output", type=click.File("w"), default="-")
@click.pass_obj
def db_export(settings: Settings, /, output: Any) -> None:
    """Write every run and result as JSON lines (to OUTPUT, default stdout)."""
    with settings.store() as store:
        count = store.export_json(output)
    err.print(f"exported {count} records from {store.url}")


@db.command("import")
@click.argument("source", type=click.File("r"), default="-")
@click.pass_obj
def db_import(settings: Settings, /, source: Any) -> None:
    """Read results exported by `compat db export`; what is already there is skipped."""
    with settings.store() as store:
        added = store.import_json(source)
    err.print(
        f"imported {added.results} results, {added.runs} runs ({added.skipped} already there)"
    )


@db.command("merge")
@click.argument("other")
@click.pass_obj
def db_merge(settings: Settings, /, other: str) -> None:
    """Copy another database's runs and results (a URL or SQLite path) into this one."""
    with settings.store() as store:
        added = store.merge(other if "://" in other else sqlite_url(Path(other)))
    err.print(f"merged {added.results} results, {added.runs} runs ({added.skipped} already there)")


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
