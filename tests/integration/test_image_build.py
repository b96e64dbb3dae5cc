"""Images built from lock directories on the real engine (its classic builder, as the
docker SDK drives it) and the local base images: the lock's own Dockerfile is built
unchanged, the smoke suite passes inside, the build can run without network from
compat's wheelhouse, a proxy's CA reaches pip in the builder stage and no layer of the
image, a tampered file stops it, sdists are built in a builder stage, and no container
is left behind."""

from __future__ import annotations

import contextlib
import dataclasses
import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from docker.errors import ImageNotFound

from compat.effects.container import SESSION_LABEL, image_id
from compat.effects.http import http_client
from compat.effects.images import build
from compat.effects.owners import RUN_LABEL, run_id
from compat.errors import ImageBuildFailed, ImageUnavailable, WheelhouseIncomplete
from compat.harness.wheelhouse import FileRef, Wheelhouse
from compat.image import ImageReport, build_image, stored_file
from compat.image.build import prepare_context, stage_images
from compat.index.pypi import PyPIIndex
from compat.lock import APP_UID, DOCKERFILE, LockInput, write_lock
from compat.model import Combo, FileKind, Pin, Verdict
from compat.resolve.candidates import CandidateSource, requested
from compat.resolve.resolver import Resolver
from compat.settings import NetworkSettings
from compat.targets.probe import probe_image
from compat.targets.target import PackageManager, Target
from tests.helpers.docker import buildkit_build, require_docker
from tests.helpers.lock import record_build

BOOKWORM = "local/debian-python:bookworm"
MUSL = "local/musl-python:3.11"


@pytest.fixture(scope="module")
def client() -> Iterator[Any]:
    require_docker()
    import docker

    client = docker.from_env(timeout=1800)
    yield client
    client.close()


@pytest.fixture(scope="module")
def network() -> NetworkSettings:
    return NetworkSettings.from_env(os.environ)


@pytest.fixture(scope="module")
def cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("compat-cache")


@pytest.fixture(scope="module")
def bookworm(client: Any, cache: Path) -> Target:
    return probe_image(BOOKWORM, name="bookworm", cache_dir=cache, client=client)


@pytest.fixture(scope="module")
def numpy_pandas(bookworm: Target, network: NetworkSettings, cache: Path) -> LockInput:
    with PyPIIndex(network, cache_dir=cache / "index") as index:
        combo = Resolver(CandidateSource(index, bookworm)).resolve(
            [requested("numpy"), requested("pandas")]
        )
    assert isinstance(combo, Combo), combo
    return LockInput(target=bookworm, combo=combo, package_manager=PackageManager.APT)


@pytest.fixture
def tags(client: Any) -> Iterator[list[str]]:
    """Tags a test builds; removed afterwards, and no container may remain of them
    (or of this run's image smoke containers)."""
    made: list[str] = []
    yield made
    leftovers = [
        c.short_id
        for c in client.containers.list(all=True)
        if (
            c.labels.get(RUN_LABEL) == run_id()
            and c.labels.get(SESSION_LABEL, "").startswith(("image-smoke-", "image-startup-"))
        )
        or any(t in made for t in c.image.tags)
    ]
    for tag in made:
        with contextlib.suppress(Exception):  # a test that failed before building
            client.images.remove(tag, force=True)
    assert not leftovers, f"containers left behind: {leftovers}"


def _tag(tags: list[str], name: str) -> str:
    tag = f"compat-test/{name}:{uuid.uuid4().hex[:8]}"
    tags.append(tag)
    return tag


def _run(client: Any, image: str, *argv: str) -> str:
    out = client.containers.run(image, list(argv), remove=True, network_disabled=True)
    return bytes(out).decode().strip()


def _assert_passed(report: ImageReport, *, packages: int) -> None:
    assert report.verdict is Verdict.PASS, (report.error, report.failed_check)
    assert report.ok
    failing = {k: v for k, v in report.counts.items() if k not in ("pass", "skipped") and v}
    assert not failing
    assert report.counts["pass"] >= packages  # one import check each, at least
    assert {f"import:{p}" for p in ("numpy", "pandas")[:packages]} <= {
        c.name for c in report.checks if c.verdict.value == "pass"
    }


@pytest.fixture(scope="module")
def wheelhouse(numpy_pandas: LockInput, network: NetworkSettings, cache: Path) -> Path:
    """compat's cache with every file of ``numpy_pandas`` fetched into it."""
    pins = numpy_pandas.combo.pins
    refs = [FileRef(filename=p.filename, url=p.url, sha256=p.sha256) for p in pins]
    with http_client(network) as http:
        _, failed = Wheelhouse(cache, http).fetch(refs)
    assert not failed
    return cache


