"""Building the image of a lock directory: the tag it gets, the size recorded, and a
failing smoke suite turned into an incompatibility (the build itself faked)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from compat.errors import IncompatibleFound
from compat.image import ImageReport
from compat.lock import write_lock
from compat.model import Verdict
from compat.settings import NetworkSettings
from compat.store import Store, sqlite_url
from compat.workflows import lock as lock_workflow
from compat.workflows.lock import build_locked_image
from tests.helpers.lock import make_lock
from tests.helpers.reporter import RecordingReporter


def _report(tag: str, verdict: Verdict, error: str | None = None) -> ImageReport:
    return ImageReport(
        tag=tag,
        image_id="sha256:built",
        base_image="python:3.11-slim",
        base_image_id="sha256:base",
        combination="c0ffee",
        size=400_000_000,
        base_size=120_000_000,
        added_size=280_000_000,
        layers=(),
        verdict=verdict,
        error=error,
    )


@pytest.mark.parametrize("verdict", [Verdict.PASS, Verdict.IMPORT_ERROR])
def test_the_image_of_a_lock_is_built_measured_and_recorded(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, verdict: Verdict
) -> None:
    locked = make_lock()
    lock_dir = tmp_path / "lock"
    write_lock(locked, lock_dir)
    built: list[str] = []

    def fake_build(directory: Path, *, tag: str, **_: Any) -> ImageReport:
        assert directory == lock_dir
        built.append(tag)
        return _report(tag, verdict, error=None if verdict.ok else "ImportError: boom")

    monkeypatch.setattr(lock_workflow, "build_image", fake_build)
    url = sqlite_url(tmp_path / "results.db")

    @contextlib.contextmanager
    def open_store() -> Iterator[Store]:
        with Store.open(url) as store:
            yield store

    reporter = RecordingReporter()
    outcome = build_locked_image(
        lock_dir,
        open_store=open_store,
        name="my/base:1",
        tag=None,
        cache_dir=tmp_path / "cache",
        network=NetworkSettings(),
        reporter=reporter,
    )
    assert built == [f"compat/my-base-1:{locked.combo.id}"] == [outcome.tag]
    assert reporter.events == ["image_build_started", "image_build_finished"]
    with Store.open(url) as store:
        (size,) = store.image_sizes()
    assert (size.base, size.image, size.added_size) == (
        locked.target.name,
        outcome.tag,
        280_000_000,
    )
    if verdict.ok:
        outcome.raise_for_status()
    else:
        with pytest.raises(IncompatibleFound, match="smoke suite failed in compat/my-base-1"):
            outcome.raise_for_status()
