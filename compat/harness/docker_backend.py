"""Running combinations in containers of the target image.

One long-lived runner container per image (no network, unprivileged, limited),
with the installs and the wheelhouse mounted read-only; every combination is
one ``exec`` of the smoke runner over its site directories.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import re
import threading
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext
from pathlib import Path

from compat.config import RunConfig
from compat.effects.container import (
    Container,
    ContainerSpec,
    Engine,
    ExecResult,
    Executor,
    Mount,
    OnLine,
    connect,
    image_id,
    session_containers,
)
from compat.effects.images import build
from compat.effects.locks import file_lock
from compat.effects.owners import sweep_orphans
from compat.effects.users import given, host_worker, lent, readable, user_string
from compat.errors import BuildFailed, HarnessError
from compat.harness.backend import (
    Backend,
    ImageInfo,
    build_error_line,
    compile_command,
    compile_too_long,
)
from compat.harness.toolchain import (
    BUILD_LOG,
    FIND_LINKS,
    OUT_DIR,
    SDIST_DIR,
    TOOLCHAIN_DIR,
    TOOLCHAIN_READY,
    Toolchain,
    build_settings,
    choose,
    image_build_script,
    pypi_build_script,
    reached_for_network,
)
from compat.model import Pin
from compat.settings import NetworkSettings
from compat.smoke import SMOKE_DIR
from compat.targets.probe import image_facts
from compat.targets.sysdeps import PYTHON_HEADERS, TOOLCHAIN, install_command
from compat.targets.target import Target

log = logging.getLogger("compat.harness")

INSTALLS = "/compat/installs"
FILES = "/compat/files"
SMOKE = "/opt/compat-smoke"
CHECKS = "/opt/compat-checks"
HOME = "/home/compat"
RUNNER_USER = "65534:65534"  # nobody: nothing the checks do can write the mounted store
# a bounded lifetime: should every cleanup fail (kill -9, a dead daemon), the runner
# still ends by itself; a run holds one runner per image for far less than this
KEEPALIVE_HOURS = 12
KEEPALIVE = f"import time\nfor _ in range({KEEPALIVE_HOURS}): time.sleep(3600)"
# what the smoke suite runs with, in a scan's runner and in a built image alike
SUITE_ENVIRONMENT = {"TMPDIR": "/tmp", "MPLBACKEND": "Agg"}
DERIVED_LABEL = "compat.derived"  # on the images with added system packages or a toolchain


# Run as root (without capabilities) in a builder before the build: scripts that start
# `#!/usr/bin/env python3` (scikit-learn's) need it; BusyBox-only images may have env in
# /bin alone.
ENV_LINK = "[ -e /usr/bin/env ] || [ ! -x /bin/env ] || ln -s /bin/env /usr/bin/env"
# what a build that wanted root's powers says when it fails
NEEDS_ROOT = re.compile(
    r"Permission denied|Operation not permitted|must be run as root|are you root|"
    r"requires? root|need to be root",
    re.IGNORECASE,
)
UNPRIVILEGED = (
    "compat: the build ran as user {user} with no capabilities and no way to gain any; "
    "a build that needs root cannot succeed here"
)
OFFLINE = (
    "compat: the build ran without a network (its declared build requirements were "
    "fetched for it); a build that downloads anything itself cannot succeed here"
)


def builder_spec(
    image: str,
    *,
    python: str,
    user: str,
    mounts: tuple[Mount, ...],
    config: RunConfig,
    environment: Mapping[str, str] | None = None,
) -> ContainerSpec:
    """A builder container: unprivileged, with no network (the code of the sdist runs
    in it; compat fetched its build requirements into a mounted directory), and its
    image's world-writable /tmp as HOME; each command of the build is an exec into it."""
    return ContainerSpec(
        image=image,
        command=(python, "-I", "-S", "-c", KEEPALIVE),
        user=user,
        network=False,
        mounts=mounts,
        environment={**(environment or {}), "HOME": "/tmp", "TMPDIR": "/tmp"},
        mem_limit=config.memory,
        pids_limit=config.pids_limit,
    )


@dataclasses.dataclass(frozen=True, kw_only=True, slots=True)
class _BuildSetup:
    """What one build runs in: the builder image, the build script, the mounts it
    needs beside the sdist's and the output's, what to hold while it runs, and the
    commands to run as root (with no capability) first."""

    image: str
    script: str
    mounts: tuple[Mount, ...] = ()
    holding: AbstractContextManager[None] = dataclasses.field(default_factory=nullcontext)
    as_root: tuple[str, ...] = ()


