"""What the commands share: the settings read once from the environment, the option
groups several commands take, and the collaborators built from them (index,
pipeline, results database)."""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import shlex
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any, TypeVar, cast

import click
from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import NormalizedName, canonicalize_name

from compat.cli.console import err
from compat.config import BACKENDS, RunConfig, Timeouts, ToolchainChoice, as_of_for
from compat.effects.container import check_reference
from compat.effects.paths import check_writable_dir
from compat.errors import EngineUnavailable, ImageUnavailable, UsageError
from compat.harness import Pipeline, make_pipeline
from compat.index.asof import AsOfIndex, parse_as_of
from compat.index.base import Index
from compat.index.pypi import PyPIIndex
from compat.index.snapshot import SnapshotIndex
from compat.matrix import STRATEGIES, Matrix, load_matrix
from compat.model import Depth
from compat.reporter import Reporter
from compat.settings import NetworkSettings
from compat.store import Reader, Store
from compat.targets.fallback import StandIn, stand_in
from compat.targets.profiles import DEFAULT_BASE, PROFILES, host_distribution, host_target
from compat.targets.target import Target
from compat.workflows.session import Session
from compat.workflows.steps import target_of

F = TypeVar("F", bound=Callable[..., Any])
DEFAULT_MATRIX = Path("matrix/ml-stack.toml")
_PACKAGE = Path(__file__).parent.parent
# where matrix/NAME.toml is found outside a checkout: a wheel carries matrix/ inside the
# package; an editable install runs from the checkout, whose matrix/ is beside the package
MATRIX_DIRS = (_PACKAGE / "matrices", _PACKAGE.parent / "matrix")


@dataclass(frozen=True, kw_only=True, slots=True)
class Settings:
    """Everything taken from the environment, read once by the group and passed in."""

    network: NetworkSettings
    cache_dir: Path
    offline: bool
    snapshot: Path | None
    db_url: str
    verbose: bool = False  # -v: log what happens, print the run configuration

    def store(self) -> Store:
        return Store.open(self.db_url)

    def reader(self) -> Reader:
        """The results database for a command that only reads: opened read-only,
        so it may sit on a read-only mount, and never created."""
        return Store.open(self.db_url, read_only=True)


def _apply(func: F, decorators: Sequence[Callable[[F], F]]) -> F:
    for decorator in reversed(decorators):
        func = decorator(func)
    return func


def checked_image(_ctx: click.Context, _param: click.Parameter, value: str | None) -> str | None:
    """An ``--image`` value that is an image reference or ID (nothing else reaches the
    engine, the results database or a Dockerfile)."""
    try:
        return None if value is None else check_reference(value)
    except UsageError as exc:
        raise click.BadParameter(str(exc)) from None


def target_options(func: F) -> F:
    """--base, --image, --python: the image combinations run on."""
    return _apply(
        func,
        (
            click.option(
                "--base", type=click.Choice(sorted(PROFILES)), help="A named base image profile."
            ),
            click.option(
                "--image",
                metavar="REF",
                callback=checked_image,
                help="Any image reference (probed with Docker).",
            ),
            click.option("--python", "python", metavar="X.Y", help="Python version of the base."),
        ),
    )


def _as_of(_ctx: click.Context, _param: click.Parameter, value: str | None) -> date | None:
    try:
        return None if value is None else parse_as_of(value)
    except UsageError as exc:
        raise click.BadParameter(str(exc)) from None


as_of_option = click.option(
    "--as-of",
    metavar="YYYY-MM-DD",
    callback=_as_of,
    help="Resolve as the index stood at the end of that day (UTC): later uploads are unseen.",
)
lock_as_of_option = click.option(
    "--as-of",
    "pinned_by",  # which combinations a lock may pick: no run setting
    metavar="YYYY-MM-DD",
    callback=_as_of,
    help="Only combinations whose every pin was on the index by the end of that day (UTC).",
)

no_binary_option = click.option(
    "--no-binary", multiple=True, metavar="PKG", help="Build PKG from its sdist (repeatable)."
)


def plan_options(func: F) -> F:
    """The matrix file and the knobs that shape its plan."""
    return _apply(
        func,
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
            no_binary_option,
        ),
    )


DEFAULTS = RunConfig()  # the defaults the options show are the configuration's own


def _seconds(name: str, default: float, text: str) -> Callable[[F], F]:
    return click.option(
        name,
        type=click.FloatRange(min=1),
        default=default,
        show_default=True,
        metavar="SECONDS",
        help=text,
    )


