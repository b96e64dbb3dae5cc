"""Locking the best known-good combination from the results database: no container
engine is needed, the image's package manager comes from its recorded probe."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
import tomllib
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest
from click.testing import CliRunner
from packaging.utils import canonicalize_name
from packaging.version import Version

from compat.cli import cli
from compat.errors import EngineUnavailable, ExitCode, LockError, NothingKnownGood, UsageError
from compat.lock import DOCKERFILE, PYLOCK, REQUIREMENTS, LockInput, read_lock
from compat.lock.select import Stack
from compat.model import Cap, CheckResult, CheckVerdict, Combo, ComboResult, Verdict
from compat.report.collect import collect
from compat.store import Store, sqlite_url
from compat.targets.target import PackageManager, Target
from compat.workflows.lock import lock_dir_for, lock_known_good
from compat.workflows.scan import stack_image_size
from tests.helpers.results import DEBIAN_ID, failed, make_combo, make_target, passed

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


def _with_pin(combo: Combo, name: str, version: str) -> Combo:
    """``combo`` with the pin of ``name`` moved to ``version`` (and its own id)."""
    pins = tuple(
        dataclasses.replace(
            p,
            version=Version(version),
            filename=p.filename.replace(str(p.version), version),
            sha256=hashlib.sha256(f"{name}=={version}".encode()).hexdigest(),
        )
        if p.name == name
        else p
        for p in combo.pins
    )
    return Combo(target=combo.target, pins=pins, requested=combo.requested)


def _blaming(result: ComboResult, check: str) -> ComboResult:
    """``result`` failed by ``check`` (which names tzdata, which nobody requested)."""
    error = "AssertionError: time zone 'Europe/London': pandas' offsets differ"
    failing = CheckResult(name=check, verdict=CheckVerdict.RUNTIME_ERROR, duration=0.5, error=error)
    return dataclasses.replace(
        result,
        verdict=Verdict.RUNTIME_ERROR,
        checks=(*result.checks, failing),
        failed_check=check,
        error=error,
    )


def _apt_target() -> Target:
    return dataclasses.replace(
        make_target(IMAGE, IMAGE, DEBIAN_ID), package_manager=PackageManager.APT
    )


def _record_result(store: Store, result: ComboResult, matrix: str | None = None) -> int:
    with store.run(_apt_target(), backend="docker", matrix_name=matrix) as run_id:
        return store.record(run_id, _apt_target(), result)


def _tz_stacks(store: Store) -> int:
    """A known-good pandas 2.2.2 and a newer pandas 2.2.3 that failed by tzdata 2024.2."""
    target = _apt_target()
    _record_result(store, passed(target, make_combo(target, {"numpy": "2.0.2", "pandas": "2.2.2"})))
    newer = make_combo(target, {"numpy": "2.0.2", "pandas": "2.2.3"})
    return _record_result(store, _blaming(passed(target, newer), "pandas+tzdata:zones"))


def test_newer_pins_failed_by_an_unrequested_dependency_are_locked_with_it_capped(
    store: Store, tmp_path: Path
) -> None:
    failed_id = _tz_stacks(store)
    asked: list[tuple[Combo, tuple[Cap, ...]]] = []

    def retry(target: Target, combo: Combo, caps: Sequence[Cap]) -> ComboResult:
        asked.append((combo, tuple(caps)))
        capped = passed(target, _with_pin(combo, "tzdata", "2023.4"))
        _record_result(store, capped)  # as compat check records it
        return capped

    locked, result, _ = lock_known_good(store, IMAGE, tmp_path / "lock", retry=retry)
    assert [(c.label(), [str(cap) for cap in caps]) for c, caps in asked] == [
        ("numpy 2.0.2, pandas 2.2.3", ["tzdata<2024.2"])
    ]
    assert result.combo.label() == "numpy 2.0.2, pandas 2.2.3"  # not the older pandas
    assert str(result.combo.version_of("tzdata")) == "2023.4"
    (cap,) = locked.caps
    assert cap.reason.startswith(
        f"pandas+tzdata:zones failed with tzdata 2024.2 under numpy 2.0.2, pandas 2.2.3 "
        f"(result {failed_id}): AssertionError"
    )
    requirements = (tmp_path / "lock" / REQUIREMENTS).read_text()
    assert "# capped: tzdata<2024.2 (pandas+tzdata:zones failed" in requirements
    assert "tzdata==2023.4 --hash=sha256:" in requirements
    tool = tomllib.loads((tmp_path / "lock" / PYLOCK).read_text())["tool"]["compat"]
    assert tool["caps"] == [{"requirement": "tzdata<2024.2", "reason": cap.reason}]
    assert read_lock(tmp_path / "lock")[0].caps == locked.caps

    def no_retry(target: Target, combo: Combo, caps: Sequence[Cap]) -> ComboResult:
        raise AssertionError(f"{combo.label()} passed capped already: nothing to retry")

    # locked again: the capped pass is known-good now, and still holds its cap
    again, _, _ = lock_known_good(store, IMAGE, tmp_path / "again", retry=no_retry)
    assert again.combo == locked.combo
    assert again.caps == locked.caps


def test_a_capped_retry_that_fails_leaves_the_older_pick_and_is_not_repeated(
    store: Store, tmp_path: Path
) -> None:
    _tz_stacks(store)
    tries: list[str] = []

    def retry(target: Target, combo: Combo, caps: Sequence[Cap]) -> ComboResult:
        tries.append(combo.label())
        capped = failed(target, _with_pin(combo, "tzdata", "2023.4"))  # fails by lightgbm_core
        _record_result(store, capped)
        return capped

    locked, result, _ = lock_known_good(store, IMAGE, tmp_path / "lock", retry=retry)
    assert result.combo.label() == "numpy 2.0.2, pandas 2.2.2"
    assert locked.caps == ()
    # its latest failure blames nothing nobody requested: no second try
    lock_known_good(store, IMAGE, tmp_path / "lock", retry=retry)
    assert tries == ["numpy 2.0.2, pandas 2.2.3"]


def test_no_retry_when_the_known_good_pick_is_as_new_or_the_failure_is_requested(
    store: Store, tmp_path: Path
) -> None:
    target = _apt_target()
    newer = make_combo(target, {"numpy": "2.0.2", "pandas": "2.2.3"})
    _record_result(store, _blaming(passed(target, newer), "pandas+numpy:groupby"))  # requested
    _record_result(store, passed(target, make_combo(target, {"numpy": "2.0.2", "pandas": "2.2.2"})))

    def retry(target: Target, combo: Combo, caps: Sequence[Cap]) -> ComboResult:
        raise AssertionError(f"retried {combo.label()} with {caps}")

    _, result, _ = lock_known_good(store, IMAGE, tmp_path / "lock", retry=retry)
    assert result.combo.label() == "numpy 2.0.2, pandas 2.2.2"
    # an older failure blaming tzdata ranks below the known-good pick: not retried either
    older = make_combo(target, {"numpy": "2.0.2", "pandas": "2.2.1"})
    _record_result(store, _blaming(passed(target, older), "pandas+tzdata:zones"))
    _, result, _ = lock_known_good(store, IMAGE, tmp_path / "lock", retry=retry)
    assert result.combo.label() == "numpy 2.0.2, pandas 2.2.2"


def test_a_cap_the_combination_does_not_keep_is_refused() -> None:
    target = _apt_target()
    combo = make_combo(target, {"numpy": "2.0.2", "pandas": "2.2.3"})  # tzdata 2024.2
    for cap in ("tzdata<2024.2", "pandas<3", "pytz<2025"):
        name, _, below = cap.partition("<")
        with pytest.raises(LockError, match="cannot be written into its lock"):
            LockInput(
                target=target,
                combo=combo,
                caps=(Cap(name=canonicalize_name(name), below=Version(below), reason="r"),),
            )


def test_a_capped_run_failing_by_an_older_release_is_capped_below_that_too(
    store: Store, tmp_path: Path
) -> None:
    """python-dateutil<4 resolves 3.0.0, which breaks pandas' zones as well."""
    _tz_stacks(store)
    given: list[list[str]] = []

    def retry(target: Target, combo: Combo, caps: Sequence[Cap]) -> ComboResult:
        given.append([str(c) for c in caps])
        older = "2024.1" if len(given) == 1 else "2023.4"
        run = passed(target, _with_pin(combo, "tzdata", older))
        if older == "2024.1":
            run = _blaming(run, "pandas+tzdata:zones")
        _record_result(store, run)
        return run

    locked, result, _ = lock_known_good(store, IMAGE, tmp_path / "lock", retry=retry)
    assert given == [["tzdata<2024.2"], ["tzdata<2024.1"]]
    assert str(result.combo.version_of("tzdata")) == "2023.4"
    assert [str(c) for c in locked.caps] == ["tzdata<2024.1"]