def _tail(output: str, lines: int = 40) -> str:
    return "\n".join(output.strip().splitlines()[-lines:])


def _slug(image: str) -> str:
    return re.sub(r"[^a-z0-9._-]+", "-", image.lower()).strip("-.") or "image"


class DockerBackend(Backend):
    kind = "docker"

    def __init__(
        self,
        config: RunConfig,
        *,
        cache_dir: Path,
        network: NetworkSettings | None = None,
        client: Engine | None = None,
        session: str | None = None,
    ) -> None:
        self.config = config
        self.cache_dir = cache_dir.resolve()  # containers bind-mount it: an absolute path
        self.network = network or NetworkSettings()
        self.client = client if client is not None else connect()
        self.session = session or uuid.uuid4().hex[:12]
        self._lock = threading.Lock()
        sweep_orphans(self.client)

    # ---- images ------------------------------------------------------------------

    def _container(self, spec: ContainerSpec) -> Container:
        return Container(self.client, spec, session=self.session)

    def inspect(self, target: Target) -> ImageInfo:
        iid = image_id(self.client, target.image)
        if target.image_id and target.image_id != iid:
            log.warning(
                "%s changed since it was probed (%s, now %s): its wheel tags may differ",
                target.image,
                target.image_id[:19],
                iid[:19],
            )
        return dataclasses.replace(self._inspect_image(target.image, iid), reference=target.image)

    def _inspect_image(self, image: str, iid: str) -> ImageInfo:
        facts = image_facts(self.client, iid, cache_dir=self.cache_dir, what=image)
        return ImageInfo(image=iid, image_id=iid, facts=facts)

    def _build_image(self, tag: str, dockerfile: str) -> str:
        """Build ``dockerfile`` (no context) as ``tag`` unless it exists; its image ID.
        Raises ImageBuildFailed (a HarnessError) with the build log when it fails."""
        from docker.errors import DockerException, ImageNotFound

        try:
            return str(self.client.images.get(tag).id)
        except ImageNotFound:
            pass
        except DockerException as exc:
            raise HarnessError(f"cannot inspect {tag}: {exc}") from exc
        log.info("building image %s", tag)
        iid, _ = build(
            self.client,
            tag=tag,
            dockerfile=dockerfile,
            labels={DERIVED_LABEL: "1"},
            buildargs=self.network.build_args(),
        )
        return iid

    def with_system_packages(self, info: ImageInfo, packages: Sequence[str]) -> ImageInfo | None:
        manager = info.facts.package_manager
        if manager is None or not packages:
            return None
        base_id = info.image_id or info.image
        digest = hashlib.sha256(f"{base_id}\n{' '.join(sorted(packages))}".encode()).hexdigest()
        tag = f"compat-sysdeps/{_slug(info.reference or base_id)[-60:]}:{digest[:12]}"
        dockerfile = f"FROM {base_id}\nUSER root\nRUN {install_command(manager, packages)}\n"
        with self._lock:
            iid = self._build_image(tag, dockerfile)
        derived = self._inspect_image(tag, iid)
        return dataclasses.replace(
            derived, image=iid, image_id=iid, added_packages=tuple(sorted(packages))
        )

    # ---- builds ------------------------------------------------------------------

    def _builder_image(self, info: ImageInfo) -> str:
        if info.facts.compiler and info.facts.has_python_headers:
            return info.image
        manager = info.facts.package_manager
        if manager is None:
            raise ValueError("no package manager")
        packages = list(TOOLCHAIN[manager])
        if not info.facts.has_python_headers:
            packages.append(PYTHON_HEADERS[manager])
        base_id = info.image_id or info.image
        digest = hashlib.sha256(f"{base_id}\n{' '.join(packages)}".encode()).hexdigest()
        tag = f"compat-builder/{_slug(info.reference or base_id)[-60:]}:{digest[:12]}"
        dockerfile = f"FROM {base_id}\nUSER root\nRUN {install_command(manager, packages)}\n"
        with self._lock:
            return self._build_image(tag, dockerfile)

    def toolchain(self, info: ImageInfo) -> Toolchain:
        return choose(
            self.config.toolchain,
            package_manager=info.facts.package_manager,
            compiler=info.facts.compiler,
            has_python_headers=info.facts.has_python_headers,
        )

    def _toolchain_dir(self, info: ImageInfo) -> Path:
        """Where the PyPI toolchain for ``info``'s image is kept between builds: a venv
        made by the image's own Python, and zig's cache of compiled libc pieces."""
        key = (info.image_id or _slug(info.image)).replace(":", "_")
        path = self.cache_dir / "toolchains" / key
        path.mkdir(parents=True, exist_ok=True)
        return path

    builds_offline = True

    def _setup(self, info: ImageInfo, pin: Pin, toolchain: Toolchain) -> _BuildSetup:
        """What a build of ``pin`` with ``toolchain`` runs in, and how."""
        if toolchain is not Toolchain.PYPI:
            try:
                builder = self._builder_image(info)
            except HarnessError as exc:
                raise BuildFailed(
                    pin, "installing the build toolchain failed", log=str(exc)
                ) from exc
            script = image_build_script(info.facts.python, f"{SDIST_DIR}/{pin.filename}")
            return _BuildSetup(image=builder, script=script)
        home = self._toolchain_dir(info)
        given(home, host_worker())
        installing: AbstractContextManager[None] = nullcontext()
        if not (home / TOOLCHAIN_READY).is_file():
            # this build installs the toolchain: another process's build waits for it
            # rather than installing it into the same venv at the same time
            installing = file_lock(home.with_name(f"{home.name}.lock"))
        script = pypi_build_script(
            python=info.facts.python,
            sdist=f"{SDIST_DIR}/{pin.filename}",
            settings=build_settings(pin.name, toolchain),
            no_binary=pin.name,
        )
        return _BuildSetup(
            image=info.image,
            script=script,
            mounts=(Mount(source=home, target=TOOLCHAIN_DIR, read_only=False),),
            holding=installing,
            as_root=(ENV_LINK,),
        )

    def build_wheel(
        self, info: ImageInfo, pin: Pin, sdist: Path, out_dir: Path, *, requires: Path | None = None
    ) -> Path:
        toolchain = self.toolchain(info)
        setup = self._setup(info, pin, toolchain)
        mounts = [
            *setup.mounts,
            Mount(source=sdist.parent, target=SDIST_DIR),
            Mount(source=out_dir, target=OUT_DIR, read_only=False),
        ]
        if requires is not None:
            mounts.append(Mount(source=requires, target=FIND_LINKS))
        worker = host_worker()
        readable(sdist)
        spec = builder_spec(
            setup.image,
            python=info.facts.python,
            user=user_string(worker),
            mounts=tuple(mounts),
            config=self.config,
        )
        log.info("building %s from source in %s (%s toolchain)", pin, setup.image[:19], toolchain)
        with setup.holding, lent([out_dir], worker), self._container(spec) as c:
            for command in setup.as_root:  # compat's own fixed commands, without privileges
                c.exec(["sh", "-c", command], timeout=60, user="0:0")
            result = c.exec(["sh", "-c", setup.script], timeout=self.config.timeouts.build)
        return self._outcome(pin, result, spec.user, out_dir)

    def _outcome(self, pin: Pin, result: ExecResult, user: str | None, out_dir: Path) -> Path:
        """The wheel a build made, or BuildFailed saying why (root's powers, the network
        or a time limit it lacked, else its most telling line); its whole log is kept
        in ``out_dir``."""
        output = result.stdout + result.stderr
        failed = result.exit_code != 0
        needs_root = failed and NEEDS_ROOT.search(_tail(output)) is not None
        network = reached_for_network(output) if failed else None
        if needs_root:
            output += "\n" + UNPRIVILEGED.format(user=user) + "\n"
        elif network is not None:
            output += "\n" + OFFLINE + "\n"
        (out_dir / BUILD_LOG).write_text(output)
        if result.timed_out:
            raise BuildFailed(
                pin,
                f"the build took longer than {self.config.timeouts.build:.0f}s (--build-timeout)",
                log=result.output_tail(),
                duration=result.duration,
                timed_out=True,  # a loaded machine, not the package: try again next time
            )
        wheels = sorted(out_dir.glob("*.whl"))
        if failed or not wheels:
            reason = build_error_line(output)
            if needs_root:
                reason = f"the build needs root, and builds run unprivileged: {reason}"
            elif network is not None:
                reason = (
                    "the build reached for the network, and builds run without one: "
                    f"{network[:200]}"
                )
            raise BuildFailed(pin, reason, log=_tail(output), duration=result.duration)
        return wheels[0]

    # ---- compile and run ---------------------------------------------------------

    def _mounts(self, *, writable_installs: bool = False) -> tuple[Mount, ...]:
        cache = self.cache_dir
        (cache / "installs").mkdir(parents=True, exist_ok=True)
        (cache / "files").mkdir(parents=True, exist_ok=True)
        mounts = [
            Mount(source=cache / "installs", target=INSTALLS, read_only=not writable_installs),
            Mount(source=cache / "files", target=FILES),
            Mount(source=SMOKE_DIR, target=SMOKE),
        ]
        if self.config.checks_dir is not None:
            mounts.append(Mount(source=self.config.checks_dir.resolve(), target=CHECKS))
        return tuple(mounts)

    def compile(self, info: ImageInfo, dirs: Sequence[Path]) -> None:
        paths = [self.site_dir(d) for d in dirs]
        worker = host_worker()  # .pyc files: the installs' owner's
        spec = ContainerSpec(
            image=info.image,
            command=tuple(compile_command(info.facts.python, paths)),
            user=user_string(worker),
            mounts=self._mounts(writable_installs=True),
            tmpfs=("/tmp",),
            mem_limit=self.config.memory,
            pids_limit=self.config.pids_limit,
        )
        with lent(dirs, worker), self._container(spec) as c:
            result = c.wait(timeout=self.config.timeouts.compile)
        # compileall exits 1 when some file does not compile (py2 test data, templates):
        # those modules are never imported; anything else is the harness's problem
        if result.timed_out:
            raise HarnessError(compile_too_long(self.config.timeouts.compile))
        if result.exit_code not in (0, 1):
            raise HarnessError(f"compiling bytecode failed: {result.output_tail()}")

    def site_dir(self, host_dir: Path) -> str:
        return f"{INSTALLS}/{host_dir.name}"

    def file_path(self, host_file: Path) -> str:
        return f"{FILES}/{host_file.relative_to(self.cache_dir / 'files').as_posix()}"

    def interpreter(self, info: ImageInfo) -> list[str]:
        return [info.facts.python, "-I", "-S"]

    def smoke_dir(self, info: ImageInfo) -> str:
        return SMOKE

    def checks_dir(self) -> str | None:
        return CHECKS if self.config.checks_dir is not None else None

    def runner_spec(self, info: ImageInfo) -> ContainerSpec:
        return suite_spec(
            info.image,
            python=info.facts.python,
            config=self.config,
            user=RUNNER_USER,  # nobody, with a HOME of its own
            mounts=self._mounts(),
            home=HOME,
            timeout_utility=info.facts.timeout_utility,
        )

    @contextmanager
    def executor(self, info: ImageInfo) -> Iterator[Executor]:
        with (
            session_containers(self.client, self.session),
            RunnerPool(lambda: self._container(self.runner_spec(info))) as pool,
        ):
            yield pool

    def close(self) -> None:
        try:
            self.client.close()
        except Exception:
            log.debug("closing the docker client failed", exc_info=True)


