"""Every kind of container compat starts, on a real engine, through compat's own code
paths: what ``/proc/self/status`` says inside (NoNewPrivs 1, no effective or bounding
capability, the engine's seccomp filter, a uid that is not 0), and a setuid-root
binary of the image that cannot make its caller root again.

Each container compat asks the engine for is started twice by a spying client: once
as compat asked with the command replaced by a reader of ``/proc/self/status`` (the
readout), once as asked. The runner's execs (the smoke and deep checks) and the
builder's build are read from inside as well."""

from __future__ import annotations

import io
import os
import tarfile
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from packaging.utils import canonicalize_name
from packaging.version import Version

from compat.config import RunConfig
from compat.errors import BuildFailed
from compat.harness.docker_backend import DockerBackend
from compat.harness.toolchain import BUILD_LOG
from compat.image.smoke import run_smoke
from compat.model import FileKind, Pin
from compat.targets.probe import probe_image
from tests.helpers.docker import require_docker, run_label_filter

BOOKWORM = "local/debian-python:bookworm"
STATUS = ("cat", "/proc/self/status")


def status_fields(text: str) -> dict[str, str]:
    fields = {}
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        key = key.strip()
        if sep and key in ("Uid", "Gid", "NoNewPrivs", "Seccomp", "CapEff", "CapPrm", "CapBnd"):
            fields[key] = " ".join(value.split())
    return fields


def assert_unprivileged(kind: str, fields: dict[str, str]) -> None:
    assert fields.get("NoNewPrivs") == "1", (kind, fields)
    assert int(fields["CapEff"], 16) == 0, (kind, fields)
    assert int(fields["CapPrm"], 16) == 0, (kind, fields)
    assert int(fields["CapBnd"], 16) == 0, (kind, fields)
    assert fields["Seccomp"] == "2", (kind, fields)  # a filter: the engine's default profile
    assert "0" not in fields["Uid"].split(), (kind, fields)  # real, effective, saved, fs


class _SpyContainers:
    def __init__(self, client: Any, readouts: list[tuple[str, dict[str, str]]]) -> None:
        self._client = client
        self._readouts = readouts
        self.kind = ""

    def run(self, **kwargs: Any) -> Any:
        twin = self._client.containers.run(**{**kwargs, "command": list(STATUS)})
        try:
            twin.wait(timeout=60)
            text = twin.logs(stdout=True, stderr=False).decode()
        finally:
            twin.remove(force=True)
        self._readouts.append((self.kind, status_fields(text)))
        return self._client.containers.run(**kwargs)

    def list(self, **kwargs: Any) -> Any:
        return self._client.containers.list(**kwargs)


class _Spy:
    """A docker client that reads the status of every container it is asked for."""

    def __init__(self, client: Any) -> None:
        self._client = client
        self.readouts: list[tuple[str, dict[str, str]]] = []
        self.containers = _SpyContainers(client, self.readouts)
        self.images = client.images
        self.api = client.api

    def ping(self) -> bool:
        return bool(self._client.ping())

    def close(self) -> None:
        pass


@pytest.fixture
def client() -> Iterator[Any]:
    require_docker()
    import docker

    c = docker.from_env(timeout=600)
    before = {x.id for x in c.containers.list(all=True, filters=run_label_filter())}
    yield c
    left = list(c.containers.list(all=True, filters=run_label_filter()))
    assert [x.name for x in left if x.id not in before] == []
    c.close()


def _needs_root_sdist(directory: Path) -> Path:
    """A project whose build backend (in its own tree: nothing to download) prints the
    status of the build's process and then wants root."""
    files = {
        "pyproject.toml": (
            '[build-system]\nrequires = []\nbuild-backend = "wantsroot"\nbackend-path = ["."]\n'
        ),
        "wantsroot.py": (
            "import os, sys\n"
            "def build_wheel(wheel_directory, config_settings=None, metadata_directory=None):\n"
            "    sys.stderr.write(open('/proc/self/status').read())\n"
            "    os.setuid(0)\n"
        ),
    }
    directory.mkdir()
    sdist = directory / "wantsroot-1.0.tar.gz"
    with tarfile.open(sdist, "w:gz") as tar:
        for name, text in files.items():
            data = text.encode()
            member = tarfile.TarInfo(f"wantsroot-1.0/{name}")
            member.size = len(data)
            tar.addfile(member, io.BytesIO(data))
    return sdist


