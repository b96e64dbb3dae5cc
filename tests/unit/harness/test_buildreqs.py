"""Offline builds: what pip says it could not find, the static build requirements of
an sdist, and the rounds that fetch them on the host from a scripted index."""

from __future__ import annotations

import hashlib
import json
import zipfile
from collections.abc import Callable
from datetime import date
from pathlib import Path

import httpx
import pytest
from packaging.requirements import Requirement
from packaging.tags import Tag
from packaging.utils import canonicalize_name
from packaging.version import Version

from compat.config import RunConfig
from compat.errors import BuildFailed
from compat.harness import Pipeline
from compat.harness.backend import ImageInfo
from compat.harness.buildreqs import (
    LEGACY_REQUIRES,
    BuildRequirements,
    build_offline,
    missing_requirements,
    static_requires,
)
from compat.harness.builds import BuildRecord
from compat.harness.toolchain import BUILD_LOG
from compat.harness.wheelhouse import FileRef, Wheelhouse
from compat.model import FileKind, Pin
from compat.reporter import Reporter
from tests.helpers.harness import FakeBackend, exec_result, image_info
from tests.helpers.index import FakeIndex, metadata_text, wheel_bytes, write_tar

# ---- what pip could not find -------------------------------------------------------


@pytest.mark.parametrize(
    ("output", "expected"),
    [
        (
            "ERROR: Could not find a version that satisfies the requirement "
            "flit_core<4,>=3.8 (from versions: none)\n"
            "ERROR: No matching distribution found for flit_core<4,>=3.8\n",
            ["flit_core<4,>=3.8"],
        ),
        (  # a dependency of a build requirement, and pip's nested, indented output
            "  ╰─> [3 lines of output]\n"
            "      Looking in links: /compat/build-wheels\n"
            "      ERROR: Could not find a version that satisfies the requirement "
            "pathspec>=0.10.1 (from hatchling) (from versions: 0.9.0)\n"
            "      ERROR: No matching distribution found for pathspec>=0.10.1\n",
            ["pathspec>=0.10.1"],
        ),
        (  # a backend's dynamic requirements, two of them in one log
            "ERROR: No matching distribution found for setuptools-scm[toml]>=6.2\n"
            "ERROR: No matching distribution found for wheel\n",
            ["setuptools-scm[toml]>=6.2", "wheel"],
        ),
        (
            'ERROR: No matching distribution found for tomli>=1.1.0; python_version < "3.11"\n',
            ['tomli>=1.1.0; python_version < "3.11"'],
        ),
        ("src/x.c:3:10: fatal error: 'omp.h' file not found\nERROR: Failed building wheel", []),
    ],
)
def test_what_pip_could_not_find(output: str, expected: list[str]) -> None:
    assert missing_requirements(output) == tuple(Requirement(r) for r in expected)


# ---- the static build requirements of an sdist -------------------------------------


def _zip(path: Path, files: dict[str, str]) -> Path:
    with zipfile.ZipFile(path, "w") as archive:
        for name, text in files.items():
            archive.writestr(name, text)
    return path


HATCH = '[build-system]\nrequires = ["hatchling>=1.20", "tomli; python_version < \'3.11\'"]\n'


@pytest.mark.parametrize("pack", [write_tar, _zip])
def test_static_requires_are_read_from_the_archive(
    tmp_path: Path, pack: Callable[[Path, dict[str, str]], Path]
) -> None:
    suffix = ".tar.gz" if pack is write_tar else ".zip"
    sdist = pack(
        tmp_path / f"demo-1.0{suffix}",
        {
            "demo-1.0/PKG-INFO": "Name: demo\n",
            "demo-1.0/tests/pyproject.toml": '[build-system]\nrequires = ["nonsense"]\n',
            "demo-1.0/pyproject.toml": HATCH,
        },
    )
    assert static_requires(sdist) == (
        Requirement("hatchling>=1.20"),
        Requirement("tomli; python_version < '3.11'"),
    )


