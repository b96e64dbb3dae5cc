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
