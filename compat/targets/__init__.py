"""Base images and what they accept: Python version, libc and ordered wheel tags,
and how they install system packages (``PackageManager``, ``sysdeps``). A named
profile gives them without Docker; ``probe`` asks the image itself, once per image ID."""

from __future__ import annotations

from compat.targets.target import Libc, PackageManager, Target

__all__ = ["Libc", "PackageManager", "Target"]
