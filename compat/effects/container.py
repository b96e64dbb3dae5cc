"""The one door to the container engine.

``Engine`` types the part of the docker SDK compat uses (so fakes in unit tests are
checked against it); ``connect`` returns one that answers. ``Container`` is a context
manager that always removes its container, on success, failure, timeout, exceptions
and Ctrl-C alike; every container carries the label ``compat.session=<id>`` so a
leftover can be found (and tests can assert there is none), and the owner and run
labels of ``compat.effects.owners``.
``build`` is the one reader of the engine's build stream. docker SDK errors are
caught here and re-raised as compat errors.
"""

from __future__ import annotations

import logging
import re
import shlex
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any, Protocol

from compat.effects.owners import OWNER_LABEL, RUN_LABEL, owner, run_id
from compat.effects.users import NOBODY_USER, is_root
from compat.errors import (
    EngineUnavailable,
    HarnessError,
    ImageUnavailable,
    UsageError,
)

log = logging.getLogger("compat.effects")

SESSION_LABEL = "compat.session"
CONTAINER_LABEL = "compat.container"  # unique per Container: cleans up a half-made start
ENGINE_GONE = "the Docker engine stopped answering"
_KILL_GRACE = 5  # seconds between TERM and KILL for the in-image `timeout`
_BACKSTOP = 30  # seconds past the limit before the host gives up on an exec

# The reference grammar of the distribution spec (name[:tag][@digest]), or an image ID:
# a typo is caught as a usage error before the engine answers "invalid reference format".
_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_LABEL = r"[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?"
_DOMAIN = rf"(?:{_LABEL}(?:\.{_LABEL})*|\[[0-9a-fA-F:]+\])(?::[0-9]+)?"
_REFERENCE = re.compile(
    rf"(?:{_DOMAIN}/)?{_COMPONENT}(?:/{_COMPONENT})*"
    r"(?::\w[\w.-]{0,127})?"
    r"(?:@[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,})?"
    r"|(?:sha256:)?[0-9a-f]{12,64}"
)


def check_reference(image: str) -> str:
    """``image`` itself when it is a well-formed reference or ID, else a UsageError."""
    if not _REFERENCE.fullmatch(image):
        raise UsageError(
            f"{image!r} is not an image reference: expected NAME[:TAG][@DIGEST] in lower case "
            "(e.g. python:3.12-slim) or an image ID"
        )
    return image


class EngineImage(Protocol):
    @property
    def id(self) -> str: ...
    @property
    def tags(self) -> list[str]: ...


class EngineImages(Protocol):
    def get(self, name: str, /) -> EngineImage: ...
    def pull(self, repository: str, /) -> EngineImage: ...
    def remove(self, image: str, /, *, force: bool = ...) -> None: ...
    def list(self, *, filters: dict[str, Any] | None = ...) -> Sequence[EngineImage]: ...


class EngineContainer(Protocol):
    @property
    def id(self) -> str: ...
    @property
    def status(self) -> str: ...
    def remove(self, *, force: bool = ...) -> None: ...
    def kill(self) -> None: ...
    def reload(self) -> None: ...
    def wait(self, *, timeout: float | None = ...) -> Mapping[str, Any]: ...
    def logs(self, *, stdout: bool = ..., stderr: bool = ...) -> bytes: ...


class EngineContainers(Protocol):
    def run(self, **kwargs: Any) -> EngineContainer: ...
    def list(
        self, *, all: bool = ..., filters: dict[str, str] | None = ...
    ) -> Sequence[EngineContainer]: ...


class EngineAPI(Protocol):
    """The low-level calls: execs (with demuxed output), builds, image inspection."""

    def exec_create(
        self,
        container: str,
        cmd: list[str],
        /,
        *,
        user: str = ...,
        environment: dict[str, str] | None = ...,
    ) -> Mapping[str, Any]: ...
    def exec_start(self, exec_id: str, /, *, demux: bool = ..., stream: bool = ...) -> Any: ...
    def exec_inspect(self, exec_id: str, /) -> Mapping[str, Any]: ...
    def build(self, **kwargs: Any) -> Iterable[Mapping[str, Any]]: ...
    def inspect_image(self, image: str, /) -> Mapping[str, Any]: ...
    def history(self, image: str, /) -> Sequence[Mapping[str, Any]]: ...


class Engine(Protocol):
    """The container engine as compat uses it: a ``docker.DockerClient`` is one."""

    @property
    def images(self) -> EngineImages: ...
    @property
    def containers(self) -> EngineContainers: ...
    @property
    def api(self) -> EngineAPI: ...
    def ping(self) -> bool: ...
    def close(self) -> None: ...


