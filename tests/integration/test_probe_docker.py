"""Probing the real local base images."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from packaging.tags import Tag
from packaging.version import Version

from compat.errors import ImageUnavailable
from compat.targets.probe import probe_image
from compat.targets.target import Libc
from tests.helpers.docker import require_docker, run_label_filter


@pytest.fixture
def client() -> Iterator[Any]:
    require_docker()
    import docker

    c = docker.from_env()
    yield c
    assert c.containers.list(all=True, filters=run_label_filter()) == []
    c.close()


class Counting:
    """A docker client that counts the containers it starts."""

    def __init__(self, client: Any) -> None:
        self._client = client
        self.started = 0
        outer = self

        class Containers:
            def run(self, **kwargs: Any) -> Any:
                outer.started += 1
                return client.containers.run(**kwargs)

            def list(self, **kwargs: Any) -> Any:
                return client.containers.list(**kwargs)

        self.containers = Containers()
        self.images = client.images
        self.api = client.api

    def ping(self) -> bool:
        return bool(self._client.ping())

    def close(self) -> None:
        self._client.close()


@pytest.mark.parametrize(
    ("image", "python", "libc", "libc_version", "best", "manager"),
    [
        (
            "local/debian-python:bookworm",
            "3.11",
            Libc.GLIBC,
            (2, 36),
            "manylinux_2_36_x86_64",
            "apt",
        ),
        ("local/debian-python:trixie", "3.13", Libc.GLIBC, (2, 41), "manylinux_2_41_x86_64", "apt"),
        ("local/musl-python:3.11", "3.11", Libc.MUSL, (1, 2), "musllinux_1_2_x86_64", None),
    ],
)
def test_probe_local_images(
    client: Any,
    tmp_path: Path,
    image: str,
    python: str,
    libc: Libc,
    libc_version: tuple[int, int],
    best: str,
    manager: str | None,
) -> None:
    counting = Counting(client)
    target = probe_image(image, name="probe", cache_dir=tmp_path, client=counting)
    assert target.probed
    assert target.image_id == client.images.get(image).id
    assert target.python == python
    assert target.python_version > Version(python)
    assert (target.libc, target.libc_version) == (libc, libc_version)
    abi = f"cp{python.replace('.', '')}"
    assert Tag(abi, abi, best) in target.tags
    assert Tag("py3", "none", "any") in target.tags
    assert target.package_manager == manager  # the musl image has none
    other = "musllinux" if libc is Libc.GLIBC else "manylinux"
    assert not any(other in t.platform for t in target.tags)
    assert counting.started == 1

    again = probe_image(image, name="again", cache_dir=tmp_path, client=counting)
    assert counting.started == 1  # cached by image ID
    assert again.tags == target.tags
    assert again.package_manager == manager


def test_missing_image(client: Any, tmp_path: Path) -> None:
    with pytest.raises(ImageUnavailable, match="docker build"):
        probe_image("local/no-such-image:1", name="x", cache_dir=tmp_path, client=client)
