"""Unit tests never touch the network: any attempt fails loudly."""

from __future__ import annotations

import socket
from typing import Any

import pytest


class NetworkAccessInUnitTest(RuntimeError):
    pass


@pytest.fixture(autouse=True)
def _no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    real_connect = socket.socket.connect

    def guarded_connect(self: socket.socket, address: Any) -> Any:
        if self.family == socket.AF_UNIX:
            return real_connect(self, address)
        raise NetworkAccessInUnitTest(f"unit test tried to reach {address!r}")

    monkeypatch.setattr(socket.socket, "connect", guarded_connect)
    monkeypatch.setattr(
        socket, "create_connection", lambda *a, **k: guarded_connect(socket.socket(), a[0])
    )


@pytest.fixture(autouse=True)
def _own_data_dirs(
    monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """Commands run in a unit test never read or write the user's results database
    or caches (another compat version may have left a newer schema there)."""
    home = tmp_path_factory.mktemp("compat-home")
    monkeypatch.setenv("COMPAT_DATA_DIR", str(home / "data"))
    monkeypatch.setenv("COMPAT_CACHE_DIR", str(home / "cache"))
    monkeypatch.delenv("COMPAT_DB", raising=False)
