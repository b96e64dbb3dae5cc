"""A fake container engine for unit tests: records what it is asked, answers execs
with ``behaviour(argv)``, and is checked by mypy against ``compat.effects.container.Engine``."""

from __future__ import annotations

import itertools
import threading
from collections.abc import Callable
from typing import Any

from docker.errors import APIError, DockerException, ImageNotFound, NotFound

_ids = itertools.count(1)


class FakeDockerContainer:
    def __init__(self, engine: FakeEngine, kwargs: dict[str, Any]) -> None:
        self.engine = engine
        self.kwargs = kwargs
        self.id = f"c{next(_ids):04d}"
        self.status = "running"
        self.killed = threading.Event()
        self.removed = False
        self.exit_code = 0

    def remove(self, force: bool = False) -> None:
        assert force
        self.removed = True
        self.killed.set()
        self.engine.containers_.remove(self)

    def kill(self) -> None:
        self.status = "exited"
        self.killed.set()

    def reload(self) -> None:
        pass

    def wait(self, timeout: float | None = None) -> dict[str, int]:
        if self.engine.wait_forever:
            if not self.killed.wait(timeout):
                raise ConnectionError("read timed out")
            return {"StatusCode": 137}
        return {"StatusCode": self.exit_code}

    def logs(self, stdout: bool = True, stderr: bool = True) -> bytes:
        return b"out\n" if stdout else b"err\n"


class FakeAPI:
    def __init__(self, engine: FakeEngine) -> None:
        self.engine = engine
        self.execs: dict[str, dict[str, Any]] = {}

    def _container(self, cid: str) -> FakeDockerContainer:
        for c in self.engine.containers_:
            if c.id == cid:
                return c
        raise NotFound("no such container")

    def exec_create(
        self, cid: str, cmd: list[str], user: str = "", environment: Any = None, **_: Any
    ) -> dict[str, str]:
        container = self._container(cid)
        if container.status != "running":
            raise APIError("container is not running")
        exec_id = f"e{len(self.execs)}"
        self.execs[exec_id] = {"cmd": cmd, "user": user, "container": container}
        return {"Id": exec_id}

    def exec_start(self, exec_id: str, demux: bool = False, stream: bool = False) -> Any:
        record = self.execs[exec_id]
        behaviour = self.engine.behaviour(record["cmd"])
        if behaviour == "hang":
            record["container"].killed.wait(10)
            record["code"] = None
            raise DockerException("connection aborted")
        record["code"] = behaviour
        out = b'{"event": "start"}\n{"event": "done"}\n'
        # streamed as the engine does: chunks that split lines anywhere
        return (
            iter([(out[:7], None), (out[7:25], b"warn"), (out[25:], None)])
            if stream
            else (out, b"")
        )

    def exec_inspect(self, exec_id: str) -> dict[str, Any]:
        return {"ExitCode": self.execs[exec_id].get("code")}

    def build(self, **kwargs: Any) -> list[dict[str, Any]]:
        self.engine.builds.append(kwargs)
        return self.engine.build_stream

    def inspect_image(self, image: str) -> dict[str, Any]:
        return {"Id": f"sha256:{image}", "Size": 0}

    def history(self, image: str) -> list[dict[str, Any]]:
        return []


class FakeContainers:
    def __init__(self, engine: FakeEngine) -> None:
        self.engine = engine

    def run(self, **kwargs: Any) -> FakeDockerContainer:
        if kwargs["image"] == "missing":
            raise ImageNotFound("no such image")
        c = FakeDockerContainer(self.engine, kwargs)
        self.engine.containers_.append(c)
        self.engine.started.append(c)
        return c

    def list(self, all: bool = False, filters: dict[str, str] | None = None) -> list[Any]:
        label = (filters or {}).get("label", "")
        key, _, value = label.partition("=")
        return [c for c in self.engine.containers_ if c.kwargs["labels"].get(key) == value]


class FakeImages:
    def __init__(self) -> None:
        # images ``list`` finds: (id, labels, tagged); ``remove`` takes these only
        self.stored: list[tuple[str, dict[str, str], bool]] = []
        self.removed: list[str] = []

    def list(self, filters: dict[str, Any] | None = None) -> list[Any]:
        label = str((filters or {}).get("label", ""))
        key, _, value = label.partition("=")
        dangling = (filters or {}).get("dangling")
        return [
            type("Image", (), {"id": iid, "labels": labels, "tags": ["t:1"] if tagged else []})()
            for iid, labels, tagged in self.stored
            if key in labels and (not value or labels[key] == value) and not (dangling and tagged)
        ]

    def get(self, ref: str) -> Any:
        if ref == "absent":
            raise ImageNotFound("absent")

        class Img:
            id = f"sha256:{ref}"

        return Img()

    def pull(self, ref: str) -> Any:
        raise APIError("no registry")

    def remove(self, image: str, force: bool = False) -> None:
        if any(iid == image for iid, _, _ in self.stored):
            self.removed.append(image)
            return
        raise APIError("in use")


class FakeEngine:
    def __init__(self) -> None:
        self.containers_: list[FakeDockerContainer] = []
        self.started: list[FakeDockerContainer] = []
        self.api = FakeAPI(self)
        self.containers = FakeContainers(self)
        self.images = FakeImages()
        self.wait_forever = False
        self.builds: list[dict[str, Any]] = []
        self.build_stream: list[dict[str, Any]] = []
        self.behaviour: Callable[[list[str]], int | str] = lambda cmd: 0

    def ping(self) -> bool:
        return True

    def close(self) -> None:
        pass
