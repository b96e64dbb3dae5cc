"""Every kind of container compat starts (probe, runner for smoke and deep, compile,
builder, image smoke) is created unprivileged, against a fake engine: all
capabilities dropped, no-new-privileges, memory and pid limits, a user that is not
root. The real-engine readout is tests/integration/test_privileges.py."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
from packaging.utils import canonicalize_name
from packaging.version import Version

from compat.config import RunConfig, ToolchainChoice
from compat.effects.container import ContainerSpec, ExecResult
from compat.effects.users import NOBODY, given, is_root, lent, worker_ids
from compat.errors import BuildFailed, HarnessError
from compat.harness.docker_backend import OFFLINE, DockerBackend
from compat.harness.toolchain import FIND_LINKS
from compat.image.smoke import run_smoke
from compat.model import FileKind, Pin
from compat.targets.probe import image_facts
from tests.helpers.container import FakeEngine
from tests.helpers.harness import image_info


def _started_kinds(tmp_path: Path) -> dict[str, dict[str, Any]]:
    engine = FakeEngine()
    backend = DockerBackend(RunConfig(backend="docker"), cache_dir=tmp_path, client=engine)
    kinds: dict[str, dict[str, Any]] = {}

    def started(kind: str) -> None:
        kinds[kind] = engine.started[-1].kwargs

    with pytest.raises(HarnessError):  # the fake's output is no probe answer
        image_facts(engine, "sha256:img", cache_dir=tmp_path)
    started("probe")
    info = image_info(compiler="/usr/bin/cc", has_python_headers=True)
    with backend.executor(info):
        started("runner")
    install = tmp_path / "installs" / "abc"
    install.mkdir(parents=True)
    backend.compile(info, [install])
    started("compile")
    sdist, pin = _sdist_pin(tmp_path)
    out = tmp_path / "out"
    out.mkdir()
    with pytest.raises(BuildFailed):  # the fake builds no wheel
        backend.build_wheel(info, pin, sdist, out)
    started("builder")
    run_smoke(
        engine, "img", python="/venv/bin/python", site="/venv/site", packages=["x"],
        package_manager=None, libc="glibc",
    )  # fmt: skip
    started("image smoke")
    return kinds


def test_every_container_kind_is_started_unprivileged(tmp_path: Path) -> None:
    kinds = _started_kinds(tmp_path)
    assert sorted(kinds) == ["builder", "compile", "image smoke", "probe", "runner"]
    for kind, kwargs in kinds.items():
        assert kwargs["cap_drop"] == ["ALL"], kind
        assert kwargs["security_opt"] == ["no-new-privileges"], kind
        assert not is_root(kwargs["user"]), (kind, kwargs["user"])
        assert kwargs["mem_limit"] == kwargs["memswap_limit"] == "4g", kind
        assert kwargs["pids_limit"] == 2048, kind
        assert "privileged" not in kwargs, kind
        assert "cap_add" not in kwargs, kind
    # none reaches the network: the builder's requirements are fetched for it
    assert {k: kw["network_mode"] for k, kw in kinds.items()} == dict.fromkeys(kinds, "none")


def test_a_container_spec_refuses_root() -> None:
    for user in ("0", "0:0", "root", "root:root", ""):
        with pytest.raises(ValueError, match="as root"):
            ContainerSpec(image="img", command=("true",), user=user)
    assert ContainerSpec(image="img", command=("true",)).user == "65534:65534"


def test_containers_writing_host_files_run_as_the_host_user_or_nobody() -> None:
    assert worker_ids(1000, 1000) == (1000, 1000)
    assert worker_ids(0, 0) == NOBODY


@pytest.mark.skipif(os.getuid() != 0, reason="lending a directory to another user needs root")
def test_a_lent_directory_comes_back_with_what_was_made_in_it(tmp_path: Path) -> None:
    top = tmp_path / "out"
    (top / "sub").mkdir(parents=True)
    (top / "sub" / "kept.py").write_text("")
    with lent([top], NOBODY):
        assert (top.stat().st_uid, (top / "sub").stat().st_uid) == (NOBODY[0], NOBODY[0])
        assert (top / "sub" / "kept.py").stat().st_uid == 0  # files stay the host's
        made = top / "sub" / "__pycache__"
        made.mkdir()
        os.chown(made, *NOBODY)
        (made / "kept.pyc").write_bytes(b"")
        os.chown(made / "kept.pyc", *NOBODY)
    owners = {p.stat().st_uid for p in (top, *top.rglob("*"))}
    assert owners == {0}


@pytest.mark.skipif(os.getuid() != 0, reason="giving a directory to another user needs root")
def test_the_pypi_toolchain_is_the_unprivileged_builders_for_good(tmp_path: Path) -> None:
    """Builds that share it at once never take it from each other."""
    home = tmp_path / "toolchain"
    (home / "venv" / "bin").mkdir(parents=True)
    (home / "venv" / "bin" / "zig").write_text("")
    given(home, NOBODY)
    assert {p.stat().st_uid for p in (home, *home.rglob("*"))} == {NOBODY[0]}


def _sdist_pin(tmp_path: Path) -> tuple[Path, Pin]:
    sdist = tmp_path / "sdists" / "x-1.tar.gz"
    sdist.parent.mkdir()
    sdist.write_bytes(b"")
    pin = Pin(
        name=canonicalize_name("x"), version=Version("1"), filename=sdist.name,
        url="https://example.invalid/x-1.tar.gz", sha256="0" * 64, kind=FileKind.SDIST,
    )  # fmt: skip
    return sdist, pin


@pytest.mark.parametrize("toolchain", [ToolchainChoice.PYPI, ToolchainChoice.AUTO])
def test_the_builder_has_no_network_and_only_what_compat_fetched(
    tmp_path: Path, toolchain: ToolchainChoice
) -> None:
    engine = FakeEngine()
    config = RunConfig(backend="docker", toolchain=toolchain)
    backend = DockerBackend(config, cache_dir=tmp_path, client=engine)
    info = image_info(compiler="/usr/bin/cc", has_python_headers=True)  # AUTO: the image's
    sdist, pin = _sdist_pin(tmp_path)
    (out := tmp_path / "out").mkdir()
    (wheels := tmp_path / "wheels").mkdir()
    with pytest.raises(BuildFailed):  # the fake builds no wheel
        backend.build_wheel(info, pin, sdist, out, requires=wheels)
    kwargs = engine.started[-1].kwargs
    assert kwargs["network_mode"] == "none"
    assert not {"PIP_INDEX_URL", "HTTPS_PROXY", "PIP_CERT"} & set(kwargs["environment"])
    (mount,) = [m for m in kwargs["mounts"] if m["Target"] == FIND_LINKS]
    assert (mount["Source"], mount["ReadOnly"]) == (str(wheels), True)
    script = [e["cmd"] for e in engine.api.execs.values()][-1][-1]
    pips = [line for line in script.replace("; ", "\n").splitlines() if "-m pip " in line]
    assert pips
    assert all("--no-index --find-links /compat/build-wheels" in line for line in pips)


def test_a_build_that_reaches_for_the_network_fails_saying_so(tmp_path: Path) -> None:
    backend = DockerBackend(RunConfig(backend="docker"), cache_dir=tmp_path, client=FakeEngine())
    _, pin = _sdist_pin(tmp_path)
    output = "downloading https://example.invalid/src.tar.gz\n" + (
        "OSError: [Errno 101] Network is unreachable\nerror: subprocess-exited-with-error\n"
    )
    with pytest.raises(BuildFailed) as failed:
        backend._outcome(
            pin, ExecResult(exit_code=1, stdout=output, stderr="", duration=1.0), "65534", tmp_path
        )
    assert failed.value.reason == (
        "the build reached for the network, and builds run without one: "
        "OSError: [Errno 101] Network is unreachable"
    )
    assert not failed.value.transient  # the package's own doing: kept
    assert (tmp_path / "compat-build.log").read_text().endswith(OFFLINE + "\n")
