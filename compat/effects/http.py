"""The one HTTP client factory: the index and the wheelhouse both reach the network
through it, so a CA bundle, a proxy and NO_PROXY mean the same thing to both."""

from __future__ import annotations

import ssl
from collections.abc import Mapping
from pathlib import Path

import httpx

from compat.errors import UsageError
from compat.settings import NetworkSettings

USER_AGENT = "compat (+https://pypi.org/simple/ client)"


def ssl_context(ca_bundle: Path | None) -> ssl.SSLContext:
    """A TLS context trusting ``ca_bundle`` (None: the system's trust store). A bundle
    that cannot be loaded is the user's to fix, whichever layer first needs it."""
    try:
        return ssl.create_default_context(cafile=str(ca_bundle) if ca_bundle else None)
    except (OSError, ssl.SSLError) as exc:
        raise UsageError(
            f"cannot load the CA bundle {ca_bundle}: {exc}; give a PEM file with --cert "
            "or SSL_CERT_FILE"
        ) from exc


def http_client(
    settings: NetworkSettings,
    *,
    connections: int = 10,
    read_timeout: float | None = None,
    headers: Mapping[str, str] | None = None,
    transport: httpx.BaseTransport | None = None,
) -> httpx.Client:
    """A client trusting ``settings.ca_bundle``, going through ``settings.proxy``
    except for ``settings.no_proxy``; nothing is read from the process environment.
    ``read_timeout`` overrides ``settings.timeout`` for reads (large downloads);
    ``transport`` replaces the network (tests)."""
    read = read_timeout if read_timeout is not None else settings.timeout
    timeout = httpx.Timeout(read, connect=min(10.0, settings.timeout))
    common = {"User-Agent": USER_AGENT, **(headers or {})}
    if transport is not None:
        return httpx.Client(
            transport=transport,
            timeout=timeout,
            headers=common,
            follow_redirects=True,
            trust_env=False,
        )
    context = ssl_context(settings.ca_bundle)
    limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
    mounts: dict[str, httpx.BaseTransport | None] = {}
    if settings.proxy:
        proxied = httpx.HTTPTransport(
            proxy=settings.proxy, verify=context, limits=limits, retries=1
        )
        mounts = {"all://": proxied}
        for entry in settings.no_proxy:  # these hosts (and their subdomains) go direct
            host = entry.lstrip(".")
            mounts[f"all://{host}"] = None
            mounts[f"all://*.{host}"] = None
    # trust_env=False: configuration comes from NetworkSettings, not os.environ.
    return httpx.Client(
        transport=httpx.HTTPTransport(verify=context, limits=limits, retries=1),
        mounts=mounts,
        timeout=timeout,
        headers=common,
        follow_redirects=True,
        trust_env=False,
    )