def test_every_container_kind_runs_unprivileged(client: Any, tmp_path: Path) -> None:
    spy = _Spy(client)
    cache = tmp_path / "cache"
    cache.mkdir()
    config = RunConfig(backend="docker")
    backend = DockerBackend(config, cache_dir=cache, client=spy)
    inside: list[tuple[str, dict[str, str]]] = []

    spy.containers.kind = "probe"
    target = probe_image(BOOKWORM, name="bookworm", cache_dir=cache, client=spy)
    info = backend.inspect(target)

    spy.containers.kind = "runner (smoke, deep)"
    with backend.executor(info) as runner:
        done = runner.exec(list(STATUS), timeout=60)
        inside.append(("runner exec (a check)", status_fields(done.stdout)))

    spy.containers.kind = "compile"
    install = cache / "installs" / "tiny"
    install.mkdir(parents=True)
    (install / "tiny.py").write_text("X = 1\n")
    backend.compile(info, [install])
    (pyc,) = (install / "__pycache__").glob("tiny.*.pyc")
    # written by the unprivileged container, the host's again afterwards
    assert pyc.stat().st_uid == os.getuid()
    assert install.stat().st_uid == os.getuid()

    spy.containers.kind = "builder"
    sdist = _needs_root_sdist(tmp_path / "sdist")
    pin = Pin(
        name=canonicalize_name("wantsroot"), version=Version("1.0"), filename=sdist.name,
        url="https://example.invalid/wantsroot-1.0.tar.gz", sha256="0" * 64,
        kind=FileKind.SDIST,
    )  # fmt: skip
    out = tmp_path / "out"
    out.mkdir()
    with pytest.raises(BuildFailed) as failed:
        backend.build_wheel(info, pin, sdist, out)
    # a build that needs root fails, and says why
    assert failed.value.reason.startswith("the build needs root"), failed.value.reason
    build_log = (out / BUILD_LOG).read_text()
    assert "Operation not permitted" in build_log
    assert "a build that needs root cannot succeed here" in build_log
    inside.append(("builder's build backend", status_fields(build_log)))

    spy.containers.kind = "image smoke"
    run_smoke(
        spy, BOOKWORM, python="python3", site="/nonexistent", packages=[],
        package_manager=None, libc="glibc",
    )  # fmt: skip

    readouts = spy.readouts + inside
    for kind, fields in readouts:
        print(f"{kind}: {fields}")
    kinds = {kind for kind, _ in readouts}
    assert kinds == {
        "probe", "runner (smoke, deep)", "runner exec (a check)", "compile", "builder",
        "builder's build backend", "image smoke",
    }  # fmt: skip
    for kind, fields in readouts:
        assert_unprivileged(kind, fields)


@pytest.fixture
def setuid_image(client: Any) -> Iterator[str]:
    """The bookworm image with a setuid-root copy of its Python."""
    tag = f"compat-test/setuid:{uuid.uuid4().hex[:12]}"
    dockerfile = (
        f"FROM {BOOKWORM}\n"
        "RUN cp -L /usr/bin/python3 /usr/local/bin/suid-python "
        "&& chmod 4755 /usr/local/bin/suid-python\n"
    )
    client.images.build(fileobj=io.BytesIO(dockerfile.encode()), tag=tag, rm=True, pull=False)
    yield tag
    client.images.remove(tag, force=True)


_REGAIN = (
    "/usr/local/bin/suid-python", "-I", "-c",
    "import os; print(os.getresuid()); os.setuid(0); print('root again')",
)  # fmt: skip


def test_a_setuid_binary_cannot_regain_root(client: Any, setuid_image: str, tmp_path: Path) -> None:
    from compat.effects.owners import RUN_LABEL, run_id

    # the control: the same user in a container without compat's options becomes root
    control = client.containers.run(
        setuid_image, list(_REGAIN), user="65534:65534", network_mode="none",
        labels={RUN_LABEL: run_id()}, detach=True,
    )  # fmt: skip
    try:
        control.wait(timeout=60)
        assert "root again" in control.logs().decode()
    finally:
        control.remove(force=True)

    backend = DockerBackend(RunConfig(backend="docker"), cache_dir=tmp_path, client=client)
    target = probe_image(setuid_image, name="setuid", cache_dir=tmp_path, client=client)
    with backend.executor(backend.inspect(target)) as runner:
        done = runner.exec(list(_REGAIN), timeout=60)
        su = runner.exec(["su", "-c", "id -u", "root"], timeout=60)
    print(f"setuid python in compat's runner: {done.stdout.strip()} {done.stderr.strip()}")
    print(f"su in compat's runner: exit {su.exit_code}: {su.stderr.strip()}")
    assert done.stdout.strip() == "(65534, 65534, 65534)"
    assert "PermissionError" in done.stderr
    assert "root again" not in done.stdout
    assert done.exit_code != 0
    assert su.exit_code != 0
    assert su.stdout.strip() != "0"
