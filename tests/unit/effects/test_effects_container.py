"""The container door against a fake engine: always removed, limits and
labels as asked, timeouts enforced; docker errors become compat errors."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import docker
import pytest
from docker.errors import DockerException

from compat.effects.container import (
    SESSION_LABEL,
    Container,
    ContainerSpec,
    Mount,
    connect,
    image_id,
)
from compat.effects.images import build
from compat.effects.owners import owned
from compat.errors import EngineUnavailable, HarnessError, ImageBuildFailed, ImageUnavailable
from compat.harness.docker_backend import RunnerPool
from tests.helpers.container import FakeDockerContainer, FakeEngine


def _spec(**changes: Any) -> ContainerSpec:
    base: dict[str, Any] = {
        "image": "img",
        "command": ("python3", "-c", "sleep"),
        "user": "65534:65534",
        "mounts": (Mount(source=Path("/cache/installs"), target="/compat/installs"),),
        "tmpfs": ("/tmp",),
        "nano_cpus": 1_000_000_000,
        "mem_limit": "2g",
        "pids_limit": 256,
    }
    base.update(changes)
    return ContainerSpec(**base)


def test_container_is_created_as_asked_and_removed() -> None:
    engine = FakeEngine()
    with Container(engine, _spec(), session="s1") as c:
        (fake,) = engine.containers_
        kwargs = fake.kwargs
        assert kwargs["labels"][SESSION_LABEL] == "s1"
        assert kwargs["network_mode"] == "none"
        assert kwargs["user"] == "65534:65534"
        assert kwargs["mounts"][0]["ReadOnly"] is True
        assert kwargs["tmpfs"] == {"/tmp": "rw,exec,nosuid,size=1g,mode=1777"}
        assert (kwargs["nano_cpus"], kwargs["mem_limit"], kwargs["pids_limit"]) == (
            1_000_000_000,
            "2g",
            256,
        )
        assert kwargs["cap_drop"] == ["ALL"]
        assert kwargs["security_opt"] == ["no-new-privileges"]
        assert c.id == fake.id
    assert engine.containers_ == []
    assert fake.removed


@pytest.mark.parametrize("exc", [RuntimeError, KeyboardInterrupt, TimeoutError])
def test_container_is_removed_on_any_exception(exc: type[BaseException]) -> None:
    engine = FakeEngine()
    with pytest.raises(exc), Container(engine, _spec(), session="s"):
        raise exc("boom")
    assert engine.containers_ == []


def test_missing_image_is_image_unavailable() -> None:
    with (
        pytest.raises(ImageUnavailable, match="missing"),
        Container(FakeEngine(), _spec(image="missing"), session="s"),
    ):
        pass


def test_interrupted_start_leaves_nothing() -> None:
    engine = FakeEngine()
    sibling = Container(engine, _spec(), session="s").__enter__()
    real_run = engine.containers.run

    def run_then_interrupt(**kwargs: Any) -> FakeDockerContainer:
        real_run(**kwargs)  # created and started, but the caller never learns its id
        raise KeyboardInterrupt

    engine.containers.run = run_then_interrupt  # type: ignore[method-assign]
    with pytest.raises(KeyboardInterrupt), Container(engine, _spec(), session="s"):
        pass
    assert engine.containers_ == [sibling._container]  # the other one of the session stays
    sibling.remove()


def test_exec_runs_under_the_image_timeout_utility() -> None:
    engine = FakeEngine()
    spec = _spec(timeout_utility="/usr/bin/timeout")
    with Container(engine, spec, session="s") as c:
        result = c.exec(["python3", "runner.py"], timeout=9.2)
    (record,) = engine.api.execs.values()
    assert record["cmd"] == ["/usr/bin/timeout", "-k", "5", "10", "python3", "runner.py"]
    assert record["user"] == "65534:65534"
    assert result.exit_code == 0
    assert not result.timed_out


def test_exec_hands_each_line_of_output_over_as_it_comes() -> None:
    engine = FakeEngine()
    lines: list[str] = []
    with Container(engine, _spec(), session="s") as c:
        streamed = c.exec(["python3", "-V"], on_line=lines.append)
        whole = c.exec(["python3", "-V"])
    # the engine's chunks split lines anywhere: each line comes whole, once
    assert lines == ['{"event": "start"}', '{"event": "done"}']
    assert streamed.stdout == whole.stdout
    assert streamed.stderr == "warn"


def test_exec_timeout_without_utility_kills_the_container() -> None:
    engine = FakeEngine()
    engine.behaviour = lambda cmd: "hang"
    with Container(engine, _spec(), session="s") as c:
        t0 = time.monotonic()
        result = c.exec(["python3", "hang.py"], timeout=0.2)
        assert time.monotonic() - t0 < 5
        assert result.timed_out
        assert not result.interrupted
        assert c.killed
    assert engine.containers_ == []


def test_runner_pool_replaces_a_killed_container() -> None:
    engine = FakeEngine()
    with RunnerPool(lambda: Container(engine, _spec(), session="s")) as pool:
        first = engine.started[0]
        pool._container().kill()
        result = pool.exec(["python3", "x"])
        assert result.exit_code == 0
        assert len(engine.started) == 2
        assert first.removed
        assert not engine.started[1].removed
    assert engine.containers_ == []


def test_concurrent_exec_interrupted_by_another_timeout_is_flagged() -> None:
    engine = FakeEngine()
    engine.behaviour = lambda cmd: "hang"
    with Container(engine, _spec(), session="s") as c:
        out: dict[str, Any] = {}
        bystander = threading.Thread(target=lambda: out.setdefault("r", c.exec(["x"])))
        bystander.start()
        time.sleep(0.05)
        victim = c.exec(["y"], timeout=0.2)
        bystander.join(5)
    assert victim.timed_out
    assert out["r"].interrupted
    assert not out["r"].timed_out


def test_wait_past_timeout_kills() -> None:
    engine = FakeEngine()
    engine.wait_forever = True
    with Container(engine, _spec(), session="s") as c:
        result = c.wait(timeout=0.1)
    assert result.timed_out
    assert result.stdout == "out\n"


def test_image_id_and_unpullable_image() -> None:
    engine = FakeEngine()
    assert image_id(engine, "local/x:1") == "sha256:local/x:1"
    with pytest.raises(ImageUnavailable, match="docker build -t absent"):
        image_id(engine, "absent")


def test_no_engine_is_engine_unavailable(monkeypatch: pytest.MonkeyPatch) -> None:
    def from_env(**_: Any) -> Any:
        raise DockerException("Error while fetching server API version")

    monkeypatch.setattr(docker, "from_env", from_env)
    with pytest.raises(EngineUnavailable, match="--backend local"):
        connect()


@pytest.mark.parametrize("error", [DockerException("refused"), ConnectionError("reset")])
def test_a_client_whose_engine_does_not_answer_is_closed(
    monkeypatch: pytest.MonkeyPatch, error: Exception
) -> None:
    closed: list[bool] = []

    class Client:
        def ping(self) -> bool:
            raise error

        def close(self) -> None:
            closed.append(True)

    monkeypatch.setattr(docker, "from_env", lambda **_: Client())
    with pytest.raises(EngineUnavailable, match="--backend local"):
        connect()
    assert closed == [True]  # its connection pool is not left to the collector


def test_exec_on_a_removed_container_is_a_harness_error() -> None:
    c = Container(FakeEngine(), _spec(), session="s")
    with pytest.raises(HarnessError):
        c.exec(["x"])


def test_build_reads_the_stream_and_returns_the_image() -> None:
    engine = FakeEngine()
    engine.build_stream = [
        {"stream": "Step 1/2 : FROM base\n"},
        {"stream": " ---> 0123456789ab\nStep 2/2 : RUN true\n"},
        {"aux": {"ID": "sha256:x"}},
    ]
    seen: list[str] = []
    iid, lines = build(
        engine,
        tag="mine:1",
        dockerfile="FROM base\nRUN true\n",
        labels={"compat.derived": "1"},
        buildargs={"HTTPS_PROXY": "http://p:3128"},
        on_line=seen.append,
    )
    assert iid == "sha256:mine:1"
    assert lines == seen == ["Step 1/2 : FROM base", " ---> 0123456789ab", "Step 2/2 : RUN true"]
    (asked,) = engine.builds
    # its steps carry the owner label, so a build cut short is swept by a later run
    assert asked["fileobj"].read().decode() == owned("FROM base\nRUN true\n")
    assert asked["pull"] is False
    assert asked["forcerm"] is True
    assert asked["buildargs"] == {"HTTPS_PROXY": "http://p:3128"}
    assert asked["labels"] == {"compat.derived": "1"}


def test_a_failed_build_carries_its_log() -> None:
    engine = FakeEngine()
    engine.build_stream = [
        {"stream": "Step 1/1 : RUN apk add gcc\n"},
        {"stream": "ERROR: unable to select packages\n"},
        {"error": "The command '/bin/sh -c apk add gcc' returned a non-zero code: 1"},
    ]
    with pytest.raises(ImageBuildFailed, match="returned a non-zero code") as failed:
        build(engine, tag="t:1", context=Path("/ctx"), labels={})
    assert "unable to select packages" in failed.value.log
    assert engine.builds[0]["path"] == "/ctx"