def _two_matrices(store: Store) -> tuple[Stack, Stack]:
    """ml-stack (numpy, pandas) and data-stack (numpy, pandas, seaborn) scanned on one
    image, data-stack last, and an ad-hoc check of numpy alone, newest of all."""
    target = _apt_target()
    ml = make_combo(target, {"numpy": "2.0.2", "pandas": "2.2.3"})
    data = make_combo(target, {"numpy": "2.0.2", "pandas": "2.2.2", "seaborn": "0.13.2"})
    _record_result(store, passed(target, ml), matrix="ml-stack")
    _record_result(store, passed(target, data), matrix="data-stack")
    _record_result(store, passed(target, make_combo(target, {"numpy": "2.1.3"})))
    return (
        Stack(name="ml-stack", packages=frozenset(ml.requested)),
        Stack(name="data-stack", packages=frozenset(data.requested), path="matrix/data.toml"),
    )


def test_a_lock_is_of_one_matrix_and_never_picks_among_several(
    store: Store, tmp_path: Path
) -> None:
    ml, data = _two_matrices(store)
    with pytest.raises(UsageError, match=r"holds known-good combinations of 2 matrices") as said:
        lock_known_good(store, IMAGE, tmp_path / "lock")
    assert "data-stack (3 packages); ml-stack (2 packages)" in str(said.value)
    assert "--matrix FILE" in str(said.value)
    locked, result, _ = lock_known_good(store, IMAGE, tmp_path / "ml", stack=ml)
    assert result.combo.label() == "numpy 2.0.2, pandas 2.2.3"
    assert locked.matrix == "ml-stack"
    assert "# matrix: ml-stack" in (tmp_path / "ml" / REQUIREMENTS).read_text()
    assert tomllib.loads((tmp_path / "ml" / PYLOCK).read_text())["tool"]["compat"]["matrix"] == (
        "ml-stack"
    )
    _, result, _ = lock_known_good(store, IMAGE, tmp_path / "data", stack=data)
    assert result.combo.label() == "numpy 2.0.2, pandas 2.2.2, seaborn 0.13.2"
    seaborn = Stack(name="s", packages=frozenset({canonicalize_name("seaborn")}), path="s.toml")
    with pytest.raises(NothingKnownGood, match=r"of s for .*--matrix s.toml` first"):
        lock_known_good(store, IMAGE, tmp_path / "none", stack=seaborn)


