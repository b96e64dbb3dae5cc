"""requirements.txt, pylock.toml, the lock input and the lock directory."""

from __future__ import annotations

import json
import re
import tomllib
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from packaging.markers import Marker
from packaging.pylock import PackageSdist, PackageWheel, Pylock
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.utils import canonicalize_name
from packaging.version import Version

from compat.errors import LockError
from compat.lock import (
    DOCKERFILE,
    PYLOCK,
    RECORD,
    REQUIREMENTS,
    LockInput,
    Prune,
    build_pylock,
    read_lock,
    render_dockerfile,
    render_pylock,
    render_requirements,
    write_lock,
)
from compat.model import ComboResult, FileKind, Pin, Verdict
from compat.targets.target import PackageManager
from tests.helpers.lock import ALL_PINS, make_lock

_LINE = re.compile(r"^(?P<req>\S+) --hash=sha256:(?P<sha>[0-9a-f]{64})$")


def requirement_lines(text: str) -> list[tuple[Requirement, str]]:
    out = []
    for line in text.splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        match = _LINE.match(line)
        assert match, f"not a hashed pin: {line!r}"
        out.append((Requirement(match["req"]), match["sha"]))
    return out


# -- requirements.txt --------------------------------------------------------------


def test_requirements_have_one_hashed_exact_pin_per_file() -> None:
    lock = make_lock()
    parsed = requirement_lines(render_requirements(lock))
    assert len(parsed) == len(lock.combo.pins)
    for (req, sha), pin in zip(parsed, lock.combo.pins, strict=True):
        assert canonicalize_name(req.name) == pin.name
        assert req.specifier == SpecifierSet(f"=={pin.version}")
        assert sha == pin.sha256
        assert not req.marker
        assert not req.extras


def test_requirements_say_which_pins_are_built_from_source() -> None:
    text = render_requirements(make_lock(sdist=True))
    lines = text.splitlines()
    at = next(i for i, ln in enumerate(lines) if ln.startswith("lightgbm==4.6.0 "))
    assert "source distribution" in lines[at - 1]
    assert lines[at - 1].startswith("#")
    assert "lightgbm-4.6.0.tar.gz" in lines[at - 1]
    assert "source distribution" not in render_requirements(make_lock(sdist=False))


def test_requirements_header_names_target_image_and_combination() -> None:
    lock = make_lock()
    head = [ln for ln in render_requirements(lock).splitlines() if ln.startswith("#")]
    text = "\n".join(head)
    assert lock.target.image in text
    assert lock.target.key in text
    assert lock.combo.id in text
    assert "libgomp1" in text
    assert "--require-hashes" in text


# -- pylock.toml -------------------------------------------------------------------


@pytest.mark.parametrize("profile", ["debian-slim", "alpine"])
def test_pylock_validates_and_round_trips(profile: str) -> None:
    lock = make_lock(
        profile=profile, manager=PackageManager.APK if profile == "alpine" else PackageManager.APT
    )
    text = render_pylock(lock)
    data = tomllib.loads(text)
    pylock = Pylock.from_dict(data)
    pylock.validate()
    assert pylock == build_pylock(lock)
    assert pylock.lock_version == Version("1.0")
    assert pylock.requires_python == SpecifierSet(f"=={lock.target.python}.*")
    assert data["tool"]["compat"]["combination"] == lock.combo.id
    assert data["tool"]["compat"]["image"] == lock.target.image
    by_name = {p.name: p for p in pylock.packages}
    assert set(by_name) == {p.name for p in lock.combo.pins}
    for pin in lock.combo.pins:
        package = by_name[pin.name]
        assert package.version == pin.version
        if pin.kind is FileKind.SDIST:
            assert package.sdist is not None
            assert not package.wheels
            assert (package.sdist.url, dict(package.sdist.hashes)) == (
                pin.url,
                {"sha256": pin.sha256},
            )
        else:
            assert package.sdist is None
            assert package.wheels is not None
            [wheel] = package.wheels
            assert (wheel.filename, wheel.url, dict(wheel.hashes)) == (
                pin.filename,
                pin.url,
                {"sha256": pin.sha256},
            )


@pytest.mark.parametrize("profile", ["debian-slim", "alpine"])
def test_pylock_selects_exactly_the_pinned_files_on_the_target(profile: str) -> None:
    lock = make_lock(
        profile=profile, manager=PackageManager.APK if profile == "alpine" else PackageManager.APT
    )
    pylock = Pylock.from_dict(tomllib.loads(render_pylock(lock)))
    env = lock.target.marker_environment()
    chosen = {}
    for package, dist in pylock.select(environment=env, tags=lock.target.tags):  # type: ignore[arg-type]
        assert isinstance(dist, PackageWheel | PackageSdist)
        chosen[package.name] = dist.filename
    assert chosen == {p.name: p.filename for p in lock.combo.pins}


