"""Build a lock directory's environment as an image, test it with the smoke suite,
and measure what it adds over its base.

The image is built from the lock directory's own Dockerfile, unchanged: the file
users commit is the file compat tests. What compat's build needs differently comes
in the build context, which that Dockerfile reads when present: every pinned file
from compat's wheelhouse (pip installs with no index, the build needs no network),
the wheels a scan built from the lock's sdists on this base (no toolchain, no
compiling again), and the configured CA bundle (the builder stage alone sees it).
"""

from __future__ import annotations

import dataclasses
import logging
import os
import re
import shutil
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from compat.config import RunConfig
from compat.effects.container import Engine, EngineImages, connect, image_id
from compat.effects.images import build, remove_unnamed
from compat.errors import HarnessError, ImageBuildFailed, WheelhouseIncomplete
from compat.harness.builds import built_wheel
from compat.harness.wheelhouse import stored_path
from compat.image.layers import measure
from compat.image.report import ImageReport, count_checks
from compat.image.smoke import run_smoke
from compat.image.startup import measure_startup
from compat.lock import DOCKERFILE, REQUIREMENTS, VENV, LockInput, read_lock
from compat.lock.dockerfile import BASE_ARG, CA_FILE, CONTEXT_FILES, PREBUILT
from compat.model import Pin, Verdict
from compat.reporter import Reporter
from compat.settings import NetworkSettings

log = logging.getLogger("compat.image")

IMAGE_LABEL = "compat.image"  # on every image compat builds, to find them again


def stored_file(wheelhouse: Path, pin: Pin) -> Path:
    """Where compat's wheelhouse (rooted at the cache directory) keeps ``pin``'s file."""
    return stored_path(wheelhouse, pin.sha256, pin.filename)


def _place(source: Path, dest: Path) -> None:
    try:
        os.link(source, dest)  # instant, and the wheelhouse is never written to
    except OSError:
        shutil.copyfile(source, dest)


def prebuilt_wheels(wheelhouse: Path, lock: LockInput, base_id: str) -> list[Path] | None:
    """The wheels a scan built from every one of the lock's sdists on this very base
    image (by image ID), or None when some sdist was not built there: then the image's
    builder stage compiles them all."""
    found = [built_wheel(wheelhouse, pin.sha256, base_id) for pin in lock.source_builds]
    wheels = [w for w in found if w is not None]
    return wheels if wheels and len(wheels) == len(found) else None


def lock_dockerfile(lock_dir: Path) -> str:
    """The lock directory's Dockerfile, as written (and maybe committed): the one
    compat builds."""
    try:
        text = (lock_dir / DOCKERFILE).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise HarnessError(f"{lock_dir} holds no {DOCKERFILE}: write the lock again") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise HarnessError(f"cannot read {lock_dir / DOCKERFILE}: {exc}") from exc
    if "--mount=" in text:
        # written by an older compat for BuildKit alone: the engine's classic builder
        # (what compat drives) cannot parse it
        raise HarnessError(
            f"{lock_dir / DOCKERFILE} needs BuildKit (RUN --mount): write the lock again "
            "with this compat, whose Dockerfile builds with the classic builder too"
        )
    return text


def prepare_context(
    lock_dir: Path,
    lock: LockInput,
    dest: Path,
    *,
    wheelhouse: Path | None,
    prebuilt: Sequence[Path] = (),
    ca_bundle: Path | None = None,
) -> Path:
    """A build context in ``dest`` for the lock directory's Dockerfile (copied as it
    is) and requirements.txt; with a wheelhouse, every pinned file under dist/ (and
    ``prebuilt`` wheels under dist/built/); with ``ca_bundle``, that bundle as ca.crt."""
    requirements = lock_dir / REQUIREMENTS
    if not requirements.is_file():
        raise HarnessError(f"{lock_dir} holds no {REQUIREMENTS}: write the lock again")
    dockerfile = lock_dockerfile(lock_dir)
    dest.mkdir(parents=True, exist_ok=True)
    (dest / DOCKERFILE).write_text(dockerfile, encoding="utf-8")
    shutil.copyfile(requirements, dest / REQUIREMENTS)
    if ca_bundle is not None:
        shutil.copyfile(ca_bundle, dest / CA_FILE)
    if wheelhouse is not None:
        files = dest / CONTEXT_FILES
        files.mkdir(exist_ok=True)
        missing = [p for p in lock.combo.pins if not stored_file(wheelhouse, p).is_file()]
        if missing:
            raise WheelhouseIncomplete(wheelhouse, missing)
        for pin in lock.combo.pins:
            _place(stored_file(wheelhouse, pin), files / pin.filename)
        if prebuilt:
            (files / PREBUILT).mkdir()
            for wheel in prebuilt:
                _place(wheel, files / PREBUILT / wheel.name)
    return dest


_STEP_FROM = re.compile(r"^Step \d+/\d+ : FROM\s", re.IGNORECASE)
_STEP_IMAGE = re.compile(r"^ ---> ([0-9a-f]{12,64})$")


def stage_images(log_lines: list[str], *, failed: bool = False) -> list[str]:
    """The images the classic builder made for the stages before the last one, from
    its log: each stage's last `` ---> <id>`` before the next ``FROM``. For a build
    that ``failed``, the last step it finished too: nothing names that image either."""
    found: list[str] = []
    current: str | None = None
    stages = 0
    for line in log_lines:
        if _STEP_FROM.match(line):
            if stages and current is not None:
                found.append(current)
            stages += 1
            current = None
            continue
        match = _STEP_IMAGE.match(line)
        if match:
            current = match.group(1)
    if failed and current is not None:
        found.append(current)
    return found