@pytest.mark.parametrize(
    ("files", "expected"),
    [
        ({"demo-1.0/setup.py": "raise SystemExit\n"}, LEGACY_REQUIRES),  # no pyproject
        ({"demo-1.0/pyproject.toml": "[tool.black]\nline-length = 99\n"}, LEGACY_REQUIRES),
        ({"demo-1.0/pyproject.toml": '[build-system]\nbuild-backend = "x"\n'}, ()),
        ({"demo-1.0/pyproject.toml": "[build-system\nrequires = ["}, ()),  # pip says why
        ({"demo-1.0/pyproject.toml": "[build-system]\nrequires = []\n"}, ()),
    ],
)
def test_static_requires_without_a_declaration(
    tmp_path: Path, files: dict[str, str], expected: tuple[str, ...]
) -> None:
    sdist = write_tar(tmp_path / "demo-1.0.tar.gz", files)
    assert static_requires(sdist) == tuple(Requirement(r) for r in expected)


def test_a_broken_archive_gets_the_legacy_default(tmp_path: Path) -> None:
    sdist = tmp_path / "demo-1.0.tar.gz"
    sdist.write_bytes(b"not an archive")
    assert static_requires(sdist) == tuple(Requirement(r) for r in LEGACY_REQUIRES)


# ---- the rounds, with a scripted index ---------------------------------------------

TAGS = (
    Tag("cp311", "cp311", "manylinux_2_17_x86_64"),
    Tag("cp311", "abi3", "manylinux_2_17_x86_64"),
    Tag("py3", "none", "any"),
)


def _publish(index: FakeIndex, name: str, version: str, *requires: str, tag: str = "") -> None:
    meta = metadata_text(name, version, *requires)
    stem = f"{name.replace('-', '_')}-{version}"
    if tag:
        filename = f"{stem}-{tag}.whl"
        index.add(name, filename, wheel_bytes(name, version, meta), metadata=meta)
        return
    index.add(name, f"{stem}-py3-none-any.whl", wheel_bytes(name, version, meta), metadata=meta)


def _index() -> FakeIndex:
    index = FakeIndex()
    _publish(index, "hatchling", "1.0.0")
    _publish(index, "hatchling", "1.25.0", "packaging>=21.3", "pathspec>=0.10.1")
    _publish(index, "packaging", "24.1")
    _publish(index, "pathspec", "0.9.0")
    _publish(index, "pathspec", "0.12.1")
    _publish(index, "setuptools-scm", "8.1.0", "setuptools")
    _publish(index, "setuptools", "75.0.0")
    _publish(index, "tomli", "2.0.1")
    # a compiled build requirement with a wheel for musl only: its sdist on glibc
    _publish(index, "ninja", "1.11.1", tag="py3-none-musllinux_1_2_x86_64")
    meta = metadata_text("ninja", "1.11.1")
    index.add("ninja", "ninja-1.11.1.tar.gz", b"ninja sources", metadata=meta)
    return index


def _supplier(index: FakeIndex, tmp_path: Path) -> BuildRequirements:
    info = image_info(tags=TAGS)
    target = info.facts.target(name="test", image=info.image, image_id=info.image_id)
    client = httpx.Client(transport=httpx.MockTransport(index.handler))
    return BuildRequirements(index.index(), target, Wheelhouse(tmp_path / "cache", client))


def _pin(sdist: Path) -> Pin:
    return Pin(
        name=canonicalize_name("demo"),
        version=Version("1.0"),
        filename=sdist.name,
        url=f"https://files.test/{sdist.name}",
        sha256=hashlib.sha256(sdist.read_bytes()).hexdigest(),
        kind=FileKind.SDIST,
    )


class ScriptedBuild:
    """A build that fails like pip while ``needs`` are not all in its directory."""

    def __init__(self, pin: Pin, out: Path, needs: list[str]) -> None:
        self.pin, self.out, self.needs = pin, out, needs
        self.seen: list[list[str]] = []

    def __call__(self, directory: Path) -> Path:
        here = sorted(p.name for p in directory.iterdir())
        self.seen.append(here)
        for need in self.needs:
            stem = Requirement(need).name.replace("-", "_")
            if not any(name.startswith(f"{stem}-") for name in here):
                said = f"ERROR: No matching distribution found for {need}\n"
                (self.out / BUILD_LOG).write_text(f"round {len(self.seen)}\n{said}")
                raise BuildFailed(self.pin, said.strip(), log=said, duration=2.0)
        (self.out / BUILD_LOG).write_text(f"round {len(self.seen)}\nbuilt\n")
        wheel = self.out / "demo-1.0-py3-none-any.whl"
        wheel.write_bytes(b"wheel")
        return wheel