def test_the_lock_dockerfile_builds_unchanged_offline(
    client: Any, numpy_pandas: LockInput, wheelhouse: Path, tmp_path: Path, tags: list[str]
) -> None:
    """What `compat lock` writes is what `compat image` builds, byte for byte, with the
    classic builder; with compat's wheelhouse in the context it needs no network."""
    write_lock(numpy_pandas, tmp_path / "lock")
    written = (tmp_path / "lock" / DOCKERFILE).read_text()
    lines: list[str] = []
    report = build_image(
        tmp_path / "lock",
        tag=_tag(tags, "numpy-pandas"),
        client=client,
        wheelhouse=wheelhouse,
        build_network="none",  # pip cannot download anything: the context must suffice
        on_line=lines.append,
    )
    print(f"offline build {report.build_seconds:.1f} s, smoke {report.smoke_seconds:.1f} s")
    assert report.dockerfile == written
    assert lines[0].startswith("Step 1/")
    assert lines[0].endswith(f": ARG BASE={BOOKWORM}")
    _assert_passed(report, packages=2)
    assert report.combination == numpy_pandas.combo.id
    assert report.base_image == BOOKWORM
    # sizes: the added layers are exactly what the image has over its base, the venv
    # copied from the builder stage most of it
    assert report.size == report.base_size + report.added_size
    venv = max(report.layers, key=lambda layer: layer.size)
    assert venv.instruction.startswith("COPY ")
    assert venv.instruction.endswith("/opt/venv")
    assert venv.size > 0.9 * report.added_size
    image = client.images.get(report.image_id)
    assert image.attrs["Config"]["User"] == f"{APP_UID}:{APP_UID}"
    assert not any("CERT" in e or "SECRET" in e for e in image.attrs["Config"]["Env"])
    # the image's own user, HOME and venv; pip and the test folders pruned away
    who = _run(client, report.tag, "python", "-c", "import os, sys; print(os.getuid(), sys.prefix)")
    assert who == f"{APP_UID} /opt/venv"
    assert _run(client, report.tag, "sh", "-c", "echo $HOME") == "/home/app"
    pruned = _run(
        client,
        report.tag,
        "sh",
        "-c",
        "ls /opt/venv/bin/pip 2>/dev/null; find /opt/venv -name tests",
    )
    assert pruned == ""
    # bytecode compiled in the builder stage: the image's user imports without compiling
    compiled = _run(
        client, report.tag, "sh", "-c", "find /opt/venv/lib -path '*/numpy/__pycache__/*.pyc'"
    )
    assert "__init__.cpython-" in compiled
    # the builder stage, holding a copy of every wheel, is gone
    [builder] = stage_images(lines)
    with pytest.raises(ImageNotFound):
        client.images.get(builder)
    # none of the wheels reached a layer of the final image
    assert not [layer for layer in report.layers if "/tmp/compat" in layer.created_by]
    assert _run(client, report.tag, "sh", "-c", "ls /tmp/compat 2>&1 || true").endswith(
        "No such file or directory"
    )


def test_the_lock_dockerfile_builds_with_buildkit_too(
    client: Any,
    numpy_pandas: LockInput,
    wheelhouse: Path,
    network: NetworkSettings,
    tmp_path: Path,
    tags: list[str],
) -> None:
    """The same file, unchanged, with the engine's BuildKit (what `docker build` uses
    where buildx is installed): offline from the same context, CA bundle included,
    and nothing of that context in the image."""
    write_lock(numpy_pandas, tmp_path / "lock")
    context = prepare_context(
        tmp_path / "lock",
        numpy_pandas,
        tmp_path / "context",
        wheelhouse=wheelhouse,
        ca_bundle=network.ca_bundle,
    )
    assert (context / DOCKERFILE).read_bytes() == (tmp_path / "lock" / DOCKERFILE).read_bytes()
    tag = _tag(tags, "buildkit")
    buildkit_build(client, context, tag=tag, network_mode="none")
    who = _run(
        client, tag, "python", "-c", "import os, pandas; print(os.getuid(), pandas.__name__)"
    )
    assert who == f"{APP_UID} pandas"
    leftovers = _run(
        client,
        tag,
        "sh",
        "-c",
        "find / -xdev -name ca.crt 2>/dev/null; ls -d /tmp/compat 2>/dev/null; true",
    )
    assert leftovers == ""
    history = client.images.get(tag).history()
    assert not [h for h in history if "ca.crt" in h.get("CreatedBy", "")]


@pytest.fixture
def untrusting_base(client: Any) -> Iterator[str]:
    """The bookworm image with an empty CA bundle: it trusts no certificate, as a base
    behind a TLS-inspecting proxy does not trust the proxy's."""
    tag = f"compat-test/untrusting:{uuid.uuid4().hex[:8]}"
    build(
        client,
        tag=tag,
        dockerfile=f"FROM {BOOKWORM}\nRUN : > /etc/ssl/certs/ca-certificates.crt\n",
        labels={},
    )
    yield tag
    with contextlib.suppress(Exception):
        client.images.remove(tag, force=True)