check_timeout_option = _seconds(
    "--check-timeout",
    DEFAULTS.timeouts.check,
    "Seconds one check of the smoke suite may run (within a scan's --timeout).",
)

# Where and how combinations run: the backend and its limits, extra checks. Each
# command that runs combinations takes them all and receives them as one RunConfig.
_RUN_OPTIONS: tuple[Callable[[F], F], ...] = (
    click.option(
        "--backend",
        type=click.Choice(BACKENDS),
        default=DEFAULTS.backend,
        show_default=True,
        help="Where combinations run: containers, or this machine's Python.",
    ),
    click.option(
        "-j",
        "--jobs",
        type=click.IntRange(min=1),
        default=DEFAULTS.jobs,
        show_default=True,
        help="Combinations run at once.",
    ),
    _seconds(
        "--timeout",
        DEFAULTS.timeouts.combination,
        "Seconds one combination's suite may run (each check has its own limit).",
    ),
    check_timeout_option,
    click.option("--cpus", type=click.FloatRange(min=0.1), help="CPUs per container."),
    click.option(
        "--memory", default=DEFAULTS.memory, show_default=True, help="Memory per container."
    ),
    click.option(
        "--system-deps/--no-system-deps",
        "--add-system-deps",  # the old spelling of the default: old command lines work
        "add_system_deps",
        default=DEFAULTS.add_system_deps,
        show_default=True,
        help="Install the distro package a missing shared library points to (and those "
        "this image is known to need) and report the combination as passing with it; "
        "--no-system-deps runs on the bare image.",
    ),
    click.option(
        "--reuse/--no-reuse",
        default=DEFAULTS.reuse,
        show_default=True,
        help="Take a check's outcome (and a whole-package import's) from an earlier "
        "run on this image where it imported the same versions, instead of running "
        "it again.",
    ),
    click.option(
        "--verify-reuse",
        type=click.FloatRange(0, 1),
        default=DEFAULTS.verify_reuse,
        metavar="FRACTION",
        help="Run this share of the reusable checks (and kept deep test modules) "
        "anyway and compare: a disagreement is reported and ends reuse for that check.",
    ),
    click.option(
        "--toolchain",
        type=click.Choice([c.value for c in ToolchainChoice]),
        default=DEFAULTS.toolchain.value,
        show_default=True,
        help="What builds sdists: the image's package manager (distro), or a compiler "
        "and build tools from PyPI (zig, cmake, ninja, meson; no OpenMP). "
        "auto: distro where the image has a package manager, else pypi.",
    ),
    _seconds("--build-timeout", DEFAULTS.timeouts.build, "Seconds one sdist may take to build."),
    _seconds(
        "--compile-timeout",
        DEFAULTS.timeouts.compile,
        "Seconds byte-compiling the unpacked wheels of a run may take.",
    ),
    click.option(
        "--rebuild",
        is_flag=True,
        help="Build sdists again (and rerun their combinations) even when a wheel "
        "or a failed build is cached.",
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
    _seconds(
        "--deep-test-timeout",
        DEFAULTS.timeouts.deep_test,
        "--depth deep: seconds one of the dependents' shipped tests may run.",
    ),
    _seconds(
        "--deep-module-timeout",
        DEFAULTS.timeouts.deep_module,
        "--depth deep: seconds one of their test modules may run (in its own process).",
    ),
    _seconds(
        "--deep-timeout",
        DEFAULTS.timeouts.deep_run,
        "--depth deep: seconds one run of the dependents' shipped tests may take "
        "(a combination's, or its baselines').",
    ),
)

# what `compat image` runs: the smoke suite in the image it built
_IMAGE_OPTIONS: tuple[Callable[[F], F], ...] = (
    check_timeout_option,
    _seconds(
        "--smoke-timeout",
        DEFAULTS.timeouts.image_smoke,
        "Seconds the whole smoke suite may run in the built image.",
    ),
)


def run_config(params: dict[str, Any], matrix: Matrix | None = None) -> RunConfig:
    """The one place a run's settings are resolved: the command line's values
    (taken out of ``params``, the command's parsed options), then the matrix's,
    then the defaults. ``--retest`` turns reuse off (every check runs again);
    ``--rebuild`` implies ``--retest`` (a rebuilt wheel is tested again) but keeps
    reuse (a rebuilt wheel is an input of its own)."""

    def take(name: str, default: Any) -> Any:
        value = params.pop(name, None)
        return default if value is None else value

    rebuild = bool(take("rebuild", DEFAULTS.rebuild))
    retest = bool(take("retest", DEFAULTS.retest))
    exec_cmd: str | None = take("exec_cmd", None)
    memory: str | None = take("memory", DEFAULTS.memory)
    given_as_of = "as_of" in params
    as_of: date | None = take("as_of", None)
    timeouts = DEFAULTS.timeouts
    return RunConfig(
        backend=take("backend", DEFAULTS.backend),
        jobs=take("jobs", DEFAULTS.jobs),
        cpus=take("cpus", DEFAULTS.cpus),
        memory=memory or None,  # --memory "": no limit
        add_system_deps=take("add_system_deps", DEFAULTS.add_system_deps),
        toolchain=ToolchainChoice(take("toolchain", DEFAULTS.toolchain)),
        rebuild=rebuild,
        retest=retest or rebuild,
        reuse=take("reuse", DEFAULTS.reuse) and not retest,  # --retest runs every check
        verify_reuse=take("verify_reuse", DEFAULTS.verify_reuse),
        checks_dir=take("checks_dir", DEFAULTS.checks_dir),
        exec_cmd=tuple(shlex.split(exec_cmd)) if exec_cmd else DEFAULTS.exec_cmd,
        depth=Depth(take("depth", DEFAULTS.depth)),
        as_of=as_of_for(as_of, matrix) if given_as_of else None,
        timeouts=Timeouts(
            combination=take("timeout", timeouts.combination),
            check=take("check_timeout", timeouts.check),
            build=take("build_timeout", timeouts.build),
            compile=take("compile_timeout", timeouts.compile),
            deep_test=take("deep_test_timeout", timeouts.deep_test),
            deep_module=take("deep_module_timeout", timeouts.deep_module),
            deep_run=take("deep_timeout", timeouts.deep_run),
            image_smoke=take("smoke_timeout", timeouts.image_smoke),
        ),
        deep=dataclasses.replace(
            DEFAULTS.deep,
            modules=tuple(take("deep_modules", DEFAULTS.deep.modules)),
            keyword=take("deep_keyword", DEFAULTS.deep.keyword),
        ),
    )


def _resolving(func: F) -> F:
    """``func`` called with its run options resolved into one ``config`` (and, with
    a ``--matrix``, the loaded ``matrix`` beside its path); ``compat -v`` prints it."""

    @functools.wraps(func)
    def command(*args: Any, **params: Any) -> Any:
        matrix = None
        if "matrix_path" in params:
            path = params["matrix_path"]
            matrix = params["matrix"] = None if path is None else load(path)
        config = run_config(params, matrix)
        settings = click.get_current_context().find_object(Settings)
        if settings is not None and settings.verbose:
            err.print(config.summary(), highlight=False)
        return func(*args, config=config, **params)

    return cast("F", command)


def run_options(func: F) -> F:
    """The run options (where and how combinations run: the backend and its limits,
    extra checks), and ``--depth``, ``--as-of``, ``--retest`` and the deep tier's
    selection where the command has them, handed to ``func`` as one ``RunConfig``."""
    return _apply(_resolving(func), _RUN_OPTIONS)


def image_options(func: F) -> F:
    """The limits of the smoke suite run in a built image, handed to ``func`` as one
    ``RunConfig``."""
    return _apply(_resolving(func), _IMAGE_OPTIONS)


def open_pipeline(
    settings: Settings,
    reporter: Reporter,
    config: RunConfig,
    *,
    why: str = "",
    fallback: Callable[[str], str] | None = None,
) -> Pipeline:
    """The pipeline over the backend ``config`` asks for (a context manager: its
    backend holds the engine); ``why`` is said with the local backend's notice;
    ``fallback`` decides whether the host may answer when no engine does."""
    check_writable_dir(settings.cache_dir, what="cache", option="--cache-dir")
    return make_pipeline(
        config,
        cache_dir=settings.cache_dir,
        network=settings.network,
        reporter=reporter,
        why=why,
        fallback=fallback,
        cache_only=settings.offline,
    )


def host_answers(why: str, bases: Sequence[str], *, python: str | None) -> list[StandIn]:
    """This machine's Python standing in for each of ``bases`` (profile names),
    whose images cannot run here (``why``): what differs for each, or
    ImageUnavailable (exit 9) for a base of another libc family."""
    host, distribution = host_target(), host_distribution()
    return [
        stand_in(base, python=python, why=why, host=host, host_distribution=distribution)
        for base in bases
    ]


@contextlib.contextmanager
def open_target(
    settings: Settings,
    reporter: Reporter,
    config: RunConfig,
    *,
    base: str | None,
    image: str | None,
    python: str | None,
    on_stand_in: Callable[[StandIn], None] | None = None,
) -> Iterator[tuple[Pipeline, Target]]:
    """The pipeline ``config`` asks for and the target it runs on. With ``--backend
    auto`` and no ``--image``, a base whose image cannot run here (no engine, or an
    image neither here nor pullable) falls back to the local backend, said in one
    line, where the host can answer for it: the same libc family (``on_stand_in``
    hears what differs). Elsewhere (alpine on a glibc host) it stops with exit 9 and
    what to do. A named ``--image`` is never replaced."""

    def stand(why: str) -> str:
        if image is not None:
            raise EngineUnavailable(
                f"{why}\nAn image named with --image is never replaced by this machine: "
                "start the engine, or ask about this machine itself with --backend local."
            )
        (standing,) = host_answers(why, [base or DEFAULT_BASE], python=python)
        if on_stand_in is not None:
            on_stand_in(standing)
        return f"{why} -> {standing.line()}"

    with contextlib.ExitStack() as stack:

        def probe(pipeline: Pipeline, base: str | None = base) -> Target:
            return target_of(
                pipeline,
                base=base,
                image=image,
                python=python,
                cache_dir=settings.cache_dir,
                reporter=reporter,
            )

        pipeline = stack.enter_context(
            open_pipeline(
                settings, reporter, config, fallback=stand if config.backend == "auto" else None
            )
        )
        try:
            target = probe(pipeline)
        except ImageUnavailable as exc:
            if config.backend != "auto" or image is not None:
                raise
            stack.close()
            why = stand(str(exc).splitlines()[0].rstrip("."))
            local = dataclasses.replace(config, backend="local")
            pipeline = stack.enter_context(open_pipeline(settings, reporter, local, why=why))
            target = probe(pipeline, base=None)  # the line above said why --base went
        yield pipeline, target


@contextlib.contextmanager
def open_session(
    settings: Settings,
    reporter: Reporter,
    config: RunConfig,
    *,
    pipeline: Pipeline,
    target: Target | None = None,
    index: Index | None = None,
    store: Store | None = None,
) -> Iterator[Session]:
    """The one place a run's session is built: over ``pipeline`` (on ``target``,
    when the command knows it), with the index as of ``config.as_of`` and the
    results database opened for writing, unless given."""
    with contextlib.ExitStack() as stack:
        if index is None:
            index = stack.enter_context(open_index(settings, config.as_of))
        if store is None:
            store = stack.enter_context(settings.store())
        yield Session(
            pipeline=pipeline,
            store=store,
            index=index,
            reporter=reporter,
            config=config,
            target=target,
        )


@contextlib.contextmanager
def open_index(settings: Settings, as_of: date | None = None) -> Iterator[Index]:
    """The package index: a recorded snapshot, or PyPI (or the configured index);
    as it stood at the end of ``as_of`` when given."""
    if settings.snapshot is not None:
        snapshot = SnapshotIndex(settings.snapshot)
        yield snapshot if as_of is None else AsOfIndex.on(snapshot, as_of)
        return
    with PyPIIndex(
        settings.network, cache_dir=settings.cache_dir / "index", offline=settings.offline
    ) as index:
        yield index if as_of is None else AsOfIndex.on(index, as_of)


def load(path: Path) -> Matrix:
    """A matrix file; ``matrix/NAME.toml`` where there is none is the one compat
    ships (in the wheel, or in the checkout of an editable install)."""
    if not path.exists() and path.parent == Path("matrix"):
        for directory in MATRIX_DIRS:
            if (directory / path.name).is_file():
                return load_matrix(directory / path.name)
    return load_matrix(path)


def names(packages: Iterable[str]) -> frozenset[NormalizedName]:
    """``--no-binary`` values as project names."""
    return frozenset(canonicalize_name(n) for n in packages)


def parse_pins(args: Sequence[str]) -> list[Requirement]:
    """Requirements given on the command line, e.g. ``numpy==2.0.2``."""
    if not args:
        raise UsageError("name at least one package, e.g. compat check numpy==2.0.2 pandas==2.1.1")
    reqs = []
    for arg in args:
        try:
            reqs.append(Requirement(arg))
        except InvalidRequirement as exc:
            raise UsageError(f"{arg!r} is not a requirement such as numpy==2.0.2: {exc}") from None
    return reqs


def scope(base: str | None, image: str | None) -> str:
    """The one base name or image reference given."""
    if bool(base) == bool(image):
        raise UsageError("give --base NAME or --image REF (one of them)")
    return str(base or image)
