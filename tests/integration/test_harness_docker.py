"""The harness against a real Docker engine, real base images and real PyPI.

Prepared files (wheelhouse, installs, bytecode) are shared by every test of
the session through one cache directory, so each distinct wheel is downloaded,
unpacked and compiled once.
"""

from __future__ import annotations

import os
import struct
import textwrap
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from compat.config import RunConfig, Timeouts
from compat.harness import make_pipeline
from compat.harness.wheelhouse import Wheelhouse
from compat.model import CheckVerdict, Combo, ComboResult, FileKind, Pin, Verdict
from compat.reporter import Reporter
from compat.settings import NetworkSettings
from compat.targets.probe import probe_image
from compat.targets.target import PackageManager, Target
from tests.helpers.docker import require_docker, run_label_filter
from tests.helpers.reporter import RecordingReporter

BOOKWORM = "local/debian-python:bookworm"
MUSL = "local/musl-python:3.11"
SIX = ("numpy", "scipy", "scikit-learn", "pandas", "matplotlib", "lightgbm")


@pytest.fixture(scope="session")
def cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    # COMPAT_TEST_CACHE keeps downloads and unpacked wheels between local runs
    kept = os.environ.get("COMPAT_TEST_CACHE")
    if kept:
        Path(kept).mkdir(parents=True, exist_ok=True)
        return Path(kept)
    return tmp_path_factory.mktemp("compat-cache")


@pytest.fixture(scope="session")
def network() -> NetworkSettings:
    return NetworkSettings.from_env(os.environ)


@pytest.fixture(scope="session")
def docker_client() -> Iterator[Any]:
    require_docker()
    import docker

    client = docker.from_env(timeout=600)
    yield client
    client.close()


@pytest.fixture(autouse=True)
def _no_container_left(docker_client: Any) -> Iterator[None]:
    before = {c.id for c in docker_client.containers.list(all=True, filters=run_label_filter())}
    yield
    # no container this test started may remain; another compat run's are not counted
    left = [
        c
        for c in docker_client.containers.list(all=True, filters=run_label_filter())
        if c.id not in before
    ]
    assert left == [], f"containers left behind: {[c.name for c in left]}"


@pytest.fixture(scope="session")
def index(cache_dir: Path, network: NetworkSettings) -> Iterator[Any]:
    from compat.index.pypi import PyPIIndex

    with PyPIIndex(network, cache_dir=cache_dir / "index") as idx:
        yield idx


def _target(image: str, cache_dir: Path, client: Any) -> Target:
    return probe_image(image, name=image, cache_dir=cache_dir, client=client)


def resolve(index: Any, target: Target, *specs: str) -> Combo:
    """A full pin set for ``specs`` (``name`` or ``name==version``) on ``target``."""
    from compat.resolve.candidates import CandidateSource, requested
    from compat.resolve.resolver import Resolver

    requests = []
    for spec in specs:
        name, _, version = spec.partition("==")
        requests.append(requested(name, f"=={version}" if version else ""))
    outcome = Resolver(CandidateSource(index, target)).resolve(requests)
    assert isinstance(outcome, Combo), outcome
    return outcome


def run(
    target: Target, combos: list[Combo], cache_dir: Path, network: NetworkSettings, **options: Any
) -> list[ComboResult]:
    config = RunConfig(backend="docker", **options)
    delivered: list[ComboResult] = []
    with make_pipeline(
        config, cache_dir=cache_dir, network=network, reporter=Reporter()
    ) as backend:
        results = backend.run(target, combos, on_result=delivered.append, reporter=Reporter())
    assert sorted(r.combo.id for r in delivered) == sorted(r.combo.id for r in results)
    return results


def _checks(result: ComboResult) -> dict[str, str]:
    return {c.name: c.verdict.value for c in result.checks}


