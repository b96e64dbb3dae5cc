"""Source builds for a pipeline: each sdist turned into a wheel once per (sdist,
image, toolchain), the outcome kept beside the wheelhouse (``builds``); an offline
backend's build with its build requirements fetched on the host first
(``buildreqs``)."""

from __future__ import annotations

import dataclasses
import functools
import json
import logging
import shutil
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from compat.config import RunConfig
from compat.effects.locks import file_lock
from compat.errors import BuildFailed
from compat.harness.backend import Backend, ImageInfo
from compat.harness.buildreqs import BuildRequirements, build_offline, requirements_dir
from compat.harness.builds import BuildRecord, build_record_path, cached_build
from compat.harness.toolchain import (
    BUILD_LOG,
    build_settings,
    network_failure,
    toolchain_key,
    toolchain_requirements,
)
from compat.harness.wheelhouse import Wheelhouse
from compat.index.asof import AsOfIndex
from compat.index.base import Index
from compat.index.pypi import PyPIIndex
from compat.model import Pin
from compat.reporter import Reporter
from compat.settings import NetworkSettings

log = logging.getLogger("compat.harness")


class Builder:
    """Builds sdists through ``backend``. ``index`` is where an offline backend's
    build requirements are found (the configured index when None, as it stood on
    the run's ``--as-of`` day when there is one: a build then takes the build
    tools of its day, and is kept apart from the builds of other days); with
    ``cache_only`` (``--offline``), only what the index's cache holds."""

    def __init__(
        self,
        backend: Backend,
        config: RunConfig,
        *,
        cache_dir: Path,
        network: NetworkSettings,
        index: Index | None = None,
        cache_only: bool = False,
    ) -> None:
        self.backend = backend
        self.config = config
        self.cache_dir = cache_dir
        self.network = network
        self.cache_only = cache_only
        self._given = index
        self._own_index: PyPIIndex | None = None

    def close(self) -> None:
        if self._own_index is not None:
            self._own_index.close()
            self._own_index = None

    def build_all(
        self, info: ImageInfo, wheelhouse: Wheelhouse, pins: Sequence[Pin], reporter: Reporter
    ) -> dict[str, BuildRecord]:
        """The outcome of building each of ``pins``, by sdist sha256."""
        records: dict[str, BuildRecord] = {}
        unique = list({p.sha256: p for p in pins}.values())
        for i, pin in enumerate(unique):
            reporter.stage_progress("build", i, len(unique))
            where = f"{i + 1} of {len(unique)}" if len(unique) > 1 else "one"
            records[pin.sha256] = self.build_one(info, wheelhouse, pin, reporter, where)
        if unique:
            reporter.stage_progress("build", len(unique), len(unique))
        return records

    def build_one(
        self, info: ImageInfo, wheelhouse: Wheelhouse, pin: Pin, reporter: Reporter, where: str
    ) -> BuildRecord:
        """Build one sdist, once per (sdist sha256, image, toolchain): a cached wheel or
        failure is reused unless ``rebuild``; a failure to reach the index or a timeout
        is never cached (it says nothing about the package), and the first gives no
        verdict either (``unreachable``). A build that runs says
        so when it starts and when it ends (``where``: which of the builds it is), a
        line a log keeps: builds take minutes."""
        toolchain = self.backend.toolchain(info)
        tool_key = toolchain_key(toolchain, info.facts.package_manager)
        cached = build_record_path(
            self.cache_dir,
            pin.sha256,
            info.image_id or info.interpreter_key,
            self._kept_as(tool_key),
        )
        # one process builds it; another that shares the cache waits, then takes its wheel
        with file_lock(cached.with_suffix(".lock")):
            if not self.config.rebuild and (kept := cached_build(cached, wheelhouse.root)):
                return kept
            reporter.notice(f"building {pin} from its source distribution (build {where})")
            record, full_log = self._run(info, wheelhouse, pin, tool_key)
            ended = "built" if record.ok else "failed to build"
            reporter.notice(f"{ended} {pin} in {record.duration:.0f} s")
            online = not self.backend.builds_offline  # an offline build's log says no more
            if not record.ok and online and network_failure(full_log):
                log.warning("%s: the build could not reach the index; not cached", pin)
                return dataclasses.replace(
                    record,
                    error=f"the build could not reach the index: {record.error}",
                    unreachable=True,
                )
            if record.transient:
                log.warning("%s: %s; not cached", pin, record.error)
                return record
            _keep(cached, record, full_log)
            return record

    def _run(
        self, info: ImageInfo, wheelhouse: Wheelhouse, pin: Pin, tool_key: str
    ) -> tuple[BuildRecord, str]:
        """One build: its record and its whole log."""
        toolchain = self.backend.toolchain(info)
        sdist = wheelhouse.path(pin.sha256, pin.filename)
        out = Path(tempfile.mkdtemp(prefix="compat-build-"))
        start = time.monotonic()
        try:
            try:
                wheel = self._build_wheel(info, wheelhouse, pin, sdist, out)
                sha, stored = wheelhouse.add(wheel)
                record = BuildRecord(
                    ok=True,
                    duration=time.monotonic() - start,
                    wheel_sha256=sha,
                    wheel_filename=stored.name,
                    toolchain=tool_key,
                    notes=build_settings(pin.name, toolchain).notes,
                )
                log.info("built %s (%s toolchain) in %.0fs", pin, toolchain, record.duration)
            except BuildFailed as exc:
                record = BuildRecord(
                    ok=False,
                    duration=exc.duration or time.monotonic() - start,
                    error=exc.reason,
                    log=exc.log[-8000:],
                    toolchain=tool_key,
                    timed_out=exc.timed_out,
                    unreachable=exc.unreachable,
                )
            written = out / BUILD_LOG
            full_log = written.read_text(errors="replace") if written.is_file() else record.log
        finally:
            shutil.rmtree(out, ignore_errors=True)
        return record, full_log

    def _build_wheel(
        self, info: ImageInfo, wheelhouse: Wheelhouse, pin: Pin, sdist: Path, out: Path
    ) -> Path:
        """The backend's build of one sdist; an offline backend's with its build
        requirements fetched here first, and then what the build could not find."""
        backend = self.backend
        if not backend.builds_offline:
            return backend.build_wheel(info, pin, sdist, out)
        target = info.facts.target(name=info.reference, image=info.image, image_id=info.image_id)
        with requirements_dir(self.cache_dir / "build-requirements") as directory:
            return build_offline(
                pin,
                sdist,
                out,
                build=lambda d: backend.build_wheel(info, pin, sdist, out, requires=d),
                supplier=BuildRequirements(self._requirements_index, target, wheelhouse),
                directory=directory,
                toolchain=toolchain_requirements(backend.toolchain(info)),
            )

    def _kept_as(self, tool_key: str) -> str:
        """What a build is kept under: its toolchain, and the day its build
        requirements were taken as of, when an offline build takes them here."""
        day = self.config.as_of
        if day is None or not self.backend.builds_offline:
            return tool_key
        return f"{tool_key}-as-of-{day.isoformat()}"

    @functools.cached_property
    def _requirements_index(self) -> Index:
        inner = self._given
        if inner is None:
            inner = self._own_index = PyPIIndex(
                self.network, cache_dir=self.cache_dir / "index", offline=self.cache_only
            )
        day = self.config.as_of
        return inner if day is None else AsOfIndex.on(inner, day)


def _keep(cached: Path, record: BuildRecord, full_log: str) -> None:
    """Write ``record`` (and the whole log beside it) where the next build finds it."""
    cached.parent.mkdir(parents=True, exist_ok=True)
    if full_log:
        cached.with_suffix(".log").write_text(full_log)
    tmp = cached.with_suffix(".tmp")
    tmp.write_text(json.dumps(record.to_json()))
    tmp.replace(cached)
