"""PyPI metadata: the files of each project and their core metadata."""

from __future__ import annotations

from compat.index.base import Index

__all__ = ["Index"]