def test_pylock_environment_is_the_target_only() -> None:
    lock = make_lock()
    [marker] = Pylock.from_dict(tomllib.loads(render_pylock(lock))).environments or []
    env = lock.target.marker_environment()
    assert Marker(str(marker)).evaluate(env)
    assert not marker.evaluate({**env, "python_version": "3.12"})
    assert not marker.evaluate({**env, "platform_machine": "aarch64"})
    assert not marker.evaluate({**env, "sys_platform": "darwin"})


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.sampled_from(ALL_PINS), min_size=1, unique_by=lambda p: p.name),
    st.sampled_from([None, PackageManager.APT, PackageManager.APK, PackageManager.DNF]),
)
def test_any_combination_locks_to_valid_files(
    chosen: list[Pin], manager: PackageManager | None
) -> None:
    pins = tuple(sorted(chosen, key=lambda p: p.name))
    lock = make_lock(pins=pins, system=(), manager=manager)
    parsed = requirement_lines(render_requirements(lock))
    assert [(canonicalize_name(r.name), sha) for r, sha in parsed] == [
        (p.name, p.sha256) for p in pins
    ]
    Pylock.from_dict(tomllib.loads(render_pylock(lock))).validate()
    assert lock.source_builds == tuple(p for p in pins if p.kind is FileKind.SDIST)


# -- the lock input ----------------------------------------------------------------


def test_system_packages_need_a_package_manager() -> None:
    with pytest.raises(LockError, match="no package manager"):
        make_lock(system=("libgomp1",), manager=None)
    assert make_lock(system=(), manager=None).system_packages == ()


def test_unknown_package_manager_is_refused() -> None:
    data = make_lock(manager=PackageManager.DNF).to_json()
    assert data["package_manager"] == "dnf"
    assert LockInput.from_json(data).package_manager is PackageManager.DNF
    with pytest.raises(LockError, match="unknown package manager 'pacman'"):
        LockInput.from_json({**data, "package_manager": "pacman"})


def test_source_builds_default_to_the_sdist_pins_and_must_match_them() -> None:
    lock = make_lock(sdist=True)
    assert [str(p) for p in lock.source_builds] == ["lightgbm==4.6.0"]
    numpy = lock.combo.pin("numpy")
    with pytest.raises(LockError, match="sdist pins"):
        LockInput(
            target=lock.target,
            combo=lock.combo,
            package_manager=PackageManager.APT,
            source_builds=(numpy,),
        )


def test_system_packages_are_deduplicated_and_sorted() -> None:
    lock = make_lock(system=("zlib1g", "libgomp1", "zlib1g"))
    assert lock.system_packages == ("libgomp1", "zlib1g")


def test_lock_input_round_trips_through_json() -> None:
    lock = make_lock(profile="alpine", manager=PackageManager.APK, system=("libgomp",))
    again = LockInput.from_json(json.loads(json.dumps(lock.to_json())))
    assert again == lock
    assert again.target.tags == lock.target.tags
    assert again.combo.id == lock.combo.id


def test_from_result_takes_the_packages_the_harness_added() -> None:
    lock = make_lock(sdist=False, system=())
    passed = ComboResult(combo=lock.combo, verdict=Verdict.PASS, added_system_deps=("libgomp1",))
    made = LockInput.from_result(lock.target, passed, package_manager=PackageManager.APT)
    assert made.system_packages == ("libgomp1",)
    assert made.combo == lock.combo
    failed = ComboResult(combo=lock.combo, verdict=Verdict.IMPORT_ERROR, system_deps=("x",))
    with pytest.raises(LockError, match="did not pass"):
        LockInput.from_result(lock.target, failed, package_manager=PackageManager.APT)


def test_prune_of() -> None:
    assert Prune.of(True) == Prune()
    assert not Prune.of(False).anything
    custom = Prune(bytecode=True)
    assert Prune.of(custom) is custom
    assert Prune.from_json(custom.to_json()) == custom


# -- the lock directory ------------------------------------------------------------


def test_write_lock_writes_the_files_and_reads_back(tmp_path: Path) -> None:
    lock = make_lock()
    out = tmp_path / "locks" / "debian"
    written = write_lock(lock, out, prune=Prune(bytecode=True))
    assert [p.name for p in written] == [REQUIREMENTS, PYLOCK, DOCKERFILE, RECORD]
    assert (out / REQUIREMENTS).read_text() == render_requirements(lock)
    assert (out / PYLOCK).read_text() == render_pylock(lock)
    assert (out / DOCKERFILE).read_text() == render_dockerfile(lock, prune=Prune(bytecode=True))
    assert read_lock(out) == (lock, Prune(bytecode=True))
    assert not [p for p in out.iterdir() if p.name.startswith(".")]  # no temporary files left
    # writing again replaces, never appends
    write_lock(lock, out)
    assert read_lock(out) == (lock, Prune())


def test_read_lock_says_what_to_do(tmp_path: Path) -> None:
    with pytest.raises(LockError, match="compat lock"):
        read_lock(tmp_path)
    (tmp_path / RECORD).write_text("{not json")
    with pytest.raises(LockError, match="cannot read"):
        read_lock(tmp_path)
    (tmp_path / RECORD).write_text(json.dumps({"format": 1, "input": {}, "prune": {}}))
    with pytest.raises(LockError, match="damaged"):
        read_lock(tmp_path)
    (tmp_path / RECORD).write_text(json.dumps({"format": 99}))
    with pytest.raises(LockError, match="write the lock again"):
        read_lock(tmp_path)