def remove_stage_images(
    images: EngineImages, log_lines: list[str], keep: set[str], *, failed: bool = False
) -> None:
    """Remove earlier stages' images (and their untagged parents) after a build: a
    builder stage holds a toolchain or a copy of every wheel, and nothing names it.
    Images in ``keep`` (the base), tagged ones, and those others build on stay."""
    for short in stage_images(log_lines, failed=failed):
        if not any(k.removeprefix("sha256:").startswith(short) for k in keep):
            remove_unnamed(images, short)  # in use as another image's parent: kept


def build_image(
    lock_dir: Path,
    *,
    tag: str,
    base_image: str | None = None,
    wheelhouse: Path | None = None,
    client: Engine | None = None,
    network: NetworkSettings | None = None,
    nocache: bool = False,
    build_network: str | None = None,
    keep_build_stages: bool = False,
    smoke: bool = True,
    config: RunConfig = RunConfig(),
    on_line: Callable[[str], None] | None = None,
    reporter: Reporter | None = None,
) -> ImageReport:
    """Build ``lock_dir``'s Dockerfile, unchanged, on ``base_image`` (default: the
    lock's own image, which must exist locally; else passed as the BASE build arg)
    as ``tag``, then run the smoke suite in it and measure it.

    ``wheelhouse`` is compat's cache directory (where scans keep the files they
    fetched): given, every pinned file goes into the build context and pip installs
    with ``--no-index``; only source builds still fetch their build requirements,
    unless the scan's wheels built from them on this base are there too.
    ``network`` carries its CA bundle into the builder stage (ca.crt in the context)
    and a proxy into the build (as the engine's predefined proxy build args, which
    stay out of the image's history); ``build_network="none"``
    builds with no network at all (a wheelhouse, no system packages and no source
    builds need none). The builder stage's image is removed afterwards unless
    ``keep_build_stages`` (keeping it keeps its layers as cache for the next build,
    the source-build toolchain included). A failed build raises
    ImageBuildFailed; a failing smoke suite is a report whose ``verdict`` says so. An
    image that passes is then timed: its requested packages' import in a fresh
    interpreter with bytecode and without (``compat.image.startup``). ``reporter``
    hears each of those steps as it starts."""
    steps = reporter or Reporter()
    lock, _ = read_lock(lock_dir)
    base = base_image or lock.target.image
    if client is None:
        client = connect(timeout=3600)  # one build step may print nothing for long
    base_id = image_id(client, base)
    prebuilt = prebuilt_wheels(wheelhouse, lock, base_id) if wheelhouse is not None else None
    buildargs = network.build_args() if network is not None else {}
    if base != lock.target.image:
        buildargs[BASE_ARG] = base
    start = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="compat-image-") as tmp:
        context = prepare_context(
            lock_dir,
            lock,
            Path(tmp),
            wheelhouse=wheelhouse,
            prebuilt=prebuilt or (),
            ca_bundle=network.ca_bundle if network is not None else None,
        )
        dockerfile = (context / DOCKERFILE).read_text(encoding="utf-8")
        log.info("building %s on %s", tag, base)
        steps.step_started(f"building {tag} on {base}", 1, 3 if smoke else 1)
        try:
            iid, build_log = build(
                client,
                tag=tag,
                context=context,
                labels={IMAGE_LABEL: "1"},
                nocache=nocache,
                buildargs=buildargs or None,
                network_mode=build_network,
                on_line=on_line,
            )
        except ImageBuildFailed as exc:
            if not keep_build_stages:
                remove_stage_images(
                    client.images, exc.log.splitlines(), keep={base_id}, failed=True
                )
            raise
    if not keep_build_stages:
        remove_stage_images(client.images, build_log, keep={base_id, iid})
    build_seconds = time.monotonic() - start
    sizes = measure(client, iid, base_id)
    report = ImageReport(
        tag=tag,
        image_id=iid,
        base_image=base,
        base_image_id=base_id,
        combination=lock.combo.id,
        size=sizes.size,
        base_size=sizes.base_size,
        added_size=sizes.added,
        layers=sizes.layers,
        verdict=None,
        build_seconds=build_seconds,
        dockerfile=dockerfile,
    )
    if not smoke:
        return report
    return _smoke_and_time(report, client, lock, config, steps)


def _smoke_and_time(
    report: ImageReport, client: Engine, lock: LockInput, config: RunConfig, steps: Reporter
) -> ImageReport:
    """``report``'s image with the verdict of the smoke suite run in it and, when it
    passes, its requested packages' cold import timed with bytecode and without."""
    tag, iid = report.tag, report.image_id
    start = time.monotonic()
    steps.step_started(f"running the smoke suite in {tag}", 2, 3)
    outcome = run_smoke(
        client,
        iid,
        python=f"{VENV}/bin/python",
        site=f"{VENV}/lib/python{lock.target.python}/site-packages",
        packages=lock.combo.requested,
        package_manager=lock.package_manager,
        libc=lock.target.libc.value,
        config=config,
    )
    smoke_seconds = time.monotonic() - start
    if outcome.verdict is Verdict.PASS:
        steps.step_started(f"timing cold imports in {tag}, with bytecode and without", 3, 3)
    startup = (
        measure_startup(
            client,
            iid,
            python=f"{VENV}/bin/python",
            site=f"{VENV}/lib/python{lock.target.python}/site-packages",
            packages=lock.combo.requested,
            config=config,
        )
        if outcome.verdict is Verdict.PASS  # an image that fails its suite starts no faster
        else None
    )
    return dataclasses.replace(
        report,
        verdict=outcome.verdict,
        counts=count_checks(outcome.checks),
        checks=outcome.checks,
        error=outcome.error,
        failed_check=outcome.failed_check,
        smoke_seconds=smoke_seconds,
        startup=startup,
    )