def test_six_stack_on_bookworm_needs_libgomp(
    docker_client: Any, index: Any, cache_dir: Path, network: NetworkSettings
) -> None:
    target = _target(BOOKWORM, cache_dir, docker_client)
    combo = resolve(index, target, *SIX)
    (result,) = run(target, [combo], cache_dir, network, add_system_deps=False)  # bare image
    assert result.verdict is Verdict.IMPORT_ERROR, result.error
    assert result.failed_check is not None
    assert "lightgbm" in result.failed_check
    assert result.system_deps == ("libgomp1",)
    assert "libgomp.so.1" in (result.error or "")
    assert "libgomp1" in (result.error or "")
    assert result.backend == "docker"
    assert result.image_id == target.image_id
    checks = _checks(result)
    others = {n: v for n, v in checks.items() if "lightgbm" not in n}
    # checks of what the six do not install (pytz under pandas 3, pandas' optional
    # engines) are skipped; everything else passes
    assert {n for n, v in others.items() if v not in ("pass", "skipped")} == set(), checks
    assert "pandas+numexpr:numexpr-operators" in others
    assert {v for n, v in checks.items() if "lightgbm" in n} <= {"import-error", "skipped"}

    (fixed,) = run(target, [combo], cache_dir, network)  # by default: installed, run again
    assert fixed.verdict is Verdict.PASS, (fixed.error, _checks(fixed))
    assert fixed.added_system_deps == ("libgomp1",)
    assert fixed.image_id != target.image_id


def test_pandas_built_for_numpy1_fails_to_import_with_numpy2(
    docker_client: Any, index: Any, cache_dir: Path, network: NetworkSettings
) -> None:
    target = _target(BOOKWORM, cache_dir, docker_client)
    combo = resolve(index, target, "pandas==2.1.1", "numpy==2.0.2")
    assert str(combo.version_of("numpy")) == "2.0.2"
    (result,) = run(target, [combo], cache_dir, network)
    assert result.verdict is Verdict.IMPORT_ERROR, (result.error, _checks(result))
    assert result.failed_check is not None
    assert "pandas" in result.failed_check
    assert "numpy" in (result.error or "")


def test_musl_wheels_pass(
    docker_client: Any, index: Any, cache_dir: Path, network: NetworkSettings
) -> None:
    target = _target(MUSL, cache_dir, docker_client)
    good = resolve(index, target, "numpy", "pandas")
    assert all(p.kind is FileKind.WHEEL for p in good.pins)
    assert "musllinux" in good.pin("numpy").filename
    needs_build = resolve(index, target, "numpy", "scikit-learn", "lightgbm")
    assert {p.name for p in needs_build.source_builds} >= {"scikit-learn", "lightgbm"}
    (ok,) = run(target, [good], cache_dir, network)
    assert ok.verdict is Verdict.PASS, (ok.error, _checks(ok))
    assert {"import:numpy", "import:pandas"} <= set(_checks(ok))


CHECKS = {
    "segv.py": """
        import ctypes

        def test_segfault():
            ctypes.string_at(0)
    """,
    "ok.py": """
        import numpy

        def test_sum():
            assert numpy.arange(4).sum() == 6
    """,
    # the smoke container runs code from PyPI: no capability, no way to gain one (a
    # setuid binary of the image stays unprivileged), not root, no network
    "least_privilege.py": """
        import os
        import socket

        def test_unprivileged():
            status = dict(
                line.split(":", 1) for line in open("/proc/self/status").read().splitlines()
            )
            assert status["NoNewPrivs"].strip() == "1", status["NoNewPrivs"]
            assert int(status["CapEff"], 16) == 0, status["CapEff"]
            assert int(status["CapBnd"], 16) == 0, status["CapBnd"]
            assert os.getuid() != 0 and os.geteuid() != 0
            try:
                socket.create_connection(("1.1.1.1", 53), timeout=2)
            except OSError:
                return
            raise AssertionError("the smoke container reached the network")
    """,
}


