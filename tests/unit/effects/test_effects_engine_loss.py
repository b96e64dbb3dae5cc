"""The engine going away mid-run is one clear error (exit 4), not a requests traceback;
containers of compat runs whose process is gone are swept by the next run."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from typing import Any

import pytest
import requests
from docker.errors import APIError

from compat.effects.container import (
    ENGINE_GONE,
    SESSION_LABEL,
    Container,
    ContainerSpec,
    engine_gone,
)
from compat.effects.owners import (
    OWNER_LABEL,
    RUN_ENV,
    RUN_LABEL,
    owned,
    owner,
    sweep_orphans,
)
from compat.errors import EngineUnavailable, ExitCode
from tests.helpers.container import FakeEngine

_SPEC = ContainerSpec(image="img", command=("python3", "-c", "pass"))
_ABORTED = requests.exceptions.ConnectionError(
    "('Connection aborted.', FileNotFoundError(2, 'No such file or directory'))"
)


def test_exec_when_the_engine_stops_answering_is_engine_unavailable() -> None:
    engine = FakeEngine()

    def gone(*args: Any, **kwargs: Any) -> Any:
        raise _ABORTED

    with Container(engine, _SPEC, session="s") as c:
        engine.api.exec_start = gone  # type: ignore[method-assign]
        with pytest.raises(EngineUnavailable, match=ENGINE_GONE) as caught:
            c.exec(["true"])
    assert caught.value.exit_code == ExitCode.NO_ENGINE


def test_start_when_the_engine_refuses_is_engine_unavailable() -> None:
    engine = FakeEngine()

    def refused(**kwargs: Any) -> Any:
        raise APIError("500 Server Error: Connection refused")

    engine.containers.run = refused  # type: ignore[method-assign]
    with pytest.raises(EngineUnavailable, match=ENGINE_GONE), Container(engine, _SPEC, session="s"):
        pass


def test_one_failed_request_is_not_the_engine_gone() -> None:
    assert engine_gone(_ABORTED)
    assert engine_gone(APIError("x", explanation="dial unix: Connection refused"))
    assert not engine_gone(APIError("409 Conflict: container is not running"))
    assert not engine_gone(requests.exceptions.ReadTimeout("read timed out"))
    # how docker-py reports a wait past its timeout over the unix socket
    assert not engine_gone(
        requests.exceptions.ConnectionError(
            "UnixHTTPConnectionPool(host='localhost', port=None): Read timed out."
        )
    )


def test_containers_carry_their_owner_and_run(monkeypatch: pytest.MonkeyPatch) -> None:
    engine = FakeEngine()
    monkeypatch.delenv(RUN_ENV, raising=False)
    with Container(engine, _SPEC, session="s"):
        (fake,) = engine.containers_
        assert fake.kwargs["labels"][OWNER_LABEL] == f"{socket.gethostname()}:{os.getpid()}"
        assert fake.kwargs["labels"][SESSION_LABEL] == "s"
        assert fake.kwargs["labels"][RUN_LABEL] == owner()  # a run of its own
    # every process of a named run (a test session, a CI job) labels it alike
    monkeypatch.setenv(RUN_ENV, "shard-2")
    with Container(engine, _SPEC, session="t"):
        (fake,) = engine.containers_
        assert fake.kwargs["labels"][RUN_LABEL] == "shard-2"


class _Labelled:
    def __init__(self, labels: dict[str, str]) -> None:
        self.id = "c" * 64
        self.labels = labels
        self.removed = False

    def remove(self, *, force: bool = False) -> None:
        self.removed = True


def _dead_pid() -> int:
    proc = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        check=True,
        capture_output=True,
        text=True,
    )
    return int(proc.stdout)


def test_sweep_removes_only_containers_of_gone_processes_on_this_host() -> None:
    host = socket.gethostname()
    dead = _Labelled({OWNER_LABEL: f"{host}:{_dead_pid()}"})
    alive = _Labelled({OWNER_LABEL: owner()})
    elsewhere = _Labelled({OWNER_LABEL: f"not-{host}:{_dead_pid()}"})
    engine = FakeEngine()
    engine.containers.list = lambda **kw: [dead, alive, elsewhere]  # type: ignore[method-assign]
    assert sweep_orphans(engine) == 1
    assert (dead.removed, alive.removed, elsewhere.removed) == (True, False, False)


def test_sweep_removes_half_built_images_of_gone_processes_only() -> None:
    host = socket.gethostname()
    dead = {OWNER_LABEL: f"{host}:{_dead_pid()}"}
    engine = FakeEngine()
    engine.images.stored = [
        ("sha256:half", dead, False),  # an interrupted build's last finished step
        ("sha256:done", dead, True),  # a finished, tagged image: kept whoever built it
        ("sha256:building", {OWNER_LABEL: owner()}, False),  # a live build's step
        ("sha256:other-host", {OWNER_LABEL: f"not-{host}:{_dead_pid()}"}, False),
        ("sha256:unlabelled", {}, False),
    ]
    assert sweep_orphans(engine) == 1
    assert engine.images.removed == ["sha256:half"]


def test_compat_labels_its_own_builds_with_their_owner_and_run(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(RUN_ENV, 'a "run"')
    assert owned("FROM base\nUSER root\nRUN apt-get install -y libgomp1\n") == (
        f'FROM base\nLABEL {OWNER_LABEL}="{owner()}" {RUN_LABEL}="a \\"run\\""\n'
        "USER root\nRUN apt-get install -y libgomp1\n"
    )
