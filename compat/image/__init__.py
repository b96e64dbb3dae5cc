"""Build a locked environment as an image, run the smoke suite inside it, and
measure what it adds over its base.

``compat image`` calls ``build_image(lock_dir, tag=..., ...)`` and prints the
``ImageReport``.
"""

from __future__ import annotations

from compat.image.build import IMAGE_LABEL, build_image, prepare_context, stored_file
from compat.image.layers import Layer, Sizes, measure
from compat.image.report import ImageReport
from compat.image.smoke import run_smoke

__all__ = [
    "IMAGE_LABEL",
    "ImageReport",
    "Layer",
    "Sizes",
    "build_image",
    "measure",
    "prepare_context",
    "run_smoke",
    "stored_file",
]
