"""Building images from a lock, without an engine: the build context, the layers
added over a base, the builder stages found in a build log, the smoke command."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from pathlib import Path
from typing import Any

import pytest
from docker.errors import APIError

from compat.config import RunConfig, Timeouts
from compat.errors import HarnessError, WheelhouseIncomplete
from compat.harness.builds import build_record_path
from compat.harness.wheelhouse import stored_path
from compat.image import ImageReport, Layer, measure, prepare_context, stored_file
from compat.image.build import prebuilt_wheels, remove_stage_images, stage_images
from compat.image.report import count_checks
from compat.image.smoke import run_smoke, smoke_argv
from compat.lock import DOCKERFILE, REQUIREMENTS, render_dockerfile, write_lock
from compat.lock.dockerfile import CA_FILE
from compat.model import CheckKind, CheckResult, CheckVerdict, Verdict
from compat.targets.target import PackageManager
from tests.helpers.container import FakeEngine
from tests.helpers.lock import make_lock, record_build

# what the classic builder printed for a two-stage build (trimmed)
BUILD_LOG = """\
Step 1/7 : FROM local/debian-python:bookworm AS build
 ---> 4ad34075fa6b
Step 2/7 : USER root
 ---> Running in 6ca659ecf43d
 ---> 847b1d2e12ef
Step 3/7 : RUN echo a > /a
 ---> Using cache
 ---> bf3e07a5b451
Step 4/7 : RUN echo b > /b
 ---> Running in 507e8fa109ca
Removing intermediate container 507e8fa109ca
 ---> bc87ca301e1e
Step 5/7 : FROM local/debian-python:bookworm
 ---> 4ad34075fa6b
Step 6/7 : COPY --from=build /a /a
 ---> 02d96c8431e3
Step 7/7 : LABEL compat.image=1
 ---> Running in 3dff5ce0d875
 ---> e700f6aa0293