def _crashing_wheel(directory: Path) -> Path:
    from tests.helpers.harness import write_wheel

    return write_wheel(
        directory, "segv-on-import", "1.0",
        {"segv_on_import/__init__.py": "import ctypes\nctypes.string_at(0)\n"},
    )  # fmt: skip


def test_crash_and_timeout_do_not_stop_the_scan(
    docker_client: Any,
    index: Any,
    cache_dir: Path,
    network: NetworkSettings,
    tmp_path: Path,
) -> None:
    target = _target(BOOKWORM, cache_dir, docker_client)
    numpy = resolve(index, target, "numpy")
    checks = tmp_path / "checks"
    checks.mkdir()
    for name, text in CHECKS.items():
        (checks / name).write_text(textwrap.dedent(text))
    # a package whose import kills the runner itself: put straight into the wheelhouse
    wheel = _crashing_wheel(tmp_path)
    house = Wheelhouse(cache_dir, client=None)  # type: ignore[arg-type]
    sha, _ = house.add(wheel)
    segv_pin = Pin.from_json({
        "name": "segv-on-import", "version": "1.0", "filename": wheel.name,
        "url": "file:///nowhere", "sha256": sha, "kind": "wheel",
    })  # fmt: skip
    dies = Combo(
        target=numpy.target,
        pins=(*numpy.pins, segv_pin),
        requested=(*numpy.requested, segv_pin.name),
    )
    results = run(target, [numpy, dies], cache_dir, network, checks_dir=checks, jobs=2)
    user, runner_dies = results
    assert user.verdict is Verdict.CRASH, _checks(user)
    assert user.failed_check == "user:segv.py"
    assert _checks(user)["user:ok.py"] == "pass"
    assert _checks(user)["user:least_privilege.py"] == "pass", user.log
    assert runner_dies.verdict is Verdict.CRASH
    assert runner_dies.failed_check == "import:segv-on-import"

    # a hanging check: the runner's own per-check limit, then the harness's wall time
    (checks / "segv.py").unlink()
    (checks / "hang.py").write_text("import time\n\ndef test_hang():\n    time.sleep(600)\n")
    (by_runner,) = run(
        target, [numpy], cache_dir, network, checks_dir=checks, timeouts=Timeouts(check=3)
    )
    assert by_runner.verdict is Verdict.TIMEOUT
    assert by_runner.failed_check == "user:hang.py"
    assert _checks(by_runner)["user:ok.py"] == "pass"
    # the check's own limit is cut to the combination's: the harness's wall time ends
    # the container first (the hang starts after the imports)
    (by_harness,) = run(
        target, [numpy], cache_dir, network, checks_dir=checks,
        timeouts=Timeouts(check=300, combination=8),
    )  # fmt: skip
    assert by_harness.verdict is Verdict.TIMEOUT
    assert by_harness.failed_check == "user:hang.py"
    # run again once with twice the time (8 s, then 16 s), and still undecided
    assert by_harness.duration < 45
    assert any("undecided" in note for note in by_harness.notes), by_harness.notes


def test_a_starved_machine_makes_no_incompatibility(
    docker_client: Any, index: Any, cache_dir: Path, network: NetworkSettings
) -> None:
    # a twentieth of a CPU and limits meant for a whole one: checks run out of time,
    # are run again alone with twice the time, and the verdict is a pass or undecided,
    # never a failure of numpy
    target = _target(BOOKWORM, cache_dir, docker_client)
    numpy = resolve(index, target, "numpy")
    (starved,) = run(
        target, [numpy], cache_dir, network, cpus=0.05, timeouts=Timeouts(check=1, combination=30)
    )
    assert starved.verdict in (Verdict.PASS, Verdict.TIMEOUT), starved.error
    assert any("run again alone with twice the time" in n for n in starved.notes), starved.notes
    timed_out = [c.name for c in starved.checks if c.verdict is CheckVerdict.TIMEOUT]
    assert starved.verdict.undecided == bool(timed_out)


