"""compat: which versions of your Python packages really work together on a base image."""

from __future__ import annotations

__version__ = "0.1.0"
