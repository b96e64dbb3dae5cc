"""The one HTTP client factory: CA bundle, proxy and NO_PROXY mean the same to all."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from compat.effects.http import http_client
from compat.errors import UsageError
from compat.settings import NetworkSettings


def _transport(client: httpx.Client, url: str) -> httpx.BaseTransport:
    return client._transport_for_url(httpx.URL(url))


def test_no_proxy_hosts_and_their_subdomains_go_direct() -> None:
    settings = NetworkSettings(
        proxy="http://proxy.corp:3128", no_proxy=("corp.example", ".internal")
    )
    with http_client(settings) as client:
        proxied = _transport(client, "https://pypi.org/simple/")
        assert proxied is not client._transport
        for direct in (
            "https://corp.example/simple/",
            "https://mirror.corp.example/simple/",
            "https://files.internal/x.whl",
        ):
            assert _transport(client, direct) is client._transport, direct


def test_without_a_proxy_everything_goes_direct() -> None:
    with http_client(NetworkSettings(no_proxy=("corp.example",))) as client:
        assert _transport(client, "https://pypi.org/simple/") is client._transport


def test_a_bad_ca_bundle_is_one_usage_error(tmp_path: Path) -> None:
    bundle = tmp_path / "ca.pem"
    bundle.write_text("not a certificate\n")
    with pytest.raises(UsageError, match=f"cannot load the CA bundle {bundle}"):
        http_client(NetworkSettings(ca_bundle=bundle))


def test_read_timeout_overrides_and_headers_add() -> None:
    settings = NetworkSettings(timeout=5.0)
    with http_client(settings, read_timeout=60.0, headers={"X-Test": "1"}) as client:
        assert client.timeout.read == 60.0
        assert client.timeout.connect == 5.0
        assert client.headers["X-Test"] == "1"
        assert client.headers["User-Agent"].startswith("compat")


def test_build_args_carry_the_proxy_and_its_exceptions() -> None:
    assert NetworkSettings().build_args() == {}
    settings = NetworkSettings(proxy="http://p:3128", no_proxy=("a.corp", "b.corp"))
    assert settings.build_args() == {
        "HTTP_PROXY": "http://p:3128",
        "HTTPS_PROXY": "http://p:3128",
        "NO_PROXY": "a.corp,b.corp",
    }
