"""Probing an image, with a fake engine: facts become a Target, cached by image ID."""

from __future__ import annotations

import json
import platform
from pathlib import Path
from typing import Any

import pytest
from packaging.tags import Tag
from packaging.version import Version

from compat.config import RunConfig
from compat.errors import ImageUnavailable
from compat.harness.docker_backend import DockerBackend
from compat.targets.probe import PROBE_SCRIPT, host_facts, probe_image
from compat.targets.target import Libc, PackageManager, Target
from tests.helpers.container import FakeDockerContainer, FakeEngine

FACTS = {
    "python": "/usr/local/bin/python3",
    "python_version": "3.11.2",
    "cache_tag": "cpython-311",
    "magic": "a70d0d0a",
    "compiler": None,
    "timeout_utility": "/bin/timeout",
    "has_python_headers": False,
    "implementation": "cpython",
    "libc": "musl",
    "libc_version": [1, 2],
    "machine": "x86_64",
    "tags": [
        "cp311-cp311-musllinux_1_2_x86_64",
        "cp311-cp311-musllinux_1_1_x86_64",
        "cp311-abi3-musllinux_1_2_x86_64",
        "py3-none-any",
    ],
    "package_manager": "apk",
}


class ProbeEngine(FakeEngine):
    def __init__(self, stdout: str) -> None:
        super().__init__()
        self.stdout = stdout
        engine = self

        class Containers:
            def run(self, **kwargs: Any) -> FakeDockerContainer:
                c = FakeDockerContainer(engine, kwargs)
                c.logs = lambda stdout=True, stderr=True: (  # type: ignore[method-assign]
                    engine.stdout.encode() if stdout else b""
                )
                engine.containers_.append(c)
                engine.started.append(c)
                return c

            def list(self, **_: Any) -> list[Any]:
                return []

        self.containers = Containers()  # type: ignore[assignment]


def test_probe_reports_the_image_as_a_target_and_caches_it(tmp_path: Path) -> None:
    engine = ProbeEngine("noise\n" + json.dumps(FACTS) + "\n")
    target = probe_image("local/musl-python:3.11", name="musl", cache_dir=tmp_path, client=engine)
    assert target.probed
    assert target.image_id == "sha256:local/musl-python:3.11"
    assert target.name == "musl"
    assert target.image == "local/musl-python:3.11"
    assert target.python_version == Version("3.11.2")
    assert (target.libc, target.libc_version) == (Libc.MUSL, (1, 2))
    assert target.tags[0] == Tag("cp311", "cp311", "musllinux_1_2_x86_64")
    assert [str(t) for t in target.tags] == FACTS["tags"]  # order kept
    assert target.package_manager == "apk"
    assert Target.from_json(target.to_json()) == target  # as the results database keeps it
    (started,) = engine.started
    kwargs = started.kwargs
    assert kwargs["network_mode"] == "none"
    assert kwargs["command"][:3] == ["python3", "-I", "-S"]
    assert kwargs["command"][-1] == "/opt/compat-probe"  # where packaging is mounted
    assert kwargs["user"] == "65534:65534"
    mount = kwargs["mounts"][0]
    assert mount["Target"] == "/opt/compat-probe/packaging"
    assert mount["ReadOnly"] is True
    assert engine.containers_ == []  # removed

    again = probe_image("local/musl-python:3.11", name="other", cache_dir=tmp_path, client=engine)
    assert len(engine.started) == 1  # from the cache: no container
    assert again.name == "other"
    assert again.tags == target.tags
    assert again.package_manager == "apk"


def test_a_probe_cached_before_package_managers_were_asked_for_is_done_again(
    tmp_path: Path,
) -> None:
    engine = ProbeEngine(json.dumps(FACTS) + "\n")
    probe_image("local/musl-python:3.11", name="musl", cache_dir=tmp_path, client=engine)
    (cached,) = (tmp_path / "probes").rglob("*.json")
    old = {k: v for k, v in FACTS.items() if k != "package_manager"}
    cached.write_text(json.dumps(old))  # as an earlier compat left it
    target = probe_image("local/musl-python:3.11", name="musl", cache_dir=tmp_path, client=engine)
    assert len(engine.started) == 2
    assert target.package_manager == "apk"
    assert json.loads(cached.read_text())["package_manager"] == "apk"


@pytest.mark.parametrize("damage", ["", '{"python": "/usr/local/bin/py', "[1, 2]\n"])
def test_a_damaged_probe_cache_file_is_probed_again(
    tmp_path: Path, damage: str, caplog: pytest.LogCaptureFixture
) -> None:
    engine = ProbeEngine(json.dumps(FACTS) + "\n")
    clean = probe_image("local/musl-python:3.11", name="musl", cache_dir=tmp_path, client=engine)
    (cached,) = (tmp_path / "probes").rglob("*.json")
    cached.write_text(damage)  # what a torn write or a full disk could leave
    again = probe_image("local/musl-python:3.11", name="musl", cache_dir=tmp_path, client=engine)
    assert len(engine.started) == 2
    assert again == clean
    assert json.loads(cached.read_text()) == FACTS  # repaired
    assert [r.getMessage() for r in caplog.records] == [
        f"ignoring a damaged probe cache file {cached}"
    ]


def test_missing_image_is_image_unavailable(tmp_path: Path) -> None:
    with pytest.raises(ImageUnavailable, match="absent"):
        probe_image("absent", name="x", cache_dir=tmp_path, client=ProbeEngine(""))


def test_probe_script_runs_on_this_python() -> None:
    import subprocess
    import sys

    import packaging

    parent = Path(packaging.__file__).resolve().parent.parent
    out = subprocess.run(
        [sys.executable, "-I", "-S", "-c", PROBE_SCRIPT, str(parent)],
        capture_output=True,
        text=True,
        check=True,
    )
    facts = json.loads(out.stdout)
    assert facts["implementation"] == "cpython"
    assert facts["libc"] in ("glibc", "musl")
    from packaging.tags import sys_tags

    assert facts["tags"] == [str(t) for t in sys_tags()]
    assert facts["package_manager"] in ("apk", "apt", "dnf", None)


def test_one_probe_serves_planning_and_running(tmp_path: Path) -> None:
    """The harness asks the same cache the planner filled: no second container."""
    engine = ProbeEngine(json.dumps({**FACTS, "package_manager": "dnf", "compiler": "/usr/bin/cc"}))
    target = probe_image("fedora-ish", name="f", cache_dir=tmp_path, client=engine)
    assert target.package_manager is PackageManager.DNF
    runtime = DockerBackend(RunConfig(), cache_dir=tmp_path, client=engine)
    info = runtime.inspect(target)
    assert len(engine.started) == 1
    assert info.facts.package_manager is PackageManager.DNF
    assert info.facts.python == "/usr/local/bin/python3"
    assert info.facts.compiler == "/usr/bin/cc"
    assert info.interpreter_key == "cpython-311-a70d0d0a"
    assert info.facts.libc is Libc.MUSL


def test_host_facts_describe_this_interpreter() -> None:
    import sys

    facts = host_facts(sys.executable)
    assert facts.python_version == Version(platform.python_version())
    assert facts.cache_tag == sys.implementation.cache_tag
    target = facts.target(name="host", image="host", image_id=None)
    assert target.probed
    assert target.tags == facts.tags
