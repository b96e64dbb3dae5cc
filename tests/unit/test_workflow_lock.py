"""Locking the best known-good combination from the results database: no container
engine is needed, the image's package manager comes from its recorded probe."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from compat.cli import cli
from compat.errors import ExitCode, LockError, NothingKnownGood, UsageError
from compat.lock import DOCKERFILE, REQUIREMENTS, read_lock
from compat.store import Store, sqlite_url
from compat.targets.target import PackageManager
from compat.workflows.lock import lock_known_good
from tests.helpers.results import DEBIAN_ID, make_combo, make_target, passed

IMAGE = "local/debian-python:bookworm"  # an image reference, not a profile


@pytest.fixture
def store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Store]:
    # any attempt to reach a container engine fails
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/no-engine.sock")
    with Store.open(sqlite_url(tmp_path / "results.db")) as opened:
        yield opened


def _record(store: Store, package_manager: PackageManager | None) -> None:
    target = dataclasses.replace(
        make_target(IMAGE, IMAGE, DEBIAN_ID), package_manager=package_manager
    )
    combo = make_combo(target, {"numpy": "2.0.2", "scipy": "1.14.1"})
    result = dataclasses.replace(passed(target, combo), added_system_deps=("libgomp1",))
    with store.run(target, backend="docker") as run_id:
        store.record(run_id, target, result)


def test_the_recorded_package_manager_installs_the_system_packages(
    store: Store, tmp_path: Path
) -> None:
    _record(store, PackageManager.APT)
    locked, result, paths = lock_known_good(store, IMAGE, tmp_path / "lock")
    assert locked.package_manager == "apt"
    assert locked.system_packages == ("libgomp1",)
    assert result.combo.label() == "numpy 2.0.2, scipy 1.14.1"
    dockerfile = (tmp_path / "lock" / DOCKERFILE).read_text()
    assert "apt-get install" in dockerfile
    assert "libgomp1" in dockerfile
    assert "numpy==2.0.2" in (tmp_path / "lock" / REQUIREMENTS).read_text()
    assert tmp_path / "lock" / DOCKERFILE in paths


def test_without_a_package_manager_the_system_packages_cannot_be_locked(
    store: Store, tmp_path: Path
) -> None:
    _record(store, None)
    with pytest.raises(LockError, match="libgomp1"):
        lock_known_good(store, IMAGE, tmp_path / "lock")


def _record_host(store: Store) -> None:
    target = make_target("host", "host (box)", None)
    combo = make_combo(target, {"numpy": "2.0.2"})
    with store.run(target, backend="local") as run_id:
        store.record(run_id, target, dataclasses.replace(passed(target, combo), backend="local"))


@pytest.mark.parametrize("scope", ["host", "host (box)"])
def test_results_of_the_local_backend_are_refused_with_the_reason(
    store: Store, tmp_path: Path, scope: str
) -> None:
    _record_host(store)
    with pytest.raises(UsageError, match="ran on this machine's own Python, not in an image"):
        lock_known_good(store, scope, tmp_path / "lock")
    assert not (tmp_path / "lock").exists()


def test_lock_and_image_of_the_host_are_usage_errors(store: Store, tmp_path: Path) -> None:
    _record_host(store)
    for command in ("lock", "image"):
        done = CliRunner().invoke(cli, ["--db", store.url, command, "--base", "host"])
        assert isinstance(done.exception, UsageError), done.output
        assert done.exception.exit_code == ExitCode.USAGE


@pytest.mark.parametrize(
    ("scope", "suggested"),
    [("debian-slim", "compat scan --base debian-slim"), (IMAGE, f"compat scan --image {IMAGE}")],
)
def test_nothing_known_good_suggests_a_scan_that_parses(
    store: Store, tmp_path: Path, scope: str, suggested: str
) -> None:
    with pytest.raises(NothingKnownGood, match=f"run `{re.escape(suggested)}` first"):
        lock_known_good(store, scope, tmp_path / "lock")


def test_the_lock_installs_what_the_image_is_known_to_need(store: Store, tmp_path: Path) -> None:
    """The best combination passed without libgomp1 (scanned with --no-system-deps, or
    before it was learnt); the image is known to need it: the lock, and so the image
    `compat image` builds from it, installs it as every later run on the image does."""
    _record(store, PackageManager.APT)  # numpy 2.0.2, scipy 1.14.1 ran with libgomp1
    target = dataclasses.replace(
        make_target(IMAGE, IMAGE, DEBIAN_ID), package_manager=PackageManager.APT
    )
    newer = passed(target, make_combo(target, {"numpy": "2.1.3", "scipy": "1.14.1"}))
    with store.run(target, backend="docker") as run_id:
        store.record(run_id, target, newer)
    locked, result, _ = lock_known_good(store, IMAGE, tmp_path / "lock")
    assert result.combo.label() == "numpy 2.1.3, scipy 1.14.1"
    assert result.added_system_deps == ()
    assert locked.system_packages == ("libgomp1",)
    assert "libgomp1" in (tmp_path / "lock" / DOCKERFILE).read_text()
    assert read_lock(tmp_path / "lock")[0].system_packages == ("libgomp1",)  # what image reads


def test_lock_says_how_to_build_and_test_the_dockerfile(store: Store, tmp_path: Path) -> None:
    _record(store, PackageManager.APT)
    out = tmp_path / "lock"
    args = ["--db", store.url, "lock", "--image", IMAGE, "--depth", "smoke", "-o", str(out)]
    done = CliRunner().invoke(cli, args)
    assert done.exit_code == 0, done.output
    said = " ".join(done.stdout.split())  # however the console wraps it
    assert f"compat image --lock-dir {out}" in said
    assert f"docker build -t IMAGE {out}" in said
