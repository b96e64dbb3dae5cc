"""Who started what on the engine. Every container and build compat starts is
labelled with its owner (``<host>:<pid>``), so that a later run on the host removes
what a process that is gone left behind (``kill -9``, a dead terminal), since nothing
else ever would; and with its run (``COMPAT_RUN``, else the process), so that a run
counts its own containers while other runs use the engine."""

from __future__ import annotations

import json
import logging
import os
import socket
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, Protocol

log = logging.getLogger("compat.effects")

# who started the container: a later run on this host removes it once that process is gone
# (kill -9, a dead terminal), since nothing else ever would
OWNER_LABEL = "compat.owner"  # "<host>:<pid>"
# which run started it: every process of one run (a test session, a CI job's shards)
# shares the value, so that it counts its own containers while other runs use the engine
RUN_LABEL = "compat.run"
RUN_ENV = "COMPAT_RUN"  # names the run; unset, each process is its own run


def owner() -> str:
    """This process, as the owner label names it."""
    return f"{socket.gethostname()}:{os.getpid()}"


def run_id() -> str:
    """This run, as the run label names it: ``COMPAT_RUN`` when set, else this process.
    (The one place below the CLI that reads the environment: it names, decides nothing.)"""
    return os.environ.get(RUN_ENV) or owner()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process, but a live one
    return True


def _orphaned(thing: object, host: str) -> bool:
    """Whether ``thing`` (a container or an image) is owned by a process of this host
    that is gone."""
    labels: Mapping[str, str] = getattr(thing, "labels", None) or {}
    who, _, pid = labels.get(OWNER_LABEL, "").rpartition(":")
    return who == host and pid.isdigit() and not _alive(int(pid))


def _remove_orphans(
    what: str, listing: Callable[[], Iterable[Any]], remove: Callable[[Any], None], host: str
) -> int:
    """Remove the ``listing`` entries owned by a gone process of ``host``; how many.
    Sweeping is housekeeping: a failure is logged, never the reason a run fails."""
    try:
        found = list(listing())
    except Exception:
        log.debug("listing leftover %s failed", what, exc_info=True)
        return 0
    removed = 0
    for thing in found:
        if not _orphaned(thing, host):
            continue
        try:
            remove(thing)
            removed += 1
        except Exception:
            log.debug("removing leftover %s %s failed", what, thing.id[:19], exc_info=True)
    return removed


class _Listed(Protocol):
    @property
    def id(self) -> str: ...


class _Container(_Listed, Protocol):
    def remove(self, *, force: bool = ...) -> None: ...


class _Containers(Protocol):
    def list(
        self, *, all: bool = ..., filters: dict[str, str] | None = ...
    ) -> Sequence[_Container]: ...


class _Images(Protocol):
    def list(self, *, filters: dict[str, Any] | None = ...) -> Sequence[_Listed]: ...
    def remove(self, image: str, /, *, force: bool = ...) -> None: ...


class Sweepable(Protocol):
    """What sweeping needs of the engine (``compat.effects.container.Engine`` is one;
    named here, not imported, since the container module imports this one)."""

    @property
    def containers(self) -> _Containers: ...
    @property
    def images(self) -> _Images: ...


def sweep_orphans(client: Sweepable) -> int:
    """Remove what compat runs on this host whose process is gone left behind: their
    containers, and the half-built images of their interrupted builds (untagged, owner
    labelled: see ``owned``); how many. Anything without an owner label (older
    versions, other hosts) is left alone: its owner may be alive. A finished image is
    tagged, so it is never swept."""
    host = socket.gethostname()
    removed = _remove_orphans(
        "containers",
        lambda: client.containers.list(all=True, filters={"label": OWNER_LABEL}),
        lambda container: container.remove(force=True),
        host,
    )
    removed += _remove_orphans(
        "images",
        lambda: client.images.list(filters={"label": OWNER_LABEL, "dangling": True}),
        # its untagged parents (the earlier steps) go with it
        lambda image: client.images.remove(image.id),
        host,
    )
    if removed:
        log.info("removed %d container(s) and image(s) left by compat runs that are gone", removed)
    return removed


def owned(dockerfile: str) -> str:
    """``dockerfile`` with this process's owner label set right after each FROM. The
    classic builder keeps every finished step as an image: a build cut short (kill -9,
    the engine restarting) leaves them untagged, and the label is how a later run
    knows them for leftovers of a process that is gone (``sweep_orphans``). Only
    compat's own context-less Dockerfiles get it; a lock directory's stays as written."""
    lines = []
    for line in dockerfile.splitlines():
        lines.append(line)
        if line.upper().startswith("FROM "):
            lines.append(f'LABEL {OWNER_LABEL}="{owner()}" {RUN_LABEL}={json.dumps(run_id())}')
    return "\n".join(lines) + "\n"
