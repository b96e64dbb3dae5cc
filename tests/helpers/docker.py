"""Integration tests use a real Docker engine. In CI a missing engine is a failure,
never a skip."""

from __future__ import annotations

import os

import pytest


def require_docker() -> None:
    """Skip locally, fail in CI, when no Docker engine answers."""
    import docker

    try:
        docker.from_env().ping()
    except Exception as exc:
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI needs a running Docker engine: {exc}")
        pytest.skip(f"no Docker engine: {exc}")