@dataclass(frozen=True, kw_only=True, slots=True)
class ExecResult:
    """How one command inside a container (or a local process) ended."""

    exit_code: int | None  # 128+N for a signal; None when unknown (container gone)
    stdout: str
    stderr: str
    duration: float
    timed_out: bool = False
    # the container was killed under the command for another command's timeout:
    # the command itself did nothing wrong and can be run again
    interrupted: bool = False

    def output_tail(self, lines: int = 40) -> str:
        text = (self.stdout + ("\n" if self.stdout and self.stderr else "") + self.stderr).strip()
        return "\n".join(text.splitlines()[-lines:])


OnLine = Callable[[str], None]
"""Given each line of a command's standard output as it comes."""


class Executor(Protocol):
    """What running a combination needs from a container (or the host)."""

    def exec(
        self,
        argv: Sequence[str],
        *,
        timeout: float | None = None,
        env: Mapping[str, str] | None = None,
        on_line: OnLine | None = None,
    ) -> ExecResult: ...


@dataclass(frozen=True, kw_only=True, slots=True)
class Mount:
    source: Path
    target: str
    read_only: bool = True


@dataclass(frozen=True, kw_only=True, slots=True)
class ContainerSpec:
    image: str
    command: tuple[str, ...]
    user: str = NOBODY_USER  # "uid:gid"; never root
    network: bool = False
    mounts: tuple[Mount, ...] = ()
    tmpfs: tuple[str, ...] = ()
    environment: Mapping[str, str] = field(default_factory=dict)
    nano_cpus: int | None = None
    mem_limit: str | None = "4g"  # None only where the user asked for no limit
    pids_limit: int = 2048
    # the image's `timeout` utility, when it has one: limits are enforced inside the
    # container without killing the container
    timeout_utility: str | None = None

    def __post_init__(self) -> None:
        # every container runs unprivileged: code from PyPI runs in all of them
        if is_root(self.user):
            raise ValueError(f"a container of {self.image} would run as root ({self.user!r})")


def connect(*, timeout: float = 600.0) -> Engine:
    """A docker client that answers, or EngineUnavailable saying what to do."""
    import docker
    from docker.errors import DockerException

    client: Engine | None = None
    try:
        client = docker.from_env(timeout=int(timeout))
        client.ping()
    except Exception as exc:
        if client is not None:
            client.close()  # its connection pool, left open, warns when collected
        if isinstance(exc, DockerException):
            raise EngineUnavailable(
                f"no Docker engine answers ({exc}).\n"
                "Start it (`sudo systemctl start docker`, or `dockerd &` as root), "
                "or use `--backend local` to test the host's own Python instead."
            ) from exc
        # requests/urllib3 errors from a half-up engine
        raise EngineUnavailable(
            f"the Docker engine does not answer ({exc}); start it or use `--backend local`."
        ) from exc
    return client


def image_id(client: Engine, image: str) -> str:
    """The ID of a local image; ImageUnavailable (with what to do) when absent and not
    pullable."""
    from docker.errors import APIError, ImageNotFound

    check_reference(image)
    try:
        return str(client.images.get(image).id)
    except ImageNotFound:
        pass
    except APIError as exc:
        raise HarnessError(f"cannot inspect image {image}: {exc.explanation or exc}") from exc
    try:
        log.info("pulling %s", image)
        return str(client.images.pull(image).id)
    except Exception as exc:
        raise ImageUnavailable(
            f"image {image!r} is not on this machine and cannot be pulled ({_short(exc)}).\n"
            f"Build it (`docker build -t {image} ...`) or pull it (`docker pull {image}`) first; "
            "or test an image you have with --image REF (`docker images` lists them), "
            "or this machine's own Python with --backend local."
        ) from exc


def _short(exc: BaseException) -> str:
    explanation = getattr(exc, "explanation", None)
    return (
        str(explanation or exc).splitlines()[0] if str(explanation or exc) else type(exc).__name__
    )


def engine_gone(exc: BaseException) -> bool:
    """Whether ``exc`` says the engine itself stopped answering (its socket refused or
    dropped the connection), as opposed to one request failing."""
    from requests.exceptions import ConnectionError as RequestsConnectionError

    seen: BaseException | None = exc
    for _ in range(5):  # the SDK wraps: APIError from ConnectionError from ProtocolError
        if seen is None:
            break
        # a read timeout comes as a ConnectionError too ("Read timed out"): that is a
        # command running long (wait's limit), not the engine going away
        if isinstance(seen, TimeoutError) or "timed out" in str(seen).lower():
            return False
        if isinstance(seen, RequestsConnectionError | ConnectionError):
            return True
        text = str(seen)
        if "Connection refused" in text or "Connection aborted" in text:
            return True
        seen = seen.__cause__ or seen.__context__
    return False