def test_with_one_matrix_scanned_an_ad_hoc_check_of_other_packages_is_left_out(
    store: Store, tmp_path: Path
) -> None:
    target = _apt_target()
    _record_result(
        store, passed(target, make_combo(target, {"numpy": "2.0.2", "pandas": "2.2.3"})), "ml"
    )
    _record_result(store, passed(target, make_combo(target, {"numpy": "2.1.3"})))  # a check
    _, result, _ = lock_known_good(store, IMAGE, tmp_path / "lock")
    assert result.combo.label() == "numpy 2.0.2, pandas 2.2.3"


def _record_image(store: Store, combo: Combo, size: int) -> None:
    """``compat image`` measured the image of ``combo``'s lock."""
    store.record_image(
        base=IMAGE,
        image=f"compat/lock:{combo.id}",
        image_id="sha256:" + combo.id[:8] * 8,
        total_size=size,
        added_size=size - 123_000_000,
        lock_hash=combo.id,
    )


def test_two_matrices_on_one_base_give_two_locks_in_the_report(
    store: Store, tmp_path: Path
) -> None:
    ml, data = _two_matrices(store)
    target = _apt_target()
    ml_combo = make_combo(target, {"numpy": "2.0.2", "pandas": "2.2.3"})
    _record_image(store, ml_combo, 411_000_000)
    (base,) = collect(store).bases
    assert base.lock is None  # compat lock without --matrix picks none of them either
    locks = {lock.matrix: lock for lock in base.locks}
    assert set(locks) == {"ml-stack", "data-stack"}
    assert {n for n, _ in locks["ml-stack"].requested} == ml.packages
    assert {n for n, _ in locks["data-stack"].requested} == data.packages
    assert locks["ml-stack"].image_size == 411_000_000  # its own image
    assert locks["data-stack"].image_size is None  # not the other stack's
    out = tmp_path / "report.html"
    done = CliRunner().invoke(cli, ["--db", store.url, "report", "-o", str(out), "--json"])
    assert done.exit_code == 0, done.output
    page = out.read_text()
    assert 'data-lock-matrix="ml-stack"' in page
    assert 'data-lock-matrix="data-stack"' in page
    (shown,) = json.loads(done.stdout)["bases"]
    assert [lock["matrix"] for lock in shown["locks"]] == ["data-stack", "ml-stack"]
    assert shown["lock"] is None


