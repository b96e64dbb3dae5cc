"""Images on the engine, for what compat builds: their build, their inspection with
history, and the removal of unnamed intermediate images. The engine's own errors
stay here."""

from __future__ import annotations

import io
import logging
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from compat.effects.container import Engine, EngineImages
from compat.effects.owners import owned
from compat.errors import HarnessError, ImageBuildFailed

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


def build(
    client: Engine,
    *,
    tag: str,
    context: Path | None = None,
    dockerfile: str | None = None,
    labels: Mapping[str, str],
    buildargs: Mapping[str, str] | None = None,
    nocache: bool = False,
    network_mode: str | None = None,
    on_line: Callable[[str], None] | None = None,
) -> tuple[str, list[str]]:
    """Build ``context`` (a directory with its Dockerfile) or a context-less
    ``dockerfile`` as ``tag`` with the classic builder, leaving no intermediate
    container and pulling nothing (FROM must name a local image). Returns the image
    ID and the build log, each line also handed to ``on_line``; ImageBuildFailed,
    carrying the log, when the build fails."""
    from docker.errors import DockerException

    source: dict[str, Any] = (
        {"path": str(context)}
        if context is not None
        else {"fileobj": io.BytesIO(owned(dockerfile or "").encode())}
    )
    lines: list[str] = []
    error: str | None = None
    try:
        stream = client.api.build(
            **source,
            tag=tag,
            rm=True,
            forcerm=True,  # intermediate containers go even when a step fails
            pull=False,
            nocache=nocache,
            decode=True,
            buildargs=dict(buildargs) if buildargs else None,
            labels=dict(labels),
            network_mode=network_mode,
        )
        for chunk in stream:
            text = chunk.get("stream")
            if text:
                for line in str(text).splitlines():
                    lines.append(line)
                    if on_line is not None:
                        on_line(line)
            if "error" in chunk:
                error = str(chunk["error"]).strip()
    except DockerException as exc:
        error = str(exc)
    if error:
        raise ImageBuildFailed(tag, error, lines)
    try:
        return str(client.images.get(tag).id), lines
    except DockerException as exc:
        raise ImageBuildFailed(tag, f"the built image is not there: {exc}", lines) from exc