class Container:
    """One container, created on ``__enter__`` and force-removed on ``__exit__``."""

    def __init__(self, client: Engine, spec: ContainerSpec, *, session: str) -> None:
        self._client = client
        self.spec = spec
        self.session = session
        self._container: EngineContainer | None = None
        self._lock = threading.Lock()
        self._tag = uuid.uuid4().hex
        self.killed = False

    @property
    def id(self) -> str:
        return str(self._container.id) if self._container is not None else ""

    def __enter__(self) -> Container:
        from docker.errors import DockerException, ImageNotFound
        from docker.types import Mount as DockerMount

        spec = self.spec
        kwargs: dict[str, Any] = {
            "image": spec.image,
            "command": list(spec.command),
            "detach": True,
            "labels": {
                SESSION_LABEL: self.session,
                CONTAINER_LABEL: self._tag,
                OWNER_LABEL: owner(),
                RUN_LABEL: run_id(),
            },
            "network_mode": "bridge" if spec.network else "none",
            "mounts": [
                DockerMount(m.target, str(m.source), type="bind", read_only=m.read_only)
                for m in spec.mounts
            ],
            "tmpfs": dict.fromkeys(spec.tmpfs, "rw,exec,nosuid,size=1g,mode=1777"),
            "environment": dict(spec.environment),
            "init": True,  # reaps what a killed check leaves behind
        }
        kwargs["user"] = spec.user
        # no capability and no way to gain one: a setuid binary of the image (su, mount)
        # runs with the caller's privileges; the engine's default seccomp profile stays
        kwargs["cap_drop"] = ["ALL"]
        kwargs["security_opt"] = ["no-new-privileges"]
        kwargs["pids_limit"] = spec.pids_limit
        if spec.nano_cpus:
            kwargs["nano_cpus"] = spec.nano_cpus
        if spec.mem_limit:
            kwargs["mem_limit"] = spec.mem_limit
            kwargs["memswap_limit"] = spec.mem_limit
        try:
            self._container = self._client.containers.run(**kwargs)
        except ImageNotFound as exc:
            self._cleanup_by_label()
            raise ImageUnavailable(
                f"image {spec.image!r} is not on this machine: build or pull it first, "
                "or choose another with --image REF, or use --backend local"
            ) from exc
        except BaseException as exc:
            self._cleanup_by_label()
            if engine_gone(exc):
                raise EngineUnavailable(ENGINE_GONE) from exc
            if isinstance(exc, DockerException):
                raise HarnessError(
                    f"cannot start a container of {spec.image}: {_short(exc)}"
                ) from exc
            raise
        log.debug("started container %s of %s", self.id[:12], spec.image)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.remove()

    def remove(self) -> None:
        from docker.errors import DockerException, NotFound

        container, self._container = self._container, None
        if container is None:
            return
        try:
            container.remove(force=True)
        except NotFound:
            pass
        except DockerException as exc:
            log.warning("could not remove container %s: %s", container.id[:12], _short(exc))

    def _cleanup_by_label(self) -> None:
        # a start that failed half-way (or was interrupted) may still have left it
        try:
            for c in self._client.containers.list(
                all=True, filters={"label": f"{CONTAINER_LABEL}={self._tag}"}
            ):
                c.remove(force=True)
        except Exception:  # cleaning up after a failure must not hide that failure
            log.debug("cleanup after a failed start failed", exc_info=True)

    def kill(self) -> None:
        from docker.errors import DockerException

        with self._lock:
            self.killed = True
            if self._container is not None:
                with suppress(DockerException):
                    self._container.kill()

    def running(self) -> bool:
        from docker.errors import DockerException

        if self._container is None:
            return False
        try:
            self._container.reload()
        except DockerException:
            return False
        return bool(self._container.status == "running")

    def wait(self, timeout: float | None = None) -> ExecResult:
        """Wait for the container's own command to end (killing it past ``timeout``)
        and collect its output."""
        from docker.errors import DockerException

        if self._container is None:
            raise HarnessError("wait on a container that is not running")
        start = time.monotonic()
        timed_out = False
        code: int | None = None
        try:
            status = self._container.wait(timeout=timeout)
            code = int(status.get("StatusCode", -1))
        except Exception as exc:
            if engine_gone(exc):
                raise EngineUnavailable(ENGINE_GONE) from exc
            if isinstance(exc, DockerException):
                raise HarnessError(f"waiting for a container failed: {_short(exc)}") from exc
            # the client's read timeout: the command ran too long
            timed_out = True
            self.kill()
        try:
            out = self._container.logs(stdout=True, stderr=False)
            err = self._container.logs(stdout=False, stderr=True)
        except DockerException as exc:
            out, err = b"", f"cannot read the container's output: {_short(exc)}".encode()
        return ExecResult(
            exit_code=code,
            stdout=out.decode(errors="replace"),
            stderr=err.decode(errors="replace"),
            duration=time.monotonic() - start,
            timed_out=timed_out,
        )

    def exec(
        self,
        argv: Sequence[str],
        *,
        timeout: float | None = None,
        env: Mapping[str, str] | None = None,
        user: str | None = None,
        on_line: OnLine | None = None,
    ) -> ExecResult:
        """Run ``argv`` in the container; ``timeout`` kills it (with the image's
        `timeout` utility when it has one, else by killing the whole container);
        ``on_line`` is given each line of its standard output as it comes."""
        from docker.errors import DockerException

        if self._container is None:
            raise HarnessError("exec in a container that is not running")
        command = list(argv)
        wrapped = timeout is not None and self.spec.timeout_utility is not None
        if timeout is not None and self.spec.timeout_utility is not None:
            limit = max(1, int(timeout + 0.999))
            command = [self.spec.timeout_utility, "-k", str(_KILL_GRACE), str(limit), *command]
        watchdog: threading.Timer | None = None
        fired = threading.Event()
        if timeout is not None:
            # without the utility the host enforces the limit; with it, only as a backstop
            delay = timeout + _KILL_GRACE + _BACKSTOP if wrapped else timeout

            def _fire() -> None:
                fired.set()
                log.info("killing container %s: a command exceeded %.0fs", self.id[:12], delay)
                self.kill()

            watchdog = threading.Timer(delay, _fire)
            watchdog.daemon = True
        log.debug("exec in %s: %s", self.id[:12], shlex.join(command))
        start = time.monotonic()
        was_killed = self.killed
        try:
            api = self._client.api
            exec_id = api.exec_create(
                self._container.id,
                command,
                user=user if user is not None else self.spec.user,
                environment=dict(env) if env else None,
            )["Id"]
            if watchdog is not None:
                watchdog.start()
            if on_line is None:
                out, err = api.exec_start(exec_id, demux=True)
            else:
                out, err = _streamed(api.exec_start(exec_id, demux=True, stream=True), on_line)
            code = api.exec_inspect(exec_id).get("ExitCode")
        except DockerException as exc:
            if engine_gone(exc) and not self.killed:
                raise EngineUnavailable(ENGINE_GONE) from exc
            if self.killed and not was_killed:
                code, out, err = None, b"", f"container killed: {_short(exc)}".encode()
            else:
                raise HarnessError(f"exec in container failed: {_short(exc)}") from exc
        except Exception as exc:  # connection dropped when the container went away
            if engine_gone(exc) and not self.killed:
                raise EngineUnavailable(ENGINE_GONE) from exc
            if not self.killed:
                raise HarnessError(f"exec in container failed: {exc}") from exc
            code, out, err = None, b"", str(exc).encode()
        finally:
            if watchdog is not None:
                watchdog.cancel()
        duration = time.monotonic() - start
        timed_out = fired.is_set() or (
            wrapped
            and timeout is not None
            and code in (124, 137, 143)
            and duration >= timeout - 0.5
        )
        interrupted = self.killed and not fired.is_set() and not timed_out
        return ExecResult(
            exit_code=code if isinstance(code, int) else None,
            stdout=(out or b"").decode(errors="replace"),
            stderr=(err or b"").decode(errors="replace"),
            duration=duration,
            timed_out=timed_out,
            interrupted=interrupted,
        )


def _streamed(
    chunks: Iterable[tuple[bytes | None, bytes | None]], on_line: OnLine
) -> tuple[bytes, bytes]:
    """A streamed exec's whole output, each line of standard output handed to
    ``on_line`` once it is complete."""
    out, err, pending = bytearray(), bytearray(), b""
    for stdout, stderr in chunks:
        err += stderr or b""
        if stdout:
            out += stdout
            *lines, pending = (pending + stdout).split(b"\n")
            for line in lines:
                on_line(line.decode(errors="replace"))
    if pending:
        on_line(pending.decode(errors="replace"))
    return bytes(out), bytes(err)


@contextmanager
def session_containers(client: Engine, session: str) -> Iterator[None]:
    """On the way out, remove any container the session left (belt and braces)."""
    try:
        yield
    finally:
        try:
            for c in client.containers.list(
                all=True, filters={"label": f"{SESSION_LABEL}={session}"}
            ):
                c.remove(force=True)
        except Exception:
            log.debug("final cleanup failed", exc_info=True)
