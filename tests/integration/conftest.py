"""Integration tests use a real Docker engine and real PyPI. In CI a missing engine
is a failure, never a skip."""

from __future__ import annotations

import os
from pathlib import Path

import pytest


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    for item in items:
        if here in Path(item.path).parents:
            item.add_marker(pytest.mark.integration)


def require_docker() -> None:
    """Skip locally, fail in CI, when no Docker engine answers."""
    import docker

    try:
        docker.from_env().ping()
    except Exception as exc:
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI needs a running Docker engine: {exc}")
        pytest.skip(f"no Docker engine: {exc}")
