"""Broken state in the cache is detected and repaired, never believed: each test runs
a scan on a clean cache, plants one fault (what a killed download, a ``kill -9``
mid-unpack or a damaged disk leaves), runs again on the same cache and finds the
same verdicts.

The fake backend's "import" reads the installs on disk: it passes only when every
file each site's RECORD lists is there, so a half tree would fail it."""

from __future__ import annotations

import csv
import logging
import shutil
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import pytest

from compat.config import RunConfig
from compat.effects.container import ExecResult
from compat.harness import Pipeline
from compat.harness.builds import built_wheel
from compat.harness.installs import COMPLETE
from compat.model import Combo, ComboResult, FileKind, Pin
from compat.reporter import Reporter
from compat.workflows.cache import prune
from tests.helpers import harness as suite
from tests.helpers.harness import (
    FakeBackend,
    Served,
    combo_of_pins,
    exec_result,
    glibc_target,
    sites_of,
    write_wheel,
)

Outcome = list[tuple[str, str, tuple[tuple[str, str], ...]]]


def _whole(site: Path) -> bool:
    records = list(site.glob("*.dist-info/RECORD"))
    if not records:
        return False
    with records[0].open(newline="") as f:
        return all((site / row[0]).is_file() for row in csv.reader(f) if row)


def _importing(cache: Path) -> Callable[[list[str]], ExecResult]:
    """A suite that imports what the sites hold: it fails for a site that is not whole."""

    def answer(argv: list[str]) -> ExecResult:
        sites = [cache / "installs" / Path(s).name for s in sites_of(argv)]
        broken = [s.name for s in sites if not _whole(s)]
        if broken:
            error = f"ModuleNotFoundError: a file of {broken[0]} is missing"
            failed = suite.result_event("import", "import-error", error)
            return exec_result(
                suite.runner_stdout(suite.start_event("import"), failed, suite.done_event())
            )
        return exec_result(suite.passing_suite("import"))

    return answer


def _backend(cache: Path, builds: dict[str, Path | str] | None = None) -> FakeBackend:
    return FakeBackend(_importing(cache), builds=builds)


def _scan(backend: FakeBackend, served: Served, cache: Path, combos: Sequence[Combo]) -> Outcome:
    pipeline = Pipeline(backend, RunConfig(), cache_dir=cache, client=served.client())
    with pipeline:
        results = pipeline.run(
            glibc_target(), combos, on_result=lambda r: None, reporter=Reporter()
        )
    return _outcome(results)


def _outcome(results: Sequence[ComboResult]) -> Outcome:
    return [
        (
            r.combo.id,
            r.verdict.value,
            tuple((c.name, c.verdict.value) for c in r.checks),
        )
        for r in results
    ]


@pytest.fixture
def served() -> Served:
    return Served()


def _two_wheels(tmp_path: Path, served: Served) -> tuple[Pin, Pin]:
    w = tmp_path / "w"
    w.mkdir()
    files = {"alpha/__init__.py": "A = 1\n", "alpha/core.py": "B = 2\n"}
    alpha = served.add(write_wheel(w, "alpha", "1.0", files))
    beta = served.add(write_wheel(w, "beta", "2.0"))
    return alpha, beta


def _clean_scan(tmp_path: Path, served: Served) -> tuple[Path, Pin, list[Combo], Outcome]:
    """A scan of alpha and beta on a clean cache: the cache, alpha, the combinations
    and the outcome to compare with."""
    cache = tmp_path / "cache"
    alpha, beta = _two_wheels(tmp_path, served)
    combos = [combo_of_pins(alpha, beta)]
    clean = _scan(_backend(cache), served, cache, combos)
    assert clean[0][1] == "pass"
    return cache, alpha, combos, clean


def _stored(cache: Path, pin: Pin) -> Path:
    return cache / "files" / pin.sha256[:2] / pin.sha256 / pin.filename


