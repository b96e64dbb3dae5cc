"""Lock files for a known-good combination: requirements.txt with hashes, PEP 751
pylock.toml, and a Dockerfile that rebuilds the environment on its base image.

``compat.workflows.lock`` builds a ``LockInput`` from the best known-good result and
calls ``write_lock``; each file also has its own pure renderer.
"""

from __future__ import annotations

from compat.lock.dockerfile import APP_UID, VENV, render_dockerfile
from compat.lock.input import LockInput, Prune
from compat.lock.pep751 import build_pylock, render_pylock
from compat.lock.requirements import render_requirements
from compat.lock.write import DOCKERFILE, PYLOCK, RECORD, REQUIREMENTS, read_lock, write_lock

__all__ = [
    "APP_UID",
    "DOCKERFILE",
    "PYLOCK",
    "RECORD",
    "REQUIREMENTS",
    "VENV",
    "LockInput",
    "Prune",
    "build_pylock",
    "read_lock",
    "render_dockerfile",
    "render_pylock",
    "render_requirements",
    "write_lock",
]
