"""Every kind of container compat starts, on a real engine, through compat's own code
paths: what ``/proc/self/status`` says inside (NoNewPrivs 1, no effective or bounding
capability, the engine's seccomp filter, a uid that is not 0), no network interface
but the loopback where code from PyPI runs (a check, a build), and a setuid-root
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
from tests.helpers.docker import SpyEngine, counted_client

BOOKWORM = "local/debian-python:bookworm"
STATUS = ("cat", "/proc/self/status")
NET = ("cat", "/proc/net/dev")
NET_BEGIN, NET_END = "--- /proc/net/dev ---", "--- end ---"


def status_fields(text: str) -> dict[str, str]:
    fields = {}
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        key = key.strip()
        if sep and key in ("Uid", "Gid", "NoNewPrivs", "Seccomp", "CapEff", "CapPrm", "CapBnd"):
            fields[key] = " ".join(value.split())
    return fields


def interfaces(text: str) -> list[str]:
    """The network interfaces in a ``/proc/net/dev`` readout between NET_BEGIN and
    NET_END (the whole text without them)."""
    if NET_BEGIN in text:
        text = text.split(NET_BEGIN, 1)[1].split(NET_END, 1)[0]
    rows = [line for line in text.splitlines() if ":" in line and "|" not in line]
    return sorted(line.split(":", 1)[0].strip() for line in rows)


def assert_unprivileged(kind: str, fields: dict[str, str]) -> None:
    assert fields.get("NoNewPrivs") == "1", (kind, fields)
    assert int(fields["CapEff"], 16) == 0, (kind, fields)
    assert int(fields["CapPrm"], 16) == 0, (kind, fields)
    assert int(fields["CapBnd"], 16) == 0, (kind, fields)
    assert fields["Seccomp"] == "2", (kind, fields)  # a filter: the engine's default profile
    assert "0" not in fields["Uid"].split(), (kind, fields)  # real, effective, saved, fs


class _StatusReader:
    """Starts each container twice: once with its command replaced by a reader of
    ``/proc/self/status`` (kept, under the current ``kind``), once as asked."""

    def __init__(self) -> None:
        self.readouts: list[tuple[str, dict[str, str]]] = []
        self.kind = ""

    def __call__(self, client: Any, kwargs: dict[str, Any]) -> Any:
        twin = client.containers.run(**{**kwargs, "command": list(STATUS)})
        try:
            twin.wait(timeout=60)
            text = twin.logs(stdout=True, stderr=False).decode()
        finally:
            twin.remove(force=True)
        self.readouts.append((self.kind, status_fields(text)))
        return client.containers.run(**kwargs)


@pytest.fixture
def client() -> Iterator[Any]:
    with counted_client() as c:
        yield c


def _needs_root_sdist(directory: Path) -> Path:
    """A project whose build backend (in its own tree: nothing to download) prints the
    status of the build's process and its network interfaces, then wants root."""
    files = {
        "pyproject.toml": (
            '[build-system]\nrequires = []\nbuild-backend = "wantsroot"\nbackend-path = ["."]\n'
        ),
        "wantsroot.py": (
            "import os, sys\n"
            "def build_wheel(wheel_directory, config_settings=None, metadata_directory=None):\n"
            "    sys.stderr.write(open('/proc/self/status').read())\n"
            f"    sys.stderr.write({NET_BEGIN!r} + '\\n' + open('/proc/net/dev').read())\n"
            f"    sys.stderr.write({NET_END!r} + '\\n')\n"
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
    reader = _StatusReader()
    spy = SpyEngine(client, reader)
    cache = tmp_path / "cache"
    cache.mkdir()
    config = RunConfig(backend="docker")
    backend = DockerBackend(config, cache_dir=cache, client=spy)
    inside: list[tuple[str, dict[str, str]]] = []

    reader.kind = "probe"
    target = probe_image(BOOKWORM, name="bookworm", cache_dir=cache, client=spy)
    info = backend.inspect(target)

    reader.kind = "runner (smoke, deep)"
    with backend.executor(info) as runner:
        done = runner.exec(list(STATUS), timeout=60)
        inside.append(("runner exec (a check)", status_fields(done.stdout)))
        networks = [("runner exec (a check)", interfaces(runner.exec(list(NET)).stdout))]

    reader.kind = "compile"
    install = cache / "installs" / "tiny"
    install.mkdir(parents=True)
    (install / "tiny.py").write_text("X = 1\n")
    backend.compile(info, [install])
    (pyc,) = (install / "__pycache__").glob("tiny.*.pyc")
    # written by the unprivileged container, the host's again afterwards
    assert pyc.stat().st_uid == os.getuid()
    assert install.stat().st_uid == os.getuid()

    reader.kind = "builder"
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
    networks.append(("builder's build backend", interfaces(build_log)))

    reader.kind = "image smoke"
    run_smoke(
        spy, BOOKWORM, python="python3", site="/nonexistent", packages=[],
        package_manager=None, libc="glibc",
    )  # fmt: skip

    readouts = reader.readouts + inside
    for kind, fields in readouts:
        print(f"{kind}: {fields}")
    kinds = {kind for kind, _ in readouts}
    assert kinds == {
        "probe", "runner (smoke, deep)", "runner exec (a check)", "compile", "builder",
        "builder's build backend", "image smoke",
    }  # fmt: skip
    for kind, fields in readouts:
        assert_unprivileged(kind, fields)
    # no network where code from PyPI runs: the loopback interface alone
    for kind, names in networks:
        print(f"{kind}: network interfaces {names}")
    assert networks == [
        ("runner exec (a check)", ["lo"]),
        ("builder's build backend", ["lo"]),
    ]


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