def _sdist(tmp_path: Path, pyproject: str = HATCH) -> Path:
    (tmp_path / "sdists").mkdir(exist_ok=True)
    return write_tar(
        tmp_path / "sdists" / "demo-1.0.tar.gz", {"demo-1.0/pyproject.toml": pyproject}
    )


def test_static_requirements_with_their_dependencies_then_what_pip_asks_for(
    tmp_path: Path,
) -> None:
    sdist, out, directory = _sdist(tmp_path), tmp_path / "out", tmp_path / "reqs"
    out.mkdir()
    directory.mkdir()
    pin = _pin(sdist)
    build = ScriptedBuild(pin, out, ["hatchling", "setuptools-scm>=8", "ninja"])
    supplier = _supplier(_index(), tmp_path)
    wheel = build_offline(pin, sdist, out, build=build, supplier=supplier, directory=directory)
    assert wheel.read_bytes() == b"wheel"
    first = [
        "hatchling-1.25.0-py3-none-any.whl",
        "packaging-24.1-py3-none-any.whl",
        "pathspec-0.12.1-py3-none-any.whl",
    ]  # the newest releases; no tomli: its marker is false on Python 3.11
    second = sorted(
        [*first, "setuptools-75.0.0-py3-none-any.whl", "setuptools_scm-8.1.0-py3-none-any.whl"]
    )
    assert build.seen == [first, second, sorted([*second, "ninja-1.11.1.tar.gz"])]
    # each file is the wheelhouse's, checked against its hash, linked not copied
    stored = next((tmp_path / "cache" / "files").rglob("hatchling-1.25.0-py3-none-any.whl"))
    assert (directory / stored.name).stat().st_ino == stored.stat().st_ino
    log = (out / BUILD_LOG).read_text()
    assert log.index("round 1\n") < log.index("pip found no setuptools-scm>=8; fetching")
    assert "build requirements fetched: setuptools-75.0.0-py3-none-any.whl" in log
    assert log.rstrip().endswith("round 3\nbuilt")


def test_a_requirement_nothing_on_the_index_satisfies_fails_the_build(tmp_path: Path) -> None:
    sdist = _sdist(tmp_path, '[build-system]\nrequires = ["hatchling>=9"]\n')
    out, directory = tmp_path / "out", tmp_path / "reqs"
    out.mkdir()
    directory.mkdir()
    pin = _pin(sdist)
    build = ScriptedBuild(pin, out, [])
    with pytest.raises(BuildFailed) as failed:
        build_offline(
            pin,
            sdist,
            out,
            build=build,
            supplier=_supplier(_index(), tmp_path),
            directory=directory,
        )
    assert failed.value.reason.startswith("a build requirement could not be fetched: hatchling>=9")
    assert "nothing on the index fits" in failed.value.reason
    assert not failed.value.transient  # a fact about the package: kept
    assert build.seen == []
    assert "compat: a build requirement could not be fetched" in (out / BUILD_LOG).read_text()


@pytest.mark.parametrize(
    ("host", "said"),
    [("index.test", "hatchling>=1.20: cannot reach"), ("files.test", "could not be fetched")],
)
def test_an_index_or_file_host_that_cannot_be_reached_is_a_transient_failure(
    tmp_path: Path, host: str, said: str
) -> None:
    index = _index()

    def down(request: httpx.Request) -> None:
        if request.url.host == host and not request.url.path.endswith(".metadata"):
            raise httpx.ConnectError("unreachable", request=request)

    index.fail = down
    sdist, out = _sdist(tmp_path), tmp_path / "out"
    out.mkdir()
    pin = _pin(sdist)
    build = ScriptedBuild(pin, out, [])
    with pytest.raises(BuildFailed) as failed:
        build_offline(
            pin, sdist, out, build=build, supplier=_supplier(index, tmp_path), directory=tmp_path
        )
    assert failed.value.transient  # the network's fault: never kept as the package's
    assert failed.value.reason.startswith("a build requirement could not be fetched: ")
    assert said in failed.value.reason
    assert build.seen == []


