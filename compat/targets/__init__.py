"""Base images and what they accept: Python version, libc and ordered wheel tags."""

from __future__ import annotations

from compat.targets.target import Libc, Target

__all__ = ["Libc", "Target"]
