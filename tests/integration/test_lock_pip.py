"""The lock files against real installers and real PyPI: pip accepts requirements.txt
in --require-hashes mode (and refuses a tampered hash), uv installs pylock.toml."""

from __future__ import annotations

import dataclasses
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from compat.index.pypi import PyPIIndex
from compat.lock import PYLOCK, REQUIREMENTS, LockInput, write_lock
from compat.model import Combo, FileKind, Pin
from compat.resolve.candidates import CandidateSource, requested
from compat.resolve.resolver import Resolver
from compat.settings import NetworkSettings
from compat.targets.profiles import host_target


def _environ() -> dict[str, str]:
    # the installers must reach the real index: no local wheel directories, no cache
    return {
        k: v
        for k, v in os.environ.items()
        if k not in ("PIP_FIND_LINKS", "PIP_NO_INDEX", "PIP_INDEX_URL", "UV_FIND_LINKS")
    }


@pytest.fixture(scope="module")
def host_lock(tmp_path_factory: pytest.TempPathFactory) -> tuple[LockInput, Pin]:
    """numpy and six resolved for this machine's Python, and six's sdist."""
    cache = tmp_path_factory.mktemp("index")
    target = host_target()
    network = NetworkSettings.from_env(os.environ)
    with PyPIIndex(network, cache_dir=cache) as index:
        combo = Resolver(CandidateSource(index, target)).resolve(
            [requested("numpy"), requested("six")]
        )
        assert isinstance(combo, Combo), combo
        six = combo.pin("six")
        sdist = next(
            f
            for f in index.files(six.name)
            if f.kind is FileKind.SDIST and f.version == six.version
        )
    return LockInput(target=target, combo=combo), Pin.of(sdist)


def _pip_install(requirements: Path, site: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--no-cache-dir",
            "--disable-pip-version-check",
            "--require-hashes",
            "--no-deps",
            "--target",
            str(site),
            "-r",
            str(requirements),
        ],
        capture_output=True,
        text=True,
        env=_environ(),
        timeout=600,
        check=False,
    )


def _imports(site: Path, code: str) -> str:
    done = subprocess.run(
        [sys.executable, "-I", "-c", f"import sys; sys.path.insert(0, {str(site)!r}); {code}"],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return done.stdout.strip()


def test_pip_installs_the_hashed_requirements(
    host_lock: tuple[LockInput, Pin], tmp_path: Path
) -> None:
    lock, _ = host_lock
    write_lock(lock, tmp_path / "lock")
    site = tmp_path / "site"
    done = _pip_install(tmp_path / "lock" / REQUIREMENTS, site)
    assert done.returncode == 0, done.stdout + done.stderr
    versions = _imports(site, "import numpy, six; print(numpy.__version__, six.__version__)")
    assert versions == f"{lock.combo.version_of('numpy')} {lock.combo.version_of('six')}"


def test_pip_refuses_a_tampered_hash(host_lock: tuple[LockInput, Pin], tmp_path: Path) -> None:
    lock, _ = host_lock
    write_lock(lock, tmp_path / "lock")
    path = tmp_path / "lock" / REQUIREMENTS
    numpy = lock.combo.pin("numpy")
    wrong = numpy.sha256[:-1] + ("0" if numpy.sha256[-1] != "0" else "1")
    path.write_text(path.read_text().replace(numpy.sha256, wrong))
    done = _pip_install(path, tmp_path / "site")
    assert done.returncode != 0
    assert "DO NOT MATCH THE HASHES" in done.stderr.upper() + done.stdout.upper()
    assert not list((tmp_path / "site").glob("numpy*"))


def test_pip_builds_an_sdist_pin_from_the_requirements(
    host_lock: tuple[LockInput, Pin], tmp_path: Path
) -> None:
    lock, sdist = host_lock
    pins = tuple(sdist if p.name == sdist.name else p for p in lock.combo.pins)
    combo = Combo(target=lock.combo.target, pins=pins, requested=lock.combo.requested)
    with_sdist = dataclasses.replace(lock, combo=combo, source_builds=())
    assert with_sdist.source_builds == (sdist,)
    write_lock(with_sdist, tmp_path / "lock")
    text = (tmp_path / "lock" / REQUIREMENTS).read_text()
    assert f"source distribution {sdist.filename}" in text
    done = _pip_install(tmp_path / "lock" / REQUIREMENTS, tmp_path / "site")
    assert done.returncode == 0, done.stdout + done.stderr
    assert _imports(tmp_path / "site", "import six; print(six.__version__)") == str(sdist.version)


@pytest.mark.skipif(shutil.which("uv") is None, reason="needs uv")
def test_uv_installs_the_pylock(host_lock: tuple[LockInput, Pin], tmp_path: Path) -> None:
    lock, _ = host_lock
    write_lock(lock, tmp_path / "lock")
    venv = tmp_path / "venv"
    env = {**_environ(), "VIRTUAL_ENV": str(venv)}
    subprocess.run(
        ["uv", "venv", "-q", "-p", sys.executable, str(venv)], env=env, check=True, timeout=120
    )
    done = subprocess.run(
        ["uv", "pip", "install", "--no-cache", "-r", str(tmp_path / "lock" / PYLOCK)],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    frozen = subprocess.run(
        ["uv", "pip", "freeze"], capture_output=True, text=True, env=env, check=True
    ).stdout.split()
    assert sorted(frozen) == sorted(str(p) for p in lock.combo.pins)