def test_what_pip_cannot_use_once_fetched_ends_the_rounds(tmp_path: Path) -> None:
    sdist, out, directory = _sdist(tmp_path), tmp_path / "out", tmp_path / "reqs"
    out.mkdir()
    directory.mkdir()
    pin = _pin(sdist)

    def stubborn(d: Path) -> Path:  # pip keeps asking for what is there
        said = "ERROR: No matching distribution found for hatchling>=1.20\n"
        (out / BUILD_LOG).write_text(said)
        raise BuildFailed(pin, said, log=said)

    with pytest.raises(BuildFailed) as failed:
        build_offline(
            pin, sdist, out, build=stubborn, supplier=_supplier(_index(), tmp_path),
            directory=directory,
        )  # fmt: skip
    assert failed.value.reason == (
        "the build requirement hatchling>=1.20 was fetched, but pip could not use it"
    )


def test_the_rounds_are_bounded(tmp_path: Path) -> None:
    sdist, out, directory = _sdist(tmp_path), tmp_path / "out", tmp_path / "reqs"
    out.mkdir()
    directory.mkdir()
    pin = _pin(sdist)
    chain = ["pathspec", "packaging", "setuptools", "tomli"]
    rounds: list[int] = []

    def endless(d: Path) -> Path:  # each round asks for one more thing
        rounds.append(len(rounds))
        said = f"ERROR: No matching distribution found for {chain[len(rounds) - 1]}\n"
        (out / BUILD_LOG).write_text(said)
        raise BuildFailed(pin, said, log=said)

    with pytest.raises(BuildFailed) as failed:
        build_offline(
            pin, sdist, out, build=endless, supplier=_supplier(_index(), tmp_path),
            directory=directory, rounds=3,
        )  # fmt: skip
    assert len(rounds) == 3
    assert failed.value.reason == "build requirements still missing after 3 rounds"


# ---- the pipeline ------------------------------------------------------------------


class OfflineBackend(FakeBackend):
    """A backend whose builds read their requirements from a directory."""

    builds_offline = True

    def __init__(self, build: ScriptedBuild | None = None) -> None:
        super().__init__(lambda argv: exec_result(""), info=image_info(tags=TAGS))
        self.script = build
        self.given: list[Path | None] = []

    def build_wheel(
        self, info: ImageInfo, pin: Pin, sdist: Path, out_dir: Path, *, requires: Path | None = None
    ) -> Path:
        self.given.append(requires)
        assert requires is not None
        assert self.script is not None
        self.script.out = out_dir
        return self.script(requires)


def _down(request: httpx.Request) -> None:
    if request.url.host == "index.test":
        raise httpx.ConnectError("unreachable", request=request)


def _published_sdist(index: FakeIndex, tmp_path: Path) -> Pin:
    """The demo sdist, on ``index``, as a pin."""
    sdist = _sdist(tmp_path)
    entry = index.add("demo", sdist.name, sdist.read_bytes())
    return Pin(
        name=canonicalize_name("demo"), version=Version("1.0"), filename=sdist.name,
        url=entry["url"], sha256=entry["hashes"]["sha256"], kind=FileKind.SDIST,
    )  # fmt: skip