def test_a_check_killed_at_the_memory_limit_is_said_to_be_and_run_again_alone(
    docker_client: Any, index: Any, cache_dir: Path, network: NetworkSettings, tmp_path: Path
) -> None:
    # the kernel's out-of-memory killer ends a check that takes more than the
    # container's --memory: said as the limit, not as a bare SIGKILL, and run again
    # alone (another combination may have taken the memory); alone too, it is a crash
    # that says what decides it
    target = _target(BOOKWORM, cache_dir, docker_client)
    numpy = resolve(index, target, "numpy")
    checks = tmp_path / "checks"
    checks.mkdir()
    (checks / "big.py").write_text(
        "def test_big():\n"
        "    blocks = [bytearray(64 << 20) for _ in range(16)]\n"
        "    assert all(len(b) for b in blocks)\n"
    )
    (big,) = run(target, [numpy], cache_dir, network, checks_dir=checks, memory="384m")
    assert big.verdict is Verdict.CRASH, _checks(big)
    assert big.failed_check == "user:big.py"
    assert (big.error or "").startswith("killed by the out-of-memory killer"), big.error
    assert any("a larger --memory decides it" in n for n in big.notes), big.notes
    assert _checks(big)["import:numpy"] == "pass"


def test_sdist_is_built_in_a_toolchain_image_once(
    docker_client: Any, index: Any, cache_dir: Path, network: NetworkSettings
) -> None:
    from packaging.utils import canonicalize_name

    from compat.matrix import BuildPolicy
    from compat.resolve.candidates import CandidateSource, requested
    from compat.resolve.resolver import Resolver

    target = _target(BOOKWORM, cache_dir, docker_client)
    # a small C extension, forced from source
    policy = BuildPolicy(no_binary=frozenset({canonicalize_name("bitarray")}))
    source = CandidateSource(index, target, build=policy)
    combo = Resolver(source).resolve([requested("bitarray")])
    assert isinstance(combo, Combo)
    assert [p.kind for p in combo.pins] == [FileKind.SDIST]

    (built,) = run(target, [combo], cache_dir, network)
    assert built.verdict is Verdict.PASS, (built.error, built.log[-2000:])
    assert _checks(built)["import:bitarray"] == "pass"
    records = list((cache_dir / "builds" / combo.pins[0].sha256).glob("*.json"))
    assert len(records) == 1

    config = RunConfig(backend="docker")
    with make_pipeline(
        config, cache_dir=cache_dir, network=network, reporter=Reporter()
    ) as backend:
        reporter = RecordingReporter()
        (again,) = backend.run(target, [combo], on_result=lambda r: None, reporter=reporter)
        stages = [stage for stage, _, _ in reporter.stages]
    assert again.verdict is Verdict.PASS
    # the cached wheel is reused: the build stage reports, but no builder ran
    assert "build" in stages
    assert (
        records[0].stat().st_mtime
        == next((cache_dir / "builds" / combo.pins[0].sha256).glob("*.json")).stat().st_mtime
    )


# ---- source builds, one per toolchain ------------------------------------------------
# Slow on purpose and kept to two builds (minutes each on 2 cores); the scikit-learn
# build is measured by benchmarks/bench_build.py instead.


def _from_source(index: Any, target: Target, name: str) -> Combo:
    from packaging.utils import canonicalize_name

    from compat.matrix import BuildPolicy
    from compat.resolve.candidates import CandidateSource, requested
    from compat.resolve.resolver import Resolver

    policy = BuildPolicy(no_binary=frozenset({canonicalize_name(name)}))
    combo = Resolver(CandidateSource(index, target, build=policy)).resolve([requested(name)])
    assert isinstance(combo, Combo), combo
    assert [p.name for p in combo.pins if p.kind is FileKind.SDIST] == [name]
    return combo


