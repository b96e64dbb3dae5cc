"""Integration tests use a real Docker engine and real PyPI. In CI a missing engine
is a failure, never a skip.

The session is one compat run (``COMPAT_RUN``, unless the caller names one): every
container that compat starts for it, in this process or in a compat process a test
starts, carries its run label, so the tests count their own containers and pass
while another compat run uses the engine."""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import pytest

from compat.effects.owners import RUN_ENV

os.environ.setdefault(RUN_ENV, f"tests-{uuid.uuid4().hex[:12]}")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    for item in items:
        if here in Path(item.path).parents:
            item.add_marker(pytest.mark.integration)