def test_a_proxy_ca_reaches_pip_in_the_builder_stage_only(
    client: Any,
    bookworm: Target,
    network: NetworkSettings,
    cache: Path,
    untrusting_base: str,
    tmp_path: Path,
    tags: list[str],
) -> None:
    """With the classic builder (no secret mounts): on a base that trusts no
    certificate, pip in the builder stage reaches the index through the CA bundle the
    context brings (ca.crt), and the image holds no copy of it. The base comes in as
    the Dockerfile's BASE build arg."""
    assert network.ca_bundle is not None, "this machine reaches PyPI through a CA bundle"
    with PyPIIndex(network, cache_dir=cache / "index") as index:
        combo = Resolver(CandidateSource(index, bookworm)).resolve([requested("six")])
    assert isinstance(combo, Combo), combo
    lock = LockInput(target=bookworm, combo=combo, package_manager=PackageManager.APT)
    write_lock(lock, tmp_path / "lock")
    tag = _tag(tags, "ca")
    without = dataclasses.replace(network, ca_bundle=None)
    with pytest.raises(ImageBuildFailed, match="ssl certificate"):  # the base alone: no index
        build_image(
            tmp_path / "lock",
            tag=tag,
            client=client,
            base_image=untrusting_base,
            network=without,
            smoke=False,
        )
    report = build_image(
        tmp_path / "lock", tag=tag, client=client, base_image=untrusting_base, network=network
    )
    print(f"build through the CA {report.build_seconds:.1f} s")
    assert report.verdict is Verdict.PASS, (report.error, report.failed_check)
    assert report.dockerfile == (tmp_path / "lock" / DOCKERFILE).read_text()
    assert "import:six" in {c.name for c in report.checks if c.verdict.value == "pass"}
    found = _run(
        client,
        report.tag,
        "sh",
        "-c",
        "find / -xdev -name ca.crt 2>/dev/null; wc -c < /etc/ssl/certs/ca-certificates.crt",
    )
    assert found == "0"  # no ca.crt anywhere, the base's bundle still empty
    assert not [layer for layer in report.layers if "ca.crt" in layer.created_by]


def test_a_tampered_wheelhouse_file_fails_the_build(
    client: Any, numpy_pandas: LockInput, wheelhouse: Path, tmp_path: Path, tags: list[str]
) -> None:
    bad = tmp_path / "bad-cache"
    for pin in numpy_pandas.combo.pins:
        dest = stored_file(bad, pin)
        dest.parent.mkdir(parents=True)
        shutil.copyfile(stored_file(wheelhouse, pin), dest)
    numpy = numpy_pandas.combo.pin("numpy")
    with stored_file(bad, numpy).open("ab") as f:
        f.write(b"tampered")
    write_lock(numpy_pandas, tmp_path / "lock")
    tag = _tag(tags, "tampered")
    with pytest.raises(ImageBuildFailed) as failure:
        build_image(tmp_path / "lock", tag=tag, client=client, wheelhouse=bad, build_network="none")
    assert "DO NOT MATCH THE HASHES" in str(failure.value).upper()
    assert not client.images.list(name=tag)
    # the half-built builder stage (base + a copy of every wheel) is gone too
    for image in stage_images(failure.value.log.splitlines(), failed=True):
        with pytest.raises(ImageNotFound):
            client.images.get(image)


def test_missing_wheelhouse_files_are_named(
    client: Any, numpy_pandas: LockInput, tmp_path: Path
) -> None:
    write_lock(numpy_pandas, tmp_path / "lock")
    with pytest.raises(WheelhouseIncomplete, match="numpy=="):
        build_image(
            tmp_path / "lock", tag="compat-test/never:x", client=client, wheelhouse=tmp_path
        )


def test_a_missing_base_image_says_so(client: Any, numpy_pandas: LockInput, tmp_path: Path) -> None:
    write_lock(numpy_pandas, tmp_path / "lock")
    with pytest.raises(ImageUnavailable, match="not on this machine"):
        build_image(
            tmp_path / "lock",
            tag="compat-test/never:x",
            client=client,
            base_image="local/no-such-image:1",
        )


