"""How much an image adds over its base: the layers of its history past the base's."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from compat.effects.container import Engine
from compat.effects.images import inspect_with_history
from compat.errors import HarnessError


@dataclass(frozen=True, kw_only=True, slots=True)
class Layer:
    """One step of an image's history (metadata-only steps have size 0)."""

    created_by: str
    size: int

    @property
    def instruction(self) -> str:
        """The Dockerfile instruction, without the classic builder's shell wrapping."""
        text = " ".join(self.created_by.split())
        if text.startswith("/bin/sh -c #(nop) "):
            return text.removeprefix("/bin/sh -c #(nop) ")
        if text.startswith("/bin/sh -c "):
            return "RUN " + text.removeprefix("/bin/sh -c ")
        return text

    def to_json(self) -> dict[str, Any]:
        return {"created_by": self.created_by, "size": self.size}


@dataclass(frozen=True, kw_only=True, slots=True)
class Sizes:
    size: int  # the whole image, base included
    base_size: int
    layers: tuple[Layer, ...]  # what the image adds over the base, oldest first

    @property
    def added(self) -> int:
        return sum(layer.size for layer in self.layers)


def measure(client: Engine, image: str, base: str) -> Sizes:
    """Sizes of ``image`` and ``base``, and the layers ``image`` adds over ``base``.

    ``image`` must be built on ``base``: its filesystem layers start with the base's
    (checked), and its history with the base's history steps."""
    attrs, history = inspect_with_history(client, image)
    base_attrs, base_history = inspect_with_history(client, base)
    layers = attrs.get("RootFS", {}).get("Layers", [])
    base_layers = base_attrs.get("RootFS", {}).get("Layers", [])
    if layers[: len(base_layers)] != base_layers or len(history) < len(base_history):
        raise HarnessError(f"image {image} is not built on {base}: its layers differ")
    # the engine lists history newest first
    added = list(reversed(history))[len(base_history) :]
    return Sizes(
        size=int(attrs.get("Size", 0)),
        base_size=int(base_attrs.get("Size", 0)),
        layers=tuple(
            Layer(created_by=str(h.get("CreatedBy", "")), size=int(h.get("Size", 0))) for h in added
        ),
    )
