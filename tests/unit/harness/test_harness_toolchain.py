"""Source builds: which toolchain, the PyPI toolchain's builder script, what a build
is cached by, and what it tells users."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from compat.config import RunConfig
from compat.errors import BuildFailed, FilesUnavailable, UsageError
from compat.harness import Pipeline
from compat.harness.backend import ImageInfo, build_error_line
from compat.harness.builds import BuildRecord
from compat.harness.toolchain import (
    _ZIG_TARGET,
    BUILD_LOG,
    OPENMP_NOTE,
    PYPI_TOOLCHAIN,
    Toolchain,
    ToolchainChoice,
    build_notes,
    build_settings,
    choose,
    image_build_script,
    network_failure,
    pypi_build_script,
    reached_for_network,
    toolchain_key,
    wrapper_commands,
)
from compat.model import CheckKind, ComboResult, FileKind, Pin, Verdict
from compat.reporter import Reporter
from compat.targets.target import PackageManager
from tests.helpers.harness import (
    FakeBackend,
    Served,
    combo_of_pins,
    exec_result,
    glibc_target,
    passing_suite,
    write_wheel,
)

# ---- choice ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("choice", "manager", "compiler", "headers", "expected"),
    [
        (ToolchainChoice.AUTO, None, None, True, Toolchain.PYPI),  # the musl test base
        (ToolchainChoice.AUTO, PackageManager.APT, None, False, Toolchain.DISTRO),
        (
            ToolchainChoice.AUTO,
            PackageManager.APK,
            "/usr/bin/cc",
            False,
            Toolchain.DISTRO,
        ),  # no headers
        (ToolchainChoice.AUTO, None, "/usr/bin/cc", True, Toolchain.IMAGE),
        (ToolchainChoice.PYPI, PackageManager.APT, "/usr/bin/cc", True, Toolchain.PYPI),
        (ToolchainChoice.DISTRO, PackageManager.APT, "/usr/bin/cc", True, Toolchain.DISTRO),
    ],
)
def test_choose(
    choice: ToolchainChoice,
    manager: PackageManager | None,
    compiler: str | None,
    headers: bool,
    expected: Toolchain,
) -> None:
    got = choose(choice, package_manager=manager, compiler=compiler, has_python_headers=headers)
    assert got is expected


def test_distro_toolchain_needs_a_package_manager() -> None:
    with pytest.raises(UsageError, match="--toolchain pypi"):
        choose(ToolchainChoice.DISTRO, package_manager=None, compiler=None, has_python_headers=True)


def test_keys_tell_toolchains_apart() -> None:
    keys = {
        toolchain_key(Toolchain.PYPI, None),
        toolchain_key(Toolchain.DISTRO, PackageManager.APT),
        toolchain_key(Toolchain.DISTRO, PackageManager.APK),
        toolchain_key(Toolchain.IMAGE, None),
    }
    assert len(keys) == 4
    assert toolchain_key(Toolchain.PYPI, None) == toolchain_key(Toolchain.PYPI, PackageManager.APT)


# ---- what a build means ------------------------------------------------------------


def test_lightgbm_without_openmp_says_so() -> None:
    pypi = build_settings("LightGBM", Toolchain.PYPI)
    assert pypi.config_settings == ("cmake.define.USE_OPENMP=OFF",)
    assert pypi.notes == (f"lightgbm {OPENMP_NOTE}",)
    assert OPENMP_NOTE == "built without OpenMP: single-threaded training"
    # the distro's compiler has OpenMP: nothing to switch off, nothing to say
    assert build_settings("lightgbm", Toolchain.DISTRO).notes == ()
    assert build_settings("lightgbm", Toolchain.DISTRO).config_settings == ()
    # scikit-learn's build makes OpenMP optional by itself
    assert build_settings("scikit_learn", Toolchain.PYPI).config_settings == ()
    assert build_notes(["numpy", "scikit-learn", "lightgbm"], Toolchain.PYPI) == (
        f"scikit-learn {OPENMP_NOTE}",
        f"lightgbm {OPENMP_NOTE}",
    )
    assert build_notes(["numpy"], Toolchain.PYPI) == ()


# ---- the builder script ------------------------------------------------------------


def _script() -> str:
    return pypi_build_script(
        python="/usr/local/bin/python3",
        sdist="/compat/sdist/lightgbm-4.6.0.tar.gz",
        settings=build_settings("lightgbm", Toolchain.PYPI),
        no_binary="lightgbm",
    )


def test_builder_script_points_the_build_at_zig() -> None:
    script = _script()
    for requirement in PYPI_TOOLCHAIN:
        assert requirement in script
    assert "--only-binary :all:" in script  # the toolchain itself is never built
    # the toolchain and the build's requirements from what compat fetched, no index
    offline = "--no-index --find-links /compat/build-wheels"
    assert [line for line in script.splitlines() if " pip " in line] == [
        line for line in script.splitlines() if offline in line
    ]
    assert script.count(offline) == 2
    assert (
        """printf '#!/bin/sh\\nexec "%s" c++ -target "%s" "$@"\\n' "$ZIG" "$TARGET" """
        "> /tmp/compat-bin/c++"
    ) in script
    assert "CC=/tmp/compat-bin/cc CXX=/tmp/compat-bin/c++" in script
    assert 'LDSHARED="/tmp/compat-bin/cc -shared"' in script  # not sysconfig's compiler
    assert "--config-settings=cmake.define.USE_OPENMP=OFF" in script
    # only the project from source: cmake and friends stay wheels
    assert "--no-binary lightgbm" in script
    assert "--prefer-binary" in script
    # the builder runs as the user that owns its output: nothing to give back
    assert "chown" not in script


@pytest.mark.skipif(shutil.which("sh") is None, reason="no POSIX shell")
def test_wrappers_run_zig_for_the_target(tmp_path: Path) -> None:
    """The wrapper-writing commands, run for real with a stand-in zig and venv."""
    venv = tmp_path / "venv"
    (venv / "bin").mkdir(parents=True)
    (venv / "bin" / "python").symlink_to(sys.executable)
    package = tmp_path / "site" / "ziglang"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "zig").write_text('#!/bin/sh\necho "zig $*"\n')
    (package / "zig").chmod(0o755)
    script = "set -e\n" + "\n".join(wrapper_commands(str(venv), str(tmp_path / "bin"))) + "\n"
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(tmp_path / "site")}
    done = subprocess.run(["sh", "-c", script], env=env, text=True, capture_output=True)
    assert done.returncode == 0, done.stderr
    cxx = subprocess.run(
        [str(tmp_path / "bin" / "g++"), "-O2", "a b.cpp"], text=True, capture_output=True
    )
    assert cxx.stdout.startswith("zig c++ -target x86_64-linux-")
    assert cxx.stdout.rstrip().endswith("-O2 a b.cpp")
    ar = subprocess.run([str(tmp_path / "bin" / "ar"), "rcs"], text=True, capture_output=True)
    assert ar.stdout.strip() == "zig ar rcs"


@pytest.mark.skipif(shutil.which("sh") is None, reason="no POSIX shell")
def test_builder_script_is_valid_shell() -> None:
    done = subprocess.run(["sh", "-n"], input=_script(), text=True, capture_output=True)
    assert done.returncode == 0, done.stderr


def test_zig_target_names_the_hosts_libc() -> None:
    done = subprocess.run(
        [sys.executable, "-I", "-S", "-c", _ZIG_TARGET], text=True, capture_output=True
    )
    assert done.returncode == 0, done.stderr
    out = done.stdout.strip()
    import platform

    name, version = platform.libc_ver()
    if name == "glibc":
        assert out.endswith("-linux-gnu." + ".".join(version.split(".")[:2]))
    else:
        assert out.endswith("-linux-musl")


@pytest.mark.parametrize(
    "line",
    [
        "WARNING: Retrying ... NewConnectionError(... Temporary failure in name resolution)",
        "ERROR: Could not find a version that satisfies the requirement "
        "scikit-build-core>=0.9 (from versions: none)",
        "SSLError(SSLCertVerificationError(1, '[SSL: CERTIFICATE_VERIFY_FAILED]'))",
        "pip._vendor.urllib3.exceptions.ReadTimeoutError: Read timed out.",
    ],
)
def test_network_failures_are_recognised(line: str) -> None:
    assert network_failure(f"Processing lightgbm\n{line}\nerror: subprocess-exited-with-error")


def test_the_image_toolchains_build_is_offline_too() -> None:
    script = image_build_script("/usr/bin/python3", "/compat/sdist/x-1.tar.gz")
    assert "-m pip wheel --no-deps --no-cache-dir --disable-pip-version-check " in script
    assert "--no-index --find-links /compat/build-wheels -w /compat/out " in script


def test_an_offline_build_that_reached_for_the_network_says_where() -> None:
    log = (
        "running build_ext\n"
        "urllib.error.URLError: <urlopen error [Errno -3] Temporary failure in name resolution>\n"
        "ERROR: Failed building wheel for x\n"
    )
    assert reached_for_network(log) == (
        "urllib.error.URLError: <urlopen error [Errno -3] Temporary failure in name resolution>"
    )
    # pip's own "nothing found" is the missing-requirement signal offline, not a network
    nothing = (
        "ERROR: Could not find a version that satisfies the requirement x (from versions: none)"
    )
    assert reached_for_network(nothing) is None
    assert network_failure(nothing)  # ...while for a build that uses an index it is


def test_compile_errors_are_not_network_failures() -> None:
    log = (
        "src/io/json11.cpp:12:10: fatal error: 'omp.h' file not found\n"
        "ninja: build stopped: subcommand failed.\n"
        "ERROR: Failed building wheel for lightgbm"
    )
    assert not network_failure(log)


# ---- the pipeline with toolchains --------------------------------------------------


@pytest.fixture
def served() -> Served:
    return Served()


class ToolchainRuntime(FakeBackend):
    """A fake runtime that builds with a chosen toolchain and leaves a build log."""

    def __init__(self, *args: object, toolchain: Toolchain, log: str = "", **kw: object) -> None:
        super().__init__(*args, **kw)  # type: ignore[arg-type]
        self.chosen = toolchain
        self.log = log

    def toolchain(self, info: ImageInfo) -> Toolchain:
        return self.chosen

    def build_wheel(
        self, info: ImageInfo, pin: Pin, sdist: Path, out_dir: Path, **_: object
    ) -> Path:
        (out_dir / BUILD_LOG).write_text(self.log or f"building {pin.filename}")
        return super().build_wheel(info, pin, sdist, out_dir)


def _lightgbm(tmp_path: Path, served: Served) -> tuple[Pin, Path]:
    w = tmp_path / "w"
    w.mkdir(exist_ok=True)
    sdist_file = w / "lightgbm-4.6.0.tar.gz"
    sdist_file.write_bytes(b"sdist bytes")
    return served.add(sdist_file, FileKind.SDIST), write_wheel(tmp_path, "lightgbm", "4.6.0")


def _run_once(
    runtime: FakeBackend, pin: Pin, served: Served, tmp_path: Path, **opts: object
) -> ComboResult:
    config = RunConfig(**opts)  # type: ignore[arg-type]
    pipeline = Pipeline(runtime, config, cache_dir=tmp_path / "cache", client=served.client())
    (got,) = pipeline.run(
        glibc_target(), [combo_of_pins(pin)], on_result=lambda r: None, reporter=Reporter()
    )
    return got


def _runtime(pin: Pin, outcome: Path | str, toolchain: Toolchain, log: str = "") -> FakeBackend:
    return ToolchainRuntime(
        lambda argv: exec_result(passing_suite("import")),
        builds={pin.filename: outcome},
        toolchain=toolchain,
        log=log,
    )


def test_pypi_build_carries_its_note_and_time(tmp_path: Path, served: Served) -> None:
    pin, wheel = _lightgbm(tmp_path, served)
    got = _run_once(_runtime(pin, wheel, Toolchain.PYPI), pin, served, tmp_path)
    assert got.verdict is Verdict.PASS
    assert got.notes == (f"lightgbm {OPENMP_NOTE}",)
    build = next(c for c in got.checks if c.name == "build:lightgbm")
    assert build.verdict.value == "pass"
    assert build.kind is CheckKind.BUILD
    assert ComboResult.from_json(got.to_json()).notes == got.notes
    # the record, its toolchain and the whole build log are kept with the sdist
    (record_file,) = (tmp_path / "cache" / "builds" / pin.sha256).glob("*.json")
    record = BuildRecord.from_json(json.loads(record_file.read_text()))
    assert record.toolchain == toolchain_key(Toolchain.PYPI, None)
    assert record.notes == got.notes
    assert record_file.with_suffix(".log").read_text() == f"building {pin.filename}"


def test_builds_are_cached_per_toolchain_and_rebuilt_when_asked(
    tmp_path: Path, served: Served
) -> None:
    pin, wheel = _lightgbm(tmp_path, served)
    first = _runtime(pin, "error: no C compiler", Toolchain.PYPI)
    assert _run_once(first, pin, served, tmp_path).verdict is Verdict.BUILD_FAILED
    # the same toolchain: the failure is cached
    again = _runtime(pin, wheel, Toolchain.PYPI)
    assert _run_once(again, pin, served, tmp_path).verdict is Verdict.BUILD_FAILED
    assert again.built == []
    # another toolchain builds on its own
    distro = _runtime(pin, wheel, Toolchain.DISTRO)
    got = _run_once(distro, pin, served, tmp_path)
    assert distro.built == [pin.filename]
    assert got.verdict is Verdict.PASS
    assert got.notes == ()  # the distro's compiler had OpenMP
    # --rebuild retries the failed one
    retry = _runtime(pin, wheel, Toolchain.PYPI)
    assert _run_once(retry, pin, served, tmp_path, rebuild=True).verdict is Verdict.PASS
    assert retry.built == [pin.filename]


def test_a_build_that_could_not_reach_the_index_is_neither_cached_nor_a_verdict(
    tmp_path: Path, served: Served
) -> None:
    pin, wheel = _lightgbm(tmp_path, served)
    offline = _runtime(
        pin,
        "pip failed",
        Toolchain.PYPI,
        log="ERROR: Could not find a version that satisfies the requirement "
        "scikit-build-core (from versions: none)",
    )
    with pytest.raises(FilesUnavailable, match="could not reach the index"):
        _run_once(offline, pin, served, tmp_path)
    assert not list((tmp_path / "cache" / "builds").rglob("*.json"))
    online = _runtime(pin, wheel, Toolchain.PYPI)
    assert _run_once(online, pin, served, tmp_path).verdict is Verdict.PASS
    assert online.built == [pin.filename]


class SlowRuntime(ToolchainRuntime):
    """A build that runs out of time: a fact about the machine, not the package."""

    def build_wheel(
        self, info: ImageInfo, pin: Pin, sdist: Path, out_dir: Path, **_: object
    ) -> Path:
        self.built.append(pin.filename)
        raise BuildFailed(pin, "the build took longer than 5s", duration=5.0, timed_out=True)


def test_a_build_that_ran_out_of_time_is_undecided_and_not_cached(
    tmp_path: Path, served: Served
) -> None:
    pin, wheel = _lightgbm(tmp_path, served)
    slow = SlowRuntime(lambda argv: exec_result(passing_suite("import")), toolchain=Toolchain.PYPI)
    got = _run_once(slow, pin, served, tmp_path)
    assert got.verdict is Verdict.TIMEOUT
    assert got.verdict.undecided
    assert "took longer" in (got.error or "")
    assert not list((tmp_path / "cache" / "builds").rglob("*.json"))
    again = _runtime(pin, wheel, Toolchain.PYPI)
    assert _run_once(again, pin, served, tmp_path).verdict is Verdict.PASS


SCALARTYPES = "numpy/core/src/multiarray/scalartypes"
NUMPY_119_BUILD = "\n".join(
    [
        "building 'numpy.core._multiarray_umath' extension",
        "C compiler: gcc -pthread -Wno-unused-result -Wsign-compare -DNDEBUG -g -fwrapv -O3",
        f"gcc: {SCALARTYPES}.c",
        f"{SCALARTYPES}.c.src: In function 'float_arrtype_hash':",
        f"{SCALARTYPES}.c.src:3072:12: error: too few arguments to function '_Py_HashDouble'",
        " 3072 |     return _Py_HashDouble(npy_half_to_double(obj->obval));",
        f"{SCALARTYPES}.c.src:3090:5: error: 'PyLongObject' has no member named 'ob_digit'",
        f'error: Command "gcc -pthread -Wsign-compare -DNDEBUG -g -fwrapv -O3 -c {SCALARTYPES}.c'
        f' -o build/temp.linux-x86_64-3.11/{SCALARTYPES}.o" failed with exit status 1',
        "ERROR: Failed building wheel for numpy",
    ]
)


def test_a_failed_builds_error_is_the_compilers_first_not_its_command_line() -> None:
    assert build_error_line(NUMPY_119_BUILD) == (
        f"{SCALARTYPES}.c.src:3072:12: error: too few arguments to function '_Py_HashDouble'"
    )
    # without a compiler's diagnostic: the last line that says error, not the command
    pep517 = "running build_ext\nerror: Microsoft Visual C++ 14.0 is required\n" + (
        'error: command "/usr/bin/gcc" failed with exit code 1\n'
    )
    assert build_error_line(pep517) == "error: Microsoft Visual C++ 14.0 is required"
    assert build_error_line("") == "the build produced no wheel"