def elf_sections(data: bytes) -> list[str]:
    """The section names of a 64-bit little-endian ELF file."""
    (shoff,) = struct.unpack_from("<Q", data, 0x28)
    entsize, count, names_index = struct.unpack_from("<HHH", data, 0x3A)
    headers = [data[shoff + i * entsize : shoff + (i + 1) * entsize] for i in range(count)]
    (names_offset,) = struct.unpack_from("<Q", headers[names_index], 0x18)
    out = []
    for header in headers:
        (name,) = struct.unpack_from("<I", header, 0)
        out.append(data[names_offset + name : data.index(b"\0", names_offset + name)].decode())
    return out


def _build_record(cache_dir: Path, combo: Combo, name: str) -> tuple[Path, dict[str, Any]]:
    import json

    (path,) = (cache_dir / "builds" / combo.pin(name).sha256).glob("*.json")
    return path, json.loads(path.read_text())


def test_lightgbm_from_its_sdist_with_the_apt_toolchain(
    docker_client: Any, index: Any, cache_dir: Path, network: NetworkSettings
) -> None:
    """The distro's compiler has OpenMP: the wheel needs libgomp.so.1 at run time, which
    the bare bookworm base lacks until libgomp1 is installed (the default)."""
    from compat.harness.toolchain import Toolchain, toolchain_key

    target = _target(BOOKWORM, cache_dir, docker_client)
    combo = _from_source(index, target, "lightgbm")
    (built,) = run(target, [combo], cache_dir, network, add_system_deps=True)
    assert built.verdict is Verdict.PASS, (built.error, built.log[-3000:])
    assert built.added_system_deps == ("libgomp1",)
    assert built.notes == ()
    assert _checks(built)["build:lightgbm"] == "pass"
    path, record = _build_record(cache_dir, combo, "lightgbm")
    assert record["ok"]
    assert record["toolchain"] == toolchain_key(Toolchain.DISTRO, PackageManager.APT)
    assert "lightgbm" in path.with_suffix(".log").read_text()
    print(f"lightgbm {combo.pin('lightgbm').version} on bookworm (apt): {record['duration']:.0f}s")


def test_a_cpp_extension_on_musl_with_the_pypi_toolchain(
    docker_client: Any, index: Any, cache_dir: Path, network: NetworkSettings
) -> None:
    """No compiler, no package manager: zig c++ from PyPI builds editdistance (C++ and
    Cython) for musl, and it imports where it was built for. A second run reuses the
    cached wheel and starts no builder."""
    from compat.harness.toolchain import Toolchain, toolchain_key

    target = _target(MUSL, cache_dir, docker_client)
    combo = _from_source(index, target, "editdistance")
    (built,) = run(target, [combo], cache_dir, network)
    assert built.verdict is Verdict.PASS, (built.error, built.log[-3000:])
    assert _checks(built)["build:editdistance"] == "pass"
    assert built.notes == ()  # no OpenMP to go without
    path, record = _build_record(cache_dir, combo, "editdistance")
    assert record["toolchain"] == toolchain_key(Toolchain.PYPI, None)
    assert "x86_64-linux-musl" in path.with_suffix(".log").read_text()  # the image's libc
    wheel = cache_dir / "files" / record["wheel_sha256"][:2] / record["wheel_sha256"]
    (wheel,) = wheel.glob("*.whl")
    with zipfile.ZipFile(wheel) as archive:
        libraries = [n for n in archive.namelist() if n.endswith(".so")]
        assert libraries
        for name in libraries:  # linked stripped: zig's libc++ debug info stays out
            assert not any(s.startswith(".debug") for s in elf_sections(archive.read(name)))
    print(f"editdistance on musl (pypi toolchain): {record['duration']:.0f}s")

    (again,) = run(target, [combo], cache_dir, network)
    assert again.verdict is Verdict.PASS
    assert _build_record(cache_dir, combo, "editdistance")[1] == record  # not built again
