"""What ``compat image`` says while it works: its build, its smoke suite and its
cold-import timing, each a numbered step (the engine's side faked)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from compat.harness.classify import SuiteOutcome
from compat.image import build as image_build
from compat.image.layers import Sizes
from compat.lock import write_lock
from compat.model import Verdict
from tests.helpers.container import FakeEngine
from tests.helpers.lock import make_lock
from tests.helpers.reporter import RecordingReporter


def _suite(verdict: Verdict) -> SuiteOutcome:
    return SuiteOutcome(
        verdict=verdict,
        checks=(),
        error=None if verdict.ok else "ImportError: boom",
        failed_check=None if verdict.ok else "import:numpy",
        missing_libraries=(),
        system_deps=(),
        log="",
    )


@pytest.mark.parametrize(
    ("verdict", "steps"),
    [(Verdict.PASS, [1, 2, 3]), (Verdict.IMPORT_ERROR, [1, 2])],  # no timing of a failure
)
def test_an_image_build_says_each_step_as_it_starts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, verdict: Verdict, steps: list[int]
) -> None:
    lock = make_lock(sdist=False)
    write_lock(lock, tmp_path / "lock")
    said = RecordingReporter()
    timed: list[str] = []

    def smoke(*_: Any, **__: Any) -> SuiteOutcome:
        assert [n for _, n, _ in said.steps] == [1, 2]  # said before it runs
        return _suite(verdict)

    def startup(*_: Any, **__: Any) -> None:
        timed.append("startup")

    monkeypatch.setattr(image_build, "image_id", lambda _client, _ref: "sha256:base")
    monkeypatch.setattr(image_build, "build", lambda _client, **_: ("sha256:built", []))
    monkeypatch.setattr(image_build, "remove_stage_images", lambda *_, **__: None)
    monkeypatch.setattr(image_build, "measure", lambda *_: Sizes(size=2, base_size=1, layers=()))
    monkeypatch.setattr(image_build, "run_smoke", smoke)
    monkeypatch.setattr(image_build, "measure_startup", startup)
    report = image_build.build_image(
        tmp_path / "lock", tag="compat/x:1", client=FakeEngine(), reporter=said
    )
    assert report.verdict is verdict
    assert [(n, total) for _, n, total in said.steps] == [(n, 3) for n in steps]
    whats = [what for what, _, _ in said.steps]
    assert whats[0] == f"building compat/x:1 on {lock.target.image}"
    assert whats[1] == "running the smoke suite in compat/x:1"
    assert timed == (["startup"] if verdict.ok else [])
    if verdict.ok:
        assert whats[2] == "timing cold imports in compat/x:1, with bytecode and without"
