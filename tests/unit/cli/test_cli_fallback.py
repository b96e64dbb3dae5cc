"""``--backend auto`` falls back to the local backend when the engine answers but the
base image is neither here nor pullable, saying so in one line; a named ``--image``
or ``--backend docker`` keeps the error and its advice."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from compat.cli.options import Settings, open_target
from compat.config import Backend, RunConfig, Timeouts
from compat.errors import ImageUnavailable
from compat.settings import NetworkSettings
from tests.helpers.reporter import RecordingReporter

MISSING = (
    "image 'local/debian-python:bookworm' is not on this machine and cannot be pulled "
    "(no route to registry).\nBuild it or pull it first; or test an image you have with "
    "--image REF, or this machine's own Python with --backend local."
)


class EngineUp:
    """A Docker backend whose engine answers (nothing else is asked of it here)."""

    kind = "docker"

    def __init__(self, _config: object, **_where: object) -> None:
        pass

    def close(self) -> None:
        pass


def _no_image(ref: str, **_: Any) -> Any:
    raise ImageUnavailable(MISSING)


@pytest.fixture
def settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    monkeypatch.setattr("compat.harness.docker_backend.DockerBackend", EngineUp)
    monkeypatch.setattr("compat.targets.probe.probe_image", _no_image)
    return Settings(
        network=NetworkSettings(),
        cache_dir=tmp_path / "cache",
        offline=True,
        snapshot=None,
        db_url=f"sqlite:///{tmp_path / 'r.db'}",
    )


def run(backend: Backend) -> RunConfig:
    return RunConfig(
        backend=backend,
        jobs=1,
        timeouts=Timeouts(combination=60.0),
        memory="1g",
        add_system_deps=False,
    )


def test_auto_falls_back_to_the_host_in_one_line(settings: Settings) -> None:
    said = RecordingReporter()
    with open_target(settings, said, run("auto"), base="debian-slim", image=None, python=None) as (
        pipeline,
        target,
    ):
        assert pipeline.kind == "local"
        assert target.name == "host"
    (fallback,) = [line for line in said.lines if "local backend" in line]
    assert "\n" not in fallback
    assert fallback.startswith("image 'local/debian-python:bookworm' is not on this machine")
    assert "combinations run on this machine's own Python" in fallback


@pytest.mark.parametrize(
    ("backend", "image"), [("docker", None), ("auto", "local/debian-python:bookworm")]
)
def test_docker_or_a_named_image_keeps_the_error(
    settings: Settings, backend: Backend, image: str | None
) -> None:
    with (
        pytest.raises(ImageUnavailable, match="--backend local"),
        open_target(
            settings,
            RecordingReporter(),
            run(backend),
            base=None,
            image=image,
            python=None,
        ),
    ):
        pass