Successfully built e700f6aa0293
""".splitlines()


def test_stage_images_are_each_earlier_stages_last_image() -> None:
    assert stage_images(BUILD_LOG) == ["bc87ca301e1e"]
    one_stage = [ln for ln in BUILD_LOG if not ln.startswith("Step 5/7")]
    assert stage_images(one_stage) == []
    three = [
        *BUILD_LOG[:12],
        "Step 5/9 : FROM other AS tools",
        " ---> aaaaaaaaaaaa",
        *BUILD_LOG[12:],
    ]
    assert stage_images(three) == ["bc87ca301e1e", "aaaaaaaaaaaa"]
    # a build that failed at step 4 leaves step 3's image, which nothing names
    assert stage_images(BUILD_LOG[:9], failed=True) == ["bf3e07a5b451"]
    assert stage_images(BUILD_LOG, failed=True) == ["bc87ca301e1e", "e700f6aa0293"]


class _Images:
    def __init__(self, tags: dict[str, list[str]], fail: set[str]) -> None:
        self.tags = tags
        self.fail = fail
        self.removed: list[str] = []

    def get(self, name: str) -> Any:
        return type("Image", (), {"tags": self.tags.get(name, [])})()

    def pull(self, name: str) -> Any:
        raise APIError("no registry")

    def list(self, filters: dict[str, Any] | None = None) -> list[Any]:
        return []

    def remove(self, name: str, force: bool = False) -> None:
        if name in self.fail:
            raise APIError("conflict: image has dependent child images")
        self.removed.append(name)


def test_builder_stage_images_are_removed_but_not_base_tagged_or_shared() -> None:
    log = [*BUILD_LOG[:12], "Step 5/9 : FROM b", " ---> 4ad34075fa6b", *BUILD_LOG[12:]]
    images = _Images(tags={}, fail=set())
    remove_stage_images(images, log, keep={"sha256:4ad34075fa6b" + "0" * 52})
    assert images.removed == ["bc87ca301e1e"]  # the base's id is kept
    tagged = _Images(tags={"bc87ca301e1e": ["mine:1"]}, fail=set())
    remove_stage_images(tagged, BUILD_LOG, keep=set())
    assert tagged.removed == []
    shared = _Images(tags={}, fail={"bc87ca301e1e"})
    remove_stage_images(shared, BUILD_LOG, keep=set())  # no exception
    assert shared.removed == []


class _Api:
    def __init__(self, images: dict[str, tuple[dict[str, Any], list[dict[str, Any]]]]) -> None:
        self.images = images

    def inspect_image(self, name: str) -> dict[str, Any]:
        return self.images[name][0]

    def history(self, name: str) -> list[dict[str, Any]]:
        return self.images[name][1]


def _fake_engine() -> Any:
    base = (
        {"Size": 123_000_000, "RootFS": {"Layers": ["sha256:base"]}},
        [{"CreatedBy": "", "Size": 123_000_000}],
    )
    image = (
        {"Size": 405_000_000, "RootFS": {"Layers": ["sha256:base", "sha256:l1", "sha256:l2"]}},
        [  # newest first, as the engine lists them
            {"CreatedBy": "/bin/sh -c #(nop)  USER 10001:10001", "Size": 0},
            {"CreatedBy": "/bin/sh -c #(nop) COPY dir:abc in /opt/venv ", "Size": 280_000_000},
            {"CreatedBy": "/bin/sh -c apt-get update -q  && apt-get install libgomp1", "Size": 2e6},
            {"CreatedBy": "", "Size": 123_000_000},
        ],
    )
    other = ({"Size": 1, "RootFS": {"Layers": ["sha256:elsewhere"]}}, [{"Size": 1}])
    api = _Api({"base": base, "image": image, "other": other})
    return type("Client", (), {"api": api})()


def test_measure_sums_the_layers_past_the_base() -> None:
    sizes = measure(_fake_engine(), "image", "base")
    assert (sizes.size, sizes.base_size, sizes.added) == (405_000_000, 123_000_000, 282_000_000)
    assert [layer.instruction for layer in sizes.layers] == [
        "RUN apt-get update -q && apt-get install libgomp1",
        "COPY dir:abc in /opt/venv",
        "USER 10001:10001",
    ]
    with pytest.raises(HarnessError, match="not built on"):
        measure(_fake_engine(), "other", "base")


def test_prepare_context_links_every_pinned_file(tmp_path: Path) -> None:
    lock = make_lock(sdist=True)
    write_lock(lock, tmp_path / "lock")
    house = tmp_path / "cache"
    for pin in lock.combo.pins:
        path = stored_file(house, pin)
        path.parent.mkdir(parents=True)
        path.write_bytes(pin.filename.encode())
    context = prepare_context(tmp_path / "lock", lock, tmp_path / "ctx", wheelhouse=house)
    # the lock's own Dockerfile, byte for byte: what users commit is what is built
    assert (context / DOCKERFILE).read_bytes() == (tmp_path / "lock" / DOCKERFILE).read_bytes()
    assert (context / REQUIREMENTS).read_text() == (tmp_path / "lock" / REQUIREMENTS).read_text()
    placed = sorted(p.name for p in (context / "dist").iterdir())
    assert placed == sorted(p.filename for p in lock.combo.pins)
    for pin in lock.combo.pins:  # content from the wheelhouse, which is left as it was
        assert (context / "dist" / pin.filename).read_bytes() == pin.filename.encode()
        assert stored_file(house, pin).is_file()


def test_prepare_context_names_missing_files(tmp_path: Path) -> None:
    lock = make_lock(sdist=False)
    write_lock(lock, tmp_path / "lock")
    with pytest.raises(WheelhouseIncomplete) as missing:
        prepare_context(tmp_path / "lock", lock, tmp_path / "ctx", wheelhouse=tmp_path)
    assert {str(p) for p in missing.value.missing} == {str(p) for p in lock.combo.pins}
    assert "numpy==2.3.1" in str(missing.value)
    # without a wheelhouse the context is the Dockerfile and requirements.txt alone
    context = prepare_context(tmp_path / "lock", lock, tmp_path / "ctx2", wheelhouse=None)
    assert sorted(p.name for p in context.iterdir()) == [DOCKERFILE, REQUIREMENTS]


def test_prepare_context_brings_the_ca_bundle_for_the_builder_stage(tmp_path: Path) -> None:
    lock = make_lock(sdist=False)
    write_lock(lock, tmp_path / "lock")
    bundle = tmp_path / "corporate.pem"
    bundle.write_text("-----BEGIN CERTIFICATE-----\n")
    context = prepare_context(
        tmp_path / "lock", lock, tmp_path / "ctx", wheelhouse=None, ca_bundle=bundle
    )
    assert (context / CA_FILE).read_text() == bundle.read_text()
    assert f"/tmp/compat/{CA_FILE}" in (context / DOCKERFILE).read_text()


def test_a_lock_without_a_classic_builder_dockerfile_is_refused(tmp_path: Path) -> None:
    """The Dockerfile is what gets built: none, or an older BuildKit-only one, is an
    error that says to write the lock again (never a silently different file)."""
    lock = make_lock(sdist=False)
    write_lock(lock, tmp_path / "lock")
    dockerfile = tmp_path / "lock" / DOCKERFILE
    dockerfile.write_text("FROM x\nRUN --mount=type=secret,id=ca pip install -r r.txt\n")
    with pytest.raises(HarnessError, match=r"BuildKit.*write the lock again"):
        prepare_context(tmp_path / "lock", lock, tmp_path / "ctx", wheelhouse=None)
    dockerfile.unlink()
    with pytest.raises(HarnessError, match="no Dockerfile"):
        prepare_context(tmp_path / "lock", lock, tmp_path / "ctx", wheelhouse=None)


def test_smoke_command_is_isolated_and_names_the_site() -> None:
    argv = smoke_argv(
        "/opt/venv/bin/python",
        site="/opt/venv/lib/python3.11/site-packages",
        packages=["numpy", "pandas"],
        check_timeout=60,
    )
    assert argv[:4] == ["/opt/venv/bin/python", "-I", "-S", "/opt/compat-smoke/runner.py"]
    assert argv[4:] == [
        "--site",
        "/opt/venv/lib/python3.11/site-packages",
        "--package",
        "numpy",
        "--package",
        "pandas",
        "--timeout",
        "60.0",
    ]


def test_report_counts_every_verdict_and_serialises() -> None:
    checks = (
        CheckResult(
            name="import:numpy", kind=CheckKind.IMPORT, verdict=CheckVerdict.PASS, duration=0.1
        ),
        CheckResult(name="scipy:linalg", verdict=CheckVerdict.SKIPPED, duration=0.0),
    )
    counts = count_checks(checks)
    assert counts == {v.value: 0 for v in CheckVerdict} | {"pass": 1, "skipped": 1}
    report = ImageReport(
        tag="t:1",
        image_id="sha256:1",
        base_image="b",
        base_image_id="sha256:0",
        combination="abc",
        size=3,
        base_size=1,
        added_size=2,
        layers=(Layer(created_by="x", size=2),),
        verdict=Verdict.PASS,
        counts=counts,
        checks=checks,
    )
    assert report.ok
    data = json.loads(json.dumps(report.to_json()))
    assert data["verdict"] == "pass"
    assert data["counts"]["pass"] == 1
    assert data["layers"] == [{"created_by": "x", "size": 2}]
    assert not dataclasses.replace(report, verdict=None).ok
    assert not dataclasses.replace(report, verdict=Verdict.IMPORT_ERROR).ok


def _record_build(cache: Path, sdist_sha: str, image_id: str, wheel_name: str) -> Path:
    content = wheel_name.encode()
    wheel = stored_path(cache, hashlib.sha256(content).hexdigest(), wheel_name)
    wheel.parent.mkdir(parents=True)
    wheel.write_bytes(content)
    record_build(cache, sdist_sha256=sdist_sha, image_id=image_id, wheel=wheel)
    return wheel


def test_the_newest_build_of_an_sdist_on_a_base_is_the_one_shipped(tmp_path: Path) -> None:
    """A changed toolchain builds the sdist again on the same base: the image takes the
    wheel built last (the one the latest scan tested), whatever the records' names."""
    lock = make_lock(sdist=True, manager=None, system=())
    (sdist,) = lock.source_builds
    cache = tmp_path / "cache"
    wheels = {}
    for toolchain, stamp in (("pypi-zzz", 1_000), ("pypi-aaa", 2_000)):
        name = f"lightgbm-4.6.0-{toolchain}-py3-none-linux_x86_64.whl"
        content = toolchain.encode()
        wheel = stored_path(cache, hashlib.sha256(content).hexdigest(), name)
        wheel.parent.mkdir(parents=True)
        wheel.write_bytes(content)
        base = "sha256:base"
        record = record_build(
            cache, sdist_sha256=sdist.sha256, image_id=base, wheel=wheel, toolchain=toolchain
        )
        os.utime(record, (stamp, stamp))
        wheels[toolchain] = wheel
    assert prebuilt_wheels(cache, lock, "sha256:base") == [wheels["pypi-aaa"]]
    os.utime(build_record_path(cache, sdist.sha256, "sha256:base", "pypi-zzz"), (3_000, 3_000))
    assert prebuilt_wheels(cache, lock, "sha256:base") == [wheels["pypi-zzz"]]


