"""Integration tests use a real Docker engine. In CI a missing engine is a failure,
never a skip."""

from __future__ import annotations

import io
import json
import os
import tarfile
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from compat.effects.owners import RUN_LABEL, run_id


def run_label_filter() -> dict[str, str]:
    """The engine filter for the containers this test run's compat started (the run
    label, ``COMPAT_RUN``, which the integration conftest sets for the session and so
    for every compat process a test starts): another compat run on the same engine
    has its own and is not counted."""
    return {"label": f"{RUN_LABEL}={run_id()}"}


@contextmanager
def counted_client() -> Iterator[Any]:
    """A real docker client (see ``require_docker``); on exit, no container of this
    run that was not there at the start may be left."""
    require_docker()
    import docker

    client = docker.from_env(timeout=600)
    before = {c.id for c in client.containers.list(all=True, filters=run_label_filter())}
    yield client
    left = list(client.containers.list(all=True, filters=run_label_filter()))
    assert [c.name for c in left if c.id not in before] == []
    client.close()


ContainerRun = Callable[[Any, dict[str, Any]], Any]  # (real client, run's kwargs) -> container


class _SpiedContainers:
    def __init__(self, client: Any, run: ContainerRun) -> None:
        self._client = client
        self._run = run

    def run(self, **kwargs: Any) -> Any:
        return self._run(self._client, kwargs)

    def list(self, **kwargs: Any) -> Any:
        return self._client.containers.list(**kwargs)


class SpyEngine:
    """A real docker client whose container starts go through ``run`` (handed the real
    client and what compat asked for), for a test that looks at or into every
    container compat starts. Closing it leaves the real client to the test."""

    def __init__(self, client: Any, run: ContainerRun) -> None:
        self._client = client
        self.containers = _SpiedContainers(client, run)
        self.images = client.images
        self.api = client.api

    def ping(self) -> bool:
        return bool(self._client.ping())

    def close(self) -> None:
        pass


def require_docker() -> None:
    """Skip locally, fail in CI, when no Docker engine answers."""
    import docker

    try:
        docker.from_env().ping()
    except Exception as exc:
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI needs a running Docker engine: {exc}")
        pytest.skip(f"no Docker engine: {exc}")


def buildkit_build(
    client: Any,
    context: Path,
    *,
    tag: str,
    buildargs: Mapping[str, str] | None = None,
    network_mode: str = "default",
) -> str:
    """Build ``context`` with the engine's BuildKit, as ``docker build`` with buildx's
    docker driver does: the engine API's build endpoint with ``version=2`` (the docker
    SDK only drives the classic builder; this machine's docker CLI has no buildx), the
    context sent as a tar body. Returns the image ID; fails the test with BuildKit's
    error when the build fails."""
    body = io.BytesIO()
    with tarfile.open(fileobj=body, mode="w", format=tarfile.GNU_FORMAT) as tar:
        for path in sorted(context.rglob("*")):
            tar.add(path, arcname=str(path.relative_to(context)), recursive=False)
    params = {"t": tag, "version": "2", "rm": "1", "networkmode": network_mode}
    if buildargs:
        params["buildargs"] = json.dumps(dict(buildargs))
    api = client.api
    # private calls of the SDK: no public one selects BuildKit
    response = api._post(
        api._url("/build"),
        params=params,
        data=body.getvalue(),
        headers={"Content-Type": "application/x-tar"},
        stream=True,
    )
    image: str | None = None
    for chunk in api._stream_helper(response, decode=True):
        if "error" in chunk:
            pytest.fail(f"BuildKit failed to build {context}: {chunk['error']}")
        aux = chunk.get("aux")
        if isinstance(aux, dict) and "ID" in aux:  # the trace messages carry no ID
            image = str(aux["ID"])
    assert image is not None, "BuildKit reported no image"
    return image