def test_the_pipeline_builds_offline_and_keeps_only_lasting_outcomes(tmp_path: Path) -> None:
    index = _index()
    pin = _published_sdist(index, tmp_path)
    cache = tmp_path / "cache"

    def build_once() -> tuple[OfflineBackend, BuildRecord]:
        backend = OfflineBackend(ScriptedBuild(pin, tmp_path, ["hatchling"]))
        client = httpx.Client(transport=httpx.MockTransport(index.handler))
        with Pipeline(
            backend, RunConfig(), cache_dir=cache, client=client, index=index.index()
        ) as pipeline:
            wheelhouse = pipeline._wheelhouse()
            wheelhouse.fetch_one(FileRef(filename=pin.filename, url=pin.url, sha256=pin.sha256))
            index.fail = failing
            record = pipeline.builder.build_one(backend.info, wheelhouse, pin, Reporter(), "one")
        return backend, record

    failing: Callable[[httpx.Request], None] | None = _down
    down, record = build_once()
    assert not record.ok
    assert (record.error or "").startswith("a build requirement could not be fetched")
    assert record.unreachable  # the index's fault: no verdict either
    assert down.given == []  # no build ran without its requirements
    assert not list((cache / "builds").rglob("*.json"))  # the index's fault: not kept

    failing = None
    up, record = build_once()
    assert record.ok
    (given,) = up.given
    assert given is not None
    assert given.parent == cache / "build-requirements"
    assert not given.exists()  # the directory goes with the build
    (kept,) = (cache / "builds" / pin.sha256).glob("*.json")
    assert json.loads(kept.read_text())["ok"] is True
    assert "build requirements fetched: hatchling-1.25.0" in kept.with_suffix(".log").read_text()


def test_an_as_of_run_builds_with_the_build_requirements_of_its_day(tmp_path: Path) -> None:
    index = _index()
    meta = metadata_text("hatchling", "1.21.0")
    wheel = wheel_bytes("hatchling", "1.21.0", meta)
    index.add("hatchling", "hatchling-1.21.0-py3-none-any.whl", wheel, metadata=meta)
    for entry in index.pages["hatchling"]:
        if "1.25.0" in entry["filename"]:
            entry["upload-time"] = "2025-01-01T00:00:00.000000Z"
    pin = _published_sdist(index, tmp_path)
    cache = tmp_path / "cache"

    def build(config: RunConfig) -> list[str]:
        script = ScriptedBuild(pin, tmp_path, ["hatchling"])
        backend = OfflineBackend(script)
        client = httpx.Client(transport=httpx.MockTransport(index.handler))
        with Pipeline(backend, config, cache_dir=cache, client=client, index=index.index()) as pipe:
            wheelhouse = pipe._wheelhouse()
            wheelhouse.fetch_one(FileRef(filename=pin.filename, url=pin.url, sha256=pin.sha256))
            assert pipe.builder.build_one(backend.info, wheelhouse, pin, Reporter(), "one").ok
        return [name for name in script.seen[-1] if name.startswith("hatchling-")]

    assert build(RunConfig(as_of=date(2024, 6, 1))) == ["hatchling-1.21.0-py3-none-any.whl"]
    # the build of another day is kept apart, and takes what that day had
    assert build(RunConfig()) == ["hatchling-1.25.0-py3-none-any.whl"]
    assert len(list((cache / "builds" / pin.sha256).glob("*.json"))) == 2


def test_offline_a_build_takes_its_requirements_from_the_cache_only(tmp_path: Path) -> None:
    index = _index()
    pin = _published_sdist(index, tmp_path)
    cache = tmp_path / "cache"
    script = ScriptedBuild(pin, tmp_path, ["hatchling"])
    backend = OfflineBackend(script)
    client = httpx.Client(transport=httpx.MockTransport(index.handler))
    with Pipeline(backend, RunConfig(), cache_dir=cache, client=client) as online:
        online._wheelhouse().fetch_one(
            FileRef(filename=pin.filename, url=pin.url, sha256=pin.sha256)
        )
    # no index given: the builder's own, which --offline keeps to its (empty) cache
    with Pipeline(backend, RunConfig(), cache_dir=cache, client=client, cache_only=True) as pipe:
        record = pipe.builder.build_one(backend.info, pipe._wheelhouse(), pin, Reporter(), "one")
    assert not record.ok
    assert record.unreachable
    assert "--offline: the cache lacks" in (record.error or "")
    assert "project listing hatchling" in (record.error or "")
    assert script.seen == []  # no build ran without its requirements