def test_image_reuses_the_wheels_the_scan_built_on_that_base(tmp_path: Path) -> None:
    """The wheels a scan built (and tested) on this base image go into the context, and
    the builder stage installs them instead of compiling again; built on another image,
    or missing for one sdist, they are not used."""
    lock = make_lock(sdist=True, manager=None, system=())
    (sdist,) = lock.source_builds
    cache = tmp_path / "cache"
    assert prebuilt_wheels(cache, lock, "sha256:base") is None
    name = "lightgbm-4.6.0-cp311-cp311-linux_x86_64.whl"
    _record_build(cache / "other", sdist.sha256, "sha256:other", name)
    assert prebuilt_wheels(cache / "other", lock, "sha256:base") is None
    wheel = _record_build(cache, sdist.sha256, "sha256:base", name)
    assert prebuilt_wheels(cache, lock, "sha256:base") == [wheel]

    write_lock(lock, tmp_path / "lock")
    for pin in lock.combo.pins:
        path = stored_file(cache, pin)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(pin.filename.encode())
    context = prepare_context(
        tmp_path / "lock", lock, tmp_path / "ctx", wheelhouse=cache, prebuilt=[wheel]
    )
    assert (context / "dist" / "built" / wheel.name).read_bytes() == wheel.read_bytes()
    # the lock's Dockerfile, unchanged, takes them (tests/unit/lock/test_dockerfile.py runs it)
    text = (context / DOCKERFILE).read_text()
    assert text == render_dockerfile(lock)
    assert "if [ -d /tmp/compat/dist/built ]; then cp -r /tmp/compat/dist/built" in text


