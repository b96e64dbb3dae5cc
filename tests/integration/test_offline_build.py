"""A real sdist built in a builder container with no network: its PEP 517 backend
(hatchling, not setuptools) and that backend's dependencies come from the directory
compat filled on the host from PyPI, and so does the PyPI toolchain; the engine says
the container's network mode is ``none``. What a backend asks for when asked
(pip, offline, finds nothing) is fetched for a second round; a build that downloads
by itself fails, saying so."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from packaging.utils import canonicalize_name
from packaging.version import Version

from compat.config import RunConfig, ToolchainChoice
from compat.harness import Pipeline
from compat.harness.builds import BuildRecord
from compat.harness.docker_backend import DockerBackend
from compat.harness.toolchain import PYPI_TOOLCHAIN
from compat.harness.wheelhouse import FileRef
from compat.index.pypi import PyPIIndex
from compat.model import FileKind, Pin
from compat.reporter import Reporter
from compat.settings import NetworkSettings
from compat.targets.probe import probe_image
from tests.helpers.docker import SpyEngine, counted_client
from tests.helpers.index import write_tar

BOOKWORM = "local/debian-python:bookworm"
PROJECT, SDIST = "annotated-types", "annotated_types-0.7.0.tar.gz"  # hatchling, pure Python


class _NetworkModes(list[str]):
    """Inspects each container compat starts: its network mode, as the engine has it."""

    def __call__(self, client: Any, kwargs: dict[str, Any]) -> Any:
        container = client.containers.run(**kwargs)
        container.reload()
        self.append(container.attrs["HostConfig"]["NetworkMode"])
        return container


@pytest.fixture
def client() -> Iterator[Any]:
    with counted_client() as c:
        yield c


@pytest.mark.parametrize("toolchain", [ToolchainChoice.AUTO, ToolchainChoice.PYPI])
def test_an_sdist_builds_with_no_network(
    client: Any, tmp_path: Path, toolchain: ToolchainChoice
) -> None:
    cache = tmp_path / "cache"
    cache.mkdir()
    modes = _NetworkModes()
    spy = SpyEngine(client, modes)
    config = RunConfig(backend="docker", toolchain=toolchain)
    network = NetworkSettings.from_env(os.environ)
    backend = DockerBackend(config, cache_dir=cache, client=spy, network=network)
    target = probe_image(BOOKWORM, name="bookworm", cache_dir=cache, client=client)
    with (
        PyPIIndex(network, cache_dir=cache / "index") as index,
        Pipeline(backend, config, cache_dir=cache, network=network, index=index) as pipeline,
    ):
        files = index.files(canonicalize_name(PROJECT))
        pin = Pin.of(next(f for f in files if f.filename == SDIST))
        wheelhouse = pipeline._wheelhouse()
        wheelhouse.fetch_one(FileRef(filename=pin.filename, url=pin.url, sha256=pin.sha256))
        info = backend.inspect(target)
        record = pipeline.builder.build_one(info, wheelhouse, pin, Reporter(), "one")

    (kept,) = (cache / "builds" / pin.sha256).glob("*.json")
    log = kept.with_suffix(".log").read_text()
    assert record.ok, (record.error, log[-3000:])
    assert record.wheel_filename == "annotated_types-0.7.0-py3-none-any.whl"
    # the builder, the one container of the build, had no network
    assert modes == ["none"]
    # hatchling and its own dependencies were fetched for it, from PyPI, by compat
    fetched = [ln for ln in log.splitlines() if ln.startswith("compat: build requirements fetched")]
    names = " ".join(fetched)
    for name in ("hatchling-", "packaging-", "pathspec-", "pluggy-", "trove_classifiers-"):
        assert name in names, fetched
    if toolchain is ToolchainChoice.PYPI:  # the toolchain as well, installed offline
        for requirement in PYPI_TOOLCHAIN:
            assert requirement.split("==")[0].lower().replace("-", "_") in names.lower()
        assert "installing the PyPI toolchain" in log
    print(f"{SDIST} ({toolchain} toolchain), built offline in {record.duration:.0f}s:")
    print("\n".join(fetched))


def _build_in_tree(client: Any, tmp_path: Path, name: str, backend: str) -> tuple[BuildRecord, str]:
    """Build ``name`` 1.0, an sdist whose build backend is ``backend`` (the source of
    a module in its own tree), on bookworm; its record and whole build log."""
    sdist = write_tar(
        tmp_path / f"{name}-1.0.tar.gz",
        {
            f"{name}-1.0/pyproject.toml": (
                f'[build-system]\nrequires = []\nbuild-backend = "{name}"\nbackend-path = ["."]\n'
            ),
            f"{name}-1.0/{name}.py": backend,
        },
    )
    cache = tmp_path / "cache"
    config = RunConfig(backend="docker")
    network = NetworkSettings.from_env(os.environ)
    docker = DockerBackend(config, cache_dir=cache, client=client, network=network)
    target = probe_image(BOOKWORM, name="bookworm", cache_dir=cache, client=client)
    with Pipeline(docker, config, cache_dir=cache, network=network) as pipeline:
        wheelhouse = pipeline._wheelhouse()
        sha, stored = wheelhouse.add(sdist)
        pin = Pin(
            name=canonicalize_name(name), version=Version("1.0"), filename=stored.name,
            url=f"https://example.invalid/{stored.name}", sha256=sha, kind=FileKind.SDIST,
        )  # fmt: skip
        record = pipeline.builder.build_one(
            docker.inspect(target), wheelhouse, pin, Reporter(), "one"
        )
    (kept,) = (cache / "builds" / sha).glob("*.json")
    return record, kept.with_suffix(".log").read_text()


_WHEEL = (
    "import os, zipfile\n"
    "def build_wheel(wheel_directory, config_settings=None, metadata_directory=None):\n"
    "    import flit_core  # there in the second round only\n"
    "    info = 'dynreq-1.0.dist-info/'\n"
    "    name = 'dynreq-1.0-py3-none-any.whl'\n"
    "    meta = 'Metadata-Version: 2.1\\nName: dynreq\\nVersion: 1.0\\n'\n"
    "    tags = 'Wheel-Version: 1.0\\nRoot-Is-Purelib: true\\nTag: py3-none-any\\n'\n"
    "    with zipfile.ZipFile(os.path.join(wheel_directory, name), 'w') as z:\n"
    "        z.writestr(info + 'METADATA', meta)\n"
    "        z.writestr(info + 'WHEEL', tags)\n"
    "        z.writestr(info + 'RECORD', '')\n"
    "    return name\n"
)


def test_what_a_backend_asks_for_is_fetched_for_a_second_round(client: Any, tmp_path: Path) -> None:
    """A backend whose requirement is dynamic (get_requires_for_build_wheel, as
    scikit-build-core asks for cmake): pip, offline, says it found nothing; compat
    fetches it and builds again."""
    backend = (
        "def get_requires_for_build_wheel(config_settings=None):\n"
        "    return ['flit_core>=3.2,<4']\n" + _WHEEL
    )
    record, log = _build_in_tree(client, tmp_path, "dynreq", backend)
    rounds = [ln for ln in log.splitlines() if ln.startswith("compat: ")]
    print("\n".join(rounds))
    assert record.ok, (record.error, log[-3000:])
    assert "compat: round 1: pip found no flit_core<4,>=3.2; fetching" in rounds
    assert any(ln.startswith("compat: build requirements fetched: flit_core-3.") for ln in rounds)


def test_a_build_that_downloads_by_itself_fails_saying_so(client: Any, tmp_path: Path) -> None:
    """A build backend (in the sdist's own tree: nothing to fetch for it) that opens a
    connection to PyPI, as setup scripts that download sources do."""
    backend = (
        "import socket\n"
        "def build_wheel(wheel_directory, config_settings=None, metadata_directory=None):\n"
        "    socket.create_connection(('pypi.org', 443), timeout=20)\n"
    )
    record, log = _build_in_tree(client, tmp_path, "phonehome", backend)
    print(f"phonehome: {record.error}")
    assert not record.ok
    assert (record.error or "").startswith(
        "the build reached for the network, and builds run without one: "
    )
    assert "name resolution" in (record.error or "")  # no DNS: no network at all
    # the package's doing: kept (_build_in_tree found the record)
    assert "a build that downloads anything itself cannot succeed here" in log