def suite_spec(
    image: str,
    *,
    python: str,
    config: RunConfig,
    mounts: Sequence[Mount],
    user: str,
    home: str | None = None,
    timeout_utility: str | None = None,
) -> ContainerSpec:
    """A container of ``image`` the smoke suite is exec'd in, for a scan and for
    ``compat image`` alike: kept alive by its ``python``, no network, ``/tmp`` (and a
    ``home``) on tmpfs, the suite's environment, a scan's limits, as ``user`` (never
    root)."""
    return ContainerSpec(
        image=image,
        command=(python, "-I", "-S", "-c", KEEPALIVE),
        user=user,
        network=False,
        mounts=tuple(mounts),
        tmpfs=tuple(dict.fromkeys(("/tmp", home or "/tmp"))),
        environment={"HOME": home, **SUITE_ENVIRONMENT} if home else dict(SUITE_ENVIRONMENT),
        nano_cpus=int(config.cpus * 1e9) if config.cpus else None,
        mem_limit=config.memory,
        pids_limit=config.pids_limit,
        timeout_utility=timeout_utility,
    )


class RunnerPool:
    """One runner container shared by concurrent execs; replaced when killed (the
    image had no `timeout` utility and a combination ran too long)."""

    def __init__(self, factory: Callable[[], Container]) -> None:
        self._factory = factory
        self._current: Container | None = None
        self._lock = threading.Lock()
        self._closed = False

    def __enter__(self) -> RunnerPool:
        self._current = self._factory().__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        with self._lock:
            self._closed = True
            current, self._current = self._current, None
        if current is not None:
            current.remove()

    def _container(self) -> Container:
        with self._lock:
            if self._closed or self._current is None:
                raise HarnessError("the runner container is gone")
            if self._current.killed:
                old = self._current
                self._current = self._factory().__enter__()
                old.remove()
            return self._current

    def exec(
        self,
        argv: Sequence[str],
        *,
        timeout: float | None = None,
        env: Mapping[str, str] | None = None,
        on_line: OnLine | None = None,
    ) -> ExecResult:
        return self._container().exec(argv, timeout=timeout, env=env, on_line=on_line)
