"""A CI cancel (SIGTERM) or a closed terminal (SIGHUP) ends a run like Ctrl-C: promptly,
non-zero, and without leaving any container behind."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import docker
import pytest

from compat.effects.container import SESSION_LABEL
from compat.effects.owners import OWNER_LABEL
from tests.helpers.docker import require_docker

BOOKWORM = "local/debian-python:bookworm"


def _ours(client: docker.DockerClient, pid: int) -> list[dict[str, Any]]:
    # by owner, not machine-wide: other runs may share the engine; the low-level list
    # does not inspect each container (one may go between the list and the inspect)
    owner = f"{socket.gethostname()}:{pid}"
    return list(client.api.containers(all=True, filters={"label": f"{OWNER_LABEL}={owner}"}))


def _session(client: docker.DockerClient, session: str) -> list[dict[str, Any]]:
    return list(client.api.containers(all=True, filters={"label": f"{SESSION_LABEL}={session}"}))


def _env(tmp_path: Path) -> dict[str, str]:
    return {
        **os.environ,
        "COMPAT_CACHE_DIR": str(tmp_path / "cache"),
        "COMPAT_DATA_DIR": str(tmp_path / "data"),
        "COMPAT_DB": f"sqlite:///{tmp_path / 'results.db'}",
    }


def _signal_when(
    tmp_path: Path,
    args: list[str],
    found: Callable[[dict[str, Any]], bool],
    signum: signal.Signals,
    *,
    settle: float = 0.0,
) -> tuple[int, dict[str, Any]]:
    """Run ``compat ARGS``; once one of its containers is ``found`` (and ``settle``
    seconds later) send it ``signum``. Its exit status, and that container."""
    client = docker.from_env()
    stderr = (tmp_path / "stderr").open("w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "compat", *args],
        env=_env(tmp_path),
        stdout=subprocess.DEVNULL,
        stderr=stderr,
        text=True,
    )
    try:
        deadline = time.monotonic() + 600
        container = None
        while container is None and time.monotonic() < deadline and proc.poll() is None:
            container = next((c for c in _ours(client, proc.pid) if found(c)), None)
            time.sleep(0.2)
        assert container is not None, (tmp_path / "stderr").read_text()
        time.sleep(settle)
        proc.send_signal(signum)
        code = proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        stderr.close()
    return code, container


def _runner(container: dict[str, Any]) -> bool:
    # the long-lived smoke runner: the container a signal used to leak
    return "time.sleep" in container["Command"]


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGHUP])
def test_signal_removes_the_runner_container(tmp_path: Path, signum: signal.Signals) -> None:
    require_docker()
    args = ["check", "numpy==2.1.3", "--image", BOOKWORM]
    code, runner = _signal_when(tmp_path, args, _runner, signum)
    assert code != 0
    assert _session(docker.from_env(), runner["Labels"][SESSION_LABEL]) == [], "containers left"
    assert "interrupted" in (tmp_path / "stderr").read_text()


def test_a_run_sweeps_containers_of_runs_that_are_gone(tmp_path: Path) -> None:
    # what kill -9 leaves: a container whose owning process no longer exists
    require_docker()
    from compat.config import RunConfig
    from compat.harness.docker_backend import DockerBackend

    client = docker.from_env()
    gone = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        check=True,
        capture_output=True,
        text=True,
    )
    labels = {SESSION_LABEL: "swept", OWNER_LABEL: f"{socket.gethostname()}:{gone.stdout.strip()}"}
    orphan = client.containers.create(BOOKWORM, ["sleep", "60"], labels=labels)
    try:
        DockerBackend(RunConfig(), cache_dir=tmp_path, client=client).close()
        assert _session(client, "swept") == []
    finally:
        with contextlib.suppress(docker.errors.NotFound):
            orphan.remove(force=True)


_BUILD_THEN_HANG = """
import sys
from compat.effects.container import connect
from compat.effects.images import build
build(connect(), tag=sys.argv[1], labels={},
      dockerfile="FROM %s\\nRUN echo step > /step\\nRUN sleep 120\\n")
"""


def test_a_run_sweeps_half_built_images_of_runs_that_are_gone(tmp_path: Path) -> None:
    # what kill -9 during an image build leaves: its finished steps as untagged images
    require_docker()
    from compat.config import RunConfig
    from compat.harness.docker_backend import DockerBackend

    client = docker.from_env()
    tag = f"compat-test-halfbuilt:{os.getpid()}"
    proc = subprocess.Popen(
        [sys.executable, "-c", _BUILD_THEN_HANG % BOOKWORM, tag], stdout=subprocess.DEVNULL
    )
    owner = f"{socket.gethostname()}:{proc.pid}"

    def half_built() -> list[dict[str, Any]]:
        return list(client.api.images(all=True, filters={"label": f"{OWNER_LABEL}={owner}"}))

    try:
        deadline = time.monotonic() + 120
        while len(half_built()) < 2 and time.monotonic() < deadline:  # LABEL and RUN echo
            time.sleep(0.5)
        assert len(half_built()) >= 2
    finally:
        proc.kill()
        proc.wait()
    try:
        time.sleep(2)  # the engine notices the client is gone and ends the build
        DockerBackend(RunConfig(), cache_dir=tmp_path, client=client).close()
        assert half_built() == [], "half-built images left behind"
    finally:
        for image in half_built():
            with contextlib.suppress(docker.errors.APIError):
                client.images.remove(image["Id"], force=True)


def test_a_signal_during_a_system_package_retry_records_nothing_for_it(tmp_path: Path) -> None:
    """lightgbm fails on the bare bookworm image for want of libgomp.so.1 and runs again
    in a derived image with libgomp1; a SIGTERM while that retry runs must not record
    the first answer (import-error) as if it were final."""
    require_docker()
    base_id = docker.from_env().images.get(BOOKWORM).id
    # only where libgomp is installed (the retry) the run lingers: the signal lands in it
    linger = "if [ -e /usr/lib/x86_64-linux-gnu/libgomp.so.1 ]; then sleep 300; fi"
    args = ["check", "numpy", "lightgbm", "--image", BOOKWORM, "--exec", f"sh -c '{linger}'"]
    code, _ = _signal_when(
        tmp_path,
        args,
        lambda c: _runner(c) and c["ImageID"] != base_id,
        signal.SIGTERM,
        settle=2.0,  # the suite is running in it
    )
    assert code != 0
    listed = subprocess.run(
        [sys.executable, "-m", "compat", "results", "--json"],
        env=_env(tmp_path),
        capture_output=True,
        text=True,
        check=True,
    )
    assert json.loads(listed.stdout) == [], "a first-pass answer was recorded as final"
