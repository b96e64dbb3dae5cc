"""Images on the engine, for what compat builds: their inspection with history, and
the removal of unnamed intermediate images. The engine's own errors stay here."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

from compat.effects.container import Engine, EngineImages
from compat.errors import HarnessError

log = logging.getLogger("compat.effects")


def inspect_with_history(
    client: Engine, image: str
) -> tuple[Mapping[str, Any], Sequence[Mapping[str, Any]]]:
    """The engine's description of ``image`` and its history (newest step first)."""
    from docker.errors import DockerException

    try:
        return client.api.inspect_image(image), client.api.history(image)
    except DockerException as exc:
        raise HarnessError(f"cannot inspect image {image}: {exc}") from exc


def remove_unnamed(images: EngineImages, image: str) -> bool:
    """Remove ``image`` unless a tag names it; whether it went. One that cannot go (a
    parent of another image) stays, said with --verbose."""
    from docker.errors import DockerException

    try:
        if images.get(image).tags:
            return False
        images.remove(image)
    except DockerException as exc:
        log.debug("kept image %s: %s", image, exc)
        return False
    return True