def test_the_scan_summary_quotes_the_image_of_its_own_matrix_lock(store: Store) -> None:
    ml, data = _two_matrices(store)
    target = _apt_target()
    data_combo = make_combo(target, {"numpy": "2.0.2", "pandas": "2.2.2", "seaborn": "0.13.2"})
    _record_image(store, data_combo, 611_000_000)
    assert stack_image_size(store, target, ml) is None  # data-stack's image is not ml-stack's
    size = stack_image_size(store, target, data)
    assert size is not None
    assert size.total_size == 611_000_000


def test_the_default_lock_directory_distinguishes_matrices() -> None:
    assert lock_dir_for("debian-slim") == Path("lock/debian-slim")
    assert lock_dir_for(IMAGE, matrix="data-stack") == Path(
        "lock/data-stack/local_debian-python_bookworm"
    )
    assert lock_dir_for("alpine", Path("out"), matrix="ml-stack") == Path("out/ml-stack/alpine")


def test_lock_without_matrix_on_a_base_of_two_stops_with_the_list(store: Store) -> None:
    _two_matrices(store)
    done = CliRunner().invoke(
        cli, ["--db", store.url, "lock", "--image", IMAGE, "--depth", "smoke"]
    )
    assert isinstance(done.exception, UsageError), done.output
    assert done.exception.exit_code == ExitCode.USAGE
    assert "data-stack (3 packages); ml-stack (2 packages)" in str(done.exception)


def test_without_an_engine_a_deep_lock_never_confirms_its_pick_on_this_machine(
    store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_engine(**_: object) -> None:
        raise EngineUnavailable("no Docker engine answers (no such socket).")

    monkeypatch.setattr("compat.harness.docker_backend.connect", no_engine)
    _record(store, PackageManager.APT)  # passed at smoke depth: the deep tier must confirm it
    out = tmp_path / "lock"
    done = CliRunner().invoke(cli, ["--db", store.url, "lock", "--image", IMAGE, "-o", str(out)])
    assert isinstance(done.exception, EngineUnavailable), done.output
    assert done.exception.exit_code == ExitCode.NO_ENGINE
    said = str(done.exception)
    assert f"lock confirms its pick in {IMAGE} itself" in said
    assert "--depth smoke --no-retry-capped" in said
    assert not out.exists()


def test_no_bytecode_with_a_written_lock_directory_is_a_usage_error(tmp_path: Path) -> None:
    done = CliRunner().invoke(cli, ["image", "--lock-dir", str(tmp_path), "--no-bytecode"])
    assert isinstance(done.exception, UsageError), done.output
    assert "compat lock --no-bytecode" in str(done.exception)
