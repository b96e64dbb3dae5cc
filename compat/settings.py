"""Network settings: which index to ask, which certificate authorities to trust and
which proxy to go through. Read from the environment once, at the edge
(``from_env``), then passed to the HTTP client factory (``compat.effects.http``), to
containers (``container_env``, ``container_mounts``) and to image builds
(``build_args``)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from compat.errors import UsageError

DEFAULT_INDEX_URL = "https://pypi.org/simple/"
DEFAULT_TIMEOUT = 30.0

# Where a CA bundle from the host is mounted inside containers, unless told otherwise.
CONTAINER_CA_PATH = "/etc/compat/ca-bundle.crt"

# In this order: the first one set wins. SSL_CERT_FILE is what OpenSSL, uv and
# httpx read; pip and requests have their own names for the same thing.
CA_BUNDLE_VARIABLES = ("SSL_CERT_FILE", "PIP_CERT", "REQUESTS_CA_BUNDLE")
PROXY_VARIABLES = ("HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy")


def normalize_index_url(url: str) -> str:
    """A simple-API base URL as users write it (``https://host/simple`` or with a
    trailing slash, or PyPI's bare host) in the one form project URLs are joined to."""
    text = url.strip()
    parts = urlsplit(text)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise UsageError(
            f"index URL {url!r} is not an http(s) URL: give the simple API's base URL, "
            f"e.g. {DEFAULT_INDEX_URL}"
        )
    path = parts.path
    if parts.netloc in ("pypi.org", "test.pypi.org") and path in ("", "/"):
        path = "/simple/"
    if not path.endswith("/"):
        path += "/"
    return urlunsplit((parts.scheme, parts.netloc, path, parts.query, ""))


def _first(environ: Mapping[str, str], names: tuple[str, ...]) -> str | None:
    for name in names:
        value = environ.get(name, "").strip()
        if value:
            return value
    return None


@dataclass(frozen=True, kw_only=True, slots=True)
class NetworkSettings:
    index_url: str = DEFAULT_INDEX_URL
    ca_bundle: Path | None = None  # None: the system's trust store
    proxy: str | None = None
    no_proxy: tuple[str, ...] = ()  # hosts (and their subdomains) reached directly
    timeout: float = DEFAULT_TIMEOUT

    def __post_init__(self) -> None:
        object.__setattr__(self, "index_url", normalize_index_url(self.index_url))

    @classmethod
    def from_env(
        cls,
        environ: Mapping[str, str],
        *,
        index_url: str | None = None,
        cert: str | None = None,
        proxy: str | None = None,
        timeout: float = DEFAULT_TIMEOUT,
    ) -> NetworkSettings:
        """Explicit options first, then pip's and OpenSSL's variables."""
        url = index_url or _first(environ, ("PIP_INDEX_URL",)) or DEFAULT_INDEX_URL
        bundle = cert or _first(environ, CA_BUNDLE_VARIABLES)
        ca_bundle = Path(bundle).expanduser() if bundle else None
        if ca_bundle is not None and not ca_bundle.is_file():
            source = (
                "--cert" if cert else "the environment (" + ", ".join(CA_BUNDLE_VARIABLES) + ")"
            )
            raise UsageError(f"CA bundle {ca_bundle} (from {source}) is not a file")
        no_proxy = _first(environ, ("NO_PROXY", "no_proxy")) or ""
        return cls(
            index_url=url,
            ca_bundle=ca_bundle,
            proxy=proxy or _first(environ, PROXY_VARIABLES),
            no_proxy=tuple(h.strip() for h in no_proxy.split(",") if h.strip()),
            timeout=timeout,
        )

    def container_env(self, ca_path: str = CONTAINER_CA_PATH) -> dict[str, str]:
        """The environment a container needs to reach the same index the same way,
        with the CA bundle (if any) mounted at ``ca_path`` (see ``container_mounts``).
        Covers pip, uv, requests and OpenSSL."""
        env = {"PIP_INDEX_URL": self.index_url, "UV_INDEX_URL": self.index_url}
        if self.ca_bundle is not None:
            env |= {
                "PIP_CERT": ca_path,
                "SSL_CERT_FILE": ca_path,
                "REQUESTS_CA_BUNDLE": ca_path,
            }
        if self.proxy:
            env |= {"HTTPS_PROXY": self.proxy, "HTTP_PROXY": self.proxy}
        if self.no_proxy:
            env["NO_PROXY"] = ",".join(self.no_proxy)
        return env

    def build_args(self) -> dict[str, str]:
        """The engine's predefined proxy build args for an image build (they stay out
        of the image's history); empty without a proxy."""
        if not self.proxy:
            return {}
        args = {"HTTP_PROXY": self.proxy, "HTTPS_PROXY": self.proxy}
        if self.no_proxy:
            args["NO_PROXY"] = ",".join(self.no_proxy)
        return args

    def container_mounts(self, ca_path: str = CONTAINER_CA_PATH) -> dict[str, str]:
        """Host path -> container path of the files ``container_env`` refers to
        (read-only bind mounts)."""
        if self.ca_bundle is None:
            return {}
        return {str(self.ca_bundle.resolve()): ca_path}