def _truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def _tamper(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF  # same size, one byte altered
    path.write_bytes(bytes(data))


@pytest.mark.parametrize("fault", [_truncate, _tamper], ids=["truncated", "tampered"])
def test_a_damaged_wheel_in_the_cache_is_downloaded_again(
    tmp_path: Path,
    served: Served,
    fault: Callable[[Path], None],
    caplog: pytest.LogCaptureFixture,
) -> None:
    cache, alpha, combos, clean = _clean_scan(tmp_path, served)
    # the wheel is damaged, and its install is gone: the next scan must unpack it
    fault(_stored(cache, alpha))
    shutil.rmtree(cache / "installs" / alpha.sha256)
    served.requests.clear()

    assert _scan(_backend(cache), served, cache, combos) == clean
    assert served.requests == [f"/{alpha.filename}"]  # only the damaged one, again
    assert _stored(cache, alpha).read_bytes() == served.files[f"/{alpha.filename}"]
    notices = [r.getMessage() for r in caplog.records if "does not match" in r.getMessage()]
    assert notices == [
        f"{alpha.filename} in the cache does not match its sha256 "
        "(truncated or altered): it is fetched or built again"
    ]


def test_what_a_killed_download_left_is_cleared_when_the_file_is_fetched(
    tmp_path: Path, served: Served
) -> None:
    cache, alpha, combos, clean = _clean_scan(tmp_path, served)
    stored = _stored(cache, alpha)
    stored.with_name(".part-killed").write_bytes(stored.read_bytes()[:10])
    stored.unlink()
    assert _scan(_backend(cache), served, cache, combos) == clean
    assert [p.name for p in stored.parent.iterdir()] == [alpha.filename]


def _half_at_place(cache: Path, sha: str) -> None:
    """An install an interrupted removal (or an older compat) left: no marker, and
    part of the package gone."""
    site = cache / "installs" / sha
    (site / COMPLETE).unlink()
    (site / "alpha" / "core.py").unlink()


def _killed_mid_unpack(cache: Path, sha: str) -> None:
    """What ``kill -9`` during an unpack leaves: a part tree beside the place."""
    site = cache / "installs" / sha
    (site / COMPLETE).unlink()
    (site / "alpha" / "core.py").unlink()
    site.rename(cache / "installs" / f".unpack-{sha}-killed")


@pytest.mark.parametrize(
    "fault", [_half_at_place, _killed_mid_unpack], ids=["incomplete", "killed-mid-unpack"]
)
def test_a_half_unpacked_install_is_unpacked_again(
    tmp_path: Path,
    served: Served,
    fault: Callable[[Path, str], None],
    caplog: pytest.LogCaptureFixture,
) -> None:
    cache, alpha, combos, clean = _clean_scan(tmp_path, served)
    fault(cache, alpha.sha256)

    backend = _backend(cache)
    with caplog.at_level(logging.INFO, logger="compat.harness"):
        assert _scan(backend, served, cache, combos) == clean
    # said (with --verbose) of a tree at its place, not of a part tree beside it
    said = "has no completion marker: it is unpacked again" in caplog.text
    assert said is (fault is _half_at_place)
    site = cache / "installs" / alpha.sha256
    assert (site / "alpha" / "core.py").read_text() == "B = 2\n"
    assert (site / COMPLETE).is_file()
    # the new tree is compiled again, whatever stamp the old one left
    assert [site in dirs for _key, dirs in backend.compiled] == [True]
    assert [p.name for p in (cache / "installs").iterdir() if alpha.sha256 in p.name] == [
        alpha.sha256
    ]  # and nothing a killed unpack or the removal of the old tree left


def test_an_install_whose_removal_was_cut_short_is_unpacked_again(
    tmp_path: Path, served: Served, monkeypatch: pytest.MonkeyPatch
) -> None:
    cache, alpha, combos, clean = _clean_scan(tmp_path, served)
    site = cache / "installs" / alpha.sha256
    real_rmtree = shutil.rmtree

    def interrupted(path: Path) -> None:
        if path != site:
            real_rmtree(path)
            return
        (site / "alpha" / "core.py").unlink()  # part of the tree is gone, then Ctrl-C
        raise KeyboardInterrupt

    monkeypatch.setattr("compat.workflows.cache.shutil.rmtree", interrupted)
    with pytest.raises(KeyboardInterrupt):
        prune(cache, now=time.time() + 1)
    monkeypatch.undo()
    assert _scan(_backend(cache), served, cache, combos) == clean
    assert (site / "alpha" / "core.py").is_file()


def _build_setup(tmp_path: Path, served: Served) -> tuple[Pin, Pin, Path]:
    alpha, _beta = _two_wheels(tmp_path, served)
    sdist = tmp_path / "w" / "gamma-3.0.tar.gz"
    sdist.write_bytes(b"gamma sources")
    gamma = served.add(sdist, FileKind.SDIST)
    wheel = write_wheel(tmp_path / "w", "gamma", "3.0")
    return alpha, gamma, wheel


def _record(cache: Path, gamma: Pin) -> Path:
    (record,) = (cache / "builds" / gamma.sha256).glob("*.json")
    return record


def _built(cache: Path, gamma: Pin) -> Path:
    found = built_wheel(cache, gamma.sha256, "sha256:base")
    assert found is not None
    return found


@pytest.mark.parametrize(
    "fault",
    [
        lambda cache, gamma: _built(cache, gamma).unlink(),
        lambda cache, gamma: _truncate(_built(cache, gamma)),
        lambda cache, gamma: _tamper(_built(cache, gamma)),
        lambda cache, gamma: _record(cache, gamma).write_text('{"ok": true, "wheel_sha'),
        lambda cache, gamma: _record(cache, gamma).write_text("[]"),
    ],
    ids=["wheel-missing", "wheel-truncated", "wheel-tampered", "record-cut", "record-not-a-record"],
)
def test_a_build_whose_wheel_is_missing_or_damaged_is_built_again(
    tmp_path: Path, served: Served, fault: Callable[[Path, Pin], None]
) -> None:
    cache = tmp_path / "cache"
    alpha, gamma, wheel = _build_setup(tmp_path, served)
    combos = [combo_of_pins(alpha, gamma)]
    first = _backend(cache, {gamma.filename: wheel})
    clean = _scan(first, served, cache, combos)
    assert clean[0][1] == "pass"
    assert first.built == [gamma.filename]
    cached = _backend(cache, {gamma.filename: wheel})
    assert _scan(cached, served, cache, combos) == clean
    assert cached.built == []  # a whole cache entry is believed
    fault(cache, gamma)
    shutil.rmtree(cache / "installs")  # the built wheel must be unpacked again

    again = _backend(cache, {gamma.filename: wheel})
    assert _scan(again, served, cache, combos) == clean
    assert again.built == [gamma.filename]
    assert _built(cache, gamma).read_bytes() == wheel.read_bytes()


def test_an_image_build_takes_no_damaged_built_wheel(
    tmp_path: Path, served: Served, caplog: pytest.LogCaptureFixture
) -> None:
    cache = tmp_path / "cache"
    alpha, gamma, wheel = _build_setup(tmp_path, served)
    _scan(_backend(cache, {gamma.filename: wheel}), served, cache, [combo_of_pins(alpha, gamma)])
    stored = _built(cache, gamma)
    _tamper(stored)
    with caplog.at_level(logging.WARNING):
        assert built_wheel(cache, gamma.sha256, "sha256:base") is None
    assert f"{stored.name} in the cache does not match its sha256" in caplog.text