def test_sdist_is_built_in_a_builder_stage(
    client: Any,
    bookworm: Target,
    network: NetworkSettings,
    cache: Path,
    tmp_path: Path,
    tags: list[str],
) -> None:
    """six from its source distribution: built with the toolchain in the builder
    stage, hash-checked, its requirements line then already satisfied; the final
    image has the venv and no compiler."""
    with PyPIIndex(network, cache_dir=cache / "index") as index:
        combo = Resolver(CandidateSource(index, bookworm)).resolve([requested("six")])
        assert isinstance(combo, Combo)
        six = combo.pin("six")
        sdist = next(
            f
            for f in index.files(six.name)
            if f.kind is FileKind.SDIST and f.version == six.version
        )
    combo = Combo(target=combo.target, pins=(Pin.of(sdist),), requested=combo.requested)
    lock = LockInput(target=bookworm, combo=combo, package_manager=PackageManager.APT)
    assert lock.source_builds
    write_lock(lock, tmp_path / "lock")
    report = build_image(tmp_path / "lock", tag=_tag(tags, "sdist"), client=client)
    assert report.verdict is Verdict.PASS, (report.error, report.failed_check)
    assert "import:six" in {c.name for c in report.checks if c.verdict.value == "pass"}
    assert report.dockerfile.count("FROM ") == 2
    assert "build-essential" in report.dockerfile
    version = _run(client, report.tag, "python", "-c", "import six; print(six.__version__)")
    assert version == str(sdist.version)
    assert _run(client, report.tag, "sh", "-c", "command -v gcc cc || true") == ""
    assert report.added_size < 20e6  # the venv alone: no toolchain came along


def test_a_base_without_package_manager_gets_its_user_written_in(
    client: Any, network: NetworkSettings, cache: Path, tmp_path: Path, tags: list[str]
) -> None:
    """The musl image has BusyBox and no package manager or user tools: the account
    goes straight into /etc/passwd and the pruning commands work with BusyBox's find."""
    musl = probe_image(MUSL, name="musl", cache_dir=cache, client=client)
    with PyPIIndex(network, cache_dir=cache / "index") as index:
        combo = Resolver(CandidateSource(index, musl)).resolve([requested("six")])
    assert isinstance(combo, Combo), combo
    write_lock(LockInput(target=musl, combo=combo, package_manager=None), tmp_path / "lock")
    report = build_image(tmp_path / "lock", tag=_tag(tags, "musl"), client=client)
    assert report.verdict is Verdict.PASS, (report.error, report.failed_check)
    assert "import:six" in {c.name for c in report.checks if c.verdict.value == "pass"}
    assert _run(client, report.tag, "sh", "-c", "id -u; echo $HOME") == f"{APP_UID}\n/home/app"


def test_a_musl_image_takes_the_wheels_the_scan_built(
    client: Any, network: NetworkSettings, cache: Path, tmp_path: Path, tags: list[str]
) -> None:
    """six locked from its sdist on the musl base (no package manager: its builder
    stage would install zig and friends from PyPI): with the wheel a scan built on that
    image in the wheelhouse, the lock's Dockerfile installs it with no toolchain, no
    compiling and no network."""
    musl = probe_image(MUSL, name="musl", cache_dir=cache, client=client)
    with PyPIIndex(network, cache_dir=cache / "index") as index:
        combo = Resolver(CandidateSource(index, musl)).resolve([requested("six")])
        assert isinstance(combo, Combo), combo
        wheel = combo.pin("six")
        sdist = Pin.of(
            next(
                f
                for f in index.files(wheel.name)
                if f.kind is FileKind.SDIST and f.version == wheel.version
            )
        )
    refs = [FileRef(filename=p.filename, url=p.url, sha256=p.sha256) for p in (sdist, wheel)]
    with http_client(network) as http:
        _, failed = Wheelhouse(cache, http).fetch(refs)
    assert not failed
    # the "scan" built the sdist into the very wheel PyPI has: what matters is the path
    record_build(
        cache,
        sdist_sha256=sdist.sha256,
        image_id=image_id(client, MUSL),
        wheel=stored_file(cache, wheel),
    )
    lock = LockInput(
        target=musl,
        combo=Combo(target=combo.target, pins=(sdist,), requested=combo.requested),
        package_manager=None,
    )
    write_lock(lock, tmp_path / "lock")
    assert "ziglang" in (tmp_path / "lock" / DOCKERFILE).read_text()
    lines: list[str] = []
    report = build_image(
        tmp_path / "lock",
        tag=_tag(tags, "musl-prebuilt"),
        client=client,
        wheelhouse=cache,
        build_network="none",  # a toolchain or an sdist build would need the index
        on_line=lines.append,
    )
    print(f"musl build from the scan's wheels {report.build_seconds:.1f} s")
    assert report.verdict is Verdict.PASS, (report.error, report.failed_check)
    assert report.dockerfile == (tmp_path / "lock" / DOCKERFILE).read_text()
    said = [line.strip() for line in lines if not line.startswith("Step ")]  # no commands
    assert "compat: wheels built on this base are in the context: no toolchain" in said
    assert not [line for line in said if line.startswith("compat: zig")]
    version = _run(client, report.tag, "python", "-c", "import six; print(six.__version__)")
    assert version == str(wheel.version)