def test_the_image_runs_the_suite_the_way_a_scan_does() -> None:
    """One container of the built image, as its own user (nobody, for an image whose
    user is root) with no network, the suite
    mounted where a scan's runner sees it; the runner exec'd in it and what it said
    classified by the scan's own path (``run_suite``); the container removed."""
    engine = FakeEngine()
    outcome = run_smoke(
        engine,
        "sha256:built",
        python="/opt/venv/bin/python",
        site="/opt/venv/lib/python3.11/site-packages",
        packages=["numpy"],
        package_manager=PackageManager.APT,
        libc="glibc",
        config=RunConfig(timeouts=Timeouts(check=30.0, image_smoke=300.0)),
    )
    (started,) = engine.started
    assert started.kwargs["command"][:3] == ["/opt/venv/bin/python", "-I", "-S"]
    assert started.kwargs["user"] == "65534:65534"  # the fake image's user is root
    assert started.kwargs["network_mode"] == "none"
    (mount,) = started.kwargs["mounts"]
    assert mount["Target"] == "/opt/compat-smoke"
    assert started.kwargs["environment"] == {"HOME": "/tmp", "TMPDIR": "/tmp", "MPLBACKEND": "Agg"}
    (ran,) = engine.api.execs.values()
    assert ran["cmd"] == smoke_argv(
        "/opt/venv/bin/python",
        site="/opt/venv/lib/python3.11/site-packages",
        packages=["numpy"],
        check_timeout=30.0,
    )
    assert outcome.verdict is not None
    assert engine.containers_ == []  # removed afterwards
